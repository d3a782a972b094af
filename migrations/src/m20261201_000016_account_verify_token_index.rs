//! Accounts get `verify_token_index`: an HMAC of the verify token under the key ring's
//! index key, so that a channel-wide webhook handshake (no account key) finds its account
//! through an index, in the same time whatever the number of accounts, instead of
//! decrypting and comparing each. Rows written before it are filled by `keys rotate`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    WorkspaceId,
    Channel,
    VerifyTokenIndex,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(ColumnDef::new(Accounts::VerifyTokenIndex).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_accounts_verify_token_index")
                    .table(Accounts::Table)
                    .col(Accounts::WorkspaceId)
                    .col(Accounts::Channel)
                    .col(Accounts::VerifyTokenIndex)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_accounts_verify_token_index")
                    .table(Accounts::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::VerifyTokenIndex)
                    .to_owned(),
            )
            .await
    }
}
