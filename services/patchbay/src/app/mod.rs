//! The operations layer: one service per use-case family, each owning what its
//! operations need (the store, the Graph client, the credential checker, the
//! default-account fast path) and running the transactions. An operation reads, lets a
//! rule of `domain` decide, and hands the decision to `store`; it calls providers
//! outside transactions. `grpc` calls exactly one operation per RPC.

pub mod accounts;
pub mod audit;
pub mod channel_settings;
pub mod checks;
pub mod idempotency;
pub mod integrations;
pub mod webhooks;

pub use accounts::{AccountView, Accounts};
pub use audit::AuditLog;
pub use channel_settings::ChannelSettingsService;
pub use idempotency::IdempotencyKeys;
pub use integrations::Integrations;
pub use webhooks::Webhooks;
