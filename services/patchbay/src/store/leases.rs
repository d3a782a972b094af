//! Rounds of background work that one replica runs for all (token checks, token
//! refreshes). A replica takes a round when none was begun within the round's interval
//! and no other replica holds the lease; it holds the lease while the round runs
//! (renewing it as it goes, for `LEASE` at a time) and gives it back at the end. A
//! replica that crashes mid-round holds it no longer than `LEASE`. Taken under the
//! lease's lock in one transaction, so two replicas ticking together cannot both win.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter,
};

use super::entities::task_lease::{ActiveModel, Column, Entity};
use super::{Store, db_error, lock_scope};
use crate::domain::Error;

/// How long a lease holds without being renewed.
const LEASE: chrono::Duration = chrono::Duration::minutes(10);

impl LeasesRepo<'_> {
    /// Takes the round of `name` for `holder` at `now`, unless a round was begun less
    /// than `every` ago (by any replica) or another replica holds the lease.
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
        let due_after = now
            .checked_sub_signed(every - every / 20)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let txn = self.begin_write().await?;
        lock_scope(&txn, &format!("lease/{name}")).await?;
        let current = Entity::find_by_id(name.to_owned())
            .one(&*txn)
            .await
            .map_err(db_error)?;
        if let Some(lease) = &current {
            let recent = lease.last_round_at.is_some_and(|last| last > due_after);
            let held = lease.holder != holder && lease.expires_at > now;
            if recent || held {
                return Ok(false);
            }
        }
        let lease = ActiveModel {
            name: Set(name.to_owned()),
            holder: Set(holder.to_owned()),
            expires_at: Set(now.checked_add_signed(LEASE).unwrap_or(now)),
            last_round_at: Set(Some(now)),
            // Kept: a round resumes where the last one was cut short.
            cursor: NotSet,
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

    /// Keeps `holder`'s lease of `name` for another `LEASE` from `now`; ABORTED when
    /// the lease is no longer `holder`'s (it lapsed and another replica took it): the
    /// round stops rather than run beside the other's.
    pub async fn renew_round(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let renewed = self
            .set_lease_end(name, holder, now.checked_add_signed(LEASE).unwrap_or(now))
            .await?;
        if !renewed {
            return Err(Error::Aborted(format!(
                "the lease of the {name} round was taken by another replica; this one stops"
            )));
        }
        Ok(())
    }

    /// Where the round `name` was cut short: the last record it dealt with (`None`:
    /// it begins at the start).
    pub async fn round_cursor(&self, name: &str) -> Result<Option<String>, Error> {
        let lease = Entity::find_by_id(name.to_owned())
            .one(self.conn())
            .await
            .map_err(db_error)?;
        Ok(lease.and_then(|lease| lease.cursor))
    }

    /// Keeps the round's place with `holder`'s lease (`None`: the round reached its
    /// end, and the next begins at the start).
    pub async fn keep_round_cursor(
        &self,
        name: &str,
        holder: &str,
        cursor: Option<&str>,
    ) -> Result<(), Error> {
        Entity::update_many()
            .col_expr(Column::Cursor, Expr::value(cursor.map(str::to_owned)))
            .filter(Column::Name.eq(name))
            .filter(Column::Holder.eq(holder))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Gives `holder`'s lease of `name` back (the round is done).
    pub async fn end_round(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.set_lease_end(name, holder, now).await.map(|_| ())
    }

    /// Whether `holder` still held the lease.
    async fn set_lease_end(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let updated = Entity::update_many()
            .col_expr(Column::ExpiresAt, Expr::value(until))
            .filter(Column::Name.eq(name))
            .filter(Column::Holder.eq(holder))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(updated.rows_affected > 0)
    }
}

/// The repository of the background rounds' leases and cursors: `store.leases()`.
pub struct LeasesRepo<'a>(&'a Store);

impl Store {
    pub fn leases(&self) -> LeasesRepo<'_> {
        LeasesRepo(self)
    }
}

/// The store's connection, keys and transactions, under the repository's methods.
impl std::ops::Deref for LeasesRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}
