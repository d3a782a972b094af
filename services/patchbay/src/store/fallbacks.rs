//! The ordered fallbacks of each scope (`fallback_accounts`): replaced whole under the
//! scope's lock (the lock its accounts' writes take), and pruned in the transaction of
//! any account write that takes an account out of a list (`prune`).

use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::accounts::rows::to_domain;
use super::entities::account;
use super::entities::fallback_account::{ActiveModel, Column, Entity};
use super::readable::{is_unreadable_record, report_unreadable};
use std::collections::BTreeSet;

use super::default_changes::{self, DefaultsChanged};
use super::{Store, audit, db_error, live, lock_scope, lock_scopes};
use crate::domain::account::Account;
use crate::domain::audit::AuditEvent;
use crate::domain::defaults::{DefaultsFilter, Scope, ScopeChanges};
use crate::domain::fallbacks;
use crate::domain::{Channel, Error, RecordKind};

/// Most ids one query reads accounts by.
const ID_BATCH: usize = 500;

/// A scope's key: its division, `''` for the workspace's.
fn scope_of(division: Option<&str>) -> &str {
    division.unwrap_or_default()
}

/// The repository of the `fallback_accounts` table: `store.fallbacks()`.
pub struct FallbacksRepo<'a>(&'a Store);

impl Store {
    pub fn fallbacks(&self) -> FallbacksRepo<'_> {
        FallbacksRepo(self)
    }
}

impl std::ops::Deref for FallbacksRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}

impl FallbacksRepo<'_> {
    /// A scope's fallbacks, in order, as they are now: only those that still belong
    /// in it (a replica of the previous version does not prune the lists), and only
    /// those that can be read.
    pub async fn fallback_accounts(
        &self,
        workspace_id: &str,
        channel: Channel,
        division: Option<&str>,
    ) -> Result<Vec<Account>, Error> {
        let ids = list(self.conn(), workspace_id, channel, division).await?;
        let mut accounts = self.accounts_of(self.conn(), workspace_id, &ids).await?;
        accounts.retain(|account| {
            account.channel == channel && fallbacks::stays(Some(account), division)
        });
        Ok(accounts)
    }

    /// Every list of the scopes `filter` covers, each in order and as
    /// [`fallback_accounts`](Self::fallback_accounts) reads it (empty ones left out):
    /// what a watch's snapshot starts from. One query for the lists (at most
    /// `MAX_LISTS_PER_CHANNEL` a channel), then the accounts by id, in batches.
    pub async fn covered_fallbacks(
        &self,
        workspace_id: &str,
        filter: &DefaultsFilter,
    ) -> Result<Vec<(Scope, Vec<Account>)>, Error> {
        let mut query = Entity::find().filter(Column::WorkspaceId.eq(workspace_id));
        if !filter.channels.is_empty() {
            query = query.filter(Column::Channel.is_in(filter.channels.iter().map(|c| c.as_str())));
        }
        if let Some(division) = &filter.division_id {
            query = query.filter(Column::Scope.is_in(["", division.as_str()]));
        }
        let rows = query
            .order_by_asc(Column::Channel)
            .order_by_asc(Column::Scope)
            .order_by_asc(Column::Position)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        let mut ids: Vec<Uuid> = rows.iter().map(|row| row.account_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut accounts = std::collections::HashMap::new();
        for batch in ids.chunks(ID_BATCH) {
            for account in self.accounts_of(self.conn(), workspace_id, batch).await? {
                accounts.insert(account.id, account);
            }
        }
        let mut lists: Vec<(Scope, Vec<Account>)> = Vec::new();
        for row in rows {
            let Some(channel) = Channel::parse(&row.channel) else {
                continue;
            };
            let division = Some(row.scope).filter(|scope| !scope.is_empty());
            let Some(account) = accounts.get(&row.account_id).filter(|account| {
                account.channel == channel && fallbacks::stays(Some(account), division.as_deref())
            }) else {
                continue;
            };
            let scope = (channel, division);
            match lists.last_mut() {
                Some((last, list)) if *last == scope => list.push(account.clone()),
                _ => lists.push((scope, vec![account.clone()])),
            }
        }
        Ok(lists)
    }

    /// Replaces a scope's list with `ids` under the scope's lock, each checked against
    /// the account as it is under it (`fallbacks::check_member`), with its audit event.
    /// Returns the list as stored.
    pub async fn replace_fallbacks(
        &self,
        workspace_id: &str,
        channel: Channel,
        division: Option<&str>,
        ids: &[Uuid],
        event: &AuditEvent,
    ) -> Result<(Vec<Account>, Option<DefaultsChanged>), Error> {
        let txn = self.begin_write().await?;
        lock_scope(&txn, &super::accounts::scope_key(workspace_id, channel)).await?;
        let accounts = self.accounts_of(&*txn, workspace_id, ids).await?;
        for (index, id) in ids.iter().enumerate() {
            let found = accounts.iter().find(|account| account.id == *id);
            fallbacks::check_member(index, *id, found, channel, division)?;
        }
        let room = room(&*txn, workspace_id, channel, division, ids).await?;
        let lists = if room.has_list {
            0
        } else {
            room.lists_elsewhere
        };
        fallbacks::check_room(channel, lists, &room.listed_elsewhere)?;
        Entity::delete_many()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(Column::Scope.eq(scope_of(division)))
            .exec(&*txn)
            .await
            .map_err(db_error)?;
        let rows: Vec<ActiveModel> = ids
            .iter()
            .zip(0..)
            .map(|(id, position)| ActiveModel {
                workspace_id: Set(workspace_id.to_owned()),
                channel: Set(channel.as_str().to_owned()),
                scope: Set(scope_of(division).to_owned()),
                position: Set(position),
                account_id: Set(*id),
            })
            .collect();
        if !rows.is_empty() {
            Entity::insert_many(rows)
                .exec_without_returning(&*txn)
                .await
                .map_err(db_error)?;
        }
        audit::insert(&*txn, event).await?;
        // A change of what the scope serves: caches drop it, watchers are told.
        let scope = ScopeChanges {
            fallbacks: BTreeSet::from([(channel, division.map(str::to_owned))]),
            ..ScopeChanges::default()
        };
        let lock = default_changes::revision_lock(workspace_id);
        lock_scopes(&txn, &[lock.as_str()]).await?;
        let changed =
            default_changes::record(&txn, workspace_id, &scope, event.occurred_at).await?;
        txn.commit().await?;
        let stored = ids
            .iter()
            .filter_map(|id| accounts.iter().find(|account| account.id == *id).cloned())
            .collect();
        Ok((stored, changed))
    }

    /// The live accounts of `ids` in the workspace, in order, read in one query. Any
    /// the workspace does not hold are left out, and so is one that cannot be read
    /// (reported): it fails neither the list nor says more than a missing one.
    async fn accounts_of(
        &self,
        conn: &impl ConnectionTrait,
        workspace_id: &str,
        ids: &[Uuid],
    ) -> Result<Vec<Account>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = live::live::<account::Entity>(workspace_id)
            .filter(account::Column::Id.is_in(ids.iter().copied()))
            .all(conn)
            .await
            .map_err(db_error)?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id;
            match to_domain(self.keys(), row) {
                Ok(account) => found.push(account),
                Err(err) if is_unreadable_record(&err) => {
                    report_unreadable(RecordKind::Account, id, &err);
                }
                Err(err) => return Err(err),
            }
        }
        found.sort_by_key(|account| ids.iter().position(|id| *id == account.id));
        Ok(found)
    }
}

/// What `fallbacks::check_room` judges, under the channel's lock: whether the scope
/// has a list already, the channel's lists in the workspace's other scopes, and how
/// many of them hold each of `ids` (0 for an id the scope's list holds already: a list
/// saved again, or reordered, takes no new room).
async fn room(
    conn: &impl ConnectionTrait,
    workspace_id: &str,
    channel: Channel,
    division: Option<&str>,
    ids: &[Uuid],
) -> Result<Room, Error> {
    if ids.is_empty() {
        return Ok(Room::default());
    }
    let rows = Entity::find()
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::Channel.eq(channel.as_str()))
        .all(conn)
        .await
        .map_err(db_error)?;
    let here = scope_of(division);
    let mine: Vec<Uuid> = rows
        .iter()
        .filter(|row| row.scope == here)
        .map(|row| row.account_id)
        .collect();
    let elsewhere: BTreeSet<&str> = rows
        .iter()
        .filter(|row| row.scope != here)
        .map(|row| row.scope.as_str())
        .collect();
    let listed = ids
        .iter()
        .map(|id| {
            if mine.contains(id) {
                return 0;
            }
            rows.iter()
                .filter(|row| row.scope != here && row.account_id == *id)
                .count()
        })
        .collect();
    Ok(Room {
        has_list: !mine.is_empty(),
        lists_elsewhere: elsewhere.len(),
        listed_elsewhere: listed,
    })
}

#[derive(Default)]
struct Room {
    has_list: bool,
    lists_elsewhere: usize,
    listed_elsewhere: Vec<usize>,
}

/// A scope's list of ids, in order.
async fn list(
    conn: &impl ConnectionTrait,
    workspace_id: &str,
    channel: Channel,
    division: Option<&str>,
) -> Result<Vec<Uuid>, Error> {
    let rows = Entity::find()
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::Channel.eq(channel.as_str()))
        .filter(Column::Scope.eq(scope_of(division)))
        .order_by_asc(Column::Position)
        .all(conn)
        .await
        .map_err(db_error)?;
    Ok(rows.into_iter().map(|row| row.account_id).collect())
}

/// The list entries that name one account, read once by a write that tells their
/// scopes' watchers and takes the account out of those it no longer belongs in.
pub(crate) struct Listed(Vec<super::entities::fallback_account::Model>);

/// The entries of every list that names account `id`.
pub(crate) async fn listed(conn: &impl ConnectionTrait, id: Uuid) -> Result<Listed, Error> {
    let rows = Entity::find()
        .filter(Column::AccountId.eq(id))
        .all(conn)
        .await
        .map_err(db_error)?;
    Ok(Listed(rows))
}

impl Listed {
    /// The scopes whose lists name the account.
    pub(crate) fn scopes(&self) -> BTreeSet<Scope> {
        self.0
            .iter()
            .filter_map(|row| {
                let channel = Channel::parse(&row.channel)?;
                let division = Some(row.scope.clone()).filter(|scope| !scope.is_empty());
                Some((channel, division))
            })
            .collect()
    }

    /// Takes the account out of every list it no longer belongs in, now that a write
    /// left it as `after` (`None`: deleted). Runs in that write's transaction, under
    /// its lock.
    pub(crate) async fn prune(
        self,
        conn: &impl ConnectionTrait,
        after: Option<&Account>,
    ) -> Result<(), Error> {
        for row in self.0 {
            let division = Some(row.scope.as_str()).filter(|scope| !scope.is_empty());
            if !fallbacks::stays(after, division) {
                Entity::delete_many()
                    .filter(Column::WorkspaceId.eq(row.workspace_id))
                    .filter(Column::Channel.eq(row.channel))
                    .filter(Column::Scope.eq(row.scope))
                    .filter(Column::Position.eq(row.position))
                    .exec(conn)
                    .await
                    .map_err(db_error)?;
            }
        }
        Ok(())
    }
}
