//! The log of default-account changes: one row per change of one (channel, division)
//! scope's default, numbered per workspace. Replicas and watch streams follow it to know
//! which scopes to re-read; a new number is only taken under the workspace's lock, so the
//! numbers of a workspace commit in order and a reader that sees N has seen everything
//! before N.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DefaultAccountChanges {
    Table,
    WorkspaceId,
    Revision,
    Channel,
    DivisionId,
    ChangedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DefaultAccountChanges::Table)
                    .col(string(DefaultAccountChanges::WorkspaceId))
                    .col(big_integer(DefaultAccountChanges::Revision))
                    .col(string(DefaultAccountChanges::Channel))
                    // NULL for the workspace-wide scope.
                    .col(string_null(DefaultAccountChanges::DivisionId))
                    .col(timestamp_with_time_zone(DefaultAccountChanges::ChangedAt))
                    .primary_key(
                        Index::create()
                            .col(DefaultAccountChanges::WorkspaceId)
                            .col(DefaultAccountChanges::Revision),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DefaultAccountChanges::Table).to_owned())
            .await
    }
}
