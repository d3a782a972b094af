//! Idempotency keys for every mutating RPC: a call with an `idempotency-key` header runs
//! once per (workspace, key) within 24 hours; a replay of the same request gets the first
//! response without writing anything, the same key with another request is
//! FAILED_PRECONDITION, and a replay while the first call still runs is ABORTED.
//!
//! The key is claimed before the call runs and given up if the call fails, so that a
//! corrected retry can run. A claim whose call never finished (the process died) is
//! given up after a couple of minutes.

use std::future::Future;

use chrono::Duration;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::auth::authorize;
use crate::domain::{Action, Caller, Error};
use crate::store::Store;

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;
const TTL_HOURS: i64 = 24;
const ABANDONED_AFTER_SECONDS: i64 = 120;
const MAX_ATTEMPTS: usize = 5;

#[derive(Clone)]
pub struct Idempotency {
    store: Store,
}

impl Idempotency {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Authorises `action`, then runs `handler` for the caller at most once per
    /// idempotency key.
    pub async fn run<Req, Resp, F, Fut>(
        &self,
        mut request: Request<Req>,
        action: Action,
        handler: F,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message,
        Resp: Message + Default,
        F: FnOnce(Caller, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let caller = authorize(&mut request, action)?;
        let Some(key) = key_of(&request)? else {
            return handler(caller, request).await;
        };
        let workspace = caller.workspace_id.as_str();
        let method = action.name();
        let hash = request_hash(method, &request.get_ref().encode_to_vec());

        let mut claimed = false;
        for _ in 0..MAX_ATTEMPTS {
            let now = crate::domain::support::now();
            if let Some(record) = self
                .store
                .find_idempotency_key(workspace, &key, now)
                .await?
            {
                if record.method != method || record.request_hash != hash {
                    return Err(Error::FailedPrecondition(format!(
                        "idempotency-key {key:?} was used with a different request"
                    ))
                    .into());
                }
                match record.response {
                    Some(bytes) => {
                        let first = Resp::decode(bytes.as_slice()).map_err(|err| {
                            Error::Internal(format!(
                                "stored response of {key:?} does not decode: {err}"
                            ))
                        })?;
                        return Ok(Response::new(first));
                    }
                    None if now - record.created_at
                        > Duration::seconds(ABANDONED_AFTER_SECONDS) =>
                    {
                        self.store.release_idempotency_key(workspace, &key).await?;
                        continue;
                    }
                    None => {
                        return Err(Error::Aborted(format!(
                            "a request with idempotency-key {key:?} is still running; retry"
                        ))
                        .into());
                    }
                }
            }
            let expires = now + Duration::hours(TTL_HOURS);
            if self
                .store
                .claim_idempotency_key(workspace, &key, method, &hash, now, expires)
                .await?
            {
                claimed = true;
                break;
            }
        }
        if !claimed {
            return Err(
                Error::Aborted(format!("idempotency-key {key:?} is contended; retry")).into(),
            );
        }

        let result = handler(caller.clone(), request).await;
        let bookkeeping = match &result {
            Ok(response) => {
                self.store
                    .complete_idempotency_key(workspace, &key, response.get_ref().encode_to_vec())
                    .await
            }
            Err(_) => self.store.release_idempotency_key(workspace, &key).await,
        };
        if let Err(err) = bookkeeping {
            // The call itself is done; only its replay protection is at risk.
            tracing::warn!(error = %err, method, "cannot record the idempotency key's outcome");
        }
        result
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

/// The fingerprint of a call: its method and its encoded request.
fn request_hash(method: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_method_and_body() {
        let a = request_hash("CreateAccount", b"x");
        assert_eq!(a.len(), 64);
        assert_eq!(a, request_hash("CreateAccount", b"x"));
        assert_ne!(a, request_hash("CreateAccount", b"y"));
        assert_ne!(a, request_hash("UpdateAccount", b"x"));
    }

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
