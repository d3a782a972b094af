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

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use super::auth::authorized;
use super::call::Call;
use super::compression;

use super::status;
use crate::app::IdempotencyKeys;
use crate::domain::change::Target;
use crate::domain::idempotency::{self, IdempotencyClaim, RecordRef, Replay};
use crate::domain::ids::{new_id, now};
use crate::domain::{Action, Caller, Error};

pub const HEADER: &str = "idempotency-key";

#[derive(Clone)]
pub struct Idempotency {
    keys: IdempotencyKeys,
}

impl Idempotency {
    pub fn new(keys: IdempotencyKeys) -> Self {
        Self { keys }
    }

    /// A write RPC, declared by its operation and its replay. The request is parsed
    /// into its validated input `In` first (bad input is INVALID_ARGUMENT before any key
    /// is looked at); `op` runs it for the caller (authorised by the interceptor for the
    /// method's action) at most once per idempotency key; `replay` answers a key whose
    /// first call wrote `RecordRef`, from that record as the caller may see it now or by
    /// resuming the call (the caller it gets holds the key as the first call did). A
    /// call that wrote nothing keeps its answer, and a replay gives it back.
    pub async fn write<Req, In, Out, Resp>(
        &self,
        mut request: Request<Req>,
        op: impl AsyncFnOnce(Caller, In) -> Result<Out, Error>,
        replay: impl AsyncFnOnce(Caller, In, RecordRef) -> Result<Out, Error>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + Clone,
        In: TryFrom<Req>,
        Error: From<In::Error>,
        Resp: Message + Default + From<Out>,
    {
        let (Call { caller, .. }, action) = authorized(&mut request)?;
        let (claim, message) = claim_of(action, &caller, request)?;
        let input = In::try_from(message.clone()).map_err(Error::from)?;
        let reply = answer_for(&caller);
        let Some(claim) = claim.map(Arc::new) else {
            return Ok(reply(op(caller, input).await?.into()));
        };
        if let Some(found) = self.keys.find(&claim).await? {
            return answer_again(&claim, found, caller, input, replay).await;
        }
        self.keys.drop_expired(claim.created_at).await?;

        let mut keyed = caller.clone();
        keyed.idempotency = Some(claim.clone());
        match op(keyed, input).await {
            // A concurrent call with this key that committed first makes this one
            // fail (its key taken, or the record it made already there): answer as
            // that call did.
            Err(err) => match self.keys.find(&claim).await? {
                Some(found) if found.call_id != claim.call_id => {
                    let input = In::try_from(message).map_err(Error::from)?;
                    answer_again(&claim, found, caller, input, replay).await
                }
                _ if matches!(err, Error::IdempotencyKeyTaken) => Err(status::aborted(format!(
                    "idempotency-key {:?} is contended; retry",
                    claim.key
                ))),
                _ => Err(err.into()),
            },
            Ok(out) => {
                let response = Resp::from(out);
                let kept = self
                    .keys
                    .keep_answer(&claim, &response.encode_to_vec())
                    .await;
                warn_unkept(action, kept);
                Ok(reply(response))
            }
        }
    }

    /// A delete, declared by its operation: its answer says nothing, and a replay says
    /// it again.
    pub async fn delete<Req, Resp>(
        &self,
        request: Request<Req>,
        op: impl AsyncFnOnce(Caller, Target) -> Result<(), Error>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + Clone,
        Target: TryFrom<Req, Error = Error>,
        Resp: Message + Default,
    {
        let delete = async |caller, target| op(caller, target).await.map(|()| Resp::default());
        let replay = async |_, _: Target, _| Ok(Resp::default());
        self.write(request, delete, replay).await
    }

    /// As [`write`](Self::write), for calls that write several records with provider
    /// calls in between, or none: the final answer is kept (sealed) and a replay hands
    /// it to `refresh`; a replay of a call cut off before its answer was kept runs it
    /// again as that call.
    pub async fn write_resumable<Req, In, Resp>(
        &self,
        mut request: Request<Req>,
        op: impl AsyncFnOnce(Caller, In) -> Result<Resp, Error>,
        refresh: impl AsyncFnOnce(Caller, Resp) -> Result<Resp, Error>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + Clone,
        In: TryFrom<Req>,
        Error: From<In::Error>,
        Resp: Message + Default,
    {
        let (Call { caller, .. }, action) = authorized(&mut request)?;
        let (claim, message) = claim_of(action, &caller, request)?;
        let input = In::try_from(message).map_err(Error::from)?;
        let reply = answer_for(&caller);
        let Some(claim) = claim else {
            return Ok(reply(op(caller, input).await?));
        };
        let key = claim.key.clone();
        let claim = match self.keys.find(&claim).await? {
            Some(found) => match idempotency::resume(claim, found)? {
                Ok(resumed) => resumed,
                Err(answer) => {
                    let first = decode(&answer, &key)?;
                    return Ok(reply(refresh(caller, first).await?));
                }
            },
            None => {
                self.keys.drop_expired(claim.created_at).await?;
                claim
            }
        };
        let claim = Arc::new(claim);
        let mut keyed = caller.clone();
        keyed.idempotency = Some(claim.clone());
        let response = match op(keyed, input).await {
            Ok(response) => response,
            // A concurrent call with this key that kept its answer first (this one
            // failing on what it already did, a code Meta took once): answer as it did.
            Err(err) => match self.keys.find(&claim).await? {
                Some(found) if found.call_id != claim.call_id => {
                    match idempotency::resume((*claim).clone(), found)? {
                        Err(answer) => {
                            let first = decode(&answer, &key)?;
                            return Ok(reply(refresh(caller, first).await?));
                        }
                        Ok(_) => return Err(err.into()),
                    }
                }
                _ => return Err(err.into()),
            },
        };
        let kept = self
            .keys
            .keep_final_answer(&claim, &response.encode_to_vec())
            .await;
        warn_unkept(action, kept);
        Ok(reply(response))
    }
}

/// How the call's answers go out: compressed as its caller's role allows.
fn answer_for<Resp: Message>(caller: &Caller) -> impl Fn(Resp) -> Response<Resp> + use<Resp> {
    let sees_secrets = caller.sees_setup_secrets();
    move |message| compression::answer_for(sees_secrets, message)
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
async fn answer_again<In, Out, Resp>(
    claim: &IdempotencyClaim,
    found: idempotency::KeyRecord,
    caller: Caller,
    input: In,
    replay: impl AsyncFnOnce(Caller, In, RecordRef) -> Result<Out, Error>,
) -> Result<Response<Resp>, Status>
where
    Resp: Message + Default + From<Out>,
{
    let reply = answer_for(&caller);
    match idempotency::replay(claim, found)? {
        Replay::Record(record, first_claim) => {
            // As the first call: writes of a resumed call hold the same key.
            let mut first = caller;
            first.idempotency = Some(Arc::new(first_claim));
            Ok(reply(replay(first, input, record).await?.into()))
        }
        Replay::Answer(bytes) => Ok(reply(decode(&bytes, &claim.key)?)),
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
