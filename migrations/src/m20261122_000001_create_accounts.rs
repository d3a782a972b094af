use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    WorkspaceId,
    Channel,
    AccountKey,
    DisplayName,
    IsActive,
    IsDefault,
    DivisionId,
    Config,
    VerifyToken,
    Revision,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
    DeletedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(uuid(Accounts::Id).primary_key())
                    .col(string(Accounts::WorkspaceId))
                    .col(string(Accounts::Channel))
                    .col(string(Accounts::AccountKey))
                    .col(string(Accounts::DisplayName))
                    .col(boolean(Accounts::IsActive))
                    .col(boolean(Accounts::IsDefault))
                    .col(string_null(Accounts::DivisionId))
                    .col(json(Accounts::Config))
                    .col(string(Accounts::VerifyToken))
                    .col(big_integer(Accounts::Revision))
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .col(timestamp_with_time_zone(Accounts::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Accounts::DeletedAt))
                    .col(string_null(Accounts::DeletedBy))
                    .to_owned(),
            )
            .await?;

        manager
            .create_index(
                Index::create()
                    .name("ix_accounts_workspace_channel")
                    .table(Accounts::Table)
                    .col(Accounts::WorkspaceId)
                    .col(Accounts::Channel)
                    .to_owned(),
            )
            .await?;

        let db = manager.get_connection();
        // A soft-deleted account frees its key: uniqueness holds among live rows only.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_accounts_live_key \
             ON accounts (workspace_id, channel, account_key) \
             WHERE deleted_at IS NULL",
        )
        .await?;
        // The database itself guarantees at most one default per (workspace, division,
        // channel); COALESCE folds the workspace-wide scope (NULL division) into one key.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_accounts_one_default \
             ON accounts (workspace_id, channel, COALESCE(division_id, '')) \
             WHERE is_default AND deleted_at IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Accounts::Table).to_owned())
            .await
    }
}
