//! [`DefaultAccounts`]: a local copy of a workspace's default accounts and each scope's
//! fallbacks, kept current by `WatchDefaultAccounts`, so that "which account sends on
//! channel X for division Y?" costs a map lookup instead of a call: [`get`] answers the
//! default, [`sender`] what `GetDefaultAccount` serves (a fallback while the default
//! cannot send), by the service's own decision ([`crate::health::serving`]).
//!
//! A background task opens the watch, replaces the map with each snapshot and applies
//! each change after it. When the stream breaks (the server restarts, a network blip,
//! the server ends a watcher that fell behind) the copy is marked unsynchronised, the
//! task reconnects with exponential backoff and jitter, and the next snapshot replaces
//! the map whole — so a scope whose default went away during the break does not linger.
//! Lookups keep answering from the last known map meanwhile; [`is_synchronised`]
//! tells whether it may be stale.
//!
//! [`is_synchronised`]: DefaultAccounts::is_synchronised
//! [`get`]: DefaultAccounts::get
//! [`sender`]: DefaultAccounts::sender

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{Client, Error};
use crate::proto::{self, watch_default_accounts_response::Event};

/// channel → division ("" for workspace-wide) → `T`.
type Scopes<T> = HashMap<i32, HashMap<String, T>>;

/// The copy: each scope's default, and each scope's fallbacks in order.
#[derive(Default)]
struct Map {
    defaults: Scopes<Arc<proto::Account>>,
    fallbacks: Scopes<Vec<Arc<proto::Account>>>,
}

impl Map {
    /// The scope that answers for `division_id` on `channel`: the division's when it
    /// has a default, else the workspace-wide one; with its key and default.
    fn answering(
        &self,
        channel: proto::Channel,
        division_id: Option<&str>,
    ) -> Option<(&str, &Arc<proto::Account>)> {
        let scopes = self.defaults.get(&(channel as i32))?;
        division_id
            .filter(|division| !division.is_empty())
            .and_then(|division| scopes.get_key_value(division))
            .or_else(|| scopes.get_key_value(""))
            .map(|(key, account)| (key.as_str(), account))
    }

    /// A scope's fallbacks (none when it has no list).
    fn fallbacks_of(&self, channel: proto::Channel, scope: &str) -> &[Arc<proto::Account>] {
        self.fallbacks
            .get(&(channel as i32))
            .and_then(|scopes| scopes.get(scope))
            .map_or(&[], Vec::as_slice)
    }

    /// What the copy serves at `now` (seconds since the epoch): [`DefaultAccounts::sender`].
    fn sender(
        &self,
        channel: proto::Channel,
        division_id: Option<&str>,
        now: i64,
    ) -> Option<Sender> {
        let (scope, default) = self.answering(channel, division_id)?;
        let fallbacks = self.fallbacks_of(channel, scope);
        let served = crate::health::serving_accounts(
            default,
            fallbacks.iter().map(|account| account.as_ref()),
            now,
        );
        Some(match served.and_then(|index| fallbacks.get(index)) {
            Some(fallback) => Sender {
                account: fallback.clone(),
                served_by_fallback: true,
            },
            None => Sender {
                account: default.clone(),
                served_by_fallback: false,
            },
        })
    }

    fn set_fallbacks(&mut self, list: proto::ScopeFallbacks) {
        let scope = list.division_id.unwrap_or_default();
        let scopes = self.fallbacks.entry(list.channel).or_default();
        if list.accounts.is_empty() {
            scopes.remove(&scope);
        } else {
            scopes.insert(scope, list.accounts.into_iter().map(Arc::new).collect());
        }
    }
}

/// What `GetDefaultAccount` serves for a scope, as [`DefaultAccounts::sender`] answers
/// it from the copy.
#[derive(Clone, Debug, PartialEq)]
pub struct Sender {
    /// The account to send from: the default, or the first of the scope's fallbacks
    /// that can send while the default cannot (for a CREDENTIALS, SETUP or PROVIDER
    /// reason; never for ENFORCEMENT).
    pub account: Arc<proto::Account>,
    /// True when `account` is a fallback standing in for the default.
    pub served_by_fallback: bool,
}

/// What to watch, and how to reconnect.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Only these channels; empty watches every channel.
    pub channels: Vec<proto::Channel>,
    /// One division (and the workspace-wide defaults); `None` watches every division the
    /// token sees.
    pub division_id: Option<String>,
    /// First wait before reconnecting; doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            division_id: None,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Where the local copy stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// True from a snapshot until the stream breaks.
    pub synchronised: bool,
    /// The workspace's default revision the copy has reached.
    pub revision: i64,
    /// How many snapshots and changes have been applied: grows with every update.
    pub updates: u64,
    /// Why the last stream ended, if it did (no secret is ever in it).
    pub last_error: Option<String>,
}

struct State {
    map: RwLock<Map>,
    synchronised: AtomicBool,
    status: watch::Sender<SyncStatus>,
}

/// A live copy of the default accounts; cheap to clone. The watch stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct DefaultAccounts {
    state: Arc<State>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for DefaultAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultAccounts")
            .field("status", &*self.state.status.borrow())
            .finish_non_exhaustive()
    }
}

impl DefaultAccounts {
    /// Starts watching in the background (needs a tokio runtime). Lookups answer `None`
    /// until the first snapshot: await [`DefaultAccounts::wait_synchronised`] first when
    /// that matters.
    pub fn watch(client: Client, options: WatchOptions) -> Self {
        let (status, _) = watch::channel(SyncStatus::default());
        let state = Arc::new(State {
            map: RwLock::new(Map::default()),
            synchronised: AtomicBool::new(false),
            status,
        });
        let task = tokio::spawn(follow(client, options, state.clone()));
        Self {
            state,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// The default that sends on `channel` for `division_id`: the division's default,
    /// else the workspace-wide one, with its health. No network call.
    pub fn get(
        &self,
        channel: proto::Channel,
        division_id: Option<&str>,
    ) -> Option<Arc<proto::Account>> {
        let map = read(&self.state.map);
        map.answering(channel, division_id)
            .map(|(_, account)| account.clone())
    }

    /// What `GetDefaultAccount` serves on `channel` for `division_id`, from the copy:
    /// the answering scope's default, unless it cannot send for a reason a fallback may
    /// stand in for; then the first of that scope's fallbacks that can. The decision is
    /// the service's own ([`crate::health::serving_accounts`]), read at this instant, so
    /// a reason whose `until` has passed no longer counts. No network call.
    pub fn sender(&self, channel: proto::Channel, division_id: Option<&str>) -> Option<Sender> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
        read(&self.state.map).sender(channel, division_id, now)
    }

    /// Whether the copy follows the server right now (false before the first snapshot
    /// and while reconnecting).
    pub fn is_synchronised(&self) -> bool {
        self.state.synchronised.load(Ordering::Acquire)
    }

    pub fn status(&self) -> SyncStatus {
        self.state.status.borrow().clone()
    }

    /// A receiver that sees every status change (for waiting on an update).
    pub fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.state.status.subscribe()
    }

    /// Waits until the copy is synchronised, at most `timeout`.
    pub async fn wait_synchronised(&self, timeout: Duration) -> Result<(), Error> {
        let mut status = self.subscribe();
        match tokio::time::timeout(timeout, status.wait_for(|s| s.synchronised)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::Unavailable(format!(
                "default accounts not synchronised after {timeout:?}: {}",
                self.status().last_error.unwrap_or_default()
            ))),
        }
    }
}

/// Watches until aborted: one stream after another.
async fn follow(client: Client, options: WatchOptions, state: Arc<State>) {
    let mut backoff = options.first_backoff;
    loop {
        let ended = stream_once(&client, &options, &state, &mut backoff).await;
        state.synchronised.store(false, Ordering::Release);
        state.status.send_modify(|status| {
            status.synchronised = false;
            status.last_error = Some(ended.to_string());
        });
        tokio::time::sleep(with_jitter(backoff)).await;
        backoff = (backoff * 2).min(options.max_backoff);
    }
}

/// One watch stream, applied until it ends; returns why it ended. A snapshot resets
/// the backoff.
async fn stream_once(
    client: &Client,
    options: &WatchOptions,
    state: &State,
    backoff: &mut Duration,
) -> Error {
    let request = proto::WatchDefaultAccountsRequest {
        channels: options.channels.iter().map(|&c| c.into()).collect(),
        division_id: options.division_id.clone().unwrap_or_default(),
    };
    let mut stream = match client.accounts().watch_default_accounts(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return status.into(),
    };
    // A snapshot may come in parts: gathered here until the last one.
    let mut pending: Option<Map> = None;
    loop {
        let message = match stream.message().await {
            Ok(Some(message)) => message,
            Ok(None) => return Error::Unavailable("the server ended the watch".to_owned()),
            Err(status) => return status.into(),
        };
        match message.event {
            Some(Event::Snapshot(snapshot)) => {
                let mut map = pending.take().unwrap_or_default();
                for account in snapshot.defaults {
                    insert(&mut map, account);
                }
                for list in snapshot.fallbacks {
                    map.set_fallbacks(list);
                }
                if !snapshot.complete {
                    pending = Some(map);
                    continue;
                }
                *write(&state.map) = map;
                *backoff = options.first_backoff;
                state.synchronised.store(true, Ordering::Release);
                state.status.send_modify(|status| {
                    status.synchronised = true;
                    status.revision = message.revision;
                    status.updates += 1;
                    status.last_error = None;
                });
            }
            Some(Event::Changed(change)) => {
                {
                    let mut map = write(&state.map);
                    let division = change.division_id.unwrap_or_default();
                    match change.account {
                        Some(account) => insert(&mut map, account),
                        None => {
                            if let Some(scopes) = map.defaults.get_mut(&change.channel) {
                                scopes.remove(&division);
                            }
                        }
                    }
                }
                applied(state, message.revision);
            }
            Some(Event::FallbacksChanged(list)) => {
                write(&state.map).set_fallbacks(list);
                applied(state, message.revision);
            }
            None => {}
        }
    }
}

/// A change was applied: the status moves on.
fn applied(state: &State, revision: i64) {
    state.status.send_modify(|status| {
        status.revision = status.revision.max(revision);
        status.updates += 1;
    });
}

fn insert(map: &mut Map, account: proto::Account) {
    map.defaults.entry(account.channel).or_default().insert(
        account.division_id.clone().unwrap_or_default(),
        Arc::new(account),
    );
}

fn write(map: &RwLock<Map>) -> std::sync::RwLockWriteGuard<'_, Map> {
    map.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read(map: &RwLock<Map>) -> std::sync::RwLockReadGuard<'_, Map> {
    map.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `backoff` give or take a quarter, so that many clients cut off together do not all
/// come back in the same instant.
pub(crate) fn with_jitter(backoff: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let quarter = backoff / 4;
    let spread = u32::try_from(quarter.as_millis())
        .unwrap_or(u32::MAX)
        .max(1);
    backoff - quarter + Duration::from_millis(u64::from(nanos % (2 * spread)))
}

#[cfg(test)]
#[path = "default_accounts_tests.rs"]
mod tests;
