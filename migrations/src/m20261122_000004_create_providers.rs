//! The provider catalog: one row per provider, its config schema as JSON. The catalog is
//! defined once, in `providers.json`; the server reads it from this table and derives
//! validation, defaults, masking and the ListProviders answer from it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Providers {
    Table,
    Slug,
    Name,
    Description,
    Category,
    Channel,
    Fields,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Providers::Table)
                    .col(string(Providers::Slug).primary_key())
                    .col(string(Providers::Name))
                    .col(string(Providers::Description))
                    .col(string(Providers::Category))
                    .col(string_null(Providers::Channel))
                    .col(json(Providers::Fields))
                    .to_owned(),
            )
            .await?;
        crate::catalog::upsert(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Providers::Table).to_owned())
            .await
    }
}
