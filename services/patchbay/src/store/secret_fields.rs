//! The secret fields of a record on their way to and from the database: every value under
//! a secret key of a config document (at any depth) and every secret column is sealed on
//! write and opened on read, bound to `<record kind>/<record id>/<field path>`.
//!
//! In a document a sealed value is stored as an envelope, `{"$patchbay_sealed":
//! "pbx1.<key id>.<…>"}`, a shape no client can send (input validation refuses keys
//! starting with `$patchbay`). Only envelopes are opened: a client's string that looks
//! like a ciphertext is data and round-trips as it came. A secret position holding a
//! plain value (written before its name became secret) reads as it is and is sealed by
//! the next write or by `patchbay keys rotate`.

use serde_json::Value;
use uuid::Uuid;

use crate::domain::config_document::{Document, SecretRule};
use crate::domain::{Error, RecordKind};
use crate::sealing::{KeyRing, SealError, is_sealed, key_id_of};

/// The one key of a sealed value's envelope.
pub(crate) const ENVELOPE_KEY: &str = "$patchbay_sealed";

/// The ciphertext of an envelope, if `value` is one.
fn envelope_of(value: &Value) -> Option<&str> {
    match value {
        Value::Object(object) if object.len() == 1 => {
            object.get(ENVELOPE_KEY).and_then(Value::as_str)
        }
        _ => None,
    }
}

fn envelope(sealed: String) -> Value {
    let mut object = serde_json::Map::new();
    object.insert(ENVELOPE_KEY.to_owned(), Value::String(sealed));
    Value::Object(object)
}

/// A stored document with nothing secret left: every envelope, and every value `rule`
/// calls secret (sealed or from before it was), becomes null. What a deleted record
/// keeps: no key is needed, and nothing can be opened again.
pub(crate) fn erase_secrets(document: &Document, path: &str, rule: SecretRule<'_>) -> Document {
    let erased = map_values(document, path, &mut |field, key, value| {
        let secret = envelope_of(value).is_some() || rule.is_secret(field, key);
        Ok((secret && !value.is_null()).then_some(Value::Null))
    });
    // The mapper never fails.
    erased.unwrap_or_default()
}

/// Where a secret lives, as bound into its ciphertext.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    pub kind: RecordKind,
    pub id: Uuid,
}

impl Owner {
    fn context(self, field: &str) -> String {
        format!("{}/{}/{field}", self.kind.as_str(), self.id)
    }
}

pub(crate) fn seal_text(
    ring: &KeyRing,
    owner: Owner,
    field: &str,
    text: &str,
) -> Result<String, Error> {
    ring.seal(&owner.context(field), text.as_bytes())
        .map_err(|err| seal_error(err, owner, field))
}

pub(crate) fn open_text(
    ring: &KeyRing,
    owner: Owner,
    field: &str,
    stored: &str,
) -> Result<String, Error> {
    if !is_sealed(stored) {
        return Ok(stored.to_owned());
    }
    let bytes = ring
        .open(&owner.context(field), stored)
        .map_err(|err| seal_error(err, owner, field))?;
    String::from_utf8(bytes).map_err(|_| seal_error(SealError::Malformed, owner, field))
}

/// A copy of `document` with every secret value (as `rule` tells) sealed. `path` is the
/// document's own field name (`config`).
pub(crate) fn seal_document(
    ring: &KeyRing,
    owner: Owner,
    path: &str,
    document: &Document,
    rule: SecretRule<'_>,
) -> Result<Document, Error> {
    map_values(document, path, &mut |field, key, value| {
        if !rule.is_secret(field, key) || value.is_null() {
            return Ok(None);
        }
        let plain = serde_json::to_vec(value)
            .map_err(|err| Error::Internal(format!("cannot encode {field}: {err}")))?;
        let sealed = ring
            .seal(&owner.context(field), &plain)
            .map_err(|err| seal_error(err, owner, field))?;
        Ok(Some(envelope(sealed)))
    })
}

/// A copy of a stored `document` with every envelope opened, wherever it sits.
pub(crate) fn open_document(
    ring: &KeyRing,
    owner: Owner,
    path: &str,
    document: &Document,
) -> Result<Document, Error> {
    map_values(
        document,
        path,
        &mut |field, _, value| match envelope_of(value) {
            Some(sealed) => {
                let plain = ring
                    .open(&owner.context(field), sealed)
                    .map_err(|err| seal_error(err, owner, field))?;
                serde_json::from_slice(&plain)
                    .map(Some)
                    .map_err(|_| seal_error(SealError::Malformed, owner, field))
            }
            None => Ok(None),
        },
    )
}

/// A stored document with every sealed value not under the active key sealed again
/// under it, and every plain value that `rule` calls secret sealed (a value written
/// before its name or schema field became secret); with how many values it changed.
pub(crate) fn reseal_document(
    ring: &KeyRing,
    owner: Owner,
    path: &str,
    document: &Document,
    rule: SecretRule<'_>,
) -> Result<(Document, usize), Error> {
    let mut changed = 0;
    let resealed = map_values(document, path, &mut |field, key, value| {
        let plain = match (envelope_of(value), value) {
            (Some(stored), _) => {
                if is_current_text(ring, stored) {
                    return Ok(None);
                }
                ring.open(&owner.context(field), stored)
                    .map_err(|err| seal_error(err, owner, field))?
            }
            (None, Value::Null) => return Ok(None),
            (None, legacy) if rule.is_secret(field, key) => serde_json::to_vec(legacy)
                .map_err(|err| Error::Internal(format!("cannot encode {field}: {err}")))?,
            _ => return Ok(None),
        };
        changed += 1;
        let sealed = ring
            .seal(&owner.context(field), &plain)
            .map_err(|err| seal_error(err, owner, field))?;
        Ok(Some(envelope(sealed)))
    })?;
    Ok((resealed, changed))
}

/// Whether a stored secret column value is sealed under the active key.
pub(crate) fn is_current_text(ring: &KeyRing, stored: &str) -> bool {
    key_id_of(stored) == Some(ring.active_key_id())
}

/// Given a value's path, key and value, its replacement (`None`: keep, walk into it).
type ValueMapper<'a> = dyn FnMut(&str, &str, &Value) -> Result<Option<Value>, Error> + 'a;

/// Rebuilds `document`, replacing each value for which `f(field path, key, value)`
/// answers `Some`; other objects and arrays are walked into.
fn map_values(document: &Document, path: &str, f: &mut ValueMapper<'_>) -> Result<Document, Error> {
    let mut out = Document::new();
    for (key, value) in document {
        let field = format!("{path}.{key}");
        let mapped = match f(&field, key, value)? {
            Some(replacement) => replacement,
            None => map_nested(value, &field, f)?,
        };
        out.insert(key.clone(), mapped);
    }
    Ok(out)
}

fn map_nested(value: &Value, path: &str, f: &mut ValueMapper<'_>) -> Result<Value, Error> {
    Ok(match value {
        Value::Object(object) => Value::Object(map_values(object, path, f)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let field = format!("{path}[{i}]");
                    match f(&field, "", item)? {
                        Some(replacement) => Ok(replacement),
                        None => map_nested(item, &field, f),
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

fn seal_error(err: SealError, owner: Owner, field: &str) -> Error {
    let what = format!("secret {field} of {} {}", owner.kind.as_str(), owner.id);
    match err {
        SealError::UnknownKey(_) | SealError::Randomness => {
            Error::SecretUnavailable(format!("{what} {err}"))
        }
        SealError::Tampered | SealError::Malformed => Error::DataLoss(format!("{what} {err}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ring() -> KeyRing {
        let file = KeyRing::generate_file().expect("key");
        KeyRing::from_json(&serde_json::to_string(&file).expect("json")).expect("ring")
    }

    #[test]
    fn documents_round_trip_with_only_secrets_sealed() {
        let ring = ring();
        let owner = Owner {
            kind: RecordKind::Account,
            id: Uuid::now_v7(),
        };
        let doc = json!({"access_token": "t0k", "pin": 123456, "nested": {"password": "p"}, "hooks": [{"secret": "s"}], "plain": "v"});
        let doc = doc.as_object().cloned().unwrap_or_default();
        let sealed = seal_document(&ring, owner, "config", &doc, SecretRule::ByName).expect("seal");
        let text = serde_json::to_string(&sealed).expect("json");
        for secret in ["t0k", "123456", "\"p\"", "\"s\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(sealed["plain"], json!("v"));
        assert_eq!(
            reseal_document(&ring, owner, "config", &sealed, SecretRule::ByName)
                .expect("reseal")
                .1,
            0
        );
        assert_eq!(
            reseal_document(&ring, owner, "config", &doc, SecretRule::ByName)
                .expect("reseal")
                .1,
            4
        );
        assert_eq!(
            open_document(&ring, owner, "config", &sealed).expect("open"),
            doc
        );

        let elsewhere = Owner {
            kind: RecordKind::Account,
            id: Uuid::now_v7(),
        };
        let err = open_document(&ring, elsewhere, "config", &sealed).expect_err("moved");
        assert!(matches!(err, Error::DataLoss(_)));
    }

    /// What a client stores is data, whatever it looks like: only envelopes are opened.
    #[test]
    fn ciphertext_shaped_client_strings_are_data() {
        let ring = ring();
        let owner = Owner {
            kind: RecordKind::Account,
            id: Uuid::now_v7(),
        };
        let real = ring.seal("x", b"\"y\"").expect("seal");
        let doc = json!({"note": "pbx1.zz.AAAA", "list": ["pbx1.t1.AAAA", {"n": real}], "api_key": "pbx1.zz.AAAA"});
        let doc = doc.as_object().cloned().unwrap_or_default();
        let sealed = seal_document(&ring, owner, "config", &doc, SecretRule::ByName).expect("seal");
        assert_eq!(sealed["note"], json!("pbx1.zz.AAAA"));
        assert!(
            envelope_of(&sealed["api_key"]).is_some(),
            "the secret is sealed"
        );
        assert_eq!(
            open_document(&ring, owner, "config", &sealed).expect("reads"),
            doc,
            "everything round-trips as it came"
        );
    }
}
