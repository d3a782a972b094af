//! Configuration, from flags and `PATCHBAY_*` environment variables (clap reads both;
//! a flag wins over the environment), and from a TOML file below both (`file`):
//!
//! - `cli`: the command line, every flag with its variable and its default;
//! - `settings`: the typed settings, validated at start with a message naming the
//!   bad setting;
//! - `keys`: JWT and encryption keys, and the development key files of the embedded
//!   default;
//! - `listener`, `providers`, `round_args`: the settings of the listener, of the
//!   providers and of the background rounds that ask Meta;
//! - `file`: the config file.
//!
//! Each default is defined once, beside the settings it belongs to (`ServerSettings`,
//! `DefaultsSettings`, `MetaSettings`, `ProviderUrls`, …), and used by clap and by
//! `Default`; a test checks the table of `docs/configuration.md` against `patchbay serve --help`.

mod cli;
pub mod file;
mod keys;
mod listener;
mod providers;
mod round_args;
mod server_args;
mod settings;

pub use cli::*;
pub use keys::{DevKeys, jwt_settings, key_ring};
pub(crate) use settings::ensure_data_dir;
pub use settings::{
    ServerSettings, Settings, database_settings, dev_keys_for_database, server_defaults,
};

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);
