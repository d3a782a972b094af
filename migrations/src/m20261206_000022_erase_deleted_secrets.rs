//! Deleted records keep no secret (#28): the accounts and integrations soft-deleted
//! before this version lose every sealed value of their config (each envelope,
//! `{"$patchbay_sealed": …}`, becomes null), and a deleted account its verify token
//! (`''`) and its verify-token index entry. No key is needed: nothing is opened. The
//! tombstones keep their id, key, channel, division, timestamps, who deleted them and
//! their webhook route. From this version on, a delete erases in the same write.
//!
//! There is no way back: `down` leaves the erased values erased.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Uuid;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement, Value as DbValue};
use serde_json::{Map, Value};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The one key of a sealed value's envelope.
const ENVELOPE_KEY: &str = "$patchbay_sealed";

/// `document` with every envelope, at any depth, turned to null; and how many.
fn erase(document: &Map<String, Value>) -> (Map<String, Value>, usize) {
    let mut erased = 0;
    let out = document
        .iter()
        .map(|(key, value)| (key.clone(), erase_value(value, &mut erased)))
        .collect();
    (out, erased)
}

fn erase_value(value: &Value, erased: &mut usize) -> Value {
    match value {
        Value::Object(object) if object.len() == 1 && object.contains_key(ENVELOPE_KEY) => {
            *erased += 1;
            Value::Null
        }
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| (key.clone(), erase_value(value, erased)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| erase_value(item, erased)).collect())
        }
        other => other.clone(),
    }
}

async fn erase_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT id, CAST(config AS TEXT) AS config FROM {table} WHERE deleted_at IS NOT NULL"
            ),
        ))
        .await?;
    for row in rows {
        let id: Uuid = row.try_get("", "id")?;
        let text: String = row.try_get("", "config")?;
        let (config, malformed) = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(config)) => (config, false),
            // Not a document: nothing of it is kept.
            _ => (Map::new(), true),
        };
        let (erased, count) = erase(&config);
        let mut update = Query::update();
        update
            .table(Alias::new(table))
            .and_where(Expr::col(Alias::new("id")).eq(id));
        if count > 0 || malformed {
            update.value(
                Alias::new("config"),
                DbValue::Json(Some(Box::new(Value::Object(erased)))),
            );
        }
        if table == "accounts" {
            update
                .value(Alias::new("verify_token"), "")
                .value(Alias::new("verify_token_index"), DbValue::String(None));
        }
        if update.get_values().is_empty() {
            continue;
        }
        db.execute(&update).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["accounts", "integrations"] {
            erase_table(manager, table).await?;
        }
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_envelope_at_any_depth_becomes_null_and_the_rest_stays() {
        let Value::Object(document) = json!({
            "page_id": "100",
            "page_access_token": {"$patchbay_sealed": "pbx1.t1.abc"},
            "nested": {"api_key": {"$patchbay_sealed": "pbx1.t1.def"}, "plain": 1},
            "list": [{"$patchbay_sealed": "pbx1.t1.ghi"}, "x"],
            "look_alike": {"$patchbay_sealed": "x", "other": 1}
        }) else {
            unreachable!("an object");
        };
        let (erased, count) = erase(&document);
        assert_eq!(count, 3);
        assert_eq!(
            Value::Object(erased),
            json!({"page_id": "100", "page_access_token": null,
                "nested": {"api_key": null, "plain": 1}, "list": [null, "x"],
                "look_alike": {"$patchbay_sealed": "x", "other": 1}})
        );
    }
}
