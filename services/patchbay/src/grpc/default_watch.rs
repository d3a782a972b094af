//! The body of a `WatchDefaultAccounts` stream: the snapshot (defaults and fallbacks),
//! then each change of a covered scope's default or fallbacks from the workspace's feed
//! (`defaults::feeds`), shown as the caller may see it. One task per stream forwards through a one-message queue, so a watcher that
//! stops reading holds at most that message plus HTTP/2's window here; the feed behind
//! it is bounded too, and a watcher that falls out of it is ended with ABORTED.

use patchbay_sdk::proto::{self, watch_default_accounts_response::Event};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::call::Call;
use super::convert::account::account_to_proto;
use super::convert::channel_to_proto;
use super::status;
use crate::app::Accounts;
use crate::app::accounts::defaults::DefaultsWatch;
use crate::domain::defaults::Scope;
use crate::views::defaults::{FeedItem, ScopeNow};

pub type DefaultsStream = ReceiverStream<Result<proto::WatchDefaultAccountsResponse, Status>>;

/// Tells the watcher its token expired, if there is room for it; the stream ends either
/// way (its permits go with it).
fn expired(sender: &mpsc::Sender<Result<proto::WatchDefaultAccountsResponse, Status>>) {
    let _ = sender.try_send(Err(status::unauthenticated(
        "the token of this watch expired; watch again with a fresh token",
    )));
}

/// The most bytes of accounts in one snapshot message: well under the 4 MiB a client
/// accepts by default.
const MAX_SNAPSHOT_PART_BYTES: usize = 3 * 1024 * 1024;

/// One entry of a snapshot: a scope's default, or a scope's fallbacks.
enum Entry {
    Default(Box<proto::Account>),
    Fallbacks(proto::ScopeFallbacks),
}

impl Entry {
    fn encoded_len(&self) -> usize {
        use prost::Message;
        match self {
            Entry::Default(account) => account.encoded_len(),
            Entry::Fallbacks(list) => list.encoded_len(),
        }
    }
}

/// The snapshot in messages of at most [`MAX_SNAPSHOT_PART_BYTES`] (one, when it fits;
/// at least one, when there is nothing), the last marked complete.
fn snapshot_parts(entries: impl IntoIterator<Item = Entry>) -> Vec<proto::DefaultAccountsSnapshot> {
    let mut parts = Vec::new();
    let mut current = proto::DefaultAccountsSnapshot::default();
    let mut size = 0;
    for entry in entries {
        let bytes = entry.encoded_len() + 8;
        let empty = current.defaults.is_empty() && current.fallbacks.is_empty();
        if !empty && size + bytes > MAX_SNAPSHOT_PART_BYTES {
            parts.push(std::mem::take(&mut current));
            size = 0;
        }
        size += bytes;
        match entry {
            Entry::Default(account) => current.defaults.push(*account),
            Entry::Fallbacks(list) => current.fallbacks.push(list),
        }
    }
    current.complete = true;
    parts.push(current);
    parts
}

fn scope_fallbacks(
    (channel, division_id): Scope,
    accounts: impl IntoIterator<Item = proto::Account>,
) -> proto::ScopeFallbacks {
    proto::ScopeFallbacks {
        channel: channel_to_proto(channel).into(),
        division_id,
        accounts: accounts.into_iter().collect(),
    }
}

/// Completes when the caller's token stops being valid.
pub(super) async fn token_expiry(until: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX);
    tokio::time::sleep(std::time::Duration::from_secs(until.saturating_sub(now))).await;
}

/// The stream's body; `permit` (its places among the open streams, server-wide and in
/// its workspace's share) is held until the stream ends.
pub fn stream(
    accounts: Accounts,
    call: Call,
    watch: DefaultsWatch,
    permit: impl Send + 'static,
) -> DefaultsStream {
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        let _open = crate::metrics::Open::stream("default_accounts");
        forward(accounts, call, watch, sender).await;
        drop(permit);
    });
    ReceiverStream::new(receiver)
}

async fn forward(
    accounts: Accounts,
    call: Call,
    watch: DefaultsWatch,
    sender: mpsc::Sender<Result<proto::WatchDefaultAccountsResponse, Status>>,
) {
    let DefaultsWatch {
        snapshot,
        fallbacks,
        subscription,
        filter,
    } = watch;
    let mut revision = subscription.revision;
    let mut feed = subscription.receiver;
    // Every wait of the stream — for a change, or for a slow reader to take a message —
    // ends when the token does: a client that stops reading cannot keep the stream.
    let token_expired = token_expiry(call.context.valid_until);
    let caller = call.caller;
    tokio::pin!(token_expired);
    let defaults = snapshot
        .into_iter()
        .map(|account| Entry::Default(Box::new(account_to_proto(account))));
    let lists = fallbacks.into_iter().map(|(scope, accounts)| {
        Entry::Fallbacks(scope_fallbacks(
            scope,
            accounts.into_iter().map(account_to_proto),
        ))
    });
    for part in snapshot_parts(defaults.chain(lists)) {
        let message = proto::WatchDefaultAccountsResponse {
            revision,
            event: Some(Event::Snapshot(part)),
        };
        tokio::select! {
            sent = sender.send(Ok(message)) => if sent.is_err() { return },
            () = &mut token_expired => return expired(&sender),
        }
    }
    loop {
        let item = tokio::select! {
            item = feed.recv() => item,
            // The watcher went away while nothing changed.
            () = sender.closed() => return,
            // A stream lives no longer than the token it was opened with.
            () = &mut token_expired => return expired(&sender),
        };
        let message = match item {
            Ok(FeedItem::Changed(change)) => {
                if change.revision <= revision
                    || !filter.covers(change.channel, change.division_id.as_deref())
                {
                    continue;
                }
                revision = change.revision;
                let shown = |account: &std::sync::Arc<crate::domain::Account>| {
                    account_to_proto(accounts.present(&caller, account.clone()))
                };
                let event = match &change.now {
                    ScopeNow::Default(account) => Event::Changed(proto::DefaultAccountChanged {
                        channel: channel_to_proto(change.channel).into(),
                        division_id: change.division_id.clone(),
                        account: account.as_ref().map(shown),
                    }),
                    ScopeNow::Fallbacks(list) => Event::FallbacksChanged(scope_fallbacks(
                        (change.channel, change.division_id.clone()),
                        list.iter().map(shown),
                    )),
                };
                Ok(proto::WatchDefaultAccountsResponse {
                    revision,
                    event: Some(event),
                })
            }
            Err(RecvError::Lagged(missed)) => Err(status::aborted(format!(
                "this watch fell {missed} changes behind and was ended; watch again to start from a new snapshot"
            ))),
            Ok(FeedItem::Resync) => Err(status::aborted(
                "the server could not replay the changes of this watch; watch again to start from a new snapshot",
            )),
            Err(RecvError::Closed) => Err(status::unavailable(
                "the server stopped following changes; watch again",
            )),
        };
        let last = message.is_err();
        tokio::select! {
            sent = sender.send(message) => if sent.is_err() || last { return },
            () = &mut token_expired => return expired(&sender),
        }
    }
}
