//! The integration account record and its rules: validation of its fields
//! (`validation`), the decisions that pick what a write does (`rules`), and the
//! WhatsApp Cloud set-up rules (`whatsapp`). Pure: `app::accounts` runs them against
//! the store and Meta.

mod changes;
mod connected;
pub mod events;
pub mod health;
pub mod messenger;
pub mod meta_health;
mod number_findings;
pub mod ownership;
pub mod registration;
mod rules;
pub mod tokens;
mod validation;
pub mod whatsapp;

pub use changes::account_changes;
pub use connected::{
    Connected, StateChange, check_oauth_request, connected_account, reconnect, record_state,
    token_expiry,
};
pub use ownership::Ownership;
pub use rules::{
    Updated, asked_division, create, delete, ensure_writable, new_account_division, set_default,
    update,
};
pub use validation::*;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::channel::Channel;
use super::config_document::Document;

impl Account {
    /// The account with the health reasons its own state gives brought in line with
    /// that state (`health::settle`), new ones since `at`.
    pub fn with_settled_health(mut self, at: DateTime<Utc>) -> Account {
        let health = std::mem::take(&mut self.provider_state.health);
        self.provider_state.health = health::settle(health, &self.provider_state, at);
        self
    }
}

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
    /// The opaque id of the account's webhook URL: unique across workspaces, fixed for
    /// the account's life (a new key or name does not change it).
    pub webhook_route: Uuid,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provider_state: ProviderState,
}

/// How an account's Meta token was obtained, which says how it is checked: Instagram
/// Login tokens at graph.instagram.com, the others with debug_token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// ConnectInstagram, or a hand-made Instagram account whose token starts with `IG`.
    InstagramLogin,
    /// A page token of Facebook Login (ConnectMessenger, SubscribeMessengerPages).
    FacebookLogin,
    /// Embedded Signup's business integration system user token.
    SystemUser,
    /// Any other token an admin stored.
    Pasted,
}

impl TokenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::InstagramLogin => "instagram_login",
            TokenSource::FacebookLogin => "facebook_login",
            TokenSource::SystemUser => "system_user",
            TokenSource::Pasted => "pasted",
        }
    }

    pub fn parse(name: &str) -> Option<TokenSource> {
        [
            TokenSource::InstagramLogin,
            TokenSource::FacebookLogin,
            TokenSource::SystemUser,
            TokenSource::Pasted,
        ]
        .into_iter()
        .find(|source| source.as_str() == name)
    }
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
    /// A WhatsApp account with a WABA and a token but no number yet (Embedded Signup's
    /// FINISH_ONLY_WABA): an update that gives the number runs the set-up.
    AwaitingNumber,
}

impl SetupState {
    pub fn as_str(self) -> &'static str {
        match self {
            SetupState::NotNeeded => "not_needed",
            SetupState::Pending => "pending",
            SetupState::Done => "done",
            SetupState::Failed => "failed",
            SetupState::AwaitingNumber => "awaiting_number",
        }
    }

    pub fn parse(name: &str) -> Option<SetupState> {
        [
            SetupState::NotNeeded,
            SetupState::Pending,
            SetupState::Done,
            SetupState::Failed,
            SetupState::AwaitingNumber,
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
    /// The account's standing for its provider id (see `provider_id` and `ownership`):
    /// CONFIRMED, it owns that id's webhooks across workspaces. UNCONFIRMED again when
    /// the id changes.
    pub ownership: Ownership,
    /// When the token's access to the user's data expires (Meta's debug_token).
    pub data_access_expires_at: Option<DateTime<Utc>>,
    /// Why reauthorization is required: Meta's reason, or the scopes the token misses.
    pub reauthorization_reason: Option<String>,
    /// When Meta last told us about the token (debug_token).
    pub token_checked_at: Option<DateTime<Utc>>,
    /// Refreshes of the token that failed in a row.
    pub refresh_failures: i32,
    /// Refreshing failed too often: left alone until a new token is stored.
    pub refresh_exhausted: bool,
    /// The smallest expiry-warning threshold (days) already announced for the token.
    pub token_warned_days: Option<i32>,
    /// When the refresher last stored a new token.
    pub token_refreshed_at: Option<DateTime<Utc>>,
    /// Meta asked to wait before registering the number again (133015, 133016, or
    /// its allowance of 10 in 72 hours used): updates leave the set-up alone until
    /// then, unless they change the number.
    pub setup_retry_after: Option<DateTime<Utc>>,
    /// The number as Meta displays it (`display_phone_number`), read by the set-up.
    pub display_phone_number: Option<String>,
    /// How the account's Meta token was obtained; `None` without one.
    pub token_source: Option<TokenSource>,
    /// A number onboarded from the WhatsApp Business app: where its syncs stand.
    pub coexistence: Option<Coexistence>,
    /// What stands against the account (`health`): the reasons its own state gives,
    /// settled on every read and write, and Meta's.
    pub health: health::Health,
}

/// A WhatsApp Business app number on the Cloud API as well (Embedded Signup's
/// FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING): never registered (registering disconnects
/// the app), and Meta asked to sync its contacts and history. Meta's "Onboard WhatsApp
/// Business app users": "you have 24 hours to synchronize their contacts and messaging
/// history", and each sync can be asked for once.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coexistence {
    pub onboarded_at: DateTime<Utc>,
    pub contacts_sync_requested_at: Option<DateTime<Utc>>,
    pub history_sync_requested_at: Option<DateTime<Utc>>,
    pub sync_error: Option<String>,
}

impl Coexistence {
    /// Meta's window for the syncs, from the onboarding.
    pub const WINDOW_HOURS: i64 = 24;

    pub fn new(onboarded_at: DateTime<Utc>) -> Self {
        Self {
            onboarded_at,
            contacts_sync_requested_at: None,
            history_sync_requested_at: None,
            sync_error: None,
        }
    }

    pub fn window_ends(&self) -> DateTime<Utc> {
        self.onboarded_at + chrono::Duration::hours(Self::WINDOW_HOURS)
    }

    /// A sync is still to be asked for, and Meta's window is open at `now`.
    pub fn may_request(&self, now: DateTime<Utc>) -> bool {
        let pending =
            self.contacts_sync_requested_at.is_none() || self.history_sync_requested_at.is_none();
        pending && now < self.window_ends()
    }
}

impl ProviderState {
    /// The state once a new token is stored: trusted again, with none of the old
    /// token's refresh failures, warnings or reasons.
    pub fn with_new_token(self) -> ProviderState {
        ProviderState {
            reauthorization_required: false,
            reauthorization_reason: None,
            refresh_failures: 0,
            refresh_exhausted: false,
            token_warned_days: None,
            ..self
        }
    }
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
            .field("webhook_route", &self.webhook_route)
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

    pub fn for_account(&self, channel: Channel, route: Uuid) -> String {
        format!(
            "{}/webhooks/{}/{}",
            self.base,
            channel.as_str(),
            route.simple()
        )
    }

    /// Meta's app-level callback, for every Meta product of every workspace.
    pub fn for_meta_app(&self) -> String {
        format!("{}/webhooks/meta", self.base)
    }

    /// The public base URL's path, which a routed URL's path starts with.
    pub fn base_path(&self) -> &str {
        let rest = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, rest)| rest);
        rest.find('/').map_or("", |slash| &rest[slash..])
    }
}

/// The provider's id that Meta's app-level webhooks name the account by: the WhatsApp
/// phone number id, the Messenger page id, the Instagram account id.
pub fn provider_id(channel: Channel, config: &Document) -> Option<&str> {
    let key = match channel {
        Channel::Whatsapp => PHONE_NUMBER_ID,
        Channel::Messenger => "page_id",
        Channel::Instagram => "instagram_user_id",
        _ => return None,
    };
    config
        .get(key)
        .and_then(serde_json::Value::as_str)
        .filter(|id| is_canonical_id(id))
}

/// The config key of `channel`'s provider id, as field violations name it.
pub fn provider_id_field(channel: Channel) -> &'static str {
    match channel {
        Channel::Whatsapp => "config.phone_number_id",
        Channel::Messenger => "config.page_id",
        Channel::Instagram => "config.instagram_user_id",
        _ => "config",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_url_joins_base_channel_and_route() {
        let urls = WebhookUrls::new("https://hooks.example.com/");
        assert_eq!(
            urls.for_account(Channel::InApp, Uuid::from_u128(0xabc)),
            "https://hooks.example.com/webhooks/in_app/00000000000000000000000000000abc"
        );
        assert_eq!(
            urls.for_meta_app(),
            "https://hooks.example.com/webhooks/meta"
        );
        assert_eq!(urls.base_path(), "");
        let urls = WebhookUrls::new("https://example.com/patchbay/");
        assert_eq!(urls.base_path(), "/patchbay");
        assert_eq!(WebhookUrls::new("hooks.local").base_path(), "");
    }
}
