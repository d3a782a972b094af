use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Id,
    WorkspaceId,
    Provider,
    Name,
    Identifier,
    Channel,
    Active,
    IsPrimary,
    PrimaryScope,
    Conditions,
    AccountId,
    Config,
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
                    .table(Integrations::Table)
                    .col(uuid(Integrations::Id).primary_key())
                    .col(string(Integrations::WorkspaceId))
                    .col(string(Integrations::Provider))
                    .col(string(Integrations::Name))
                    .col(string(Integrations::Identifier))
                    .col(string_null(Integrations::Channel))
                    .col(boolean(Integrations::Active))
                    .col(boolean(Integrations::IsPrimary))
                    // The channel, or `provider:<slug>` for providers without one: the
                    // scope within which at most one integration is primary.
                    .col(string(Integrations::PrimaryScope))
                    .col(json(Integrations::Conditions))
                    .col(uuid_null(Integrations::AccountId))
                    .col(json(Integrations::Config))
                    .col(big_integer(Integrations::Revision))
                    .col(timestamp_with_time_zone(Integrations::CreatedAt))
                    .col(timestamp_with_time_zone(Integrations::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Integrations::DeletedAt))
                    .col(string_null(Integrations::DeletedBy))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_integrations_live_identifier \
             ON integrations (workspace_id, identifier) WHERE deleted_at IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_integrations_one_primary \
             ON integrations (workspace_id, primary_scope) \
             WHERE is_primary AND deleted_at IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX ix_integrations_workspace_id ON integrations (workspace_id, id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Integrations::Table).to_owned())
            .await
    }
}
