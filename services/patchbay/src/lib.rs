//! The Patchbay service.
//!
//! A request enters in [`grpc`] (authenticated by [`auth`], authorised per action),
//! becomes domain values at the edge, runs a rule in [`domain`], and is written by
//! [`store`]. [`startup`] assembles the server; [`config`] and [`telemetry`] set it up.

pub mod auth;
pub mod config;
pub mod config_file;
pub mod defaults;
pub mod domain;
pub mod grpc;
pub mod listener;
mod locks;
pub mod meta;
pub mod outbound;
pub mod sealing;
pub mod startup;
pub mod store;
pub mod supervisor;
pub mod telemetry;

pub use config::Settings;
pub use startup::Application;
