//! The idempotency keys a call runs under, as the edge asks about them: the key's
//! earlier call, if any, and the answers kept for replays. The key itself is recorded
//! by the store in the transaction of the call's first write (see
//! `domain::idempotency`); what is here runs before and after the call.

use chrono::{DateTime, Utc};

use crate::domain::Error;
use crate::domain::idempotency::{IdempotencyClaim, KeyRecord};
use crate::domain::ids::now;
use crate::store::Store;

#[derive(Clone)]
pub struct IdempotencyKeys {
    store: Store,
}

impl IdempotencyKeys {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// What the claimed key already stands for, unless it expired.
    pub async fn find(&self, claim: &IdempotencyClaim) -> Result<Option<KeyRecord>, Error> {
        self.store
            .idempotency()
            .find_idempotency_key(&claim.workspace_id, &claim.caller_scope, &claim.key, now())
            .await
    }

    /// Forgets the keys that expired before `at`.
    pub async fn drop_expired(&self, at: DateTime<Utc>) -> Result<(), Error> {
        self.store
            .idempotency()
            .drop_expired_idempotency_keys(at)
            .await
    }

    /// A call that recorded no key with a write (it wrote nothing) keeps its answer.
    pub async fn keep_answer(&self, claim: &IdempotencyClaim, answer: &[u8]) -> Result<(), Error> {
        if self
            .store
            .idempotency()
            .holds_idempotency_key(claim)
            .await?
        {
            return Ok(());
        }
        self.store
            .idempotency()
            .record_idempotency_answer(claim, answer)
            .await
            .map(drop)
    }

    /// A call that writes several records keeps its final answer, whatever it wrote.
    pub async fn keep_final_answer(
        &self,
        claim: &IdempotencyClaim,
        answer: &[u8],
    ) -> Result<(), Error> {
        self.store
            .idempotency()
            .record_final_idempotency_answer(claim, answer)
            .await
            .map(drop)
    }
}
