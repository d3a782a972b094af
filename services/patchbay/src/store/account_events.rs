//! The `account_events` log, written in the transaction of the account write it
//! records: kinds, reasons and ids only, never a secret. Numbered per workspace from
//! `account_event_heads` (the latest number, kept so numbers keep growing after old
//! events are dropped; its row stays locked until the write commits), and announced to
//! the other replicas with a `NOTIFY` that is delivered only if the transaction commits.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::accounts::rows::to_domain;
use super::entities::{account, account_event, account_event_head};
use super::{Store, WriteTxn, db_error, returned_revision};
use crate::domain::account::events::{AccountEvent, AccountEventKind, NewAccountEvent};
use crate::domain::{Account, Channel, Error};

/// The PostgreSQL notification channel of account events.
pub const EVENTS_NOTIFY_CHANNEL: &str = "patchbay_account_events";

/// That a workspace's events reached `revision`: what a write reports and what a
/// notification carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsRecorded {
    pub workspace_id: String,
    pub revision: i64,
}

/// The advisory lock the previous version numbered a workspace's events under. The
/// head row's lock numbers them now; writers still take this one (in the statement
/// that takes the revision lock, so for no extra round trip) so that a replica still
/// on the previous version, during a rolling upgrade, never takes the same number.
pub(crate) fn numbering_lock(workspace_id: &str) -> String {
    format!("account-events/{workspace_id}")
}

/// Records the events of a write to `account` (its state after, or before a delete).
/// The caller holds the workspace's `numbering_lock`.
pub(crate) async fn record(
    txn: &WriteTxn<'_>,
    account: &Account,
    events: &[NewAccountEvent],
    at: DateTime<Utc>,
) -> Result<Option<EventsRecorded>, Error> {
    if events.is_empty() {
        return Ok(None);
    }
    let workspace = account.workspace_id.as_str();
    let revision = advance_head(txn, workspace, events.len()).await?;
    let first = revision - events.len() as i64;
    let rows = events
        .iter()
        .zip(first + 1..)
        .map(|(event, revision)| account_event::ActiveModel {
            workspace_id: Set(workspace.to_owned()),
            revision: Set(revision),
            account_id: Set(account.id),
            channel: Set(account.channel.as_str().to_owned()),
            division_id: Set(account.division_id.clone()),
            kind: Set(event.kind.as_str().to_owned()),
            reason: Set(event.reason.clone()),
            occurred_at: Set(at),
            previous_health: Set(event
                .previous_health
                .as_ref()
                .and_then(|health| serde_json::to_value(health).ok())),
        });
    account_event::Entity::insert_many(rows)
        .exec_without_returning(&**txn)
        .await
        .map_err(db_error)?;
    let recorded = EventsRecorded {
        workspace_id: workspace.to_owned(),
        revision,
    };
    if txn.get_database_backend() == DbBackend::Postgres {
        let payload = serde_json::to_string(&recorded)
            .map_err(|err| Error::Internal(format!("cannot encode a notification: {err}")))?;
        txn.notify_at_commit(EVENTS_NOTIFY_CHANNEL, payload);
    }
    Ok(Some(recorded))
}

/// Moves the workspace's head `count` events on and returns its new number, in one
/// statement. The upsert locks the head row until the transaction ends, so writers of
/// one workspace take their numbers one after another and commit them in order (on
/// PostgreSQL the update waits for the row and reads its latest committed number; on
/// SQLite the writer lock already serialises them).
async fn advance_head(txn: &WriteTxn<'_>, workspace: &str, count: usize) -> Result<i64, Error> {
    use account_event_head::{Column, Entity};
    let count = i64::try_from(count)
        .map_err(|_| Error::Internal("too many account events in one write".to_owned()))?;
    let mut upsert = Query::insert();
    upsert
        .into_table(Entity)
        .columns([Column::WorkspaceId, Column::Revision])
        .values([workspace.into(), count.into()])
        .map_err(|err| Error::Internal(format!("cannot build the event head upsert: {err}")))?;
    upsert
        .on_conflict(
            OnConflict::column(Column::WorkspaceId)
                .value(
                    Column::Revision,
                    Expr::col((Entity, Column::Revision)).add(count),
                )
                .to_owned(),
        )
        .returning_col(Column::Revision);
    returned_revision(txn, &upsert, "the event head upsert").await
}

async fn head(conn: &impl ConnectionTrait, workspace_id: &str) -> Result<i64, Error> {
    Ok(
        account_event_head::Entity::find_by_id(workspace_id.to_owned())
            .one(conn)
            .await
            .map_err(db_error)?
            .map_or(0, |head| head.revision),
    )
}

impl EventsRepo<'_> {
    /// The workspace's latest event number (0 before any), and the oldest one kept.
    pub async fn account_event_window(
        &self,
        workspace_id: &str,
    ) -> Result<(i64, Option<i64>), Error> {
        let latest = head(self.conn(), workspace_id).await?;
        let oldest: Option<Option<i64>> = account_event::Entity::find()
            .select_only()
            .column_as(account_event::Column::Revision.min(), "oldest")
            .filter(account_event::Column::WorkspaceId.eq(workspace_id))
            .into_tuple()
            .one(self.conn())
            .await
            .map_err(db_error)?;
        Ok((latest, oldest.flatten()))
    }

    /// The workspace's events after `after`, oldest first, at most `limit`.
    pub async fn account_events_after(
        &self,
        workspace_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<AccountEvent>, Error> {
        let rows = account_event::Entity::find()
            .filter(account_event::Column::WorkspaceId.eq(workspace_id))
            .filter(account_event::Column::Revision.gt(after))
            .order_by_asc(account_event::Column::Revision)
            .limit(limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        // A kind this version does not know (written by a newer replica) is passed on
        // as an update of the account, never fatal to the watch.
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let channel = Channel::parse(&row.channel)?;
                let kind = AccountEventKind::parse(&row.kind).unwrap_or_else(|| {
                    tracing::warn!(revision = row.revision, kind = %row.kind, "account event of an unknown kind shown as an update");
                    AccountEventKind::Updated
                });
                Some(AccountEvent {
                    revision: row.revision,
                    account_id: row.account_id,
                    channel,
                    division_id: row.division_id,
                    kind,
                    reason: row.reason,
                    occurred_at: row.occurred_at,
                    previous_health: crate::store::accounts::stored_health(
                        row.account_id,
                        row.previous_health,
                    ),
                })
            })
            .collect())
    }

    /// Drops the events that happened before `before`; returns how many.
    pub async fn purge_account_events(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let deleted = account_event::Entity::delete_many()
            .filter(account_event::Column::OccurredAt.lt(before))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(deleted.rows_affected)
    }

    /// Account `id` of the workspace as it is now, or as it was when deleted: what an
    /// event shows of it.
    pub async fn account_of_event(
        &self,
        workspace_id: &str,
        id: Uuid,
    ) -> Result<Option<Account>, Error> {
        let row = account::Entity::find_by_id(id)
            .filter(account::Column::WorkspaceId.eq(workspace_id))
            .one(self.conn())
            .await
            .map_err(db_error)?;
        row.map(|row| to_domain(self.keys(), row)).transpose()
    }
}

/// The repository of the account-event log: its numbering, window, reads and retention: `store.events()`.
pub struct EventsRepo<'a>(&'a Store);

impl Store {
    pub fn events(&self) -> EventsRepo<'_> {
        EventsRepo(self)
    }
}

/// The store's connection, keys and transactions, under the repository's methods.
impl std::ops::Deref for EventsRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}
