//! The integration account record and its rules: validation of its fields
//! (`validation`), the decisions that pick what a write does (`rules`), and the
//! WhatsApp Cloud set-up rules (`whatsapp`). Pure: `app::accounts` runs them against
//! the store and Meta.

mod changes;
mod connected;
pub mod messenger;
mod rules;
mod validation;
pub mod whatsapp;

pub use changes::account_changes;
pub use connected::{
    Connected, StateChange, check_oauth_request, connected_account, reconnect, record_state,
    token_expiry,
};
pub use rules::{
    Updated, asked_division, create, delete, ensure_writable, new_account_division, set_default,
    update,
};
pub use validation::*;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::channel::Channel;
use super::config_document::Document;

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

/// The WhatsApp config key the account key is derived from.
pub const PHONE_NUMBER_ID: &str = "phone_number_id";

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
    use super::*;

    #[test]
    fn webhook_url_joins_base_channel_and_key() {
        let urls = WebhookUrls::new("https://hooks.example.com/");
        assert_eq!(
            urls.for_account(Channel::InApp, "k1"),
            "https://hooks.example.com/webhooks/in_app/k1"
        );
    }
}
