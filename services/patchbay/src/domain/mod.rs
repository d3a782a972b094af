//! The rules of Patchbay, free of gRPC and SQL: records and their validation
//! (`account`, `channel_settings`), config documents (`config_document`), who may do
//! what (`caller`), and the operations each RPC runs (`accounts`, `ChannelSettingsService`).

pub mod account;
pub mod accounts;
pub mod audit;
pub mod caller;
pub mod channel;
pub mod channel_settings;
pub mod config_document;
pub mod destinations;
pub mod error;
pub mod idempotency;
pub mod integration;
pub mod integrations;
#[cfg(test)]
mod merge_properties;
pub mod persistent_menu;
pub mod provider;
pub mod support;
pub mod webhook_signatures;
pub mod webhooks;

pub use account::{Account, AccountPatch, NewAccount, ProviderState, SetupState, WebhookUrls};
pub use accounts::{AccountView, Accounts};
pub use caller::{Action, Caller, Role};
pub use channel::Channel;
pub use channel_settings::{ChannelSettings, ChannelSettingsPatch, ChannelSettingsService};
pub use error::{Error, FieldViolation, RecordKind, Violations};
