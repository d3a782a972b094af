//! Audit events: who changed or revealed what, when, and which fields — never a value.
//! Each mutation builds its event here and the store writes it in the mutation's own
//! transaction, so there is no change without its event.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::account::Account;
use super::caller::Caller;
use super::channel_settings::ChannelSettings;
use super::config_document::Document;
use super::error::Error;
use super::error::RecordKind;
use super::support::{Page, PageRequest, new_id, now};
use crate::store::audit::AuditFilter;

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
            workspace_id: caller.workspace_id.clone(),
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

/// Lists audit events (AuditService).
#[derive(Clone)]
pub struct AuditLog {
    store: crate::store::Store,
}

/// The filters of a ListAuditEvents call, as domain values.
#[derive(Debug, Default)]
pub struct AuditQuery {
    pub record_kind: Option<RecordKind>,
    pub record_id: Option<String>,
    pub actor: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

impl AuditLog {
    pub fn new(store: crate::store::Store) -> Self {
        Self { store }
    }

    /// Events of the caller's workspace (of its division, for a division-scoped caller).
    pub async fn list(
        &self,
        caller: &Caller,
        query: AuditQuery,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, Error> {
        let events = self
            .store
            .list_audit_events(&AuditFilter {
                workspace_id: &caller.workspace_id,
                division_id: caller.division_id.as_deref(),
                record_kind: query.record_kind,
                record_id: query.record_id.as_deref(),
                actor: query.actor.as_deref(),
                start_time: query.start_time,
                end_time: query.end_time,
                after: page.after,
                limit: page.size + 1,
            })
            .await?;
        Ok(Page::from_overfetch(events, page.size, |e| e.id))
    }
}

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

/// The names of the channel settings fields that differ between two states.
pub fn settings_changes(before: &ChannelSettings, after: &ChannelSettings) -> Vec<String> {
    let mut fields = Vec::new();
    if before.id.is_none() || before.is_active != after.is_active {
        fields.push("is_active".to_owned());
    }
    if before.division_id != after.division_id {
        fields.push("division_id".to_owned());
    }
    fields.extend(document_changes(&before.config, &after.config, "config"));
    fields
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
        let caller = Caller {
            subject: "u".into(),
            role: crate::domain::Role::Admin,
            workspace_id: "acme".into(),
            division_id: None,
            request_id: String::new(),
            idempotency: None,
            token_valid_until: None,
            held: None,
        };
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
