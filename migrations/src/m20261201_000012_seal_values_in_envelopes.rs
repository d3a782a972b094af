//! Sealed values in config documents move into envelopes: `"pbx1.<key id>.<…>"` becomes
//! `{"$patchbay_sealed": "pbx1.<key id>.<…>"}`, a shape no client can send, so that a
//! client's string that looks like a ciphertext is never read as one.
//!
//! Only values the sealing rule sealed are moved — those under a secret-named key in
//! account and channel-settings configs, those at a schema-secret path in integration
//! configs — so a client's look-alike string elsewhere stays data. The ciphertext is
//! moved as it is (its field path, bound into it, does not change): no key is needed.
//! The name rule is written out here as it stood when these values were sealed.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Uuid;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement, Value as DbValue};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(DeriveMigrationName)]
pub struct Migration;

const PREFIX: &str = "pbx1.";
const ENVELOPE: &str = "$patchbay_sealed";
/// Keys under this prefix are the server's from this migration on.
const RESERVED: &str = "$patchbay";

/// Which positions the sealing rule sealed.
enum Rule<'a> {
    ByName,
    Schema(&'a BTreeSet<String>),
}

impl Rule<'_> {
    fn is_secret(&self, path: &str, key: &str) -> bool {
        match self {
            Rule::ByName => is_secret_name(key),
            Rule::Schema(paths) => paths.contains(path),
        }
    }
}

fn is_secret_name(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    const FRAGMENTS: &[&str] = &[
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "apikey",
        "privatekey",
        "accesskey",
        "credential",
        "authorization",
        "bearer",
    ];
    normalized == "pin"
        || FRAGMENTS.iter().any(|f| normalized.contains(f))
        || normalized.ends_with("key")
}

/// `document` with each sealed string at a secret position put in an envelope (`wrap`)
/// or taken out of one (`!wrap`); with how many values moved. Wrapping also renames the
/// keys a client stored under the prefix now reserved for envelopes (`$patchbay…` →
/// `_$patchbay…`): nothing the server wrote had one yet, and left as they were, such an
/// object would read as a forged envelope and make its record unreadable.
fn convert(
    document: &Map<String, Value>,
    path: &str,
    rule: &Rule<'_>,
    wrap: bool,
) -> (Map<String, Value>, usize) {
    let mut moved = 0;
    let mut out = Map::new();
    for (key, value) in document {
        let field = format!("{path}.{key}");
        let converted = match value {
            Value::String(sealed)
                if wrap && sealed.starts_with(PREFIX) && rule.is_secret(&field, key) =>
            {
                moved += 1;
                let mut envelope = Map::new();
                envelope.insert(ENVELOPE.to_owned(), Value::String(sealed.clone()));
                Value::Object(envelope)
            }
            Value::Object(object)
                if !wrap
                    && object.len() == 1
                    && object.get(ENVELOPE).is_some_and(Value::is_string) =>
            {
                moved += 1;
                object[ENVELOPE].clone()
            }
            other => convert_nested(other, &field, rule, wrap, &mut moved),
        };
        if wrap && key.starts_with(RESERVED) {
            moved += 1;
            out.insert(format!("_{key}"), converted);
        } else {
            out.insert(key.clone(), converted);
        }
    }
    (out, moved)
}

/// Objects and arrays at any depth (arrays inside arrays included), walked as the
/// sealing code walks them: array items are no secret positions themselves.
fn convert_nested(
    value: &Value,
    path: &str,
    rule: &Rule<'_>,
    wrap: bool,
    moved: &mut usize,
) -> Value {
    match value {
        Value::Object(object) => {
            let (inner, count) = convert(object, path, rule, wrap);
            *moved += count;
            Value::Object(inner)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert_nested(item, &format!("{path}[{i}]"), rule, wrap, moved))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The schema-secret paths of every provider, from the catalog table.
async fn schema_secrets(
    db: &SchemaManagerConnection<'_>,
) -> Result<BTreeMap<String, BTreeSet<String>>, DbErr> {
    fn collect(fields: &Value, path: &str, out: &mut BTreeSet<String>) {
        for field in fields.as_array().into_iter().flatten() {
            let Some(name) = field.get("name").and_then(Value::as_str) else {
                continue;
            };
            let field_path = format!("{path}.{name}");
            if field.get("secret").and_then(Value::as_bool) == Some(true) {
                out.insert(field_path.clone());
            }
            if let Some(nested) = field.get("fields") {
                collect(nested, &field_path, out);
            }
        }
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT slug, CAST(fields AS TEXT) AS fields FROM providers",
        ))
        .await?;
    let mut secrets = BTreeMap::new();
    for row in rows {
        let slug: String = row.try_get("", "slug")?;
        let text: String = row.try_get("", "fields")?;
        let fields: Value =
            serde_json::from_str(&text).map_err(|e| DbErr::Migration(e.to_string()))?;
        let mut paths = BTreeSet::new();
        collect(&fields, "config", &mut paths);
        secrets.insert(slug, paths);
    }
    Ok(secrets)
}

async fn convert_table(manager: &SchemaManager<'_>, table: &str, wrap: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let schemas = if table == "integrations" {
        schema_secrets(db).await?
    } else {
        BTreeMap::new()
    };
    let provider_column = if table == "integrations" {
        "provider"
    } else {
        "'' AS provider"
    };
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT id, {provider_column}, CAST(config AS TEXT) AS config FROM {table}"),
        ))
        .await?;
    let none = BTreeSet::new();
    for row in rows {
        let id: Uuid = row.try_get("", "id")?;
        let provider: String = row.try_get("", "provider")?;
        let text: String = row.try_get("", "config")?;
        let Ok(Value::Object(config)) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let rule = if table == "integrations" {
            Rule::Schema(schemas.get(&provider).unwrap_or(&none))
        } else {
            Rule::ByName
        };
        let (converted, moved) = convert(&config, "config", &rule, wrap);
        if moved == 0 {
            continue;
        }
        let update = Query::update()
            .table(Alias::new(table))
            .value(
                Alias::new("config"),
                DbValue::Json(Some(Box::new(Value::Object(converted)))),
            )
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        db.execute(&update).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["accounts", "channel_settings", "integrations"] {
            convert_table(manager, table, true).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["accounts", "channel_settings", "integrations"] {
            convert_table(manager, table, false).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn client_keys_under_the_reserved_prefix_are_renamed_and_nested_arrays_walked() {
        let document = json!({
            "note": {"$patchbay_sealed": "pbx1.zz.AAAA"},
            "deep": [[{"token": "pbx1.t1.BBBB"}]]
        });
        let document = document.as_object().cloned().unwrap_or_default();
        let (wrapped, moved) = convert(&document, "config", &Rule::ByName, true);
        assert_eq!(moved, 2);
        assert_eq!(
            Value::Object(wrapped),
            json!({
                "note": {"_$patchbay_sealed": "pbx1.zz.AAAA"},
                "deep": [[{"token": {"$patchbay_sealed": "pbx1.t1.BBBB"}}]]
            })
        );
    }

    #[test]
    fn only_sealed_values_at_secret_positions_move() {
        let document = json!({
            "note": "pbx1.zz.AAAA",
            "api_key": "pbx1.t1.BBBB",
            "nested": {"password": "pbx1.t1.CCCC", "host": "pbx1.zz.DDDD"},
            "hooks": [{"secret": "pbx1.t1.EEEE"}, "pbx1.zz.FFFF"],
            "plain_token": "not sealed"
        });
        let document = document.as_object().cloned().unwrap_or_default();
        let (wrapped, moved) = convert(&document, "config", &Rule::ByName, true);
        assert_eq!(moved, 3);
        assert_eq!(
            Value::Object(wrapped.clone()),
            json!({
                "note": "pbx1.zz.AAAA",
                "api_key": {"$patchbay_sealed": "pbx1.t1.BBBB"},
                "nested": {"password": {"$patchbay_sealed": "pbx1.t1.CCCC"}, "host": "pbx1.zz.DDDD"},
                "hooks": [{"secret": {"$patchbay_sealed": "pbx1.t1.EEEE"}}, "pbx1.zz.FFFF"],
                "plain_token": "not sealed"
            })
        );
        let (unwrapped, back) = convert(&wrapped, "config", &Rule::ByName, false);
        assert_eq!((unwrapped, back), (document, 3));
    }
}
