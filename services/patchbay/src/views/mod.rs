//! The in-memory views: what the server answers from memory, and how each is kept
//! current. The views of stored records are fed by one post-commit change stream
//! (`changes`): what the writes of this replica report once committed
//! (`Accounts::written`) and, on PostgreSQL, the other replicas' `NOTIFY`, heard by the
//! one listener (`defaults/listener.rs`). They are read by `app/` and `grpc/` (and the
//! verified tokens by `auth/`), and written by nothing else. Each module's doc says what
//! it holds, how it is bounded, how it is invalidated, and what a reader sees while it
//! loads; `patchbay_memory_entries{holder}` counts their entries.
//!
//! - `defaults`: the default accounts, their encoded GetDefaultAccount answers, and the
//!   WatchDefaultAccounts feeds;
//! - `routes`: the webhook routing index;
//! - `events`: each watched workspace's tail of the account-event log;
//! - `verified_tokens`: the bearer tokens already verified (fed by the authenticator,
//!   not by the change stream: no stored record changes what a token proves).

pub mod changes;
pub mod defaults;
pub mod events;
pub mod routes;
pub mod verified_tokens;
