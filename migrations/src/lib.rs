//! The Patchbay schema. Every table and index is created here and nowhere else; the
//! server runs [`Migrator`] at start and `patchbay migrate` runs it on demand.
//!
//! The SQL written by hand (partial unique indexes) is plain SQL that SQLite and
//! PostgreSQL both accept, so one migration serves both backends.

// `MigrationTrait` is written with async-trait, whose signatures elide the
// `SchemaManager` lifetime; spelling it out does not match the trait.
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_accounts;
mod m20261122_000002_create_channel_settings;
mod m20261122_000003_create_audit_events;
mod m20261122_000004_create_providers;
mod m20261122_000005_create_integrations;
mod m20261122_000006_create_idempotency_keys;
mod m20261122_000007_create_default_account_changes;
mod m20261122_000008_index_account_defaults;
mod m20261122_000009_account_provider_state;
mod m20261201_000010_provider_secret_destinations;
mod m20261201_000011_audit_outcome;
mod m20261201_000012_seal_values_in_envelopes;
mod m20261201_000013_caller_scoped_idempotency;
mod m20261201_000014_account_setup_state;
mod m20261201_000015_account_setup_registered;
mod m20261201_000016_account_verify_token_index;
mod m20261202_000017_account_webhook_routes;
mod m20261202_000018_account_events;
mod m20261202_000019_index_accounts_channel_id;
mod m20261206_000020_whatsapp_registrations;
mod m20261206_000021_account_ownership;
mod m20261206_000022_erase_deleted_secrets;
mod m20261206_000023_round_cursor;
mod m20261206_000024_index_accounts_token_expiry;
mod m20261207_000025_account_health;
mod m20261207_000026_fallback_accounts;
mod m20261207_000027_default_change_kind;

mod catalog;
mod columns;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_accounts::Migration),
            Box::new(m20261122_000002_create_channel_settings::Migration),
            Box::new(m20261122_000003_create_audit_events::Migration),
            Box::new(m20261122_000004_create_providers::Migration),
            Box::new(m20261122_000005_create_integrations::Migration),
            Box::new(m20261122_000006_create_idempotency_keys::Migration),
            Box::new(m20261122_000007_create_default_account_changes::Migration),
            Box::new(m20261122_000008_index_account_defaults::Migration),
            Box::new(m20261122_000009_account_provider_state::Migration),
            Box::new(m20261201_000010_provider_secret_destinations::Migration),
            Box::new(m20261201_000011_audit_outcome::Migration),
            Box::new(m20261201_000012_seal_values_in_envelopes::Migration),
            Box::new(m20261201_000013_caller_scoped_idempotency::Migration),
            Box::new(m20261201_000014_account_setup_state::Migration),
            Box::new(m20261201_000015_account_setup_registered::Migration),
            Box::new(m20261201_000016_account_verify_token_index::Migration),
            Box::new(m20261202_000017_account_webhook_routes::Migration),
            Box::new(m20261202_000018_account_events::Migration),
            Box::new(m20261202_000019_index_accounts_channel_id::Migration),
            Box::new(m20261206_000020_whatsapp_registrations::Migration),
            Box::new(m20261206_000021_account_ownership::Migration),
            Box::new(m20261206_000022_erase_deleted_secrets::Migration),
            Box::new(m20261206_000023_round_cursor::Migration),
            Box::new(m20261206_000024_index_accounts_token_expiry::Migration),
            Box::new(m20261207_000025_account_health::Migration),
            Box::new(m20261207_000026_fallback_accounts::Migration),
            Box::new(m20261207_000027_default_change_kind::Migration),
        ]
    }
}
