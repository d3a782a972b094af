use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChannelSettings {
    Table,
    Id,
    WorkspaceId,
    Channel,
    IsActive,
    Config,
    DivisionId,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChannelSettings::Table)
                    .col(uuid(ChannelSettings::Id).primary_key())
                    .col(string(ChannelSettings::WorkspaceId))
                    .col(string(ChannelSettings::Channel))
                    .col(boolean(ChannelSettings::IsActive))
                    .col(json(ChannelSettings::Config))
                    .col(string_null(ChannelSettings::DivisionId))
                    .col(big_integer(ChannelSettings::Revision))
                    .col(timestamp_with_time_zone(ChannelSettings::CreatedAt))
                    .col(timestamp_with_time_zone(ChannelSettings::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_channel_settings_workspace_channel")
                    .table(ChannelSettings::Table)
                    .col(ChannelSettings::WorkspaceId)
                    .col(ChannelSettings::Channel)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChannelSettings::Table).to_owned())
            .await
    }
}
