//! The account lifecycle:
//!
//! - `account_events`: what happened to each account (created, updated, deleted, default
//!   changed, set-up failed or succeeded, reauthorization required or done, token
//!   expiring, refreshed, refresh exhausted), numbered per workspace, written in the
//!   transaction of the change. Only ids, the kind, a reason and when: never a secret
//!   (the account is read and masked for each watcher). Kept for the retention period.
//! - `account_event_heads`: each workspace's latest event number, so that numbers keep
//!   growing after old events are dropped.
//! - accounts get what the token checks learn (`data_access_expires_at`,
//!   `reauthorization_reason`, `token_checked_at`), the refresher's count of failures in
//!   a row and whether it gave up, the last expiry warning sent and the last refresh.
//! - `task_leases`: which replica runs a background round (token checks, refreshes),
//!   until when, and when the last round ran.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccountEvents {
    Table,
    WorkspaceId,
    Revision,
    AccountId,
    Channel,
    DivisionId,
    Kind,
    Reason,
    OccurredAt,
}

#[derive(DeriveIden)]
enum AccountEventHeads {
    Table,
    WorkspaceId,
    Revision,
}

#[derive(DeriveIden)]
enum TaskLeases {
    Table,
    Name,
    Holder,
    ExpiresAt,
    LastRoundAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    DataAccessExpiresAt,
    ReauthorizationReason,
    TokenCheckedAt,
    RefreshFailures,
    RefreshExhausted,
    TokenWarnedDays,
    TokenRefreshedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountEvents::Table)
                    .col(string(AccountEvents::WorkspaceId))
                    .col(big_integer(AccountEvents::Revision))
                    .col(uuid(AccountEvents::AccountId))
                    .col(string(AccountEvents::Channel))
                    .col(string_null(AccountEvents::DivisionId))
                    .col(string(AccountEvents::Kind))
                    .col(string_null(AccountEvents::Reason))
                    .col(timestamp_with_time_zone(AccountEvents::OccurredAt))
                    .primary_key(
                        Index::create()
                            .col(AccountEvents::WorkspaceId)
                            .col(AccountEvents::Revision),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_account_events_occurred_at")
                    .table(AccountEvents::Table)
                    .col(AccountEvents::OccurredAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccountEventHeads::Table)
                    .col(string(AccountEventHeads::WorkspaceId).primary_key())
                    .col(big_integer(AccountEventHeads::Revision))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaskLeases::Table)
                    .col(string(TaskLeases::Name).primary_key())
                    .col(string(TaskLeases::Holder))
                    .col(timestamp_with_time_zone(TaskLeases::ExpiresAt))
                    .col(timestamp_with_time_zone_null(TaskLeases::LastRoundAt))
                    .to_owned(),
            )
            .await?;
        crate::columns::add_columns(
            manager,
            Accounts::Table,
            vec![
                ColumnDef::new(Accounts::DataAccessExpiresAt)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
                ColumnDef::new(Accounts::ReauthorizationReason)
                    .string()
                    .null()
                    .to_owned(),
                ColumnDef::new(Accounts::TokenCheckedAt)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
                ColumnDef::new(Accounts::RefreshFailures)
                    .integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
                ColumnDef::new(Accounts::RefreshExhausted)
                    .boolean()
                    .not_null()
                    .default(false)
                    .to_owned(),
                ColumnDef::new(Accounts::TokenWarnedDays)
                    .integer()
                    .null()
                    .to_owned(),
                ColumnDef::new(Accounts::TokenRefreshedAt)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::drop_columns(
            manager,
            Accounts::Table,
            vec![
                Accounts::DataAccessExpiresAt,
                Accounts::ReauthorizationReason,
                Accounts::TokenCheckedAt,
                Accounts::RefreshFailures,
                Accounts::RefreshExhausted,
                Accounts::TokenWarnedDays,
                Accounts::TokenRefreshedAt,
            ],
        )
        .await?;
        for table in [
            TaskLeases::Table.into_iden(),
            AccountEventHeads::Table.into_iden(),
            AccountEvents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
