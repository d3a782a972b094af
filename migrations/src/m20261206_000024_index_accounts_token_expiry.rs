//! An index for the token rounds (#28): the checker and the refresher read accounts
//! nearest their token's expiry first, a page at a time after the last one dealt with
//! (`token_expires_at`, then `id`). Without it each page sorted every account.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    TokenExpiresAt,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_accounts_token_expiry")
                    .table(Accounts::Table)
                    .col(Accounts::TokenExpiresAt)
                    .col(Accounts::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_accounts_token_expiry")
                    .table(Accounts::Table)
                    .to_owned(),
            )
            .await
    }
}
