//! The webhook routing index in memory: `RouteWebhook` answers from it without a
//! database query. It holds only the accounts a webhook can be for
//! (`domain::webhook_routes::route_entry`), and is kept current the way the default
//! cache is:
//!
//! - a write that changes an account's routing reports the account id
//!   (`store::accounts::Written::routes`), and the write's call reloads that account
//!   here before it returns, so a replica routes by its own writes at once;
//! - on PostgreSQL the same write sends a `NOTIFY` with its transaction; the replicas'
//!   listener (`defaults::listener`) reloads the account, and loads the whole index
//!   again each time it (re)connects. Until it has, this replica's index may miss
//!   other replicas' changes, so it answers UNAVAILABLE instead of routing wrongly.
//!
//! Reloads run one at a time, each reading the database after the previous one was
//! applied, so the index never goes back to an older state of an account.

pub mod index;
mod names;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use sea_orm::DbBackend;
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use crate::domain::Error;
use crate::domain::webhook_routes::route_entry;
use crate::store::Store;
use crate::store::accounts::RoutedCursor;
use index::RouteIndex;

/// Cheap to clone; shared by the account operations, the webhook service and the
/// listener.
#[derive(Clone)]
pub struct WebhookRoutes {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    index: RwLock<RouteIndex>,
    /// Held while an update reads the database and applies what it read.
    updating: Mutex<()>,
    /// The index is complete: loaded, and no reload failed since.
    loaded: AtomicBool,
    /// Other replicas' changes reach it: always on SQLite (one replica), on PostgreSQL
    /// while the listener hears.
    heard: AtomicBool,
    /// Rung when a reload of one account failed: the whole index is loaded again.
    stale: Notify,
}

impl WebhookRoutes {
    pub fn new(store: Store) -> Self {
        let single_replica = store.backend() != DbBackend::Postgres;
        WebhookRoutes {
            inner: Arc::new(Inner {
                store,
                index: RwLock::new(RouteIndex::default()),
                updating: Mutex::new(()),
                loaded: AtomicBool::new(false),
                heard: AtomicBool::new(single_replica),
                stale: Notify::new(),
            }),
        }
    }

    /// Loads the whole index from the database, and marks it ready.
    pub async fn load(&self) -> Result<usize, Error> {
        let inner = &self.inner;
        let _updating = inner.updating.lock().await;
        // The old index goes first: a million accounts' entries are not held twice.
        // Nothing routes from it meanwhile (a load runs at start, after a listener's
        // reconnect, or after a failed reload: none is complete then).
        inner.loaded.store(false, Ordering::Release);
        *inner.index.write().unwrap_or_else(PoisonError::into_inner) = RouteIndex::default();
        let mut index = RouteIndex::default();
        let mut page = Some(RoutedCursor::default());
        while let Some(from) = page {
            let (accounts, next) = inner.store.accounts().routed_accounts_page(from).await?;
            for account in &accounts {
                index.put(account.id, route_entry(account));
            }
            page = next;
        }
        let held = index.len();
        metrics::gauge!("patchbay_webhook_routes").set(held as f64);
        *inner.index.write().unwrap_or_else(PoisonError::into_inner) = index;
        inner.loaded.store(true, Ordering::Release);
        Ok(held)
    }

    /// Reloads account `id` (a write changed its routing). A failed read leaves the
    /// index to be loaded again as a whole, by the `routes` task.
    pub async fn refresh(&self, id: Uuid) {
        let inner = &self.inner;
        let _updating = inner.updating.lock().await;
        match inner.store.accounts().routed_account(id).await {
            Ok(account) => {
                let entry = account.as_ref().and_then(route_entry);
                let mut index = inner.index.write().unwrap_or_else(PoisonError::into_inner);
                index.put(id, entry);
                metrics::gauge!("patchbay_webhook_routes").set(index.len() as f64);
            }
            Err(err) => {
                tracing::warn!(account_id = %id, error = %err, "cannot reload an account's webhook routing; reloading all");
                self.mark_stale();
            }
        }
    }

    /// Routing by what may be an old state of an account could hand its webhooks to a
    /// former owner: none until the index is loaded whole again (by the `routes` task).
    pub fn mark_stale(&self) {
        self.inner.loaded.store(false, Ordering::Release);
        self.inner.stale.notify_one();
    }

    /// PostgreSQL: whether the listener hears other replicas (it loads the index
    /// before it says so). No routing while it does not.
    pub fn listening(&self, heard: bool) {
        self.inner.heard.store(heard, Ordering::Release);
    }

    /// Waits, at most `limit`, for the index to be complete: a replica starting on
    /// PostgreSQL routes once its listener has loaded it.
    pub async fn wait_ready(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.read(|_| ()).is_err() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// Answers `read` from the index; UNAVAILABLE while it is not complete.
    pub fn read<R>(&self, read: impl FnOnce(&RouteIndex) -> R) -> Result<R, Error> {
        let inner = &self.inner;
        // Checked under the lock: a load marks the index incomplete before it empties
        // it, so a reader never routes from the emptied one.
        let index = inner.index.read().unwrap_or_else(PoisonError::into_inner);
        if !(inner.loaded.load(Ordering::Acquire) && inner.heard.load(Ordering::Acquire)) {
            return Err(Error::Unavailable(
                "webhook routing is catching up with other replicas; retry".to_owned(),
            ));
        }
        Ok(read(&index))
    }

    /// The task that loads the index again after a failed reload, until it succeeds.
    pub fn repair_task(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let routes = self.clone();
        async move {
            loop {
                routes.inner.stale.notified().await;
                let mut backoff = std::time::Duration::from_millis(100);
                while let Err(err) = routes.load().await {
                    tracing::warn!(error = %err, "cannot load the webhook routing index; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }
}
