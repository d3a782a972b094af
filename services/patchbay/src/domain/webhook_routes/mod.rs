//! Webhook routing rules: which accounts a webhook can be for, what a webhook URL names,
//! and what a Meta body's entries name. Pure: `app::webhooks` runs them against the
//! in-memory routing index (`views/routes`, asked through [`Routes`]) and the stored
//! secrets.
//!
//! - An account's URL is `<base>/webhooks/<channel>/<route>`, its route an opaque id
//!   unique across workspaces; `<base>/webhooks/meta` is Meta's app-level callback.
//! - A provider id (phone number id, page id, Instagram account id) has at most one
//!   owner across workspaces: the account whose ownership Meta confirmed
//!   (`domain::account::ownership`). An unconfirmed claim routes nothing on the
//!   app-level callback; on the account's own URL, which Meta calls only when someone
//!   with access to the id set it there, the account's own id routes to it unless
//!   another account owns it (see [`Routes::owner`]).
//! - A WhatsApp entry that names no phone number (`account_update`, quality, name,
//!   template and capability updates) routes by its WABA id to the WABA's owning
//!   workspace: the one that owns a confirmed number of it.

mod meta_body;
mod wabas;

pub use meta_body::{Deliveries, MetaBody, MetaEntry, SignedBy, Unrouted, route_meta_entries};
pub use wabas::{MAX_WABA_DELIVERIES, WabaRoute};

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::account::whatsapp::WABA_ID;
use super::account::{Account, Ownership, provider_id};
use super::channel::Channel;

/// What the routing rules ask of the routing index (`views/routes/index.rs`).
pub trait Routes {
    /// Who owns provider id `id` of `channel`.
    fn owner(&self, channel: Channel, id: u128) -> Owner;
    /// Where a WABA-level entry of `waba` goes (to the number displayed as `display`,
    /// when it names one).
    fn waba_route(&self, waba: u128, display: Option<u64>) -> WabaRoute;
}

/// Who owns a provider id.
#[derive(Debug)]
pub enum Owner {
    /// The account whose ownership Meta confirmed.
    One(Recipient),
    /// Nobody claims it.
    Nobody,
    /// Claimed, and no claim confirmed by Meta (or, which the database forbids, more
    /// than one): routed nowhere on the app-level callback.
    Unconfirmed,
}

/// Who a delivery is for: what the gateway hands the delivery on with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub account_id: Uuid,
    pub workspace_id: Arc<str>,
    pub division_id: Option<Arc<str>>,
    pub channel: Channel,
    pub account_key: Box<str>,
}

/// What routing keeps of an account: who it is, the id Meta names it by, and the
/// secrets that sign its own webhooks. Nothing else of its config.
pub struct RouteEntry {
    pub account_id: Uuid,
    pub route: Uuid,
    pub workspace_id: Arc<str>,
    pub division_id: Option<Arc<str>>,
    pub channel: Channel,
    pub account_key: Box<str>,
    /// The provider id, when it is a number (Meta's ids are).
    pub provider_id: Option<u128>,
    pub claim_confirmed: bool,
    /// A WhatsApp account's WABA id, when it is a number (Meta's are).
    pub waba_id: Option<u128>,
    /// The digits of a WhatsApp number as Meta displays it (read by the set-up).
    pub display_number: Option<u64>,
    /// The account's own Meta app secret (Meta channels only).
    pub app_secret: Option<SecretString>,
    /// The account's Twilio auth token.
    pub auth_token: Option<SecretString>,
    /// The account's Twilio SharedKey secret (`webhook_shared_key`), which signs the
    /// webhooks that carry X-Twilio-Webhooks-Signature-Settings.
    pub shared_key: Option<SecretString>,
}

impl RouteEntry {
    pub fn recipient(&self) -> Recipient {
        Recipient {
            account_id: self.account_id,
            workspace_id: self.workspace_id.clone(),
            division_id: self.division_id.clone(),
            channel: self.channel,
            account_key: self.account_key.clone(),
        }
    }
}

impl std::fmt::Debug for RouteEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteEntry")
            .field("account_id", &self.account_id)
            .field("channel", &self.channel)
            .field("provider_id", &self.provider_id)
            .field("claim_confirmed", &self.claim_confirmed)
            .finish_non_exhaustive()
    }
}

impl PartialEq for RouteEntry {
    fn eq(&self, other: &Self) -> bool {
        let secret = |s: &Option<SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
        self.account_id == other.account_id
            && self.route == other.route
            && self.workspace_id == other.workspace_id
            && self.division_id == other.division_id
            && self.channel == other.channel
            && self.account_key == other.account_key
            && self.provider_id == other.provider_id
            && self.claim_confirmed == other.claim_confirmed
            && self.waba_id == other.waba_id
            && self.display_number == other.display_number
            && secret(&self.app_secret) == secret(&other.app_secret)
            && secret(&self.auth_token) == secret(&other.auth_token)
            && secret(&self.shared_key) == secret(&other.shared_key)
    }
}

/// The channels whose accounts webhooks can be for: Meta's, and Twilio's SMS (Twilio's
/// WhatsApp numbers are WhatsApp accounts).
pub const ROUTED_CHANNELS: [Channel; 4] = [
    Channel::Whatsapp,
    Channel::Messenger,
    Channel::Instagram,
    Channel::Sms,
];

/// Whether webhooks of `channel` can be signed by Meta.
pub fn is_meta_channel(channel: Channel) -> bool {
    matches!(
        channel,
        Channel::Whatsapp | Channel::Messenger | Channel::Instagram
    )
}

/// What routing keeps of a live account; `None` for an account no webhook can be for
/// (neither a Meta channel nor a Twilio auth token).
pub fn route_entry(account: &Account) -> Option<RouteEntry> {
    let text = |key: &str| {
        account
            .config
            .get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|value| !value.is_empty())
            .map(|value| SecretString::from(value.to_owned()))
    };
    let meta = is_meta_channel(account.channel);
    let auth_token = text("auth_token");
    let shared_key = text(TWILIO_SHARED_KEY);
    let twilio = auth_token.is_some() || shared_key.is_some();
    if !ROUTED_CHANNELS.contains(&account.channel) || (!meta && !twilio) {
        return None;
    }
    Some(RouteEntry {
        account_id: account.id,
        route: account.webhook_route,
        workspace_id: Arc::from(account.workspace_id.as_str()),
        division_id: account.division_id.as_deref().map(Arc::from),
        channel: account.channel,
        account_key: account.account_key.clone().into_boxed_str(),
        provider_id: provider_id(account.channel, &account.config)
            .and_then(|id| id.parse::<u128>().ok()),
        claim_confirmed: account.provider_state.ownership == Ownership::Confirmed,
        waba_id: (account.channel == Channel::Whatsapp)
            .then(|| account.config.get(WABA_ID)?.as_str()?.parse::<u128>().ok())
            .flatten(),
        display_number: (account.channel == Channel::Whatsapp)
            .then(|| digits(account.provider_state.display_phone_number.as_deref()?))
            .flatten(),
        app_secret: if meta { text("app_secret") } else { None },
        auth_token,
        shared_key,
    })
}

/// The digits of a phone number as Meta displays it ("+1 555-0100" is 15550100);
/// `None` without digits or past 19 of them (E.164 numbers have at most 15).
pub fn digits(number: &str) -> Option<u64> {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.parse().ok()
}

/// The account config field that holds a Twilio SharedKey's secret.
pub const TWILIO_SHARED_KEY: &str = "webhook_shared_key";

/// Whether a write from `before` to `after` (`None`: absent or deleted) changes how
/// webhooks route: only then is the index told.
pub fn routing_changed(before: Option<&Account>, after: Option<&Account>) -> bool {
    before.and_then(route_entry) != after.and_then(route_entry)
}

/// What a webhook URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `<base>/webhooks/meta`: Meta's app-level callback.
    MetaApp,
    /// `<base>/webhooks/<channel>/<route>`: one account.
    Account { channel: Channel, route: Uuid },
}

/// The target of `url` (as the provider requested it) under the public base URL's
/// path, or `None` when it names none. Only the path counts: the gateway may be
/// reached under another host name.
pub fn target(url: &str, base_path: &str) -> Option<Target> {
    let rest = url.split_once("://").map(|(_, rest)| rest)?;
    let path = &rest[rest.find(['/', '?', '#'])?..];
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = path.strip_prefix(base_path.trim_end_matches('/'))?;
    let path = path.strip_prefix("/webhooks/")?;
    let path = path.strip_suffix('/').unwrap_or(path);
    if path == "meta" {
        return Some(Target::MetaApp);
    }
    let (channel, route) = path.split_once('/')?;
    let channel = Channel::parse(channel)?;
    // Routes are written as 32 hex digits; any other spelling names nothing.
    if route.len() != 32 || !route.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let route = Uuid::try_parse(route).ok()?;
    Some(Target::Account { channel, route })
}

/// The value of query parameter `name` of `url` (percent-decoded), if present.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
