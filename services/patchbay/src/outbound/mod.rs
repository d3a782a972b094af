//! Calls to the outside world, all through one guarded client (`client.rs`, the address
//! classifier in `guard.rs`): the Meta Graph client (`meta/`) and the credential checks
//! (`app::checks`).
//! Base URLs are configuration, so tests point them at a local fake server.

pub mod client;
pub mod guard;

pub use client::{
    Answer, Destination, MAX_BODY_BYTES, NameResolver, OutboundClient, OutboundError,
    OutboundSettings, join,
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
    /// The Graph API version every Graph call names (`v25.0`).
    pub graph_version: String,
}

/// The providers' real APIs, and the Graph API version: the defaults of
/// [`ProviderUrls`].
pub mod default_urls {
    pub const SENDGRID: &str = "https://api.sendgrid.com";
    pub const OPENAI: &str = "https://api.openai.com";
    pub const TWILIO: &str = "https://api.twilio.com";
    pub const GRAPH: &str = "https://graph.facebook.com";
    pub const INSTAGRAM_GRAPH: &str = "https://graph.instagram.com";
    pub const INSTAGRAM_API: &str = "https://api.instagram.com";
    /// Served until 2028-07-29 (`meta::versions`).
    pub const GRAPH_VERSION: &str = "v25.0";
}

impl Default for ProviderUrls {
    fn default() -> Self {
        use default_urls as d;
        Self {
            sendgrid: d::SENDGRID.to_owned(),
            openai: d::OPENAI.to_owned(),
            twilio: d::TWILIO.to_owned(),
            graph: d::GRAPH.to_owned(),
            instagram_graph: d::INSTAGRAM_GRAPH.to_owned(),
            instagram_api: d::INSTAGRAM_API.to_owned(),
            graph_version: d::GRAPH_VERSION.to_owned(),
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
