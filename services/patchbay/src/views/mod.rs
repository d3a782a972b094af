//! The in-memory views: what the server answers from memory, and how each is kept
//! current. All are fed by one post-commit change stream (`changes`): what the writes
//! of this replica report once committed (`Accounts::written`) and, on PostgreSQL, the
//! other replicas' `NOTIFY`, heard by the one listener (`defaults/listener.rs`). Each is
//! read by `app/` (and `grpc/` through it), and none is written by anything else. Each module's doc says what it
//! holds, how it is bounded, how it is invalidated, and what a reader sees while it
//! loads; `patchbay_memory_entries{holder}` counts their entries.
//!
//! - `defaults`: the default accounts, their encoded GetDefaultAccount answers, and the
//!   WatchDefaultAccounts feeds;
//! - `routes`: the webhook routing index;
//! - `events`: each watched workspace's tail of the account-event log.

pub mod changes;
pub mod defaults;
pub mod events;
pub mod routes;
