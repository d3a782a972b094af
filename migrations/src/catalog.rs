//! Writing `providers.json`, the one definition of the provider catalog, into the
//! `providers` table: every provider inserted, or updated when its row exists. The
//! migration that creates the table seeds it; a later migration that changes the catalog
//! (a new provider, a schema attribute) runs it again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement, Value};
use sea_orm_migration::sea_query::OnConflict;

use crate::m20261122_000004_create_providers::Providers;

const CATALOG: &str = include_str!("providers.json");

pub(crate) async fn upsert(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
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
            .map_err(|err| DbErr::Migration(format!("providers.json: {err}")))?
            .on_conflict(
                OnConflict::column(Providers::Slug)
                    .update_columns([
                        Providers::Name,
                        Providers::Description,
                        Providers::Category,
                        Providers::Channel,
                        Providers::Fields,
                    ])
                    .to_owned(),
            );
        let statement: Statement = db.get_database_backend().build(&insert);
        db.execute_raw(statement).await?;
    }
    Ok(())
}
