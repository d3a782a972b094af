//! Meta (Graph API, Instagram) over HTTP: the client, its errors, and one module per
//! product with the calls Patchbay makes. The flows that use them (and write accounts)
//! live in `domain::accounts`.

pub mod error;
pub mod graph;
pub mod instagram;
pub mod messenger;
pub mod tokens;
pub mod versions;
pub mod whatsapp;

pub use error::{Failure, GraphError, MetaError};
pub use graph::{Call, GraphClient, Host, RetryPolicy};

use std::time::Duration;

use secrecy::SecretString;

/// The Meta app Patchbay acts as.
#[derive(Clone)]
pub struct MetaApp {
    pub id: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for MetaApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaApp")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Meta settings beyond the URLs (`ProviderUrls`), validated.
#[derive(Clone, Debug)]
pub struct MetaSettings {
    /// `None`: the OAuth flows answer FAILED_PRECONDITION, and Meta signatures are
    /// checked only against an account's own `app_secret`.
    pub app: Option<MetaApp>,
    /// The Instagram app (Instagram API with Instagram Login): its own id and secret
    /// in Meta's dashboard. `None`: ConnectInstagram is FAILED_PRECONDITION.
    pub instagram_app: Option<MetaApp>,
    /// The verify token of the app-level webhook callback; `None` refuses its
    /// handshake.
    pub webhook_verify_token: Option<SecretString>,
    pub retry: RetryPolicy,
    /// How often to look for Instagram tokens to refresh; `None` turns it off.
    pub refresh_every: Option<Duration>,
    /// Refresh a token once it expires within this long.
    pub refresh_ahead: Duration,
    /// Refreshes failing in a row before a token is left alone.
    pub refresh_max_failures: u32,
    /// How often every Meta token is checked with debug_token; `None` turns it off.
    pub check_every: Option<Duration>,
    /// How often every WhatsApp number's health is read (the health round); `None`
    /// turns it off.
    pub health_every: Option<Duration>,
    /// Days before expiry at which TOKEN_EXPIRING is announced (once each).
    pub expiry_warning_days: Vec<u32>,
    /// Tokens of one workspace checked (or refreshed) per round at most.
    pub checks_per_workspace: usize,
    /// The day the Graph API version is checked against; `None`: the system clock's
    /// (tests set it).
    pub today: Option<chrono::NaiveDate>,
    /// The Get Started payload a persistent menu brings to a page without one.
    pub messenger_get_started_payload: String,
}

/// The Get Started button's payload, by default.
pub const GET_STARTED_PAYLOAD: &str = "GET_STARTED";

/// How often Instagram tokens due for refresh are looked for, by default.
pub const REFRESH_INTERVAL_SECONDS: u64 = 3600;
/// A token is refreshed once it expires within this many days, by default.
pub const REFRESH_AHEAD_DAYS: u32 = 7;
/// Refreshes failing in a row before a token is left alone, by default.
pub const REFRESH_MAX_FAILURES: u32 = 5;
/// How often every Meta token is checked, by default (a day).
pub const TOKEN_CHECK_INTERVAL_SECONDS: u64 = 86_400;
/// How often every WhatsApp number's health is read, by default (six hours).
pub const ACCOUNT_HEALTH_INTERVAL_SECONDS: u64 = 21_600;
/// Tokens of one workspace checked or refreshed per round at most, by default.
pub const TOKEN_CHECKS_PER_WORKSPACE_PER_ROUND: usize = 1_000;
/// Days before expiry at which a token's expiry is announced, by default.
pub const TOKEN_EXPIRY_WARNING_DAYS: [u32; 2] = [7, 1];

impl Default for MetaSettings {
    fn default() -> Self {
        Self {
            app: None,
            instagram_app: None,
            webhook_verify_token: None,
            retry: RetryPolicy::default(),
            refresh_every: Some(Duration::from_secs(REFRESH_INTERVAL_SECONDS)),
            refresh_ahead: Duration::from_secs(u64::from(REFRESH_AHEAD_DAYS) * 86_400),
            refresh_max_failures: REFRESH_MAX_FAILURES,
            check_every: Some(Duration::from_secs(TOKEN_CHECK_INTERVAL_SECONDS)),
            health_every: Some(Duration::from_secs(ACCOUNT_HEALTH_INTERVAL_SECONDS)),
            expiry_warning_days: TOKEN_EXPIRY_WARNING_DAYS.to_vec(),
            checks_per_workspace: TOKEN_CHECKS_PER_WORKSPACE_PER_ROUND,
            today: None,
            messenger_get_started_payload: GET_STARTED_PAYLOAD.to_owned(),
        }
    }
}
