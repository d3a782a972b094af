//! Idempotency keys belong to one caller and commit with their mutation: the key is
//! (workspace, caller scope, key), and a row names the record the call wrote (recorded
//! in that write's transaction) or holds the sealed answer of a call that wrote none.
//! There is no "still running" row any more: a key is free until its call commits.
//!
//! The old table is replaced, not converted: its keys (at most 24 hours old) were
//! workspace-wide and held answers in clear; dropping them gives up replay protection
//! for calls made just before the upgrade.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    WorkspaceId,
    CallerScope,
    Key,
    Method,
    RequestHash,
    CallId,
    RecordKind,
    RecordId,
    Response,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(string(IdempotencyKeys::WorkspaceId))
                    .col(string(IdempotencyKeys::CallerScope))
                    .col(string(IdempotencyKeys::Key))
                    .col(string(IdempotencyKeys::Method))
                    .col(string(IdempotencyKeys::RequestHash))
                    .col(uuid(IdempotencyKeys::CallId))
                    .col(string_null(IdempotencyKeys::RecordKind))
                    .col(string_null(IdempotencyKeys::RecordId))
                    .col(text_null(IdempotencyKeys::Response))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::WorkspaceId)
                            .col(IdempotencyKeys::CallerScope)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_keys_expires_at_v2")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(string(IdempotencyKeys::WorkspaceId))
                    .col(string(IdempotencyKeys::Key))
                    .col(string(IdempotencyKeys::Method))
                    .col(string(IdempotencyKeys::RequestHash))
                    .col(blob_null(IdempotencyKeys::Response))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::WorkspaceId)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await
    }
}
