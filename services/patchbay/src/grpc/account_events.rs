//! The body of a `WatchAccountEvents` stream: the kept events after the asked revision
//! (read from the log up to where the workspace's tail stood), then each new one as the
//! tail hands it on. One task per stream forwards through a one-message queue; a
//! watcher that stops reading falls behind the tail and is ended ABORTED, saying the
//! revision to resume from.

use patchbay_sdk::proto;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::account_service::AccountGrpc;
use super::auth::caller_of;
use super::call::Call;
use super::convert::account::{division_filter, event_to_proto, watched_channels};
use super::default_watch::token_expiry;
use super::status;
use crate::app::Accounts;
use crate::app::accounts::events::EventsWatch;
use crate::domain::Violations;
use crate::views::events::tail::{QUEUE, TailItem};

pub type EventsStream = ReceiverStream<Result<proto::AccountEvent, Status>>;

/// The response header that says after which revision the watch starts.
pub const START_REVISION_HEADER: &str = "patchbay-after-revision";

impl AccountGrpc {
    /// A place among the open watch streams, server-wide and in the caller's share; the
    /// caller's place among the calls in flight is given back (an open stream counts
    /// against the watch share instead).
    pub(super) fn watch_permit(&self, call: &mut Call) -> Result<impl Send + 'static, Status> {
        let Some(share) = self.watch_shares.try_take(call.workspace_id()) else {
            return Err(status::resource_exhausted(
                "this workspace is at its share of open watch streams; retry with backoff",
            ));
        };
        let Ok(permit) = self.watch_streams.clone().try_acquire_owned() else {
            return Err(status::resource_exhausted(
                "the server is at its limit of open watch streams; retry with backoff",
            ));
        };
        call.caller.place = None;
        Ok((permit, share))
    }
}

/// Authorises, checks and opens the watch; the stream runs on its own task.
pub async fn open(
    grpc: &AccountGrpc,
    mut request: Request<proto::WatchAccountEventsRequest>,
) -> Result<Response<EventsStream>, Status> {
    let mut call = caller_of(&mut request)?;
    let permit = grpc.watch_permit(&mut call)?;
    let request = request.into_inner();
    let mut violations = Violations::new();
    let channels = watched_channels(&request.channels, &mut violations);
    violations.into_result()?;
    let watch = grpc
        .accounts
        .watch_events(
            &call,
            channels,
            division_filter(request.division_id),
            request.after_revision,
        )
        .await?;
    let (sender, receiver) = mpsc::channel(1);
    let accounts = grpc.accounts.clone();
    let start = watch.last;
    tokio::spawn(async move {
        let _open = crate::metrics::Open::stream("account_events");
        forward(accounts, call, watch, sender).await;
        drop(permit);
    });
    // Where the watch starts, so that a client watching "from now" can resume from
    // there after a break (the SDK does).
    let mut response = Response::new(ReceiverStream::new(receiver));
    if let Ok(value) = start.to_string().parse() {
        response.metadata_mut().insert(START_REVISION_HEADER, value);
    }
    Ok(response)
}

async fn forward(
    accounts: Accounts,
    call: Call,
    mut watch: EventsWatch,
    sender: mpsc::Sender<Result<proto::AccountEvent, Status>>,
) {
    let token_expired = token_expiry(call.context.valid_until);
    let caller = call.caller;
    tokio::pin!(token_expired);
    // A resumed watch: the log up to where the tail stood.
    while watch.last < watch.tail.start {
        let events = match accounts.next_events(&caller, &mut watch).await {
            Ok(events) => events,
            Err(err) => return end(&sender, err.into(), token_expired.as_mut()).await,
        };
        for (event, account) in events {
            tokio::select! {
                sent = sender.send(Ok(event_to_proto(event, account))) => if sent.is_err() { return },
                () = &mut token_expired => return expired(&sender),
            }
        }
    }
    loop {
        let item = tokio::select! {
            item = watch.tail.queue.recv() => item,
            () = sender.closed() => return,
            () = &mut token_expired => return expired(&sender),
        };
        let shown = match item {
            Some(TailItem::Event(tailed)) => accounts.shown(&caller, &mut watch, &tailed),
            Some(TailItem::Failed(err)) => Err(err),
            None => {
                let behind = status::fell_behind(watch.last, QUEUE);
                return end(&sender, behind, token_expired.as_mut()).await;
            }
        };
        match shown {
            Ok(None) => {}
            Ok(Some((event, account))) => tokio::select! {
                sent = sender.send(Ok(event_to_proto(event, account))) => if sent.is_err() { return },
                () = &mut token_expired => return expired(&sender),
            },
            Err(err) => return end(&sender, err.into(), token_expired.as_mut()).await,
        }
    }
}

/// Ends the stream with `status`, unless the token expires first: a client that stops
/// reading holds its watch place no longer than its token.
async fn end(
    sender: &mpsc::Sender<Result<proto::AccountEvent, Status>>,
    status: Status,
    token_expired: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) {
    tokio::select! {
        _ = sender.send(Err(status)) => {}
        () = token_expired => expired(sender),
    }
}

fn expired(sender: &mpsc::Sender<Result<proto::AccountEvent, Status>>) {
    let _ = sender.try_send(Err(status::unauthenticated(
        "the token of this watch expired; watch again with a fresh token, after the last revision seen",
    )));
}
