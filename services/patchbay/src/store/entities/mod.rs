//! sea-orm entities, one per table. The tables themselves are created by the
//! `patchbay-migrations` crate only.

pub mod account;
pub mod channel_settings;
