//! Account writes: each under the lock of its (workspace, channel) scope, with its audit
//! event, its default change and its routing change recorded in the same transaction.

use super::AccountsRepo;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::routes::{claim_taken, ensure_claim_free, notify_route_change};
use super::rows::{to_active, to_domain};
use super::{Written, division_condition, scope_key};
use crate::domain::account::events::{NewAccountEvent, account_events};
use crate::domain::account::{Ownership, provider_id};
use crate::domain::audit::AuditEvent;
use crate::domain::change::{After, Change, Deletes};
use crate::domain::config_document::SecretRule;
use crate::domain::defaults::{ScopeChanges, touched_scopes};
use crate::domain::webhook_routes::routing_changed;
use crate::domain::{Account, Error, RecordKind};
use crate::store::account_events::EventsRecorded;
use crate::store::default_changes::DefaultsChanged;
use crate::store::entities::account::{Column, Entity};
use crate::store::{
    WriteTxn, account_events as events_log, audit, db_error, default_changes, live, lock_scope,
    lock_scopes, secret_fields, unique_violation,
};

impl AccountsRepo<'_> {
    /// Inserts a new account; when it is a default, the previous default of its scope is
    /// cleared in the same transaction.
    pub async fn insert_account(
        &self,
        account: Account,
        event: &AuditEvent,
    ) -> Result<Written<Account>, Error> {
        let at = account.updated_at;
        let account = account.with_settled_health(at);
        let txn = self.begin_write().await?;
        lock_scope(&txn, &scope_key(&account.workspace_id, account.channel)).await?;
        ensure_key_free(&*txn, &account, None).await?;
        ensure_claim_free(&txn, &account).await?;
        if account.is_default {
            clear_defaults(&*txn, &account, account.updated_at).await?;
        }
        Entity::insert(to_active(self.keys(), &account)?)
            .exec_without_returning(&*txn)
            .await
            .map_err(|err| conflict_error(err, &account))?;
        audit::insert(&*txn, event).await?;
        let scopes = ScopeChanges::of_defaults(touched_scopes(None, Some(&account)));
        let events = account_events(None, Some(&account));
        let (defaults, events) =
            record_changes(&txn, &scopes, &account, &events, account.updated_at).await?;
        let routes = routing_changed(None, Some(&account)).then_some(account.id);
        if let Some(id) = routes {
            notify_route_change(&txn, id);
        }
        txn.commit().await?;
        Ok(Written {
            value: account,
            defaults,
            routes,
            events,
        })
    }

    /// Records that the set-up's first step (registering `phone_number_id`) is done,
    /// unless the account has another number by now. Progress of a set-up under way,
    /// not a change of the record: no revision, no event.
    pub async fn mark_setup_registered(
        &self,
        workspace_id: &str,
        id: Uuid,
        phone_number_id: &str,
    ) -> Result<(), Error> {
        Entity::update_many()
            .col_expr(Column::SetupRegistered, Expr::value(true))
            .filter(Column::Id.eq(id))
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::ProviderId.eq(phone_number_id))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Reads a live account, lets `change` decide what to do with it, and writes the
    /// result, all in one transaction under the scope lock. Returns the account after
    /// it: as stored, or deleted (an [`Edit`](crate::domain::change::Edit) deletes
    /// nothing, so its caller gets the stored account).
    pub async fn modify_account<F, D>(
        &self,
        workspace_id: &str,
        id: Uuid,
        change: F,
    ) -> Result<Written<After<Account, D>>, Error>
    where
        F: FnOnce(Account) -> Result<Change<Account, D>, Error>,
        D: Deletes,
    {
        let decode = |row| to_domain(self.keys(), row);
        // The channel of an account never changes, so it is safe to learn the lock's
        // scope outside the lock (remembered after the first write of an account).
        let Some(channel) = self.account_channel(workspace_id, id).await? else {
            return Err(Error::not_found(RecordKind::Account, id));
        };
        let txn = self.begin_write().await?;
        lock_scope(&txn, &scope_key(workspace_id, channel)).await?;
        let Some((current, unreadable)) =
            live::find_for_change::<Entity, _>(&*txn, workspace_id, id, decode).await?
        else {
            return Err(Error::not_found(RecordKind::Account, id));
        };
        if current.channel != channel {
            self.known_channels.forget(id);
            return Err(Error::Internal(format!(
                "account {id} is of another channel than the scope locked for it"
            )));
        }
        let decided = change(current.clone())?;
        live::ensure_changeable(unreadable, &decided)?;
        let (after, at) = match decided {
            Change::Keep => {
                return Ok(Written {
                    value: After::Stored(current),
                    defaults: None,
                    routes: None,
                    events: None,
                });
            }
            Change::Save(next, event) => {
                let at = next.updated_at;
                let next = next.with_settled_health(at);
                debug_assert_eq!(next.id, current.id);
                if next.account_key != current.account_key {
                    ensure_key_free(&*txn, &next, Some(next.id)).await?;
                }
                // Only a confirmation is checked: claims Meta has not confirmed may be
                // many, and route nothing.
                let id_changed = provider_id(next.channel, &next.config)
                    != provider_id(current.channel, &current.config);
                if current.provider_state.ownership != Ownership::Confirmed || id_changed {
                    ensure_claim_free(&txn, &next).await?;
                }
                let scope_changed = next.division_id != current.division_id;
                if next.is_default && (!current.is_default || scope_changed) {
                    clear_defaults(&*txn, &next, next.updated_at).await?;
                }
                Entity::update(to_active(self.keys(), &next)?)
                    .exec(&*txn)
                    .await
                    .map_err(|err| conflict_error(err, &next))?;
                audit::insert(&*txn, &event).await?;
                let at = next.updated_at;
                (After::Stored(next), at)
            }
            Change::Delete(deleted) => {
                let deletion = deleted.deletion();
                live::soft_delete::<Entity>(&*txn, id, current.revision, deletion).await?;
                erase_secrets(&*txn, id).await?;
                audit::insert(&*txn, &deletion.event).await?;
                let at = deletion.at;
                (After::Deleted(deleted), at)
            }
        };
        let stored = after.stored();
        // The scopes whose default it is; and, when what a fallback's answer shows
        // changed or it leaves a list, every scope whose fallbacks list it: watchers of
        // each are told, and caches drop the workspace's answers.
        let mut scopes = ScopeChanges::of_defaults(touched_scopes(Some(&current), stored));
        let leaves_lists = stored.is_none_or(|next| {
            next.is_active != current.is_active
                || (next.is_default && !current.is_default)
                || next.division_id != current.division_id
        });
        let shown_changed = stored.is_none_or(|next| {
            next.provider_state
                .health
                .differs_from(&current.provider_state.health)
                || next.is_active != current.is_active
                || next.is_default != current.is_default
                || next.division_id != current.division_id
                || next.display_name != current.display_name
                || next.account_key != current.account_key
                || next.config != current.config
                || next.provider_state.ownership != current.provider_state.ownership
        });
        // The lists naming it, read once: their scopes are told, and it leaves those it
        // no longer belongs in.
        let listed = if shown_changed || leaves_lists {
            let listed = crate::store::fallbacks::listed(&*txn, id).await?;
            scopes.fallbacks = listed.scopes();
            Some(listed)
        } else {
            None
        };
        let mut events = account_events(Some(&current), stored);
        // What came of a delete at the provider is also the DELETED event's reason.
        if let After::Deleted(deleted) = &after {
            for event in &mut events {
                event.reason = deleted.deletion().event.outcome.clone();
            }
        }
        // An account deleted, deactivated, made a default or moved leaves the fallback
        // lists it no longer belongs in, in this transaction.
        if leaves_lists && let Some(listed) = listed {
            listed.prune(&*txn, stored).await?;
        }
        let written = stored.unwrap_or(&current);
        let (defaults, events) = record_changes(&txn, &scopes, written, &events, at).await?;
        let routes = routing_changed(Some(&current), stored).then_some(id);
        if let Some(id) = routes {
            notify_route_change(&txn, id);
        }
        txn.commit().await?;
        Ok(Written {
            value: after,
            defaults,
            routes,
            events,
        })
    }
}

/// What a deleted account keeps of its secrets: nothing. Its config's secrets become
/// null, its verify token `''` and its index entry none (its webhook route stays, so
/// that a URL never names another account). Read from the stored row, so that a record
/// whose secrets no longer open is erased too.
async fn erase_secrets(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), Error> {
    let Some(row) = Entity::find_by_id(id).one(conn).await.map_err(db_error)? else {
        return Ok(());
    };
    let config = match row.config {
        serde_json::Value::Object(config) => serde_json::Value::Object(
            secret_fields::erase_secrets(&config, "config", SecretRule::ByName),
        ),
        _ => serde_json::Value::Object(serde_json::Map::new()),
    };
    Entity::update_many()
        .col_expr(Column::Config, Expr::value(config))
        .col_expr(Column::VerifyToken, Expr::value(""))
        .col_expr(
            Column::VerifyTokenIndex,
            Expr::value(Option::<String>::None),
        )
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Records a write's default changes and account events. The workspace's locks for
/// both are taken in one statement, revisions first, as every writer takes them.
async fn record_changes(
    txn: &WriteTxn<'_>,
    scopes: &ScopeChanges,
    account: &Account,
    events: &[NewAccountEvent],
    at: DateTime<Utc>,
) -> Result<(Option<DefaultsChanged>, Option<EventsRecorded>), Error> {
    let workspace_id = account.workspace_id.as_str();
    let revisions = default_changes::revision_lock(workspace_id);
    let numbering = events_log::numbering_lock(workspace_id);
    let mut locks = Vec::new();
    if !scopes.is_empty() {
        locks.push(revisions.as_str());
    }
    if !events.is_empty() {
        locks.push(numbering.as_str());
    }
    lock_scopes(txn, &locks).await?;
    let defaults = default_changes::record(txn, workspace_id, scopes, at).await?;
    let events = events_log::record(txn, account, events, at).await?;
    Ok((defaults, events))
}

async fn ensure_key_free(
    conn: &impl ConnectionTrait,
    account: &Account,
    except: Option<Uuid>,
) -> Result<(), Error> {
    let mut query = Entity::find()
        .filter(Column::WorkspaceId.eq(account.workspace_id.as_str()))
        .filter(Column::Channel.eq(account.channel.as_str()))
        .filter(Column::AccountKey.eq(account.account_key.as_str()))
        .filter(Column::DeletedAt.is_null());
    if let Some(id) = except {
        query = query.filter(Column::Id.ne(id));
    }
    let taken = query.one(conn).await.map_err(db_error)?.is_some();
    if taken {
        return Err(key_taken(account));
    }
    Ok(())
}

/// Clears the default flag of every other account in the scope of `account`.
async fn clear_defaults(
    conn: &impl ConnectionTrait,
    account: &Account,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    Entity::update_many()
        .col_expr(Column::IsDefault, Expr::value(false))
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::WorkspaceId.eq(account.workspace_id.as_str()))
        .filter(Column::Channel.eq(account.channel.as_str()))
        .filter(division_condition(account.division_id.as_deref()))
        .filter(Column::IsDefault.eq(true))
        .filter(Column::DeletedAt.is_null())
        .filter(Column::Id.ne(account.id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

fn key_taken(account: &Account) -> Error {
    Error::AlreadyExists {
        kind: RecordKind::Account,
        field: "account_key",
        message: format!(
            "an account with key {:?} already exists on channel {}",
            account.account_key, account.channel
        ),
    }
}

/// Under the scope lock neither index can be violated by another writer of this
/// service; a violation means somebody wrote around it.
fn conflict_error(err: sea_orm::DbErr, account: &Account) -> Error {
    match unique_violation(&err) {
        Some(message) if message.contains("one_default") => {
            Error::Aborted("a concurrent change of the default account won; retry".to_owned())
        }
        // PostgreSQL names the index; SQLite names its columns.
        Some(message) if message.contains("provider_id") => claim_taken(account),
        Some(_) => key_taken(account),
        None => db_error(err),
    }
}
