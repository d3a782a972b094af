//! One tail of the event log per watched workspace, on each replica: it reads the
//! workspace's new events once, with the accounts they name, and hands each to every
//! WatchAccountEvents stream of the workspace. A write's database work therefore does
//! not grow with the number of watchers, and idle streams make no queries: only the
//! tail does, when a write wakes it (or, should a wake-up be lost, every `POLL`).
//!
//! - **Holds:** per watched workspace, the last revision read and the streams' queues.
//! - **Bounded:** a tail lives while its workspace has streams (at most the watch
//!   shares); each stream's queue holds `QUEUE` events, shared (`Arc`) between streams.
//! - **Invalidated:** never: it only moves forward. A stream that falls `QUEUE` events
//!   behind is dropped from the tail (its queue closes, and the stream ends ABORTED
//!   saying where to resume); it never holds the tail back.
//! - **While it loads:** a stream subscribes at the tail's last revision, so it misses
//!   nothing; a stream resuming from an older revision reads the log up to there itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::AccountEventHub;
use crate::domain::account::events::AccountEvent;
use crate::domain::{Account, Error};
use crate::locks;
use crate::store::Store;

/// Events a stream may fall behind the tail before it is dropped.
pub const QUEUE: usize = 256;
/// Events read from the log at a time.
const EVENTS_PER_READ: u64 = 100;
/// How often an idle tail reads the log without a wake-up (one lost to a listener
/// reconnecting costs at most this, never an event).
const POLL: Duration = Duration::from_secs(30);

/// An event of the log with its account as stored now (`None`: it cannot be read, or
/// is gone), shared by every stream of the workspace.
pub struct TailEvent {
    pub event: AccountEvent,
    pub account: Option<Arc<Account>>,
}

/// What a stream's queue carries.
pub enum TailItem {
    Event(Arc<TailEvent>),
    /// The tail could not read on (the database, or events dropped under it).
    Failed(Error),
}

/// A stream's place at the tail: events after `start` arrive in `queue`. A closed
/// queue without a `Failed` means the stream fell behind.
pub struct Subscription {
    pub start: i64,
    pub queue: mpsc::Receiver<TailItem>,
}

#[derive(Clone)]
pub struct EventTails {
    store: Store,
    hub: AccountEventHub,
    tails: Arc<Mutex<HashMap<String, Tail>>>,
}

struct Tail {
    /// Which task serves it (a later tail of the workspace has another).
    task: u64,
    last: i64,
    streams: Vec<mpsc::Sender<TailItem>>,
}

/// Numbers the tails' tasks.
static TASKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl EventTails {
    pub fn new(store: Store, hub: AccountEventHub) -> Self {
        let tails = Self {
            store,
            hub,
            tails: Arc::default(),
        };
        crate::memory::register("event_tails", &tails.tails, |tails| {
            locks::lock(tails).len()
        });
        tails
    }

    /// A place at the workspace's tail, starting one if the workspace has none.
    pub async fn subscribe(&self, workspace_id: &str) -> Result<Subscription, Error> {
        let (sender, queue) = mpsc::channel(QUEUE);
        let sender = match self.join(workspace_id, sender, None) {
            Ok((start, _)) => return Ok(Subscription { start, queue }),
            Err(sender) => sender,
        };
        // Wake-ups first, then the log's head: an event recorded in between is read.
        let wake = self.hub.subscribe(workspace_id);
        let (latest, _) = self
            .store
            .events()
            .account_event_window(workspace_id)
            .await?;
        // Another stream may have started the tail meanwhile: then it is joined.
        // (Given a revision to start at, joining always finds or makes a place.)
        let (start, started) = self
            .join(workspace_id, sender, Some(latest))
            .map_err(|_| Error::Internal("no place at the event tail".to_owned()))?;
        if let Some(task) = started {
            let (this, workspace) = (self.clone(), workspace_id.to_owned());
            tokio::spawn(async move {
                // However the task ends (even by a panic), its tail goes with it and its
                // streams are told: none is left waiting on a tail nobody serves.
                let _gone = Gone {
                    tails: this.clone(),
                    workspace: workspace.clone(),
                    task,
                };
                this.run(workspace, wake).await
            });
        }
        Ok(Subscription { start, queue })
    }

    /// Joins the workspace's tail, or starts it at `start_at` when given; the revision
    /// the stream starts after, and the task to start (when the tail was started). The
    /// sender back when there is no tail to join and none to start.
    fn join(
        &self,
        workspace_id: &str,
        sender: mpsc::Sender<TailItem>,
        start_at: Option<i64>,
    ) -> Result<(i64, Option<u64>), mpsc::Sender<TailItem>> {
        let mut tails = locks::lock(&self.tails);
        if let Some(tail) = tails.get_mut(workspace_id) {
            // Streams gone since the last event leave now, not at the next one.
            tail.streams.retain(|stream| !stream.is_closed());
            tail.streams.push(sender);
            return Ok((tail.last, None));
        }
        let Some(last) = start_at else {
            return Err(sender);
        };
        let task = TASKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tails.insert(
            workspace_id.to_owned(),
            Tail {
                task,
                last,
                streams: vec![sender],
            },
        );
        Ok((last, Some(task)))
    }

    async fn run(self, workspace: String, mut wake: tokio::sync::watch::Receiver<i64>) {
        loop {
            if !self.read_on(&workspace).await {
                return;
            }
            tokio::select! {
                changed = wake.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Reads the workspace's new events and hands them on; `false` once the tail is
    /// gone (no stream left, or the log could not be read on).
    async fn read_on(&self, workspace: &str) -> bool {
        loop {
            let Some(mut last) = self.last(workspace) else {
                return false;
            };
            let events = match self
                .store
                .events()
                .account_events_after(workspace, last, EVENTS_PER_READ)
                .await
            {
                Ok(events) => events,
                Err(err) => {
                    tracing::warn!(error = %err, "account events could not be read; their watches end");
                    self.fail_all(workspace, || {
                        Error::Unavailable("the account events cannot be read now; watch again after the last revision seen".to_owned())
                    });
                    return false;
                }
            };
            let full = events.len() as u64 == EVENTS_PER_READ;
            for event in events {
                // Numbers have no gaps: one means events were dropped (retention) under
                // the tail, and its streams cannot go on from where they are.
                if event.revision != last + 1 {
                    self.fail_all(workspace, || {
                        Error::FailedPrecondition(format!(
                            "the events after revision {last} are no longer kept; watch again from now"
                        ))
                    });
                    return false;
                }
                let account = match self.account_of(workspace, &event).await {
                    Ok(account) => account,
                    Err(err) => {
                        // The database, not the account: the event is not passed over.
                        tracing::warn!(error = %err, "an account event's account could not be read; its watches end");
                        self.fail_all(workspace, || {
                            Error::Unavailable("the account events cannot be read now; watch again after the last revision seen".to_owned())
                        });
                        return false;
                    }
                };
                last = event.revision;
                let shared = Arc::new(TailEvent { event, account });
                if !self.hand_on(workspace, last, shared) {
                    return false;
                }
            }
            if !full {
                return !self.forget_if_unwatched(workspace);
            }
        }
    }

    /// The account an event names, as stored now; `None` when it is gone or cannot be
    /// opened (one account costs its events, not the watches); an error only when the
    /// database does not answer.
    async fn account_of(
        &self,
        workspace: &str,
        event: &AccountEvent,
    ) -> Result<Option<Arc<Account>>, Error> {
        match self
            .store
            .events()
            .account_of_event(workspace, event.account_id)
            .await
        {
            Ok(account) => Ok(account.map(Arc::new)),
            Err(err @ Error::Unavailable(_)) => Err(err),
            Err(err) => {
                tracing::error!(account_id = %event.account_id, revision = event.revision, error = %err, "account event passed on without its account: it cannot be read");
                Ok(None)
            }
        }
    }

    fn last(&self, workspace: &str) -> Option<i64> {
        locks::lock(&self.tails)
            .get(workspace)
            .map(|tail| tail.last)
    }

    /// Hands an event to every stream, dropping those that fell behind or went; `false`
    /// when none is left (the tail is then gone).
    fn hand_on(&self, workspace: &str, revision: i64, event: Arc<TailEvent>) -> bool {
        let mut tails = locks::lock(&self.tails);
        let Some(tail) = tails.get_mut(workspace) else {
            return false;
        };
        tail.last = revision;
        tail.streams
            .retain(|stream| stream.try_send(TailItem::Event(event.clone())).is_ok());
        if tail.streams.is_empty() {
            tails.remove(workspace);
            return false;
        }
        true
    }

    /// Ends every stream of the workspace with the error, and the tail with them.
    fn fail_all(&self, workspace: &str, err: impl Fn() -> Error) {
        let Some(tail) = locks::lock(&self.tails).remove(workspace) else {
            return;
        };
        for stream in tail.streams {
            let _ = stream.try_send(TailItem::Failed(err()));
        }
    }

    /// Drops the tail when its streams are all gone; whether it did.
    fn forget_if_unwatched(&self, workspace: &str) -> bool {
        let mut tails = locks::lock(&self.tails);
        let unwatched = tails.get_mut(workspace).is_some_and(|tail| {
            tail.streams.retain(|stream| !stream.is_closed());
            tail.streams.is_empty()
        });
        if unwatched {
            tails.remove(workspace);
        }
        unwatched
    }
}

/// Removes a tail when its task ends, however it ends, telling its streams.
struct Gone {
    tails: EventTails,
    workspace: String,
    task: u64,
}

impl Drop for Gone {
    fn drop(&mut self) {
        let mut tails = locks::lock(&self.tails.tails);
        let ours = tails
            .get(&self.workspace)
            .is_some_and(|tail| tail.task == self.task);
        let Some(tail) = ours.then(|| tails.remove(&self.workspace)).flatten() else {
            return;
        };
        for stream in tail.streams {
            let _ = stream.try_send(TailItem::Failed(Error::Unavailable(
                "the account events' reader stopped; watch again after the last revision seen"
                    .to_owned(),
            )));
        }
    }
}
