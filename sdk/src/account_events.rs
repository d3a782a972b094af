//! A `WatchAccountEvents` stream that survives breaks: after a lost connection, a
//! restarted server, an expired token (the client's token source gives the next one)
//! or any other interruption it watches again after the last revision it handed out,
//! so that no event is missed or repeated. It ends only when the caller drops it, or
//! with an error no retry can mend (the revision is no longer kept, the call is not
//! allowed, the request is invalid).

use std::time::Duration;

use tokio::sync::mpsc;
use tonic::Code;

use crate::default_accounts::with_jitter;
use crate::{Client, Error, proto};

/// Account events, in revision order; see [`Client::watch_account_events`].
pub struct AccountEvents {
    receiver: mpsc::Receiver<Result<proto::AccountEvent, Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl AccountEvents {
    /// The next event; `Some(Err(_))` once, then `None`, when the watch cannot go on.
    pub async fn next(&mut self) -> Option<Result<proto::AccountEvent, Error>> {
        self.receiver.recv().await
    }
}

impl Drop for AccountEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Client {
    /// Follows the account events of `request`'s channels and division, after
    /// `request.after_revision` (absent: from now), resuming after every break.
    pub fn watch_account_events(&self, request: proto::WatchAccountEventsRequest) -> AccountEvents {
        let (sender, receiver) = mpsc::channel(64);
        let client = self.clone();
        let task = tokio::spawn(follow(client, request, sender));
        AccountEvents { receiver, task }
    }
}

async fn follow(
    client: Client,
    mut request: proto::WatchAccountEventsRequest,
    sender: mpsc::Sender<Result<proto::AccountEvent, Error>>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let status = match client
            .accounts()
            .watch_account_events(request.clone())
            .await
        {
            Ok(response) => {
                // A watch "from now" resumes from where it started, not from a later now.
                if request.after_revision.is_none() {
                    request.after_revision = response
                        .metadata()
                        .get("patchbay-after-revision")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse().ok());
                }
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(event)) => {
                            backoff = FIRST_BACKOFF;
                            request.after_revision = Some(event.revision);
                            if sender.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break None,
                        Err(status) => break Some(status),
                    }
                }
            }
            Err(status) => Some(status),
        };
        if let Some(status) = status {
            // A watch that fell behind says where to resume: past the events a filtered
            // watch was not shown.
            let resume_after = status
                .metadata()
                .get("patchbay-after-revision")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<i64>().ok());
            if let Some(after) = resume_after {
                request.after_revision = Some(request.after_revision.unwrap_or(0).max(after));
            }
            // What no retry mends ends the watch; the rest is retried with backoff.
            let final_error = matches!(
                status.code(),
                Code::FailedPrecondition
                    | Code::PermissionDenied
                    | Code::InvalidArgument
                    | Code::Unimplemented
                    | Code::NotFound
            );
            if final_error {
                let _ = sender.send(Err(status.into())).await;
                return;
            }
        }
        tokio::time::sleep(with_jitter(backoff)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
