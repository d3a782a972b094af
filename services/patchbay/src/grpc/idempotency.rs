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

use std::future::Future;
use std::sync::Arc;

use chrono::Duration;
use prost::Message;
use tonic::{Request, Response, Status};

use super::auth::authorize;
use crate::domain::idempotency::{IdempotencyClaim, RecordRef, caller_scope, request_hash};
use crate::domain::support::{new_id, now};
use crate::domain::{Action, Caller, Error};
use crate::store::Store;
use crate::store::idempotency::KeyRecord;

pub const HEADER: &str = "idempotency-key";
/// Marks the status of a call whose key another call took first.
pub const KEY_TAKEN_MARKER: &str = "x-patchbay-idempotency-key-taken";
const MAX_KEY_LEN: usize = 255;
const TTL_HOURS: i64 = 24;

#[derive(Clone)]
pub struct Idempotency {
    store: Store,
}

impl Idempotency {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Authorises `action`, then runs `handler` for the caller at most once per
    /// idempotency key. `replay` answers a key whose first call wrote `RecordRef`: from
    /// that record as the caller may see it now, or by resuming the call (the caller it
    /// gets holds the key as the first call did).
    pub async fn run<Req, Resp, F, Fut, R, RFut>(
        &self,
        mut request: Request<Req>,
        action: Action,
        handler: F,
        replay: R,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + Clone,
        Resp: Message + Default,
        F: FnOnce(Caller, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
        R: FnOnce(Caller, Req, RecordRef) -> RFut,
        RFut: Future<Output = Result<Resp, Status>>,
    {
        let caller = authorize(&mut request, action)?;
        let Some(key) = key_of(&request)? else {
            return handler(caller, request).await;
        };
        let method = action.name();
        let message = request.get_ref().clone();
        let started = now();
        let claim = Arc::new(IdempotencyClaim {
            workspace_id: caller.workspace_id.clone(),
            caller_scope: caller_scope(&caller),
            key,
            method: method.to_owned(),
            request_hash: request_hash(method, &message.encode_to_vec()),
            call_id: new_id(),
            created_at: started,
            expires_at: started + Duration::hours(TTL_HOURS),
            resumed: false,
        });
        if let Some(found) = self.find(&claim).await? {
            return answer_again(&claim, found, caller, message, replay).await;
        }
        self.store.drop_expired_idempotency_keys(started).await?;

        let mut keyed = caller.clone();
        keyed.idempotency = Some(claim.clone());
        match handler(keyed, request).await {
            Err(status) => {
                // A concurrent call with this key that committed first makes this one
                // fail (its key taken, or the record it made already there): answer as
                // that call did.
                let taken = status.metadata().get(KEY_TAKEN_MARKER).is_some();
                match self.find(&claim).await? {
                    Some(found) if found.call_id != claim.call_id => {
                        answer_again(&claim, found, caller, message, replay).await
                    }
                    _ if taken => Err(Status::aborted(format!(
                        "idempotency-key {:?} is contended; retry",
                        claim.key
                    ))),
                    _ => Err(status),
                }
            }
            Ok(response) => {
                if let Err(err) = self.keep_answer(&claim, response.get_ref()).await {
                    // The call itself is done; only its replay protection is at risk.
                    tracing::warn!(error = %err, method, "cannot record the idempotency key's answer");
                }
                Ok(response)
            }
        }
    }

    /// As [`run`](Self::run), for calls that write several records with provider calls
    /// in between: the final answer is kept (sealed) and a replay hands it to `refresh`;
    /// a replay of a call cut off before its answer was kept runs it again as that call.
    pub async fn run_resumable<Req, Resp, F, Fut, G, GFut>(
        &self,
        mut request: Request<Req>,
        action: Action,
        handler: F,
        refresh: G,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + Clone,
        Resp: Message + Default,
        F: FnOnce(Caller, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
        G: FnOnce(Caller, Resp) -> GFut,
        GFut: Future<Output = Result<Resp, Status>>,
    {
        let caller = authorize(&mut request, action)?;
        let Some(key) = key_of(&request)? else {
            return handler(caller, request).await;
        };
        let method = action.name();
        let message = request.get_ref().clone();
        let started = now();
        let mut claim = IdempotencyClaim {
            workspace_id: caller.workspace_id.clone(),
            caller_scope: caller_scope(&caller),
            key,
            method: method.to_owned(),
            request_hash: request_hash(method, &message.encode_to_vec()),
            call_id: new_id(),
            created_at: started,
            expires_at: started + Duration::hours(TTL_HOURS),
            resumed: false,
        };
        if let Some(found) = self.find(&claim).await? {
            if found.method != claim.method || found.request_hash != claim.request_hash {
                return Err(Error::FailedPrecondition(format!(
                    "idempotency-key {:?} was used with a different request",
                    claim.key
                ))
                .into());
            }
            if let Some(bytes) = found.answer {
                let first = Resp::decode(bytes.as_slice()).map_err(|err| {
                    Error::Internal(format!(
                        "stored answer of {:?} does not decode: {err}",
                        claim.key
                    ))
                })?;
                return refresh(caller, first).await.map(Response::new);
            }
            // Cut off before its answer was kept: resume as that call.
            claim.call_id = found.call_id;
            claim.created_at = found.created_at;
            claim.resumed = true;
        } else {
            self.store.drop_expired_idempotency_keys(started).await?;
        }
        let claim = Arc::new(claim);
        let mut keyed = caller;
        keyed.idempotency = Some(claim.clone());
        let response = handler(keyed, Request::new(message)).await?;
        if let Err(err) = self
            .store
            .record_final_idempotency_answer(&claim, &response.get_ref().encode_to_vec())
            .await
        {
            tracing::warn!(error = %err, method, "cannot record the idempotency key's answer");
        }
        Ok(response)
    }

    async fn find(&self, claim: &IdempotencyClaim) -> Result<Option<KeyRecord>, Error> {
        self.store
            .find_idempotency_key(&claim.workspace_id, &claim.caller_scope, &claim.key, now())
            .await
    }

    /// A call that recorded no key with a write (it wrote nothing) keeps its answer.
    async fn keep_answer<Resp: Message>(
        &self,
        claim: &IdempotencyClaim,
        response: &Resp,
    ) -> Result<(), Error> {
        if self.store.holds_idempotency_key(claim).await? {
            return Ok(());
        }
        self.store
            .record_idempotency_answer(claim, &response.encode_to_vec())
            .await?;
        Ok(())
    }
}

/// The answer of a key that already ran: its record read again, or its kept answer.
async fn answer_again<Req, Resp, R, RFut>(
    claim: &IdempotencyClaim,
    found: KeyRecord,
    caller: Caller,
    message: Req,
    replay: R,
) -> Result<Response<Resp>, Status>
where
    Resp: Message + Default,
    R: FnOnce(Caller, Req, RecordRef) -> RFut,
    RFut: Future<Output = Result<Resp, Status>>,
{
    if found.method != claim.method || found.request_hash != claim.request_hash {
        return Err(Error::FailedPrecondition(format!(
            "idempotency-key {:?} was used with a different request",
            claim.key
        ))
        .into());
    }
    match (found.record, found.answer) {
        (Some(record), _) => {
            // As the first call: writes of a resumed call hold the same key.
            let mut first = caller;
            first.idempotency = Some(Arc::new(IdempotencyClaim {
                call_id: found.call_id,
                ..claim.clone()
            }));
            replay(first, message, record).await.map(Response::new)
        }
        (None, Some(bytes)) => Resp::decode(bytes.as_slice())
            .map(Response::new)
            .map_err(|err| {
                Error::Internal(format!(
                    "stored answer of {:?} does not decode: {err}",
                    claim.key
                ))
                .into()
            }),
        (None, None) => Err(Error::Internal(format!(
            "idempotency key {:?} has neither a record nor an answer",
            claim.key
        ))
        .into()),
    }
}

fn key_of<T>(request: &Request<T>) -> Result<Option<String>, Status> {
    let Some(value) = request.metadata().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().filter(|key| {
        !key.is_empty() && key.len() <= MAX_KEY_LEN && key.chars().all(|c| c.is_ascii_graphic())
    });
    match key {
        Some(key) => Ok(Some(key.to_owned())),
        None => Err(Error::invalid(
            HEADER,
            format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
        )
        .into()),
    }
}

/// The id of a replayed record, as the record's own id.
pub fn replayed_id(record: &RecordRef) -> Result<uuid::Uuid, Status> {
    uuid::Uuid::parse_str(&record.id).map_err(|_| {
        Status::from(Error::Internal(format!(
            "idempotency key names {} {:?}, which is no id",
            record.kind, record.id
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_printable() {
        let mut request = Request::new(());
        assert_eq!(key_of(&request).expect("no key"), None);
        request
            .metadata_mut()
            .insert(HEADER, "k-1".parse().expect("header"));
        assert_eq!(key_of(&request).expect("key").as_deref(), Some("k-1"));
        request
            .metadata_mut()
            .insert(HEADER, "a b".parse().expect("header"));
        assert!(key_of(&request).is_err());
    }
}
