//! Calls to the outside world, all through one guarded client (`client.rs`, rules in
//! `domain::addresses`): credential checks (`checks.rs`) and the Meta Graph client (`meta/`).
//! Base URLs are configuration, so tests point them at a local fake server.

pub mod checks;
pub mod client;

/// The rules the guard applies are pure, and validation applies them too: they live
/// with the other rules, in `domain::addresses`.
pub use crate::domain::addresses as guard;
pub use checks::{CheckFailure, CheckOutcome, CheckReport, CredentialChecker};
pub use client::{
    Answer, Destination, MAX_BODY_BYTES, NameResolver, OutboundClient, OutboundError,
    OutboundSettings,
};
pub use guard::{AddressPolicy, Origin, Refusal};

/// Where each provider's API lives.
#[derive(Clone, Debug)]
pub struct ProviderUrls {
    pub sendgrid: String,
    pub openai: String,
    pub twilio: String,
    pub graph: String,
    pub instagram_graph: String,
    /// api.instagram.com: Instagram Login's code exchange.
    pub instagram_api: String,
    /// The Graph API version every Graph call names (`v21.0`).
    pub graph_version: String,
}

impl Default for ProviderUrls {
    fn default() -> Self {
        Self {
            sendgrid: "https://api.sendgrid.com".to_owned(),
            openai: "https://api.openai.com".to_owned(),
            twilio: "https://api.twilio.com".to_owned(),
            graph: "https://graph.facebook.com".to_owned(),
            instagram_graph: "https://graph.instagram.com".to_owned(),
            instagram_api: "https://api.instagram.com".to_owned(),
            graph_version: "v21.0".to_owned(),
        }
    }
}

/// The settings that name each base URL, for messages.
pub mod settings {
    pub const SENDGRID: &str = "PATCHBAY_SENDGRID_BASE_URL";
    pub const OPENAI: &str = "PATCHBAY_OPENAI_BASE_URL";
    pub const TWILIO: &str = "PATCHBAY_TWILIO_BASE_URL";
    pub const GRAPH: &str = "PATCHBAY_GRAPH_BASE_URL";
    pub const INSTAGRAM_GRAPH: &str = "PATCHBAY_INSTAGRAM_GRAPH_BASE_URL";
    pub const INSTAGRAM_API: &str = "PATCHBAY_INSTAGRAM_API_BASE_URL";
}
