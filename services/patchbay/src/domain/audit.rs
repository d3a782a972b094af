//! Audit events: who changed or revealed what, when, and which fields — never a value.
//! Each mutation builds its event here and the store writes it in the mutation's own
//! transaction, so there is no change without its event.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::caller::Caller;
use super::config_document::Document;
use super::error::RecordKind;
use super::ids::{new_id, now};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    Create,
    Update,
    Delete,
    SetDefault,
    Upsert,
    RevealCredentials,
    SetPrimary,
    /// Credentials were sent to their provider to be checked; the event's outcome
    /// says what came of it.
    CheckCredentials,
}

impl AuditAction {
    pub const ALL: [AuditAction; 8] = [
        AuditAction::Create,
        AuditAction::Update,
        AuditAction::Delete,
        AuditAction::SetDefault,
        AuditAction::Upsert,
        AuditAction::RevealCredentials,
        AuditAction::SetPrimary,
        AuditAction::CheckCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Delete => "delete",
            AuditAction::SetDefault => "set_default",
            AuditAction::Upsert => "upsert",
            AuditAction::RevealCredentials => "reveal_credentials",
            AuditAction::SetPrimary => "set_primary",
            AuditAction::CheckCredentials => "check_credentials",
        }
    }

    pub fn parse(name: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub id: Uuid,
    pub workspace_id: String,
    pub division_id: Option<String>,
    pub actor: String,
    pub actor_role: String,
    pub record_kind: RecordKind,
    pub record_id: String,
    pub action: AuditAction,
    pub changed_fields: Vec<String>,
    pub request_id: String,
    pub occurred_at: DateTime<Utc>,
    /// What came of the action, for actions that can go either way (a credential check:
    /// `passed`, `unsupported`, `refused`, `destination_refused`, `unavailable`).
    pub outcome: Option<String>,
    /// The idempotency key of the call, recorded in the same transaction as the event.
    pub idempotency: Option<std::sync::Arc<super::idempotency::IdempotencyClaim>>,
}

/// An event names at most this many fields; a longer list ends with how many more.
pub const MAX_EVENT_FIELDS: usize = 200;

impl AuditEvent {
    pub fn new(
        caller: &Caller,
        record_kind: RecordKind,
        record_id: impl ToString,
        division_id: Option<String>,
        action: AuditAction,
        mut changed_fields: Vec<String>,
    ) -> Self {
        if changed_fields.len() > MAX_EVENT_FIELDS {
            let more = changed_fields.len() - MAX_EVENT_FIELDS;
            changed_fields.truncate(MAX_EVENT_FIELDS);
            changed_fields.push(format!("… and {more} more fields"));
        }
        Self {
            id: new_id(),
            workspace_id: caller.workspace_id().to_owned(),
            division_id,
            actor: caller.subject.clone(),
            actor_role: caller.role.as_str().to_owned(),
            record_kind,
            record_id: record_id.to_string(),
            action,
            changed_fields,
            request_id: caller.request_id.clone(),
            occurred_at: now(),
            outcome: None,
            idempotency: caller.idempotency.clone(),
        }
    }

    /// An event written on its own, outside the call's mutation (a credential check):
    /// the call's key is recorded with its mutation, not here.
    pub fn without_idempotency(mut self) -> Self {
        self.idempotency = None;
        self
    }

    pub fn with_outcome(mut self, outcome: &str) -> Self {
        self.outcome = Some(outcome.to_owned());
        self
    }
}

/// The paths of the leaves added, removed or changed between two documents; arrays count
/// as one leaf.
pub fn document_changes(before: &Document, after: &Document, path: &str) -> Vec<String> {
    let mut changes = Vec::new();
    diff_objects(before, after, path, &mut changes);
    changes
}

fn diff_objects(before: &Document, after: &Document, path: &str, out: &mut Vec<String>) {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let field = format!("{path}.{key}");
        match (before.get(key), after.get(key)) {
            (Some(Value::Object(b)), Some(Value::Object(a))) => diff_objects(b, a, &field, out),
            (b, a) if b != a => out.push(field),
            _ => {}
        }
    }
}

/// The secret fields of a document, by path: what a reveal hands out.
pub fn secret_fields(document: &Document, path: &str) -> Vec<String> {
    let mut fields = Vec::new();
    for (key, value) in document {
        let field = format!("{path}.{key}");
        if super::config_document::is_secret_key(key) {
            fields.push(field);
        } else if let Value::Object(object) = value {
            fields.extend(secret_fields(object, &field));
        }
    }
    fields
}

/// The filters of a ListAuditEvents call.
#[derive(Debug, Default)]
pub struct AuditQuery {
    pub record_kind: Option<RecordKind>,
    pub record_id: Option<String>,
    pub actor: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(value: Value) -> Document {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn document_changes_name_leaves_not_values() {
        let before = doc(json!({"a": 1, "token": "old", "n": {"x": 1, "y": 2}, "l": [1]}));
        let after = doc(json!({"a": 1, "token": "new", "n": {"x": 1, "z": 3}, "l": [2]}));
        assert_eq!(
            document_changes(&before, &after, "config"),
            ["config.l", "config.n.y", "config.n.z", "config.token"]
        );
    }

    #[test]
    fn secret_fields_are_found_at_any_depth() {
        let document = doc(json!({"access_token": "t", "smtp": {"password": "p", "host": "h"}}));
        assert_eq!(
            secret_fields(&document, "config"),
            ["config.access_token", "config.smtp.password"]
        );
    }

    #[test]
    fn an_event_names_a_bounded_list_of_fields() {
        let caller = crate::domain::testing::admin();
        let fields = (0..MAX_EVENT_FIELDS + 100)
            .map(|i| format!("config.k{i}"))
            .collect();
        let event = AuditEvent::new(
            &caller,
            RecordKind::Account,
            "id",
            None,
            AuditAction::Update,
            fields,
        );
        assert_eq!(event.changed_fields.len(), MAX_EVENT_FIELDS + 1);
        assert_eq!(
            event.changed_fields.last().map(String::as_str),
            Some("… and 100 more fields")
        );
    }
}
