//! A background round's place (#28): `task_leases.cursor`, the last record a round
//! dealt with, kept with its lease. A round cut short (an outage, a refused app token,
//! a stop) resumes after it; a round that reaches the end clears it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TaskLeases {
    Table,
    Cursor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::add_columns(
            manager,
            TaskLeases::Table,
            vec![
                ColumnDef::new(TaskLeases::Cursor)
                    .string()
                    .null()
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::drop_columns(manager, TaskLeases::Table, vec![TaskLeases::Cursor]).await
    }
}
