//! The provider catalog: one row per provider, its config schema as JSON. The catalog is
//! defined once, in `providers.json`; the server reads it from this table and derives
//! validation, defaults, masking and the ListProviders answer from it.

use sea_orm_migration::sea_orm::{ConnectionTrait, Statement, Value};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Providers {
    Table,
    Slug,
    Name,
    Description,
    Category,
    Channel,
    Fields,
}

const CATALOG: &str = include_str!("providers.json");

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
        seed(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Providers::Table).to_owned())
            .await
    }
}

async fn seed(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let catalog: Vec<serde_json::Value> = serde_json::from_str(CATALOG)
        .map_err(|err| DbErr::Migration(format!("providers.json: {err}")))?;
    let db = manager.get_connection();
    for provider in catalog {
        let text = |key: &str| provider[key].as_str().map(str::to_owned);
        let mut insert = Query::insert();
        insert
            .into_table(Providers::Table)
            .columns([
                Providers::Slug,
                Providers::Name,
                Providers::Description,
                Providers::Category,
                Providers::Channel,
                Providers::Fields,
            ])
            .values([
                text("slug").into(),
                text("name").into(),
                text("description").into(),
                text("category").into(),
                text("channel").into(),
                Value::Json(Some(Box::new(provider["fields"].clone()))).into(),
            ])
            .map_err(|err| DbErr::Migration(format!("providers.json: {err}")))?;
        let statement: Statement = db.get_database_backend().build(&insert);
        db.execute_raw(statement).await?;
    }
    Ok(())
}
