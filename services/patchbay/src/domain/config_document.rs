//! The JSON configuration documents of accounts and channel settings: which keys are
//! secret, how secrets are masked in responses, how an update is merged (RFC 7396 JSON
//! merge patch) and what size and shape a document may have.
//!
//! A secret sent back in its masked form keeps the stored value, so a client can read a
//! record, change one field and send the whole document back without losing a token.

use serde_json::{Map, Value};

use super::error::FieldViolation;

pub type Document = Map<String, Value>;

/// Every masked value starts with this; no real credential does.
pub const MASK_PREFIX: &str = "********";

/// Documents nest at most this deep (the root object is depth 1).
pub const MAX_DEPTH: usize = 16;
/// A document serialises to at most this many bytes.
pub const MAX_BYTES: usize = 64 * 1024;
/// An object key is at most this many bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// Object keys starting with this are the server's: a sealed value is stored as
/// `{"$patchbay_sealed": "pbx1.…"}`, so no client may send such a key.
pub const RESERVED_KEY_PREFIX: &str = "$patchbay";

/// Key fragments that mark a value as a secret, compared without case, `_` or `-`.
const SECRET_KEY_FRAGMENTS: &[&str] = &[
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
/// Key endings that mark a secret: `signing_key`, `hmac_key`, `crypt_key`, `key`.
const SECRET_KEY_ENDINGS: &[&str] = &["key"];
/// Whole keys that are secrets without a telling fragment (WhatsApp's registration PIN).
const SECRET_KEYS: &[&str] = &["pin"];

/// Which values of a document are secrets. Documents without a schema (account and
/// channel-settings configs) go by name; a provider's config goes by its schema alone,
/// the fields flagged `secret` (by path, `config.x.y`), so that a schema field such as
/// DocuSign's `integration_key` is a secret only if the schema says so.
#[derive(Clone, Copy, Debug)]
pub enum SecretRule<'a> {
    ByName,
    Schema(&'a std::collections::BTreeSet<String>),
}

impl SecretRule<'_> {
    pub fn is_secret(&self, path: &str, key: &str) -> bool {
        match self {
            SecretRule::ByName => is_secret_key(key),
            SecretRule::Schema(paths) => paths.contains(path),
        }
    }
}

/// Whether a config key holds a secret: named like a token, secret, password, API key,
/// authorization header or key.
pub fn is_secret_key(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEYS.contains(&normalized.as_str())
        || SECRET_KEY_FRAGMENTS
            .iter()
            .any(|fragment| normalized.contains(fragment))
        || SECRET_KEY_ENDINGS
            .iter()
            .any(|ending| normalized.ends_with(ending))
}

/// The masked form of one secret value: the prefix, plus the last four characters of a
/// long string so that a person can tell two tokens apart.
pub fn mask_value(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::String(s) if s.chars().count() >= 16 => {
            let tail: String = s.chars().skip(s.chars().count() - 4).collect();
            Value::String(format!("{MASK_PREFIX}{tail}"))
        }
        _ => Value::String(MASK_PREFIX.to_owned()),
    }
}

/// The value at `path` (`config.a.b`, the document being `config`), through nested
/// objects.
pub fn value_at<'a>(document: &'a Document, path: &str) -> Option<&'a Value> {
    let mut keys = path.split('.').skip(1);
    let mut value = document.get(keys.next()?)?;
    for key in keys {
        value = value.as_object()?.get(key)?;
    }
    Some(value)
}

pub fn is_masked(value: &Value) -> bool {
    matches!(value, Value::String(s) if s.starts_with(MASK_PREFIX))
}

/// A copy of `document` with every secret value masked, at any depth.
pub fn mask(document: &Document) -> Document {
    mask_with(document, "config", SecretRule::ByName)
}

/// `mask` for a document at `path` whose secrets `rule` tells.
pub fn mask_with(document: &Document, path: &str, rule: SecretRule<'_>) -> Document {
    document
        .iter()
        .map(|(key, value)| {
            let field = format!("{path}.{key}");
            let shown = if rule.is_secret(&field, key) {
                mask_value(value)
            } else {
                mask_nested(value, &field, rule)
            };
            (key.clone(), shown)
        })
        .collect()
}

fn mask_nested(value: &Value, path: &str, rule: SecretRule<'_>) -> Value {
    match value {
        Value::Object(object) => Value::Object(mask_with(object, path, rule)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| mask_nested(item, &format!("{path}[{i}]"), rule))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Applies `patch` to `target` as a JSON merge patch: absent keys stay, `null` removes,
/// objects merge, anything else replaces. A masked secret in the patch keeps the stored
/// secret; a masked secret with nothing stored behind it is a violation (the real value
/// would be lost). `path` prefixes field names in violations (`config`).
pub fn merge_patch(
    target: &Document,
    patch: &Document,
    path: &str,
) -> Result<Document, Vec<FieldViolation>> {
    merge_patch_with(target, patch, path, SecretRule::ByName)
}

/// `merge_patch` for a document whose secrets `rule` tells.
pub fn merge_patch_with(
    target: &Document,
    patch: &Document,
    path: &str,
    rule: SecretRule<'_>,
) -> Result<Document, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let merged = merge_object(target, patch, path, rule, &mut violations);
    if violations.is_empty() {
        Ok(merged)
    } else {
        Err(violations)
    }
}

fn merge_object(
    target: &Document,
    patch: &Document,
    path: &str,
    rule: SecretRule<'_>,
    violations: &mut Vec<FieldViolation>,
) -> Document {
    let mut result = target.clone();
    for (key, patch_value) in patch {
        let field = format!("{path}.{key}");
        let current = target.get(key);
        match patch_value {
            Value::Null => {
                result.remove(key);
            }
            value if rule.is_secret(&field, key) && is_masked(value) => {
                if current.is_none() {
                    violations.push(masked_without_secret(field));
                }
            }
            Value::Object(patch_object) => {
                let empty = Document::new();
                let base = match current {
                    Some(Value::Object(object)) => object,
                    _ => &empty,
                };
                let merged = merge_object(base, patch_object, &field, rule, violations);
                result.insert(key.clone(), Value::Object(merged));
            }
            value => {
                let restored = restore_masked(value, current, &field, rule, violations);
                result.insert(key.clone(), restored);
            }
        }
    }
    result
}

/// Arrays are replaced whole by a merge patch; a masked secret inside the new array
/// takes the stored value at the same position.
fn restore_masked(
    value: &Value,
    stored: Option<&Value>,
    path: &str,
    rule: SecretRule<'_>,
    violations: &mut Vec<FieldViolation>,
) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let stored_item = match stored {
                        Some(Value::Array(stored_items)) => stored_items.get(index),
                        _ => None,
                    };
                    restore_masked(
                        item,
                        stored_item,
                        &format!("{path}[{index}]"),
                        rule,
                        violations,
                    )
                })
                .collect(),
        ),
        Value::Object(object) => {
            let mut restored = Document::new();
            for (key, item) in object {
                let field = format!("{path}.{key}");
                let stored_item = match stored {
                    Some(Value::Object(stored_object)) => stored_object.get(key),
                    _ => None,
                };
                if rule.is_secret(&field, key) && is_masked(item) {
                    match stored_item {
                        Some(secret) => {
                            restored.insert(key.clone(), secret.clone());
                        }
                        None => violations.push(masked_without_secret(field)),
                    }
                } else {
                    restored.insert(
                        key.clone(),
                        restore_masked(item, stored_item, &field, rule, violations),
                    );
                }
            }
            Value::Object(restored)
        }
        other => other.clone(),
    }
}

fn masked_without_secret(field: String) -> FieldViolation {
    FieldViolation::new(
        field,
        "is a masked value but no secret is stored here; send the secret itself",
    )
}

/// Checks the size and shape limits of a stored document.
pub fn check_limits(document: &Document, path: &str) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    check_object(document, path, 1, &mut violations);
    if violations.is_empty() {
        let bytes = serde_json::to_vec(document)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if bytes > MAX_BYTES {
            violations.push(FieldViolation::new(
                path,
                format!("is {bytes} bytes as JSON; at most {MAX_BYTES} are allowed"),
            ));
        }
    }
    violations
}

fn check_object(object: &Document, path: &str, depth: usize, out: &mut Vec<FieldViolation>) {
    if depth > MAX_DEPTH {
        out.push(FieldViolation::new(
            path,
            format!("nests deeper than {MAX_DEPTH} levels"),
        ));
        return;
    }
    for (key, value) in object {
        let field = format!("{path}.{key}");
        if key.contains('\0') {
            out.push(FieldViolation::new(
                &field,
                "keys must not contain NUL characters",
            ));
        }
        if key.starts_with(RESERVED_KEY_PREFIX) {
            out.push(FieldViolation::new(
                &field,
                format!("keys starting with {RESERVED_KEY_PREFIX} are reserved"),
            ));
        }
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            out.push(FieldViolation::new(
                &field,
                format!("keys must be 1 to {MAX_KEY_BYTES} bytes"),
            ));
        }
        check_value(value, &field, depth, out);
    }
}

fn check_value(value: &Value, path: &str, depth: usize, out: &mut Vec<FieldViolation>) {
    match value {
        // PostgreSQL stores no NUL in text: refused here, by name, not at the insert.
        Value::String(text) if text.contains('\0') => {
            out.push(FieldViolation::new(path, "must not contain NUL characters"))
        }
        Value::Object(object) => check_object(object, path, depth + 1, out),
        Value::Array(items) => {
            if depth + 1 > MAX_DEPTH {
                out.push(FieldViolation::new(
                    path,
                    format!("nests deeper than {MAX_DEPTH} levels"),
                ));
                return;
            }
            for (index, item) in items.iter().enumerate() {
                check_value(item, &format!("{path}[{index}]"), depth + 1, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(value: Value) -> Document {
        match value {
            Value::Object(object) => object,
            _ => Document::new(),
        }
    }

    #[test]
    fn secret_keys_are_recognised_by_name() {
        for key in [
            "access_token",
            "appSecret",
            "password",
            "api_key",
            "API-KEY",
            "pin",
            "Authorization",
            "bearer_header",
            "ssh_passphrase",
            "signing_key",
            "hmacKey",
            "crypt-key",
            "key",
        ] {
            assert!(is_secret_key(key), "{key} should be secret");
        }
        for key in [
            "phone_number_id",
            "display",
            "pinned",
            "tokenizer_mode_name_x",
            "keyboard",
            "author",
        ] {
            let expected = key.contains("token");
            assert_eq!(is_secret_key(key), expected, "{key}");
        }
    }

    #[test]
    fn a_schema_alone_says_what_is_secret_in_a_provider_config() {
        let paths: std::collections::BTreeSet<String> =
            ["config.private_key".to_owned()].into_iter().collect();
        let rule = SecretRule::Schema(&paths);
        assert!(rule.is_secret("config.private_key", "private_key"));
        assert!(!rule.is_secret("config.integration_key", "integration_key"));
        assert!(!rule.is_secret("config.access_token", "access_token"));
        assert!(SecretRule::ByName.is_secret("config.integration_key", "integration_key"));
    }

    #[test]
    fn masking_hides_secrets_at_any_depth() {
        let stored = doc(json!({
            "access_token": "EAAB-very-long-token-1234",
            "phone_number_id": "123",
            "smtp": {"password": "hunter2", "host": "mail"},
            "hooks": [{"secret": "abc"}]
        }));
        let shown = mask(&stored);
        assert_eq!(shown["access_token"], json!("********1234"));
        assert_eq!(shown["phone_number_id"], json!("123"));
        assert_eq!(shown["smtp"]["password"], json!("********"));
        assert_eq!(shown["smtp"]["host"], json!("mail"));
        assert_eq!(shown["hooks"][0]["secret"], json!("********"));
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let stored = doc(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}));
        let patch = doc(json!({"a": null, "b": {"c": null, "x": 9}, "e": [3], "f": "new"}));
        let merged = merge_patch(&stored, &patch, "config").expect("valid patch");
        assert_eq!(
            Value::Object(merged),
            json!({"b": {"d": 3, "x": 9}, "e": [3], "f": "new"})
        );
    }

    #[test]
    fn masked_secret_round_trip_keeps_the_stored_value() {
        let stored = doc(json!({
            "access_token": "EAAB-very-long-token-1234",
            "nested": {"api_key": "k-1"},
            "hooks": [{"secret": "s-1"}]
        }));
        let echoed = mask(&stored);
        let merged = merge_patch(&stored, &echoed, "config").expect("masked echo is valid");
        assert_eq!(merged, stored);
    }

    #[test]
    fn masked_secret_without_a_stored_value_is_named() {
        let patch = doc(json!({"access_token": "********", "x": {"password": "********"}}));
        let violations = merge_patch(&Document::new(), &patch, "config").expect_err("invalid");
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["config.access_token", "config.x.password"]);
    }

    #[test]
    fn limits_reject_deep_nesting_and_empty_keys() {
        let mut deep = json!("leaf");
        for _ in 0..MAX_DEPTH {
            deep = json!({ "n": deep });
        }
        let violations = check_limits(&doc(json!({ "root": deep, "": 1 })), "config");
        assert!(violations.iter().any(|v| v.description.contains("deeper")));
        assert!(violations.iter().any(|v| v.field == "config."));
    }

    #[test]
    fn the_servers_envelope_key_is_reserved_at_any_depth() {
        let violations = check_limits(
            &doc(json!({"a": {"$patchbay_sealed": "pbx1.k.x"}, "l": [{"$patchbay": 1}]})),
            "config",
        );
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["config.a.$patchbay_sealed", "config.l[0].$patchbay"]
        );
    }
}
