//! The default-account fast path. "Which account sends on channel X for division Y?" is
//! asked on every outgoing message, so it is answered from memory, and watchers are told
//! of every change instead of asking again:
//!
//! - `cache`: the read cache behind `GetDefaultAccount`;
//! - `feeds`: one broadcast per watched workspace, fed from the change log, behind
//!   `WatchDefaultAccounts`;
//! - `listener`: on PostgreSQL, the `LISTEN` that brings other replicas' changes here.
//!
//! Every account write that touches a default records a numbered change in its own
//! transaction (`store::default_changes`) and, once committed, reports it to
//! [`DefaultAccounts::changed`] — which drops the workspace's cached defaults before the
//! write's call returns, so a replica always reads its own writes.

mod answers;
mod cache;
mod feeds;
mod listener;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DbBackend;

pub use answers::{CachedDefault, KeptAnswers, View};
pub use feeds::{FeedItem, ScopeChanged, ScopeNow, Subscription};
pub use listener::Followers;

use crate::domain::config_document;
use crate::domain::{Account, Channel, Error};
use crate::store::Store;
use crate::store::default_changes::DefaultsChanged;
use cache::{DefaultCache, Lookup};
use feeds::Feeds;

/// Sizes and times of the fast path (`patchbay serve --help` names the flags).
#[derive(Clone, Debug)]
pub struct DefaultsSettings {
    /// How many (workspace, channel, division) answers the read cache holds.
    pub cache_capacity: usize,
    /// How long a cached answer may be served without a change notification: a bound on
    /// staleness should a notification ever be lost.
    pub cache_ttl: Duration,
    /// How many changes a watch stream may fall behind before it is ended (ABORTED) and
    /// its client resynchronises: what bounds a stalled watcher's memory.
    pub watch_buffer: usize,
    /// How often a replica checks, on PostgreSQL, that its listener still hears.
    pub listener_heartbeat: Duration,
}

pub const CACHE_CAPACITY: usize = 100_000;
pub const CACHE_TTL_SECONDS: u64 = 60;
pub const WATCH_BUFFER: usize = 256;

impl Default for DefaultsSettings {
    fn default() -> Self {
        Self {
            cache_capacity: CACHE_CAPACITY,
            cache_ttl: Duration::from_secs(CACHE_TTL_SECONDS),
            watch_buffer: WATCH_BUFFER,
            listener_heartbeat: Duration::from_secs(5),
        }
    }
}

/// Cheap to clone; shared by the account operations and the watch streams.
#[derive(Clone)]
pub struct DefaultAccounts {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cache: DefaultCache,
    feeds: Feeds,
}

impl DefaultAccounts {
    /// The fast path over `store`; its tasks (`feeds_task`, `listener_task`) run under
    /// the supervisor.
    pub fn new(store: Store, settings: &DefaultsSettings) -> Self {
        let multi_replica = store.backend() == DbBackend::Postgres;
        let inner = Arc::new(Inner {
            // On PostgreSQL the cache stays off until the listener hears other
            // replicas' changes.
            cache: DefaultCache::new(settings.cache_capacity, settings.cache_ttl, !multi_replica),
            feeds: Feeds::new(store.clone(), settings.watch_buffer),
            store,
        });
        crate::memory::register("default_cache", &inner, |inner| inner.cache.len());
        crate::memory::register("default_feeds", &inner, |inner| inner.feeds.len());
        DefaultAccounts { inner }
    }

    /// The task that publishes changes to the watch feeds.
    pub fn feeds_task(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        self.inner.feeds.clone().run()
    }

    /// Ends every watch feed (their publishing task is down): watchers are told.
    pub fn close_feeds(&self) {
        self.inner.feeds.close_all();
    }

    /// PostgreSQL only: the task that hears other replicas' changes.
    /// It also keeps the webhook routing index current (see `routes`) and wakes the
    /// account event streams (see `events`).
    pub fn listener_task(
        &self,
        followers: &Followers,
        database_url: &str,
        heartbeat: std::time::Duration,
    ) -> Option<impl std::future::Future<Output = ()> + Send + use<>> {
        (self.inner.store.backend() == DbBackend::Postgres).then(|| {
            listener::run(
                self.clone(),
                followers.clone(),
                database_url.to_owned(),
                heartbeat,
            )
        })
    }

    /// The default of exactly one scope (no fallback), config secrets masked.
    pub async fn scope_default(
        &self,
        workspace_id: &str,
        channel: Channel,
        division_id: Option<&str>,
    ) -> Result<Option<CachedDefault>, Error> {
        let inner = &self.inner;
        let ticket = match inner.cache.get(workspace_id, channel, division_id) {
            Lookup::Hit(account) => {
                crate::metrics::hot::default_cache_hit();
                return Ok(account);
            }
            Lookup::Miss(ticket) => {
                metrics::counter!("patchbay_default_cache_lookups_total", "outcome" => "miss")
                    .increment(1);
                ticket
            }
        };
        // Boxed: the database query's future is large, and keeping it out of this one
        // keeps every cache hit from carrying (and moving) it.
        let found = Box::pin(self.load(workspace_id, channel, division_id)).await?;
        inner
            .cache
            .insert(ticket, workspace_id, channel, division_id, found.clone());
        Ok(found)
    }

    /// A scope's default as the store has it, with the scope's fallbacks when the
    /// default cannot send (while it can, none are read: the common case costs one
    /// query). A change of either is a default change (`store::fallbacks`), which drops
    /// the entry.
    async fn load(
        &self,
        workspace_id: &str,
        channel: Channel,
        division_id: Option<&str>,
    ) -> Result<Option<CachedDefault>, Error> {
        let store = &self.inner.store;
        let Some(default) = store
            .accounts()
            .find_default_account(workspace_id, channel, division_id)
            .await?
        else {
            return Ok(None);
        };
        // Fallbacks are read only when the default would be stepped over for a usable
        // one (its trouble is one a fallback may stand in for).
        if !crate::domain::fallbacks::would_step_over(&default, crate::domain::ids::now()) {
            return Ok(Some(CachedDefault::new(shareable(default))));
        }
        let fallbacks = store
            .fallbacks()
            .fallback_accounts(workspace_id, channel, division_id)
            .await?
            .into_iter()
            .map(shareable)
            .collect();
        Ok(Some(CachedDefault::with_fallbacks(
            shareable(default),
            fallbacks,
        )))
    }

    /// A write committed a default change: forget the workspace's cached defaults now,
    /// and tell its watchers.
    pub fn changed(&self, changed: &DefaultsChanged) {
        metrics::counter!("patchbay_default_cache_invalidations_total").increment(1);
        self.inner.cache.invalidate(&changed.workspace_id);
        self.inner.feeds.wake(&changed.workspace_id);
    }

    /// Follows the workspace's default changes from now on; see `feeds`.
    pub async fn subscribe(&self, workspace_id: &str) -> Result<Subscription, Error> {
        self.inner.feeds.subscribe(workspace_id).await
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Called by the listener when it starts or stops hearing other replicas: the cache
    /// starts over (on or off), and every feed catches up from the log.
    fn listening(&self, heard: bool) {
        self.inner.cache.reset(heard);
        if heard {
            self.inner.feeds.wake_all();
        }
    }
}

/// An account as the fast path keeps it: config secrets masked once, for every caller.
pub fn shareable(account: Account) -> Arc<Account> {
    Arc::new(Account {
        config: config_document::mask(&account.config),
        ..account
    })
}
