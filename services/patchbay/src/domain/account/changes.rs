//! Which fields of an account a write changes, as its audit event names them.

use super::Account;
use crate::domain::audit::document_changes;
use crate::domain::config_document::Document;

/// The names of the account fields that differ between two states (every field of a new
/// account when `before` is `None`).
pub fn account_changes(before: Option<&Account>, after: &Account) -> Vec<String> {
    let empty = Document::new();
    let mut fields = Vec::new();
    let mut differs = |name: &str, changed: bool| {
        if changed {
            fields.push(name.to_owned());
        }
    };
    differs(
        "account_key",
        before.is_none_or(|b| b.account_key != after.account_key),
    );
    differs(
        "display_name",
        before.is_none_or(|b| b.display_name != after.display_name),
    );
    differs(
        "is_active",
        before.is_none_or(|b| b.is_active != after.is_active),
    );
    differs(
        "is_default",
        before.is_none_or(|b| b.is_default != after.is_default),
    );
    differs(
        "division_id",
        before.is_none_or(|b| b.division_id != after.division_id),
    );
    if let Some(before) = before {
        let (was, is) = (&before.provider_state, &after.provider_state);
        differs("setup_state", was.setup_state != is.setup_state);
        differs("health", is.health.differs_from(&was.health));
        differs("setup_error", was.setup_error != is.setup_error);
        differs(
            "reauthorization_required",
            was.reauthorization_required != is.reauthorization_required,
        );
        differs(
            "token_expires_at",
            was.token_expires_at != is.token_expires_at,
        );
    }
    if before.is_none() {
        fields.push("verify_token".to_owned());
    }
    fields.extend(document_changes(
        before.map_or(&empty, |b| &b.config),
        &after.config,
        "config",
    ));
    fields
}
