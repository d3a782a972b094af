//! Fixtures for the rules' unit tests: callers, times, records.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::account::PHONE_NUMBER_ID;
use super::account::whatsapp::{ACCESS_TOKEN, PIN, WABA_ID};
use super::config_document::Document;
use super::{Account, Caller, Channel, ProviderState, Role};

pub fn caller(role: Role, division: Option<&str>) -> Caller {
    Caller {
        subject: "user-1".into(),
        role,
        scope: super::caller::Scope::Workspace {
            id: "acme".into(),
            division: division.map(str::to_owned),
        },
        request_id: "request-1".into(),
        idempotency: None,
        place: None,
    }
}

/// A workspace-wide admin.
pub fn admin() -> Caller {
    caller(Role::Admin, None)
}

/// An admin restricted to `division`.
pub fn division_admin(division: &str) -> Caller {
    caller(Role::Admin, Some(division))
}

/// `seconds` after a fixed instant.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + seconds, 0)
        .single()
        .unwrap_or_default()
}

pub fn doc(value: Value) -> Document {
    value.as_object().cloned().unwrap_or_default()
}

/// A live, active, workspace-wide account at revision 3.
pub fn account(channel: Channel, key: &str) -> Account {
    Account {
        id: Uuid::from_u128(7),
        workspace_id: "acme".into(),
        channel,
        account_key: key.into(),
        display_name: key.into(),
        is_active: true,
        is_default: false,
        division_id: None,
        config: Document::new(),
        verify_token: "verify-token".into(),
        webhook_route: Uuid::from_u128(0x70),
        revision: 3,
        created_at: at(0),
        updated_at: at(0),
        provider_state: ProviderState::default(),
    }
}

/// A WhatsApp Cloud account whose set-up is done.
pub fn cloud_account() -> Account {
    let mut config = Document::new();
    for (key, value) in [
        (PHONE_NUMBER_ID, "1555"),
        (WABA_ID, "2666"),
        (ACCESS_TOKEN, "EAAG-token"),
        (PIN, "123456"),
    ] {
        config.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Account {
        config,
        provider_state: ProviderState {
            setup_state: super::SetupState::Done,
            setup_registered: true,
            ..ProviderState::default()
        },
        ..account(Channel::Whatsapp, "wa-1555")
    }
}

/// Chatwoot as the catalog has it: a tenant URL that carries the access token.
pub fn chatwoot() -> super::provider::Provider {
    let fields: Vec<super::provider::FieldSpec> = serde_json::from_value(serde_json::json!([
        {"name": "accountId", "type": "integer", "required": true},
        {"name": "chatwootURL", "type": "url", "required": true, "carries_secrets": ["chatwootAccessToken"]},
        {"name": "chatwootAccessToken", "type": "string", "required": true, "secret": true},
        {"name": "enabled", "type": "boolean", "default": true}
    ]))
    .unwrap_or_default();
    super::provider::Provider::new(
        "chatwoot".into(),
        "Chatwoot".into(),
        String::new(),
        "support".into(),
        Some(Channel::Chat),
        fields,
    )
}

pub fn catalog() -> super::provider::Catalog {
    super::provider::Catalog::new(vec![chatwoot()])
}

/// A valid Chatwoot config.
pub fn chatwoot_config() -> Document {
    doc(serde_json::json!({
        "accountId": 7,
        "chatwootURL": "https://chat.acme.example",
        "chatwootAccessToken": "cw-token",
        "enabled": true
    }))
}

/// A live, active Chatwoot integration at revision 3.
pub fn integration() -> super::integration::Integration {
    super::integration::Integration {
        id: Uuid::from_u128(9),
        workspace_id: "acme".into(),
        provider: "chatwoot".into(),
        name: "Support".into(),
        identifier: "support".into(),
        channel: Some(Channel::Chat),
        active: true,
        primary: false,
        conditions: Vec::new(),
        account_id: None,
        config: chatwoot_config(),
        revision: 3,
        created_at: at(0),
        updated_at: at(0),
        deleted_at: None,
        deleted_by: None,
    }
}
