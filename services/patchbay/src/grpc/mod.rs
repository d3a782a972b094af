//! The gRPC edge. A request enters in one of the service adapters (`*_service.rs`),
//! is authorised (`authorization` names the action of every method, deny by default;
//! `auth` checks the caller's role for it), becomes domain values (`convert`), runs one
//! operation of `app`, and its result or error goes back through `convert` and
//! `status`. Nothing here reaches the store.

pub mod account_events;
pub mod account_service;
pub mod audit_service;
pub mod auth;
pub mod authorization;
pub mod call;
pub mod compression;
pub mod convert;
pub mod default_answer;
pub mod default_watch;
pub mod idempotency;
pub mod integration_service;
pub mod overload;
pub mod places;
pub mod request_read;
pub mod request_span;
pub mod shares;
pub mod status;
pub mod stream_shutdown;
pub mod webhook_service;
