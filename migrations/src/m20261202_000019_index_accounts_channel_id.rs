//! An index for loading the webhook routing index a channel at a time in id order.
//! Without it SQLite answered each page of the load through the (channel, provider id)
//! index and sorted the channel's every remaining account for it: a load of 500,000
//! routable accounts took five minutes, quadratic in their number. On PostgreSQL the
//! index is built inside the migration's transaction, which holds account writes until
//! it is built: seconds on a million accounts; plan the upgrade for it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Channel,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_accounts_channel_id")
                    .table(Accounts::Table)
                    .col(Accounts::Channel)
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
                    .name("ix_accounts_channel_id")
                    .table(Accounts::Table)
                    .to_owned(),
            )
            .await
    }
}
