//! One broadcast per watched workspace. A single task follows the change log for every
//! workspace that was woken (by a local write, a notification from another replica, or
//! the listener coming back) and publishes each change in revision order, with the
//! scope's default as the database holds it when published. A change is state, not a
//! delta: publishing one twice, or after a snapshot that already shows it, is harmless.
//!
//! Memory stays bounded: a broadcast keeps at most `watch_buffer` changes; a watcher
//! that falls further behind gets [`FeedItem::Resync`]-like `Lagged` and is ended, and a
//! workspace nobody watches any more loses its feed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, broadcast};

use super::shareable;
use crate::domain::{Account, Channel, Error};
use crate::locks::lock;
use crate::store::Store;
use crate::store::default_changes::DefaultChange;

/// Changes read from the log per query while catching up.
const CATCH_UP_BATCH: u64 = 200;

/// One change of one scope, as watchers receive it.
#[derive(Debug)]
pub struct ScopeChanged {
    pub revision: i64,
    pub channel: Channel,
    pub division_id: Option<String>,
    pub now: ScopeNow,
}

/// What changed of a scope, as it is now.
#[derive(Debug)]
pub enum ScopeNow {
    /// Its default; `None` when it has none any more.
    Default(Option<Arc<Account>>),
    /// Its fallbacks, in order (empty: none any more).
    Fallbacks(Vec<Arc<Account>>),
}

#[derive(Clone, Debug)]
pub enum FeedItem {
    Changed(Arc<ScopeChanged>),
    /// The feed could not replay what happened (the log no longer reaches back, or the
    /// database failed): every watcher must start over from a snapshot.
    Resync,
}

/// A watcher's place in its workspace's feed.
pub struct Subscription {
    /// Every change up to this revision is in a snapshot read after subscribing.
    pub revision: i64,
    pub receiver: broadcast::Receiver<FeedItem>,
}

struct Feed {
    /// The last revision published.
    revision: i64,
    sender: broadcast::Sender<FeedItem>,
}

#[derive(Clone)]
pub(super) struct Feeds {
    shared: Arc<Shared>,
}

struct Shared {
    store: Store,
    buffer: usize,
    feeds: Mutex<HashMap<String, Feed>>,
    /// Workspaces to catch up, and the signal that there are some.
    woken: Mutex<HashSet<String>>,
    wake: Notify,
}

impl Feeds {
    /// The workspaces with a feed (those watched, and the last ones that were).
    pub(super) fn len(&self) -> usize {
        lock(&self.shared.feeds).len()
    }

    pub(super) fn new(store: Store, buffer: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                buffer: buffer.max(1),
                feeds: Mutex::new(HashMap::new()),
                woken: Mutex::new(HashSet::new()),
                wake: Notify::new(),
            }),
        }
    }

    pub(super) fn wake(&self, workspace_id: &str) {
        if !lock(&self.shared.feeds).contains_key(workspace_id) {
            return;
        }
        lock(&self.shared.woken).insert(workspace_id.to_owned());
        self.shared.wake.notify_one();
    }

    pub(super) fn wake_all(&self) {
        let watched: Vec<String> = lock(&self.shared.feeds).keys().cloned().collect();
        lock(&self.shared.woken).extend(watched);
        self.shared.wake.notify_one();
    }

    pub(super) async fn subscribe(&self, workspace_id: &str) -> Result<Subscription, Error> {
        if let Some(subscription) = self.join(workspace_id) {
            return Ok(subscription);
        }
        let latest = self
            .shared
            .store
            .default_changes()
            .latest_default_revision(workspace_id)
            .await?;
        let mut feeds = lock(&self.shared.feeds);
        let feed = feeds
            .entry(workspace_id.to_owned())
            .or_insert_with(|| Feed {
                revision: latest,
                sender: broadcast::channel(self.shared.buffer).0,
            });
        Ok(Subscription {
            revision: feed.revision,
            receiver: feed.sender.subscribe(),
        })
    }

    fn join(&self, workspace_id: &str) -> Option<Subscription> {
        let feeds = lock(&self.shared.feeds);
        let feed = feeds.get(workspace_id)?;
        Some(Subscription {
            revision: feed.revision,
            receiver: feed.sender.subscribe(),
        })
    }

    /// Ends every feed: their watchers' streams end with UNAVAILABLE ("watch again"),
    /// instead of waiting for changes nobody publishes (the publishing task is down).
    pub(super) fn close_all(&self) {
        lock(&self.shared.feeds).clear();
    }

    /// The task that publishes: runs until aborted.
    pub(super) async fn run(self) {
        loop {
            self.shared.wake.notified().await;
            let woken: Vec<String> = lock(&self.shared.woken).drain().collect();
            for workspace_id in woken {
                self.catch_up(&workspace_id).await;
            }
        }
    }

    /// Publishes the workspace's changes after its feed's revision.
    async fn catch_up(&self, workspace_id: &str) {
        loop {
            let Some(since) = self.watched_revision(workspace_id) else {
                return;
            };
            let changes = match self
                .shared
                .store
                .default_changes()
                .default_changes_after(workspace_id, since, CATCH_UP_BATCH)
                .await
            {
                Ok(Some(changes)) => changes,
                Ok(None) => {
                    tracing::warn!(
                        workspace = workspace_id,
                        since,
                        "the change log no longer reaches back: watchers resynchronise"
                    );
                    return self.resync(workspace_id);
                }
                Err(err) => {
                    tracing::warn!(workspace = workspace_id, error = %err, "cannot read default changes: watchers resynchronise");
                    return self.resync(workspace_id);
                }
            };
            let complete = (changes.len() as u64) < CATCH_UP_BATCH;
            for change in changes {
                let Some(now) = self.scope_now(workspace_id, &change).await else {
                    return self.resync(workspace_id);
                };
                let item = FeedItem::Changed(Arc::new(ScopeChanged {
                    revision: change.revision,
                    channel: change.channel,
                    division_id: change.division_id,
                    now,
                }));
                let mut feeds = lock(&self.shared.feeds);
                let Some(feed) = feeds.get_mut(workspace_id) else {
                    return;
                };
                feed.revision = change.revision;
                // No receiver left is not an error: the feed goes on the next round.
                let _ = feed.sender.send(item);
            }
            if complete {
                return;
            }
        }
    }

    /// What changed of a scope as the database holds it now; `None` when it cannot be
    /// read now and watchers must start over.
    async fn scope_now(&self, workspace_id: &str, change: &DefaultChange) -> Option<ScopeNow> {
        let store = &self.shared.store;
        let division = change.division_id.as_deref();
        if change.fallbacks {
            let found = store
                .fallbacks()
                .fallback_accounts(workspace_id, change.channel, division)
                .await;
            return match found {
                Ok(accounts) => Some(ScopeNow::Fallbacks(
                    accounts.into_iter().map(shareable).collect(),
                )),
                Err(err) => {
                    tracing::warn!(workspace = workspace_id, error = %err, "cannot read changed fallbacks: watchers resynchronise");
                    None
                }
            };
        }
        let found = store
            .accounts()
            .find_default_account(workspace_id, change.channel, division)
            .await;
        match found {
            Ok(account) => Some(ScopeNow::Default(account.map(shareable))),
            // A default that cannot be opened is left out, as a snapshot leaves it out:
            // watchers see the scope without a default.
            Err(err) if crate::store::readable::is_unreadable_record(&err) => {
                tracing::error!(
                    workspace = workspace_id,
                    channel = change.channel.as_str(),
                    error = %err,
                    "a changed default cannot be read; watchers see none"
                );
                Some(ScopeNow::Default(None))
            }
            Err(err) => {
                tracing::warn!(workspace = workspace_id, error = %err, "cannot read a changed default: watchers resynchronise");
                None
            }
        }
    }

    /// The feed's revision, or `None` (and the feed dropped) when nobody watches.
    fn watched_revision(&self, workspace_id: &str) -> Option<i64> {
        let mut feeds = lock(&self.shared.feeds);
        let feed = feeds.get(workspace_id)?;
        if feed.sender.receiver_count() == 0 {
            feeds.remove(workspace_id);
            return None;
        }
        Some(feed.revision)
    }

    /// Ends the feed: its watchers are told to start over, and new ones start a new feed.
    fn resync(&self, workspace_id: &str) {
        if let Some(feed) = lock(&self.shared.feeds).remove(workspace_id) {
            let _ = feed.sender.send(FeedItem::Resync);
        }
    }
}
