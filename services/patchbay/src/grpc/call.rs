//! One call as the edge holds it: who asks ([`Caller`], the domain's, authorised by the
//! interceptor) and what the call carries beside it ([`CallContext`]). Handlers get a
//! [`Call`] from `auth::caller_of`; it reads as its caller (`Deref`).
//!
//! Three things the call carries ride on the caller instead, each for a reason: the
//! request id and the idempotency key the call runs under are what the domain records
//! with the call's writes (audit events, the key's row); and the call's place
//! ([`Permit`], put in the caller's opaque `CallPlace`) must be held by every clone of
//! the caller, so that work the call spawns and leaves running (a page's connection, a
//! provider check) keeps counting against its workspace's share.

use std::ops::Deref;

use tokio::sync::OwnedSemaphorePermit;

use super::places::Place;
use crate::domain::Caller;

/// A call: its caller, and its context. (Clone only because request extensions
/// hold clones: a handler takes the one copy out.)
#[derive(Clone)]
pub struct Call {
    pub caller: Caller,
    pub context: CallContext,
}

/// What a call carries beside who asks.
#[derive(Clone)]
pub struct CallContext {
    /// When the caller's token stops being valid (its `exp` plus the leeway), in
    /// seconds since the epoch: a stream outliving it is ended.
    pub valid_until: u64,
}

/// A place among the calls in flight, taken once the call's request arrived (the
/// fair-neighbours rule, `places`): a workspace's share, or the gateway's own. Held,
/// never read: dropping its last holder gives the place back. A stream drops it once
/// open (it holds a watch place instead).
#[allow(dead_code)]
pub enum Permit {
    Workspace(Place),
    Gateway(OwnedSemaphorePermit),
}

impl Deref for Call {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}
