//! The rules of Patchbay: records, their validation, and the named decisions that pick
//! what a write does — pure functions, no I/O, no async, and no import of any layer
//! above (`app`, `grpc`, `store`, `meta`, `outbound`; `.ci/check-layers` fails the
//! build otherwise).
//!
//! - records and their rules: `account` (with the WhatsApp Cloud rules), `integration`,
//!   `channel_settings`, `provider` (the catalog's schemas), `config_document`;
//! - who may do what: `caller`; who gets a place for a call: `fair_share`;
//! - what a write does: `change` (one form for every record), `audit` (its event),
//!   `defaults` (which default scopes it touches);
//! - where Patchbay may send a tenant's secrets: `destinations` (the address classifier
//!   it asks is the outbound guard's, `outbound/guard.rs`);
//! - webhook signatures and Meta's handshake, persistent menus, idempotency claims,
//!   errors; ids and clocks (`ids`), pages of lists (`pages`), secrets out of words
//!   (`scrub`).

pub mod account;
pub mod audit;
pub mod caller;
pub mod change;
pub mod channel;
pub mod channel_settings;
pub mod config_document;
pub mod defaults;
pub mod destinations;
pub mod error;
pub mod fair_share;
pub mod fallbacks;
pub mod idempotency;
pub mod ids;
pub mod integration;
#[cfg(test)]
mod merge_properties;
pub mod pages;
pub mod persistent_menu;
pub mod provider;
pub mod scrub;
#[cfg(test)]
pub(crate) mod testing;
pub mod webhook_handshake;
pub mod webhook_routes;
pub mod webhook_signatures;

pub use account::{Account, AccountPatch, NewAccount, ProviderState, SetupState, WebhookUrls};
pub use caller::{Action, Caller, Role};
pub use channel::Channel;
pub use channel_settings::{ChannelSettings, ChannelSettingsPatch};
pub use error::{Checked, Error, FieldViolation, RecordKind, Violations};
