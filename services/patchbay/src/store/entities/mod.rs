//! sea-orm entities, one per table. The tables themselves are created by the
//! `patchbay-migrations` crate only.

pub mod account;
pub mod account_event;
pub mod account_event_head;
pub mod audit_event;
pub mod channel_settings;
pub mod default_account_change;
pub mod fallback_account;
pub mod idempotency_key;
pub mod integration;
pub mod provider;
pub mod task_lease;
pub mod whatsapp_registration;
