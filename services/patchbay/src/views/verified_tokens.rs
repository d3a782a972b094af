//! Tokens already verified, so that a caller sending the same bearer token on every call
//! (as services do) pays for one signature check, not one per call.
//!
//! - Holds: what each token verified as (the authenticator's `Authenticated`), keyed by
//!   the token's SHA-256; the token itself is not kept.
//! - Bounded: `--token-cache-capacity` entries; a full view drops its expired entries,
//!   and starts over when that is not enough.
//! - Invalidated: by time alone. An entry is served until the token's `exp`, never
//!   after. Unlike the other views it is not fed by the change stream: no stored record
//!   changes what a signed token proves (the keys that verify tokens are configuration,
//!   read at start).
//! - While it loads: there is nothing to load; a token not yet here is verified by its
//!   signature, and remembered.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::locks::{read, write};

pub struct VerifiedTokens<T> {
    capacity: usize,
    entries: RwLock<HashMap<[u8; 32], (T, u64)>>,
}

impl<T: Clone> VerifiedTokens<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The caller a remembered, unexpired token verified as. (An expired entry stays
    /// until `insert` sweeps: reads take the shared lock only.)
    pub fn get(&self, token: &str) -> Option<T> {
        let key = digest(token);
        let now = unix_now();
        let entries = read(&self.entries);
        match entries.get(&key) {
            Some((caller, expires)) if now < *expires => Some(caller.clone()),
            _ => None,
        }
    }

    /// Remembers a token that verified as `caller`, until `expires` (UNIX seconds).
    pub fn insert(&self, token: &str, caller: &T, expires: u64) {
        if self.capacity == 0 || expires <= unix_now() {
            return;
        }
        let mut entries = write(&self.entries);
        if entries.len() >= self.capacity {
            let now = unix_now();
            entries.retain(|_, (_, expires)| now < *expires);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest(token), (caller.clone(), expires));
    }

    pub fn remembered(&self) -> usize {
        read(&self.entries).len()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
