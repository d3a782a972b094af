//! The gRPC edge. A request enters in one of the service adapters, is authorised
//! (`auth`), becomes domain values (`convert`), runs a domain operation, and its result
//! or error goes back through `convert` and `status`.

pub mod account_service;
pub mod audit_service;
pub mod auth;
pub mod authorization;
pub mod convert;
pub mod default_watch;
pub mod idempotency;
pub mod integration_convert;
pub mod integration_service;
pub mod meta_flows;
pub mod overload;
pub mod request_span;
pub mod shares;
pub mod status;
pub mod stream_shutdown;
pub mod webhook_service;
