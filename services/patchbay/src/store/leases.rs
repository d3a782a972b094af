//! Rounds of background work that one replica runs for all (token checks, token
//! refreshes): the replica that takes a round's lease runs it, the others skip it. A
//! round is taken under the lease's lock, in one transaction, so two replicas ticking
//! together cannot both take it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::entities::task_lease::{ActiveModel, Entity};
use super::{Store, db_error, lock_scope};
use crate::domain::Error;

impl Store {
    /// Takes the round of `name` for `holder` at `now` unless a round was taken less
    /// than `every` ago (by any replica). The lease runs until `now + every`.
    pub async fn try_take_round(
        &self,
        name: &str,
        holder: &str,
        every: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        // A little slack: replicas that tick on the same interval take turns rather than
        // skipping a round because the last one began a moment less than `every` ago.
        let due_after = now - (every - every / 20);
        let txn = self.begin_write().await?;
        lock_scope(&txn, &format!("lease/{name}")).await?;
        let current = Entity::find_by_id(name.to_owned())
            .one(&*txn)
            .await
            .map_err(db_error)?;
        if current
            .as_ref()
            .and_then(|lease| lease.last_round_at)
            .is_some_and(|last| last > due_after)
        {
            return Ok(false);
        }
        let lease = ActiveModel {
            name: Set(name.to_owned()),
            holder: Set(holder.to_owned()),
            expires_at: Set(now.checked_add_signed(every).unwrap_or(now)),
            last_round_at: Set(Some(now)),
        };
        match current {
            Some(_) => {
                Entity::update(lease).exec(&*txn).await.map_err(db_error)?;
            }
            None => {
                Entity::insert(lease)
                    .exec_without_returning(&*txn)
                    .await
                    .map_err(db_error)?;
            }
        }
        txn.commit().await?;
        Ok(true)
    }
}
