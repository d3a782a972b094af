//! The account's fields one by one: keys, names, divisions, Meta ids in configs.

use super::PHONE_NUMBER_ID;
use crate::domain::channel::Channel;
use crate::domain::config_document::{self, Document};
use crate::domain::error::{FieldViolation, Violations};

pub const MAX_ACCOUNT_KEY_LEN: usize = 128;
pub const MAX_DISPLAY_NAME_LEN: usize = 200;
pub const MAX_DIVISION_ID_LEN: usize = 64;

/// Account keys appear in webhook URLs, so they keep to characters a URL path carries
/// as they are.
pub fn validate_account_key(key: &str, field: &str) -> Result<(), FieldViolation> {
    if key.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if key.len() > MAX_ACCOUNT_KEY_LEN {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_ACCOUNT_KEY_LEN} characters"),
        ));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+'))
    {
        return Err(FieldViolation::new(
            field,
            "may contain only letters, digits and - _ . @ +",
        ));
    }
    Ok(())
}

pub fn validate_display_name(name: &str, field: &str) -> Result<(), FieldViolation> {
    if name.chars().count() > MAX_DISPLAY_NAME_LEN {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_DISPLAY_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

pub fn validate_division_id(division: &str, field: &str) -> Result<(), FieldViolation> {
    if division.len() > MAX_DIVISION_ID_LEN
        || !division
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(FieldViolation::new(
            field,
            format!(
                "must be at most {MAX_DIVISION_ID_LEN} letters, digits or - _ . : (empty for workspace-wide)"
            ),
        ));
    }
    Ok(())
}

/// The division a request names: `""` is workspace-wide (`None`); anything else must
/// be a valid division id.
pub fn division_from(asked: &str, violations: &mut Violations) -> Option<String> {
    match asked {
        "" => None,
        division => violations
            .check(validate_division_id(division, "division_id"))
            .map(|()| division.to_owned()),
    }
}

/// A WhatsApp account is known by its phone number id: `wa-<phone_number_id>`.
pub fn whatsapp_account_key(config: &Document) -> Result<String, FieldViolation> {
    let field = format!("config.{PHONE_NUMBER_ID}");
    let id = match config.get(PHONE_NUMBER_ID) {
        // A string only: the set-up reads it as one, into a Graph path.
        Some(serde_json::Value::String(id)) => id.clone(),
        Some(_) => return Err(FieldViolation::new(field, "must be a string of digits")),
        None => {
            return Err(FieldViolation::new(
                field,
                "is required on WhatsApp: the account key is derived from it",
            ));
        }
    };
    if !is_canonical_id(&id) {
        return Err(FieldViolation::new(
            field,
            "must be 1 to 32 digits, not starting with 0",
        ));
    }
    Ok(format!("wa-{id}"))
}

/// Resolves the account key of a channel: derived on WhatsApp (a given key must agree),
/// required elsewhere.
pub fn resolve_account_key(
    channel: Channel,
    requested: Option<&str>,
    config: &Document,
) -> Result<String, FieldViolation> {
    if channel == Channel::Whatsapp {
        let derived = whatsapp_account_key(config)?;
        match requested {
            Some(key) if !key.is_empty() && key != derived => Err(FieldViolation::new(
                "account_key",
                format!("is derived on WhatsApp and would be {derived:?}; leave it empty"),
            )),
            _ => Ok(derived),
        }
    } else {
        let key = requested.unwrap_or_default();
        validate_account_key(key, "account_key")?;
        Ok(key.to_owned())
    }
}

/// Checks the shape and size limits of a config document, naming fields under `config`.
pub fn check_config(channel: Channel, config: &Document, violations: &mut Violations) {
    violations.extend(config_document::check_limits(config, "config"));
    // Meta's ids go into Graph paths (`/{waba_id}/subscribed_apps`): only digits, so
    // that no id can name another node (`me/accounts`) or add a query.
    let graph_ids: &[&str] = match channel {
        // phone_number_id is checked where the account key is derived from it.
        Channel::Whatsapp => &["waba_id"],
        Channel::Messenger => &["page_id"],
        Channel::Instagram => &["instagram_user_id"],
        _ => &[],
    };
    for key in graph_ids {
        if let Some(value) = config.get(*key)
            && !is_meta_id(value)
        {
            violations.add(
                format!("config.{key}"),
                "must be Meta's numeric id: 1 to 32 digits, not starting with 0, as a string",
            );
        }
    }
}

/// A Meta id as it may go into a Graph path: a string of 1 to 32 ASCII digits.
pub fn is_meta_id(value: &serde_json::Value) -> bool {
    matches!(value, serde_json::Value::String(id) if is_canonical_id(id))
}

/// Meta's ids as one spelling only: digits, no leading zero. Ownership of an id is
/// decided by its text (the database) and by its number (the routing index): a "0123"
/// beside "123" would be two ids to one and the same to the other.
pub fn is_canonical_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(value: serde_json::Value) -> Document {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn whatsapp_key_is_derived_from_the_phone_number_id() {
        let key = resolve_account_key(
            Channel::Whatsapp,
            None,
            &config(json!({"phone_number_id": "123456789"})),
        );
        assert_eq!(key.ok().as_deref(), Some("wa-123456789"));
    }

    #[test]
    fn whatsapp_key_that_disagrees_is_rejected() {
        let key = resolve_account_key(
            Channel::Whatsapp,
            Some("wa-999"),
            &config(json!({"phone_number_id": "123"})),
        );
        assert_eq!(
            key.map_err(|violation| violation.field),
            Err("account_key".to_owned())
        );
    }

    #[test]
    fn other_channels_require_a_key_of_url_safe_characters() {
        assert!(validate_account_key("", "account_key").is_err());
        assert!(validate_account_key("page 1", "account_key").is_err());
        assert!(validate_account_key("support@acme.com", "account_key").is_ok());
    }
}
