use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    WorkspaceId,
    DivisionId,
    Actor,
    ActorRole,
    RecordKind,
    RecordId,
    Action,
    ChangedFields,
    RequestId,
    OccurredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(uuid(AuditEvents::Id).primary_key())
                    .col(string(AuditEvents::WorkspaceId))
                    .col(string_null(AuditEvents::DivisionId))
                    .col(string(AuditEvents::Actor))
                    .col(string(AuditEvents::ActorRole))
                    .col(string(AuditEvents::RecordKind))
                    .col(string(AuditEvents::RecordId))
                    .col(string(AuditEvents::Action))
                    .col(json(AuditEvents::ChangedFields))
                    .col(string(AuditEvents::RequestId))
                    .col(timestamp_with_time_zone(AuditEvents::OccurredAt))
                    .to_owned(),
            )
            .await?;
        // Events are listed per workspace in id (time) order, often for one record.
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_events_workspace_id")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::WorkspaceId)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_events_record")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::WorkspaceId)
                    .col(AuditEvents::RecordId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
