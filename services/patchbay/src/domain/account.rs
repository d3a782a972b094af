//! The integration account record and its rules: keys, divisions, WhatsApp derivation,
//! webhook URLs. Pure functions only; `accounts` runs them against the store.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::channel::Channel;
use super::config_document::{self, Document};
use super::error::{FieldViolation, Violations};

/// One stored, live account.
#[derive(Clone, PartialEq)]
pub struct Account {
    pub id: Uuid,
    pub workspace_id: String,
    pub channel: Channel,
    pub account_key: String,
    pub display_name: String,
    pub is_active: bool,
    pub is_default: bool,
    pub division_id: Option<String>,
    pub config: Document,
    pub verify_token: String,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provider_state: ProviderState,
}

/// Where an account's set-up at its provider stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetupState {
    /// No set-up at a provider (a Twilio number, an email sender).
    #[default]
    NotNeeded,
    /// Saved, set-up not confirmed yet: a set-up cut off (crash, deadline) stays here,
    /// and the next update runs it again.
    Pending,
    Done,
    /// The provider refused a step; `setup_error` says why.
    Failed,
}

impl SetupState {
    pub fn as_str(self) -> &'static str {
        match self {
            SetupState::NotNeeded => "not_needed",
            SetupState::Pending => "pending",
            SetupState::Done => "done",
            SetupState::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Option<SetupState> {
        [
            SetupState::NotNeeded,
            SetupState::Pending,
            SetupState::Done,
            SetupState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// What Patchbay learned about an account from its provider. The caller never writes
/// it: a config merge patch can neither forge nor erase it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderState {
    /// Where the set-up at the provider stands.
    pub setup_state: SetupState,
    /// The set-up's first step is done: Meta registered the number for the current
    /// number, PIN and token. A resumed set-up goes on from the second.
    pub setup_registered: bool,
    /// Why the set-up at the provider (WhatsApp registration, webhook subscription)
    /// did not complete; `None` once it did, or when there was none to do.
    pub setup_error: Option<String>,
    /// The provider rejected the account's token (Graph error 190); cleared when a new
    /// token is stored.
    pub reauthorization_required: bool,
    /// When the account's token expires, where the provider says.
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// Config and verify token are left out: they hold secrets.
impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("channel", &self.channel)
            .field("account_key", &self.account_key)
            .field("is_active", &self.is_active)
            .field("is_default", &self.is_default)
            .field("division_id", &self.division_id)
            .field("revision", &self.revision)
            .field("provider_state", &self.provider_state)
            .finish_non_exhaustive()
    }
}

/// A create request, as it arrives from the edge.
pub struct NewAccount {
    pub channel: Channel,
    pub account_key: String,
    pub display_name: String,
    pub is_active: Option<bool>,
    pub is_default: bool,
    /// `None`: the caller's division; `Some("")`: workspace-wide.
    pub division_id: Option<String>,
    pub config: Document,
}

/// An update request: every `None` leaves the field as it is.
#[derive(Default)]
pub struct AccountPatch {
    pub account_key: Option<String>,
    pub display_name: Option<String>,
    pub is_active: Option<bool>,
    pub is_default: Option<bool>,
    /// `Some("")` makes the account workspace-wide.
    pub division_id: Option<String>,
    /// A JSON merge patch for the config.
    pub config: Option<Document>,
    pub expected_revision: Option<i64>,
}

pub const MAX_ACCOUNT_KEY_LEN: usize = 128;
pub const MAX_DISPLAY_NAME_LEN: usize = 200;
pub const MAX_DIVISION_ID_LEN: usize = 64;

/// The WhatsApp config key the account key is derived from.
pub const PHONE_NUMBER_ID: &str = "phone_number_id";

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
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(FieldViolation::new(field, "must be 1 to 32 digits"));
    }
    Ok(format!("wa-{id}"))
}

/// Resolves the account key of a channel: derived on WhatsApp (a given key must agree),
/// required elsewhere.
pub fn resolve_account_key(
    channel: Channel,
    requested: Option<&str>,
    config: &Document,
    violations: &mut Violations,
) -> Option<String> {
    if channel == Channel::Whatsapp {
        let derived = violations.check(whatsapp_account_key(config))?;
        match requested {
            Some(key) if !key.is_empty() && key != derived => {
                violations.add(
                    "account_key",
                    format!("is derived on WhatsApp and would be {derived:?}; leave it empty"),
                );
                None
            }
            _ => Some(derived),
        }
    } else {
        let key = requested.unwrap_or_default();
        violations.check(validate_account_key(key, "account_key"))?;
        Some(key.to_owned())
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
        if let Some(value) = config.get(*key) {
            if !is_meta_id(value) {
                violations.add(
                    format!("config.{key}"),
                    "must be Meta's numeric id: 1 to 32 digits, as a string",
                );
            }
        }
    }
}

/// A Meta id as it may go into a Graph path: a string of 1 to 32 ASCII digits.
pub fn is_meta_id(value: &serde_json::Value) -> bool {
    matches!(value, serde_json::Value::String(id)
        if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit()))
}

/// Computes webhook URLs from the configured public base URL.
#[derive(Clone, Debug)]
pub struct WebhookUrls {
    base: String,
}

impl WebhookUrls {
    pub fn new(public_base_url: &str) -> Self {
        Self {
            base: public_base_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn for_account(&self, channel: Channel, account_key: &str) -> String {
        format!(
            "{}/webhooks/{}/{}",
            self.base,
            channel.as_str(),
            account_key
        )
    }
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
        let mut violations = Violations::new();
        let key = resolve_account_key(
            Channel::Whatsapp,
            None,
            &config(json!({"phone_number_id": "123456789"})),
            &mut violations,
        );
        assert_eq!(key.as_deref(), Some("wa-123456789"));
        assert!(violations.is_empty());
    }

    #[test]
    fn whatsapp_key_that_disagrees_is_rejected() {
        let mut violations = Violations::new();
        let key = resolve_account_key(
            Channel::Whatsapp,
            Some("wa-999"),
            &config(json!({"phone_number_id": "123"})),
            &mut violations,
        );
        assert_eq!(key, None);
        assert!(violations.into_result().is_err());
    }

    #[test]
    fn other_channels_require_a_key_of_url_safe_characters() {
        assert!(validate_account_key("", "account_key").is_err());
        assert!(validate_account_key("page 1", "account_key").is_err());
        assert!(validate_account_key("support@acme.com", "account_key").is_ok());
    }

    #[test]
    fn webhook_url_joins_base_channel_and_key() {
        let urls = WebhookUrls::new("https://hooks.example.com/");
        assert_eq!(
            urls.for_account(Channel::InApp, "k1"),
            "https://hooks.example.com/webhooks/in_app/k1"
        );
    }
}
