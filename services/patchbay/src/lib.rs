//! The Patchbay service.
//!
//! Three layers, arrows pointing down only (`ARCHITECTURE.md`; `.ci/check-layers`
//! keeps them):
//!
//! - [`grpc`], the edge: a request enters here (authenticated by [`auth`], authorised
//!   per action), is converted, runs one operation, and its answer is converted back;
//! - [`app`], the operations: each owns the store, the clients ([`meta`],
//!   [`outbound`]) and the in-memory views ([`views`]) it needs, and runs the
//!   transactions;
//! - [`domain`], the rules: records, validation and the decisions that pick what a
//!   write does, pure; [`store`] writes what they decide, in transactions.
//!
//! [`startup`] wires them and serves; [`config`] and [`telemetry`] set it up.

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod listener;
mod locks;
pub mod memory;
pub mod meta;
pub mod metrics;
pub mod outbound;
pub mod sealing;
pub mod startup;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod views;

pub use config::Settings;
pub use startup::Application;
