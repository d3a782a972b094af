//! The rules of Messenger accounts: the pages a SubscribeMessengerPages call names, the
//! config of a connected page, and the sealed user-token handle ConnectMessenger hands
//! back (its payload: the token and its expiry, bound to the workspace when sealed).

use serde_json::{Value, json};

use crate::domain::config_document::Document;
use crate::domain::error::Violations;

pub const PAGE_ACCESS_TOKEN: &str = "page_access_token";
pub const MAX_PAGES_PER_CALL: usize = 50;
/// How long a sealed user token handle is accepted.
pub const HANDLE_LIFETIME_SECONDS: i64 = 3600;

/// The page ids of a SubscribeMessengerPages call: one at least, at most
/// [`MAX_PAGES_PER_CALL`], each a Facebook Page id, none twice.
pub fn check_page_ids(page_ids: &[String], violations: &mut Violations) {
    if page_ids.is_empty() {
        violations.add("page_ids", "at least one page is required");
    } else if page_ids.len() > MAX_PAGES_PER_CALL {
        violations.add(
            "page_ids",
            format!("at most {MAX_PAGES_PER_CALL} pages per call"),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    // Elements are checked only within the limit: no work per excess entry.
    for (i, id) in page_ids.iter().enumerate().take(MAX_PAGES_PER_CALL) {
        if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_digit()) {
            violations.add(format!("page_ids[{i}]"), "must be a Facebook Page id");
        } else if !seen.insert(id) {
            violations.add(format!("page_ids[{i}]"), "appears twice");
        }
    }
}

/// The config of a connected page.
pub fn page_config(page_id: &str, page_name: &str, page_token: &str) -> Document {
    let mut config = Document::new();
    config.insert("page_id".to_owned(), json!(page_id));
    config.insert("page_name".to_owned(), json!(page_name));
    config.insert(PAGE_ACCESS_TOKEN.to_owned(), json!(page_token));
    config
}

/// What a user-token handle holds before it is sealed: the token, and when the handle
/// stops being accepted (seconds since the epoch).
pub fn handle_payload(token: &str, now: i64) -> Vec<u8> {
    json!({ "token": token, "exp": now + HANDLE_LIFETIME_SECONDS })
        .to_string()
        .into_bytes()
}

/// The token of an opened handle, or why it is refused.
pub fn token_of_handle(payload: &[u8], now: i64) -> Result<String, &'static str> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| "is not a valid user token")?;
    let expires = value.get("exp").and_then(Value::as_i64).unwrap_or_default();
    if expires < now {
        return Err("has expired; call ConnectMessenger again");
    }
    value
        .get("token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or("is not a valid user token")
}

/// The associated data a handle is sealed with: it opens only in its workspace.
pub fn handle_context(workspace_id: &str) -> String {
    format!("messenger-user-token/{workspace_id}")
}

#[cfg(test)]
#[path = "messenger_tests.rs"]
mod tests;
