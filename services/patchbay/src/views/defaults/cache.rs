//! The in-process cache of default accounts: (workspace, channel, division) → the
//! scope's default, or that it has none. The database stays the source of truth; an
//! entry lives until its workspace's defaults change (on this replica, before the write's
//! call returns; on another, when its notification arrives), until it is older than the
//! TTL, or until the cache is full and starts over.
//!
//! Bound: `--default-cache-capacity` entries (100,000 by default; an entry is a scope
//! and its masked default, about 1 KiB with a small config), and each entry's encoded
//! answers (`answers.rs`, 32 MiB in all).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::answers::CachedDefault;
use crate::domain::Channel;
use crate::locks;

/// A workspace's answers: channel → division ("" for workspace-wide; a division id is
/// never empty) → entry. Nested so that a lookup borrows the caller's strings instead
/// of building a key on every call.
type Scopes = HashMap<Channel, HashMap<String, Entry>>;

struct Entry {
    /// `None`: the scope has no default (asked often too, and as cheap to answer).
    account: Option<CachedDefault>,
    loaded_at: Instant,
}

#[derive(Default)]
struct State {
    workspaces: HashMap<String, Scopes>,
    entries: usize,
    /// Bumped by every invalidation. A reader notes it before reading the database and
    /// stores what it read only if it has not moved, so that a read racing a write never
    /// puts the old default back after the write's invalidation.
    epoch: u64,
    /// Off while this replica may be missing other replicas' changes (its listener is
    /// reconnecting): every read then goes to the database.
    enabled: bool,
    /// When expired entries were last dropped to give their kept answers back.
    swept_at: Option<Instant>,
}

pub struct DefaultCache {
    state: RwLock<State>,
    capacity: usize,
    ttl: Duration,
}

/// What a miss hands back to `insert`.
pub struct Ticket {
    epoch: u64,
}

pub enum Lookup {
    Hit(Option<CachedDefault>),
    Miss(Ticket),
}

impl DefaultCache {
    pub fn new(capacity: usize, ttl: Duration, enabled: bool) -> Self {
        Self {
            state: RwLock::new(State {
                enabled,
                ..State::default()
            }),
            capacity,
            ttl,
        }
    }

    pub fn get(&self, workspace_id: &str, channel: Channel, division_id: Option<&str>) -> Lookup {
        let state = self.read();
        let hit = state
            .enabled
            .then(|| state.workspaces.get(workspace_id))
            .flatten()
            .and_then(|scopes| scopes.get(&channel))
            .and_then(|divisions| divisions.get(division_id.unwrap_or_default()))
            .filter(|entry| entry.loaded_at.elapsed() < self.ttl)
            // A reason that ends changes the answer with no write: read it again then.
            .filter(|entry| {
                entry.account.as_ref().is_none_or(|cached| {
                    cached
                        .valid_until
                        .is_none_or(|until| crate::domain::ids::now() < until)
                })
            });
        match hit {
            Some(entry) => Lookup::Hit(entry.account.clone()),
            None => Lookup::Miss(Ticket { epoch: state.epoch }),
        }
    }

    /// Stores what a miss read from the database, unless the cache was invalidated
    /// since the miss.
    pub fn insert(
        &self,
        ticket: Ticket,
        workspace_id: &str,
        channel: Channel,
        division_id: Option<&str>,
        account: Option<CachedDefault>,
    ) {
        let mut state = self.write();
        if !state.enabled || state.epoch != ticket.epoch || self.capacity == 0 {
            return;
        }
        if state.entries >= self.capacity {
            // Simple and bounded: defaults are few and reloaded in one query each.
            tracing::debug!(
                capacity = self.capacity,
                "default cache full: starting over"
            );
            state.workspaces.clear();
            state.entries = 0;
        }
        self.sweep_when_answers_fill(&mut state);
        let entry = Entry {
            account,
            loaded_at: Instant::now(),
        };
        let previous = state
            .workspaces
            .entry(workspace_id.to_owned())
            .or_default()
            .entry(channel)
            .or_default()
            .insert(division_id.unwrap_or_default().to_owned(), entry);
        if previous.is_none() {
            state.entries += 1;
        }
    }

    /// An expired entry nobody asks again would keep its kept answers until the cache
    /// starts over: once those fill three quarters of their budget, expired entries are
    /// dropped (at most once a second), so that the scopes asked now get theirs.
    fn sweep_when_answers_fill(&self, state: &mut State) {
        let near_full = super::answers::kept_bytes() > super::answers::CAPACITY_BYTES / 4 * 3;
        let recently = state
            .swept_at
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
        if !near_full || recently {
            return;
        }
        state.swept_at = Some(Instant::now());
        let ttl = self.ttl;
        let mut dropped = 0;
        for scopes in state.workspaces.values_mut() {
            for divisions in scopes.values_mut() {
                let before = divisions.len();
                divisions.retain(|_, entry| entry.loaded_at.elapsed() < ttl);
                dropped += before - divisions.len();
            }
        }
        state.workspaces.retain(|_, scopes| {
            scopes.retain(|_, divisions| !divisions.is_empty());
            !scopes.is_empty()
        });
        state.entries -= dropped;
    }

    /// Forgets every default of the workspace.
    pub fn invalidate(&self, workspace_id: &str) {
        let mut state = self.write();
        state.epoch += 1;
        if let Some(scopes) = state.workspaces.remove(workspace_id) {
            state.entries -= scopes.values().map(HashMap::len).sum::<usize>();
        }
    }

    /// Forgets everything and turns the cache on or off.
    pub fn reset(&self, enabled: bool) {
        let mut state = self.write();
        state.epoch += 1;
        state.workspaces.clear();
        state.entries = 0;
        state.enabled = enabled;
    }

    pub fn len(&self) -> usize {
        self.read().entries
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        locks::read(&self.state)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        locks::write(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::Account;

    fn account(name: &str) -> Option<CachedDefault> {
        let now = chrono::Utc::now();
        Some(CachedDefault::new(Arc::new(Account {
            id: uuid::Uuid::now_v7(),
            workspace_id: "ws".into(),
            channel: Channel::Whatsapp,
            account_key: name.into(),
            display_name: name.into(),
            is_active: true,
            is_default: true,
            division_id: None,
            config: Default::default(),
            verify_token: String::new(),
            webhook_route: uuid::Uuid::now_v7(),
            revision: 1,
            created_at: now,
            updated_at: now,
            provider_state: Default::default(),
        })))
    }

    fn hit(cache: &DefaultCache, division: Option<&str>) -> Option<String> {
        match cache.get("ws", Channel::Whatsapp, division) {
            Lookup::Hit(account) => {
                Some(account.map_or("none".into(), |a| a.account.account_key.clone()))
            }
            Lookup::Miss(_) => None,
        }
    }

    fn fill(cache: &DefaultCache, division: Option<&str>, name: &str) {
        let Lookup::Miss(ticket) = cache.get("ws", Channel::Whatsapp, division) else {
            panic!("expected a miss");
        };
        cache.insert(ticket, "ws", Channel::Whatsapp, division, account(name));
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_stored() {
        let cache = DefaultCache::new(10, Duration::from_secs(60), true);
        let Lookup::Miss(ticket) = cache.get("ws", Channel::Whatsapp, None) else {
            panic!("empty cache hit");
        };
        // A write commits and invalidates while the read was at the database.
        cache.invalidate("ws");
        cache.insert(ticket, "ws", Channel::Whatsapp, None, account("old"));
        assert_eq!(hit(&cache, None), None);
        fill(&cache, None, "new");
        assert_eq!(hit(&cache, None).as_deref(), Some("new"));
    }

    #[test]
    fn scopes_are_separate_and_invalidation_clears_the_workspace() {
        let cache = DefaultCache::new(10, Duration::from_secs(60), true);
        fill(&cache, None, "wide");
        fill(&cache, Some("d1"), "d1");
        assert_eq!(hit(&cache, None).as_deref(), Some("wide"));
        assert_eq!(hit(&cache, Some("d1")).as_deref(), Some("d1"));
        assert_eq!(hit(&cache, Some("d2")), None);
        assert_eq!(cache.len(), 2);
        cache.invalidate("ws");
        assert_eq!(hit(&cache, None), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = DefaultCache::new(3, Duration::from_secs(60), true);
        for i in 0..10 {
            fill(&cache, Some(&format!("d{i}")), "x");
            assert!(cache.len() <= 3, "{} entries", cache.len());
        }
        assert_eq!(hit(&cache, Some("d9")).as_deref(), Some("x"));
    }

    #[test]
    fn a_disabled_or_expired_cache_misses() {
        let cache = DefaultCache::new(10, Duration::from_secs(60), true);
        fill(&cache, None, "wide");
        cache.reset(false);
        assert_eq!(hit(&cache, None), None);
        let Lookup::Miss(ticket) = cache.get("ws", Channel::Whatsapp, None) else {
            panic!("disabled cache hit");
        };
        cache.insert(ticket, "ws", Channel::Whatsapp, None, account("x"));
        assert_eq!(cache.len(), 0);

        let short = DefaultCache::new(10, Duration::ZERO, true);
        fill(&short, None, "wide");
        assert_eq!(hit(&short, None), None);
    }
}
