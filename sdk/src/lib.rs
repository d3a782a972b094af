//! Patchbay's generated gRPC types, shared by the server and every client, and a
//! friendly [`Client`] on top of them.
//!
//! The types come from `proto/` at build time; [`FILE_DESCRIPTOR_SET`] is what the
//! server hands to reflection so that grpcurl and `buf curl` work with no .proto at hand.
//!
//! ```no_run
//! # async fn run() -> Result<(), patchbay_sdk::Error> {
//! use patchbay_sdk::{Client, proto::Channel};
//!
//! let client = Client::connect("http://127.0.0.1:50051", "<token>").await?;
//! let sender = client.default_account(Channel::Whatsapp, Some("sales")).await?;
//! println!("send from {}", sender.account_key);
//!
//! // On a hot path, keep a local copy that the server keeps current instead:
//! let defaults = client.watch_default_accounts(patchbay_sdk::WatchOptions::default());
//! defaults.wait_synchronised(std::time::Duration::from_secs(5)).await?;
//! if let Some(sender) = defaults.get(Channel::Whatsapp, Some("sales")) {
//!     println!("send from {} (no call made)", sender.account_key);
//! }
//! # Ok(()) }
//! ```

pub mod proto {
    //! Everything generated from `proto/patchbay/v1`.
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, rust_2018_idioms)]
    tonic::include_proto!("patchbay.v1");
}

pub mod codec;
pub mod health;
mod redacted;

#[cfg(feature = "client")]
mod account_events;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod connect;
#[cfg(feature = "client")]
mod default_accounts;

#[cfg(feature = "client")]
pub use account_events::AccountEvents;
#[cfg(feature = "client")]
pub use client::{
    AuthenticatedChannel, BearerToken, Client, Error, FieldViolation, RetryPolicy, TokenSource,
};
#[cfg(feature = "client")]
pub use connect::ConnectOptions;
#[cfg(feature = "client")]
pub use default_accounts::{DefaultAccounts, Sender, SyncStatus, WatchOptions};
pub use tonic::codec::CompressionEncoding;

/// The encoded file descriptor set of `patchbay.v1` and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/patchbay_descriptor.bin"));

pub use prost;
pub use prost_types;
pub use tonic;
pub use tonic_types;
