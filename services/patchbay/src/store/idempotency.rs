//! The `idempotency_keys` table: which caller's key already ran which request, and how
//! to answer it again. A key is recorded in the transaction of its call's first write
//! (`record_in_txn`, called with the write's audit event), naming the record written;
//! a call that wrote nothing records its answer afterwards, sealed with the key ring.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::entities::idempotency_key::{ActiveModel, Column, Entity, Model};
use super::{Store, db_error};
use crate::domain::Error;
use crate::domain::idempotency::{IdempotencyClaim, KeyRecord, RecordRef};
use crate::sealing::KeyRing;

fn pk_filter(
    query: sea_orm::Select<Entity>,
    workspace_id: &str,
    caller_scope: &str,
    key: &str,
) -> sea_orm::Select<Entity> {
    query
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::CallerScope.eq(caller_scope))
        .filter(Column::Key.eq(key))
}

/// What an answer is bound to: the workspace, the caller and the key.
fn answer_context(workspace_id: &str, caller_scope: &str, key: &str) -> String {
    format!("idempotency/{workspace_id}/{caller_scope}/{key}")
}

fn new_row(claim: &IdempotencyClaim) -> ActiveModel {
    ActiveModel {
        workspace_id: Set(claim.workspace_id.clone()),
        caller_scope: Set(claim.caller_scope.clone()),
        key: Set(claim.key.clone()),
        method: Set(claim.method.clone()),
        request_hash: Set(claim.request_hash.clone()),
        call_id: Set(claim.call_id),
        record_kind: Set(None),
        record_id: Set(None),
        response: Set(None),
        created_at: Set(claim.created_at),
        expires_at: Set(claim.expires_at),
    }
}

/// Inserts `row` unless the key is taken; whether this call holds the key afterwards.
async fn insert_unless_taken(
    conn: &impl ConnectionTrait,
    claim: &IdempotencyClaim,
    row: ActiveModel,
) -> Result<bool, Error> {
    // An expired row of the same key is no longer the key's.
    Entity::delete_many()
        .filter(Column::WorkspaceId.eq(&claim.workspace_id))
        .filter(Column::CallerScope.eq(&claim.caller_scope))
        .filter(Column::Key.eq(&claim.key))
        .filter(Column::ExpiresAt.lte(claim.created_at))
        .exec(conn)
        .await
        .map_err(db_error)?;
    // On PostgreSQL a concurrent insert of the same key waits here for the other
    // transaction, then does nothing if it committed.
    Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::WorkspaceId, Column::CallerScope, Column::Key])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .map_err(db_error)?;
    let holder = pk_filter(
        Entity::find(),
        &claim.workspace_id,
        &claim.caller_scope,
        &claim.key,
    )
    .one(conn)
    .await
    .map_err(db_error)?;
    Ok(holder.is_some_and(|row| row.call_id == claim.call_id))
}

/// Records the key of `claim` as standing for the record written in this transaction.
/// A second write of the same call finds its own key and leaves it; a key another call
/// holds is [`Error::IdempotencyKeyTaken`], which rolls this transaction back.
pub(crate) async fn record_in_txn(
    conn: &impl ConnectionTrait,
    claim: &IdempotencyClaim,
    record: RecordRef,
) -> Result<(), Error> {
    let mut row = new_row(claim);
    row.record_kind = Set(Some(record.kind));
    row.record_id = Set(Some(record.id));
    if insert_unless_taken(conn, claim, row).await? {
        Ok(())
    } else {
        Err(Error::IdempotencyKeyTaken)
    }
}

fn open_answer(keys: &KeyRing, row: &Model, sealed: &str) -> Result<Vec<u8>, Error> {
    keys.open(
        &answer_context(&row.workspace_id, &row.caller_scope, &row.key),
        sealed,
    )
    .map_err(|err| {
        Error::SecretUnavailable(format!(
            "the stored answer of idempotency key {:?} cannot be opened: {err}",
            row.key
        ))
    })
}

impl IdempotencyRepo<'_> {
    pub async fn find_idempotency_key(
        &self,
        workspace_id: &str,
        caller_scope: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, Error> {
        let row = pk_filter(Entity::find(), workspace_id, caller_scope, key)
            .filter(Column::ExpiresAt.gt(now))
            .one(self.conn())
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = match (&row.record_kind, &row.record_id) {
            (Some(kind), Some(id)) => Some(RecordRef {
                kind: kind.clone(),
                id: id.clone(),
            }),
            _ => None,
        };
        let answer = match &row.response {
            Some(sealed) => Some(open_answer(self.keys(), &row, sealed)?),
            None => None,
        };
        Ok(Some(KeyRecord {
            call_id: row.call_id,
            created_at: row.created_at,
            method: row.method,
            request_hash: row.request_hash,
            record,
            answer,
        }))
    }

    /// Whether the call of `claim` recorded its key (with a write).
    pub async fn holds_idempotency_key(&self, claim: &IdempotencyClaim) -> Result<bool, Error> {
        let row = pk_filter(
            Entity::find(),
            &claim.workspace_id,
            &claim.caller_scope,
            &claim.key,
        )
        .one(self.conn())
        .await
        .map_err(db_error)?;
        Ok(row.is_some_and(|row| row.call_id == claim.call_id))
    }

    /// Records the answer of a call that wrote no record, sealed; `false` when another
    /// call holds the key by now.
    pub async fn record_idempotency_answer(
        &self,
        claim: &IdempotencyClaim,
        answer: &[u8],
    ) -> Result<bool, Error> {
        let sealed = self.seal_answer(claim, answer)?;
        let mut row = new_row(claim);
        row.response = Set(Some(sealed));
        insert_unless_taken(self.conn(), claim, row).await
    }

    /// An answer sealed, bound to the workspace, the caller and the key.
    fn seal_answer(&self, claim: &IdempotencyClaim, answer: &[u8]) -> Result<String, Error> {
        self.keys()
            .seal(
                &answer_context(&claim.workspace_id, &claim.caller_scope, &claim.key),
                answer,
            )
            .map_err(|err| Error::SecretUnavailable(format!("cannot seal an answer: {err}")))
    }

    /// Keeps the final answer of a call that wrote several records (a row its first
    /// write recorded gets the answer too); `false` when another call holds the key.
    pub async fn record_final_idempotency_answer(
        &self,
        claim: &IdempotencyClaim,
        answer: &[u8],
    ) -> Result<bool, Error> {
        if !self.record_idempotency_answer(claim, answer).await? {
            return Ok(false);
        }
        let sealed = self.seal_answer(claim, answer)?;
        let written = Entity::update_many()
            .col_expr(Column::Response, sea_orm::sea_query::Expr::value(sealed))
            .filter(Column::WorkspaceId.eq(&claim.workspace_id))
            .filter(Column::CallerScope.eq(&claim.caller_scope))
            .filter(Column::Key.eq(&claim.key))
            .filter(Column::CallId.eq(claim.call_id))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(written.rows_affected == 1)
    }

    /// Forgets every key past its expiry.
    pub async fn drop_expired_idempotency_keys(&self, now: DateTime<Utc>) -> Result<(), Error> {
        Entity::delete_many()
            .filter(Column::ExpiresAt.lte(now))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Seals every stored answer under the active key (key rotation); the keys whose
    /// answer cannot be opened are named in `unreadable`. Returns how many moved.
    pub(crate) async fn reseal_idempotency_answers(
        &self,
        unreadable: &mut Vec<String>,
    ) -> Result<u64, Error> {
        let rows = Entity::find()
            .filter(Column::Response.is_not_null())
            .all(self.conn())
            .await
            .map_err(db_error)?;
        let mut moved = 0;
        for row in rows {
            let Some(sealed) = row.response.clone() else {
                continue;
            };
            if super::secret_fields::is_current_text(self.keys(), &sealed) {
                continue;
            }
            let context = answer_context(&row.workspace_id, &row.caller_scope, &row.key);
            let resealed = match open_answer(self.keys(), &row, &sealed).and_then(|plain| {
                self.keys()
                    .seal(&context, &plain)
                    .map_err(|err| Error::SecretUnavailable(err.to_string()))
            }) {
                Ok(resealed) => resealed,
                Err(err) => {
                    unreadable.push(format!("idempotency key {:?}: {err}", row.key));
                    continue;
                }
            };
            let written = Entity::update_many()
                .col_expr(Column::Response, sea_orm::sea_query::Expr::value(resealed))
                .filter(Column::WorkspaceId.eq(&row.workspace_id))
                .filter(Column::CallerScope.eq(&row.caller_scope))
                .filter(Column::Key.eq(&row.key))
                .filter(Column::Response.eq(sealed))
                .exec(self.conn())
                .await
                .map_err(db_error)?;
            moved += written.rows_affected;
        }
        Ok(moved)
    }
}

/// The repository of idempotency keys: `store.idempotency()`.
pub struct IdempotencyRepo<'a>(&'a Store);

impl Store {
    pub fn idempotency(&self) -> IdempotencyRepo<'_> {
        IdempotencyRepo(self)
    }
}

/// The store's connection, keys and transactions, under the repository's methods.
impl std::ops::Deref for IdempotencyRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}
