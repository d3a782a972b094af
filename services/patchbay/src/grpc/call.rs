//! One call as the edge holds it: who asks ([`Caller`], the domain's, authorised by the
//! interceptor) and what the call carries beside it ([`CallContext`]). Handlers get a
//! [`Call`] from `auth::caller_of`; it reads as its caller (`Deref`), and what it
//! carries is given back when it goes.
//!
//! The request id and the idempotency key the call runs under stay on the caller:
//! they are what the domain records with the call's writes (audit events, the key's
//! row), so the domain sees them without seeing the edge.

use std::ops::Deref;
use std::sync::Arc;

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
    pub valid_until: Option<u64>,
    /// The call's place among the calls in flight, taken once its request arrived
    /// (the fair-neighbours rule, `places`), given back when the call goes. A stream
    /// drops it once open: it holds a watch place instead.
    pub permit: Option<Arc<Permit>>,
}

/// A place among the calls in flight: a workspace's share, or the gateway's own. Held,
/// never read: dropping it gives the place back.
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
