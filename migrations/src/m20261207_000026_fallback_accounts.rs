//! Ordered fallbacks per scope (#30): `fallback_accounts` holds, for a workspace's
//! channel and scope (`scope` is the division id, `''` for the workspace-wide scope),
//! the accounts GetDefaultAccount serves in order when the scope's default cannot send.
//! One row an account, at its `position`; an account leaves its lists when it is
//! deleted, deactivated, made the scope's default or moved out of the scope (in the
//! transaction of that write), so `account_id` is indexed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum FallbackAccounts {
    Table,
    WorkspaceId,
    Channel,
    Scope,
    Position,
    AccountId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FallbackAccounts::Table)
                    .col(string(FallbackAccounts::WorkspaceId))
                    .col(string(FallbackAccounts::Channel))
                    .col(string(FallbackAccounts::Scope))
                    .col(integer(FallbackAccounts::Position))
                    .col(uuid(FallbackAccounts::AccountId))
                    .primary_key(
                        Index::create()
                            .col(FallbackAccounts::WorkspaceId)
                            .col(FallbackAccounts::Channel)
                            .col(FallbackAccounts::Scope)
                            .col(FallbackAccounts::Position),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_fallback_accounts_account")
                    .table(FallbackAccounts::Table)
                    .col(FallbackAccounts::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FallbackAccounts::Table).to_owned())
            .await
    }
}
