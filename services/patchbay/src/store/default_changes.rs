//! The `default_account_changes` log, written in the same transaction as the account
//! write it records. Every replica follows it: a local write tells its own replica
//! directly, and on PostgreSQL a `NOTIFY` sent with the transaction (so delivered only
//! if it commits) tells the others.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use serde::{Deserialize, Serialize};

use super::entities::default_account_change::{Column, Entity};
use super::{Store, WriteTxn, db_error, returned_revision};
use crate::domain::defaults::ScopeChanges;
use crate::domain::{Channel, Error};

/// The PostgreSQL notification channel replicas listen on.
pub const NOTIFY_CHANNEL: &str = "patchbay_default_accounts";

/// How many changes of a workspace the log keeps at least (up to `PRUNE_EVERY` more
/// between prunings). A follower further behind than the log reaches (a replica whose
/// listener was away through that many changes) starts over from a snapshot instead of
/// replaying.
const KEPT_CHANGES: i64 = 1000;
/// How many revisions pass between two prunings of a workspace's change log.
const PRUNE_EVERY: i64 = 64;

/// One recorded change of one scope's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultChange {
    pub revision: i64,
    pub channel: Channel,
    pub division_id: Option<String>,
    /// A change of the scope's fallbacks, not of its default.
    pub fallbacks: bool,
}

/// That a workspace's defaults reached `revision`; what a write reports and what a
/// notification carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultsChanged {
    pub workspace_id: String,
    pub revision: i64,
}

/// The lock a writer holds while it records a workspace's default changes, until its
/// transaction ends, after its scope lock (always in that order): revisions are taken
/// one writer after another and commit in order.
pub(crate) fn revision_lock(workspace_id: &str) -> String {
    format!("default-revisions/{workspace_id}")
}

/// Records the changes under the next revisions of the workspace, one each, and
/// announces them. The caller holds the workspace's `revision_lock`.
pub(crate) async fn record(
    txn: &WriteTxn<'_>,
    workspace_id: &str,
    changes: &ScopeChanges,
    at: DateTime<Utc>,
) -> Result<Option<DefaultsChanged>, Error> {
    if changes.is_empty() {
        return Ok(None);
    }
    let mut first = None;
    let mut revision = 0;
    for ((channel, division_id), fallbacks) in changes.entries() {
        let scope = (*channel, division_id.as_deref());
        revision = append(txn, workspace_id, scope, fallbacks, at).await?;
        first.get_or_insert(revision - 1);
    }
    let first = first.unwrap_or(revision);
    // The log is pruned once every PRUNE_EVERY revisions, not on every write (one
    // statement less per write): it keeps at least KEPT_CHANGES changes, and at most
    // PRUNE_EVERY more.
    if first / PRUNE_EVERY != revision / PRUNE_EVERY {
        Entity::delete_many()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Revision.lte(revision - KEPT_CHANGES))
            .exec(&**txn)
            .await
            .map_err(db_error)?;
    }
    let changed = DefaultsChanged {
        workspace_id: workspace_id.to_owned(),
        revision,
    };
    if txn.get_database_backend() == DbBackend::Postgres {
        let payload = serde_json::to_string(&changed)
            .map_err(|err| Error::Internal(format!("cannot encode a notification: {err}")))?;
        txn.notify_at_commit(NOTIFY_CHANNEL, payload);
    }
    Ok(Some(changed))
}

/// Appends one change under the workspace's next revision and returns it: the latest
/// revision is read in the insert itself (one round trip), under the revision lock the
/// caller holds, so no other writer can take the same number.
async fn append(
    txn: &WriteTxn<'_>,
    workspace_id: &str,
    (channel, division_id): (Channel, Option<&str>),
    fallbacks: bool,
    at: DateTime<Utc>,
) -> Result<i64, Error> {
    let next = Func::coalesce([Expr::col(Column::Revision).max(), Expr::val(0_i64)]).add(1_i64);
    let mut latest = Query::select();
    latest
        .expr(Expr::val(workspace_id))
        .expr(next)
        .expr(Expr::val(channel.as_str()))
        .expr(Expr::val(division_id.map(str::to_owned)))
        .expr(Expr::val(at))
        .expr(Expr::val(fallbacks))
        .from(Entity)
        .and_where(Expr::col(Column::WorkspaceId).eq(workspace_id));
    let mut insert = Query::insert();
    insert
        .into_table(Entity)
        .columns([
            Column::WorkspaceId,
            Column::Revision,
            Column::Channel,
            Column::DivisionId,
            Column::ChangedAt,
            Column::Fallbacks,
        ])
        .select_from(latest)
        .map_err(|err| Error::Internal(format!("cannot build the default change insert: {err}")))?;
    insert.returning_col(Column::Revision);
    returned_revision(txn, &insert, "the default change insert").await
}

async fn latest_revision(conn: &impl ConnectionTrait, workspace_id: &str) -> Result<i64, Error> {
    let latest: Option<Option<i64>> = Entity::find()
        .select_only()
        .column_as(Column::Revision.max(), "latest")
        .filter(Column::WorkspaceId.eq(workspace_id))
        .into_tuple()
        .one(conn)
        .await
        .map_err(db_error)?;
    Ok(latest.flatten().unwrap_or(0))
}

impl DefaultChangesRepo<'_> {
    /// The workspace's latest default revision (0 before any change).
    pub async fn latest_default_revision(&self, workspace_id: &str) -> Result<i64, Error> {
        latest_revision(self.conn(), workspace_id).await
    }

    /// The changes after `after`, oldest first, at most `limit`. `None` when the log no
    /// longer reaches back to `after + 1`.
    pub async fn default_changes_after(
        &self,
        workspace_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Option<Vec<DefaultChange>>, Error> {
        let rows = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Revision.gt(after))
            .order_by_asc(Column::Revision)
            .limit(limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        if rows.first().is_some_and(|row| row.revision != after + 1) {
            return Ok(None);
        }
        rows.into_iter()
            .map(|row| {
                let channel = Channel::parse(&row.channel).ok_or_else(|| {
                    Error::Internal(format!(
                        "default change of unknown channel {:?}",
                        row.channel
                    ))
                })?;
                Ok(DefaultChange {
                    revision: row.revision,
                    channel,
                    division_id: row.division_id,
                    fallbacks: row.fallbacks,
                })
            })
            .collect::<Result<Vec<_>, Error>>()
            .map(Some)
    }

    /// A notification nobody acts on, which proves to this replica's listener that it
    /// still hears (PostgreSQL only).
    pub async fn notify_heartbeat(&self) -> Result<(), Error> {
        self.conn()
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [NOTIFY_CHANNEL.into(), "{\"heartbeat\":true}".into()],
            ))
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

/// The repository of the default-change log: `store.default_changes()`.
pub struct DefaultChangesRepo<'a>(&'a Store);

impl Store {
    pub fn default_changes(&self) -> DefaultChangesRepo<'_> {
        DefaultChangesRepo(self)
    }
}

/// The store's connection, keys and transactions, under the repository's methods.
impl std::ops::Deref for DefaultChangesRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}
