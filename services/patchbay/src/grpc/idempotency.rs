//! Idempotency keys for every mutating RPC: a call with an `idempotency-key` header runs
//! once per key within 24 hours, and a replay answers as the first call did.
//!
//! - A key belongs to one caller: (workspace, `sub`, role, division). Another caller's
//!   key of the same name is another key; it runs as its own call and learns nothing of
//!   the first.
//! - Exactly once: nothing is claimed up front. The key goes into the call's
//!   [`Caller`], every audit event of the call carries it, and the store records it in
//!   the transaction of the call's first write (store/idempotency.rs). A crash, a
//!   deadline or a cancel before that commit leaves the key free at once; after it, a
//!   replay finds the key. Two concurrent calls with one key both run, the second's
//!   write finds the key taken and rolls back, and it answers as the first.
//! - Nothing secret is kept: a key names the record it wrote, and a replay reads that
//!   record again as the caller may see it now (authorised again: a deleted record
//!   stops replaying, a record moved out of the caller's division is not found). A call
//!   that wrote nothing (an update that changed nothing, ConnectMessenger) keeps its
//!   answer sealed with the key ring, bound to the workspace, caller and key.
//! - A call that writes several records and calls Meta in between
//!   (SubscribeMessengerPages) keeps its final answer, sealed, and a replay refreshes it
//!   (a page's account deleted since is reported as such). One cut off before its
//!   answer was kept resumes by running again as the same call: its writes are upserts,
//!   so the pages done are done again harmlessly and the rest is done.
//! - The same key with another request (method or body) is FAILED_PRECONDITION.
//!
//! The rules (claims, replays, resumes) are in `domain::idempotency`; the keys' rows
//! are reached through `app::IdempotencyKeys`. This is the edge's part: the header,
//! the encoded request and answer.

use std::future::Future;
use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use super::auth::authorized;
use super::compression;

use super::status;
use crate::app::IdempotencyKeys;
use crate::domain::idempotency::{self, IdempotencyClaim, RecordRef, Replay};
use crate::domain::ids::{new_id, now};
use crate::domain::{Action, Caller, Error};

pub const HEADER: &str = "idempotency-key";
/// Marks the status of a call whose key another call took first.
pub const KEY_TAKEN_MARKER: &str = "x-patchbay-idempotency-key-taken";

#[derive(Clone)]
pub struct Idempotency {
    keys: IdempotencyKeys,
}

impl Idempotency {
    pub fn new(keys: IdempotencyKeys) -> Self {
        Self { keys }
    }

    /// A write RPC: runs `handler` for the request's caller (authorised by the
    /// interceptor for the method's action) at most once per idempotency key. `replay`
    /// answers a key whose first call wrote `RecordRef`: from that record as the caller
    /// may see it now, or by resuming the call (the caller it gets holds the key as the
    /// first call did).
    pub async fn once<Req, Resp, F, Fut, R, RFut>(
        &self,
        mut request: Request<Req>,
        handler: F,
        replay: R,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + Clone,
        Resp: Message + Default,
        F: FnOnce(Caller, Req) -> Fut,
        Fut: Future<Output = Result<Resp, Status>>,
        R: FnOnce(Caller, Req, RecordRef) -> RFut,
        RFut: Future<Output = Result<Resp, Status>>,
    {
        let (caller, action) = authorized(&mut request)?;
        let sees_secrets = caller.sees_setup_secrets();
        let reply = move |message| compression::answer_for(sees_secrets, message);
        let (claim, message) = match claim_of(action, &caller, request)? {
            (Some(claim), message) => (Arc::new(claim), message),
            (None, message) => return handler(caller, message).await.map(reply),
        };
        if let Some(found) = self.keys.find(&claim).await? {
            return answer_again(&claim, found, caller, message, replay).await;
        }
        self.keys.drop_expired(claim.created_at).await?;

        let mut keyed = caller.clone();
        keyed.idempotency = Some(claim.clone());
        match handler(keyed, message.clone()).await {
            Err(status) => {
                // A concurrent call with this key that committed first makes this one
                // fail (its key taken, or the record it made already there): answer as
                // that call did.
                let taken = status.metadata().get(KEY_TAKEN_MARKER).is_some();
                match self.keys.find(&claim).await? {
                    Some(found) if found.call_id != claim.call_id => {
                        answer_again(&claim, found, caller, message, replay).await
                    }
                    _ if taken => Err(status::aborted(format!(
                        "idempotency-key {:?} is contended; retry",
                        claim.key
                    ))),
                    _ => Err(status),
                }
            }
            Ok(response) => {
                let kept = self
                    .keys
                    .keep_answer(&claim, &response.encode_to_vec())
                    .await;
                warn_unkept(action, kept);
                Ok(reply(response))
            }
        }
    }

    /// As [`once`](Self::once), for calls that write several records with provider
    /// calls in between: the final answer is kept (sealed) and a replay hands it to
    /// `refresh`; a replay of a call cut off before its answer was kept runs it again
    /// as that call.
    pub async fn resumable<Req, Resp, F, Fut, G, GFut>(
        &self,
        mut request: Request<Req>,
        handler: F,
        refresh: G,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + Clone,
        Resp: Message + Default,
        F: FnOnce(Caller, Req) -> Fut,
        Fut: Future<Output = Result<Resp, Status>>,
        G: FnOnce(Caller, Resp) -> GFut,
        GFut: Future<Output = Result<Resp, Status>>,
    {
        let (caller, action) = authorized(&mut request)?;
        let sees_secrets = caller.sees_setup_secrets();
        let reply = move |message| compression::answer_for(sees_secrets, message);
        let (claim, message) = match claim_of(action, &caller, request)? {
            (Some(claim), message) => (claim, message),
            (None, message) => return handler(caller, message).await.map(reply),
        };
        let key = claim.key.clone();
        let claim = match self.keys.find(&claim).await? {
            Some(found) => match idempotency::resume(claim, found)? {
                Ok(resumed) => resumed,
                Err(answer) => {
                    let first = decode(&answer, &key)?;
                    return refresh(caller, first).await.map(reply);
                }
            },
            None => {
                self.keys.drop_expired(claim.created_at).await?;
                claim
            }
        };
        let claim = Arc::new(claim);
        let mut keyed = caller;
        keyed.idempotency = Some(claim.clone());
        let response = handler(keyed, message).await?;
        let kept = self
            .keys
            .keep_final_answer(&claim, &response.encode_to_vec())
            .await;
        warn_unkept(action, kept);
        Ok(reply(response))
    }
}

/// The call itself is done; only its replay protection is at risk.
fn warn_unkept(action: Action, kept: Result<(), Error>) {
    if let Err(err) = kept {
        tracing::warn!(error = %err, method = action.name(), "cannot record the idempotency key's answer");
    }
}

/// The claim of the call's key (none without the header), and the request message.
fn claim_of<Req: Message>(
    action: Action,
    caller: &Caller,
    request: Request<Req>,
) -> Result<(Option<IdempotencyClaim>, Req), Error> {
    let header = request.metadata().get(HEADER).map(|value| value.as_bytes());
    let key = idempotency::parse_key(HEADER, header)?;
    let message = request.into_inner();
    let claim = key.map(|key| {
        IdempotencyClaim::new(
            caller,
            key,
            action.name(),
            &message.encode_to_vec(),
            new_id(),
            now(),
        )
    });
    Ok((claim, message))
}

/// The answer of a key that already ran: its record read again, or its kept answer.
async fn answer_again<Req, Resp, R, RFut>(
    claim: &IdempotencyClaim,
    found: idempotency::KeyRecord,
    caller: Caller,
    message: Req,
    replay: R,
) -> Result<Response<Resp>, Status>
where
    Resp: Message + Default,
    R: FnOnce(Caller, Req, RecordRef) -> RFut,
    RFut: Future<Output = Result<Resp, Status>>,
{
    let sees_secrets = caller.sees_setup_secrets();
    match idempotency::replay(claim, found)? {
        Replay::Record(record, first_claim) => {
            // As the first call: writes of a resumed call hold the same key.
            let mut first = caller;
            first.idempotency = Some(Arc::new(first_claim));
            replay(first, message, record)
                .await
                .map(|message| compression::answer_for(sees_secrets, message))
        }
        Replay::Answer(bytes) => Ok(compression::answer_for(
            sees_secrets,
            decode(&bytes, &claim.key)?,
        )),
    }
}

fn decode<Resp: Message + Default>(bytes: &[u8], key: &str) -> Result<Resp, Error> {
    Resp::decode(bytes)
        .map_err(|err| Error::Internal(format!("stored answer of {key:?} does not decode: {err}")))
}

/// The id of a replayed record, as the record's own id.
pub fn replayed_id(record: &RecordRef) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::parse_str(&record.id).map_err(|_| {
        Error::Internal(format!(
            "idempotency key names {} {:?}, which is no id",
            record.kind, record.id
        ))
    })
}
