//! The `idempotency_keys` table: which (workspace, key) already ran which request, and
//! its first response.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

use super::entities::idempotency_key::{ActiveModel, Column, Entity};
use super::{Store, db_error, unique_violation};
use crate::domain::Error;

/// What a key already stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub method: String,
    pub request_hash: String,
    /// `None` while the first call is still running.
    pub response: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
}

impl Store {
    pub async fn find_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, Error> {
        let row = Entity::find_by_id((workspace_id.to_owned(), key.to_owned()))
            .filter(Column::ExpiresAt.gt(now))
            .one(self.conn())
            .await
            .map_err(db_error)?;
        Ok(row.map(|row| KeyRecord {
            method: row.method,
            request_hash: row.request_hash,
            response: row.response,
            created_at: row.created_at,
        }))
    }

    /// Claims a key for a first call. `false` when somebody holds it already.
    pub async fn claim_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
        method: &str,
        request_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        // Expired keys go first, this one's included, so that it can be claimed again.
        Entity::delete_many()
            .filter(Column::ExpiresAt.lte(now))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        let row = ActiveModel {
            workspace_id: Set(workspace_id.to_owned()),
            key: Set(key.to_owned()),
            method: Set(method.to_owned()),
            request_hash: Set(request_hash.to_owned()),
            response: Set(None),
            created_at: Set(now),
            expires_at: Set(expires_at),
        };
        match Entity::insert(row)
            .exec_without_returning(self.conn())
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if unique_violation(&err).is_some() => Ok(false),
            Err(err) => Err(db_error(err)),
        }
    }

    pub async fn complete_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
        response: Vec<u8>,
    ) -> Result<(), Error> {
        Entity::update_many()
            .col_expr(Column::Response, Expr::value(response))
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Key.eq(key))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Gives a key up after its first call failed, so that a retry may run.
    pub async fn release_idempotency_key(
        &self,
        workspace_id: &str,
        key: &str,
    ) -> Result<(), Error> {
        Entity::delete_many()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Key.eq(key))
            .filter(Column::Response.is_null())
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
