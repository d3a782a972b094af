//! The `accounts` table. Every write takes the lock of its (workspace, channel) scope
//! first, so that key uniqueness and the one-default rule hold under any concurrency,
//! across replicas too; the partial unique indexes of the migration back both up.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::default_changes::{self, DefaultsChanged, touched_scopes};
use super::entities::account::{ActiveModel, Column, Entity, Model};
use super::secret_fields::{Owner, open_document, open_text, seal_document, seal_text};
use super::{Store, audit, db_error, lock_scope, readable, unique_violation};
use crate::domain::audit::AuditEvent;
use crate::domain::config_document::SecretRule;
use crate::domain::{Account, Channel, Error, ProviderState, RecordKind, SetupState};
use crate::sealing::KeyRing;

/// What a modification does to the account it read. Every write carries the audit
/// event that records it, written in the same transaction.
pub enum AccountChange {
    /// Store this new state (the caller has bumped the revision).
    Save(Box<Account>, AuditEvent),
    /// Soft-delete: hide the account, free its key, drop its default flag.
    Delete {
        deleted_by: String,
        at: DateTime<Utc>,
        event: AuditEvent,
    },
    /// Nothing to write.
    Keep,
}

/// A stored write: the state it left and, when it touched a default, the default
/// revision it recorded (see `default_changes`).
pub struct Written<T> {
    pub value: T,
    pub defaults: Option<DefaultsChanged>,
}

/// Which accounts a list returns.
pub struct AccountFilter<'a> {
    pub workspace_id: &'a str,
    pub channel: Option<Channel>,
    /// A division-scoped caller sees its division's and workspace-wide accounts.
    pub caller_division: Option<&'a str>,
    /// Only ids after this one (the page token).
    pub after: Option<Uuid>,
    pub limit: u64,
}

/// The index of verify tokens (`KeyRing::index_of`).
pub const VERIFY_TOKEN_INDEX: &str = "verify_token";

/// Most accounts without an index entry a channel-wide handshake still compares against
/// (rows from before the index, until `keys rotate` fills it).
const MAX_UNINDEXED: u64 = 10_000;

impl Store {
    /// The live accounts of `channel` whose verify token may be `token`: those its index
    /// entry finds, and those without an entry yet (compared one by one).
    pub async fn accounts_by_verify_token(
        &self,
        workspace_id: &str,
        channel: Channel,
        caller_division: Option<&str>,
        token: &str,
    ) -> Result<Vec<Account>, Error> {
        let mut base = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(Column::DeletedAt.is_null());
        if let Some(division) = caller_division {
            base = base.filter(seen_from_division(division));
        }
        // The index's matches first, on their own (a few rows at most), then the rows
        // without an entry yet, bounded: neither can push the other out.
        let mut rows = match self.keys().index_of(VERIFY_TOKEN_INDEX, token) {
            Some(index) => base
                .clone()
                .filter(Column::VerifyTokenIndex.eq(index))
                .limit(16)
                .all(self.conn())
                .await
                .map_err(db_error)?,
            None => Vec::new(),
        };
        rows.extend(
            base.filter(Column::VerifyTokenIndex.is_null())
                .order_by_asc(Column::Id)
                .limit(MAX_UNINDEXED)
                .all(self.conn())
                .await
                .map_err(db_error)?,
        );
        Ok(readable::keep_readable(
            rows,
            RecordKind::Account,
            |row| row.id,
            |row| to_domain(self.keys(), row),
        ))
    }

    /// Writes accounts as they are, with no audit event and no default rules: for
    /// seeding (tests, benchmarks), never for a caller's request.
    pub async fn seed_accounts(&self, accounts: &[Account]) -> Result<(), Error> {
        for chunk in accounts.chunks(200) {
            let rows = chunk
                .iter()
                .map(|account| to_active(self.keys(), account))
                .collect::<Result<Vec<_>, _>>()?;
            Entity::insert_many(rows)
                .exec_without_returning(self.conn())
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    pub async fn list_accounts(&self, filter: &AccountFilter<'_>) -> Result<Vec<Account>, Error> {
        let mut query = Entity::find()
            .filter(Column::WorkspaceId.eq(filter.workspace_id))
            .filter(Column::DeletedAt.is_null());
        if let Some(channel) = filter.channel {
            query = query.filter(Column::Channel.eq(channel.as_str()));
        }
        if let Some(division) = filter.caller_division {
            query = query.filter(seen_from_division(division));
        }
        let query = query.order_by_asc(Column::Id);
        readable::read_page(
            filter.limit,
            filter.after,
            RecordKind::Account,
            |after, limit| {
                let mut page = query.clone();
                if let Some(after) = after {
                    page = page.filter(Column::Id.gt(after));
                }
                async move { page.limit(limit).all(self.conn()).await.map_err(db_error) }
            },
            |row| row.id,
            |row| to_domain(self.keys(), row),
        )
        .await
    }

    /// A live account of the workspace, whatever its division.
    pub async fn find_account(
        &self,
        workspace_id: &str,
        id: Uuid,
    ) -> Result<Option<Account>, Error> {
        find_live(self.conn(), self.keys(), workspace_id, id).await
    }

    /// The live account with this key on the channel.
    pub async fn find_account_by_key(
        &self,
        workspace_id: &str,
        channel: Channel,
        account_key: &str,
    ) -> Result<Option<Account>, Error> {
        let row = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(Column::AccountKey.eq(account_key))
            .filter(Column::DeletedAt.is_null())
            .one(self.conn())
            .await
            .map_err(db_error)?;
        row.map(|row| to_domain(self.keys(), row)).transpose()
    }

    /// Live accounts of `channel`, in every workspace, whose token expires before
    /// `before` and was not rejected: the token refresher's work.
    pub async fn tokens_expiring(
        &self,
        channel: Channel,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Account>, Error> {
        // In id order, topped up past unreadable rows: rows that cannot be opened stay
        // due, and ordered first they would take every place of every round.
        let query = Entity::find()
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(Column::DeletedAt.is_null())
            .filter(Column::ReauthorizationRequired.eq(false))
            .filter(Column::TokenExpiresAt.lt(before))
            .order_by_asc(Column::Id);
        readable::read_page(
            limit,
            None,
            RecordKind::Account,
            |after, limit| {
                let mut page = query.clone();
                if let Some(after) = after {
                    page = page.filter(Column::Id.gt(after));
                }
                async move { page.limit(limit).all(self.conn()).await.map_err(db_error) }
            },
            |row| row.id,
            |row| to_domain(self.keys(), row),
        )
        .await
    }

    /// The active default of one scope: a division's (`Some`) or the workspace-wide one.
    pub async fn find_default_account(
        &self,
        workspace_id: &str,
        channel: Channel,
        division_id: Option<&str>,
    ) -> Result<Option<Account>, Error> {
        let row = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .filter(Column::Channel.eq(channel.as_str()))
            .filter(division_condition(division_id))
            .filter(Column::IsDefault.eq(true))
            .filter(Column::IsActive.eq(true))
            .filter(Column::DeletedAt.is_null())
            .one(self.conn())
            .await
            .map_err(db_error)?;
        row.map(|row| to_domain(self.keys(), row)).transpose()
    }

    /// Inserts a new account; when it is a default, the previous default of its scope is
    /// cleared in the same transaction.
    pub async fn insert_account(
        &self,
        account: Account,
        event: &AuditEvent,
    ) -> Result<Written<Account>, Error> {
        let txn = self.begin_write().await?;
        lock_scope(&txn, &scope_key(&account.workspace_id, account.channel)).await?;
        ensure_key_free(&*txn, &account, None).await?;
        if account.is_default {
            clear_defaults(&*txn, &account, account.updated_at).await?;
        }
        Entity::insert(to_active(self.keys(), &account)?)
            .exec_without_returning(&*txn)
            .await
            .map_err(|err| conflict_error(err, &account))?;
        audit::insert(&*txn, event).await?;
        let scopes = touched_scopes(None, Some(&account));
        let defaults =
            default_changes::record(&txn, &account.workspace_id, &scopes, account.updated_at)
                .await?;
        txn.commit().await?;
        Ok(Written {
            value: account,
            defaults,
        })
    }

    /// Records that the set-up's first step (registering the number) is done. Progress
    /// of a set-up under way, not a change of the record: no revision, no event.
    pub async fn mark_setup_registered(&self, workspace_id: &str, id: Uuid) -> Result<(), Error> {
        Entity::update_many()
            .col_expr(Column::SetupRegistered, Expr::value(true))
            .filter(Column::Id.eq(id))
            .filter(Column::WorkspaceId.eq(workspace_id))
            .exec(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Reads a live account, lets `change` decide what to do with it, and writes the
    /// result, all in one transaction under the scope lock. Returns the stored state
    /// (`None` once deleted).
    pub async fn modify_account<F>(
        &self,
        workspace_id: &str,
        id: Uuid,
        change: F,
    ) -> Result<Written<Option<Account>>, Error>
    where
        F: FnOnce(Account) -> Result<AccountChange, Error>,
    {
        // The channel of an account never changes, so it is safe to learn the lock's
        // scope from a read outside the lock.
        let Some((unlocked, _)) =
            find_live_for_change(self.conn(), self.keys(), workspace_id, id).await?
        else {
            return Err(Error::not_found(RecordKind::Account, id));
        };
        let txn = self.begin_write().await?;
        lock_scope(&txn, &scope_key(workspace_id, unlocked.channel)).await?;
        let Some((current, unreadable)) =
            find_live_for_change(&*txn, self.keys(), workspace_id, id).await?
        else {
            return Err(Error::not_found(RecordKind::Account, id));
        };
        let decided = change(current.clone())?;
        // An account whose secrets cannot be opened can still be deleted (it would hold
        // its key forever otherwise); anything else needs what it holds.
        if let Some(err) = unreadable {
            if !matches!(decided, AccountChange::Delete { .. }) {
                return Err(err);
            }
        }
        let (result, scopes, at) = match decided {
            AccountChange::Keep => {
                return Ok(Written {
                    value: Some(current),
                    defaults: None,
                });
            }
            AccountChange::Save(next, event) => {
                let next = *next;
                debug_assert_eq!(next.id, current.id);
                if next.account_key != current.account_key {
                    ensure_key_free(&*txn, &next, Some(next.id)).await?;
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
                let scopes = touched_scopes(Some(&current), Some(&next));
                let at = next.updated_at;
                (Some(next), scopes, at)
            }
            AccountChange::Delete {
                deleted_by,
                at,
                event,
            } => {
                Entity::update_many()
                    .col_expr(Column::DeletedAt, Expr::value(at))
                    .col_expr(Column::DeletedBy, Expr::value(deleted_by))
                    .col_expr(Column::IsDefault, Expr::value(false))
                    .col_expr(Column::Revision, Expr::value(current.revision + 1))
                    .col_expr(Column::UpdatedAt, Expr::value(at))
                    .filter(Column::Id.eq(id))
                    .exec(&*txn)
                    .await
                    .map_err(db_error)?;
                audit::insert(&*txn, &event).await?;
                (None, touched_scopes(Some(&current), None), at)
            }
        };
        let defaults = default_changes::record(&txn, workspace_id, &scopes, at).await?;
        txn.commit().await?;
        Ok(Written {
            value: result,
            defaults,
        })
    }
}

fn scope_key(workspace_id: &str, channel: Channel) -> String {
    format!("accounts/{workspace_id}/{}", channel.as_str())
}

/// The accounts a division sees: its own and the workspace-wide ones.
pub(super) fn seen_from_division(division: &str) -> Condition {
    Condition::any()
        .add(Column::DivisionId.is_null())
        .add(Column::DivisionId.eq(division))
}

fn division_condition(division_id: Option<&str>) -> Condition {
    match division_id {
        Some(division) => Condition::all().add(Column::DivisionId.eq(division)),
        None => Condition::all().add(Column::DivisionId.is_null()),
    }
}

/// A live account about to be changed: as [`find_live`], but an account whose secrets
/// cannot be opened comes without them (empty config, no verify token), with why.
async fn find_live_for_change(
    conn: &impl ConnectionTrait,
    keys: &KeyRing,
    workspace_id: &str,
    id: Uuid,
) -> Result<Option<(Account, Option<Error>)>, Error> {
    let row = Entity::find_by_id(id)
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::DeletedAt.is_null())
        .one(conn)
        .await
        .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    match to_domain(keys, row.clone()) {
        Ok(account) => Ok(Some((account, None))),
        Err(err) if readable::is_unreadable_record(&err) => {
            let bare = Model {
                config: serde_json::json!({}),
                verify_token: String::new(),
                ..row
            };
            Ok(Some((to_domain(keys, bare)?, Some(err))))
        }
        Err(err) => Err(err),
    }
}

async fn find_live(
    conn: &impl ConnectionTrait,
    keys: &KeyRing,
    workspace_id: &str,
    id: Uuid,
) -> Result<Option<Account>, Error> {
    let row = Entity::find_by_id(id)
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::DeletedAt.is_null())
        .one(conn)
        .await
        .map_err(db_error)?;
    row.map(|row| to_domain(keys, row)).transpose()
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
        Some(_) => key_taken(account),
        None => db_error(err),
    }
}

fn owner(id: Uuid) -> Owner {
    Owner {
        kind: RecordKind::Account,
        id,
    }
}

fn to_active(keys: &KeyRing, account: &Account) -> Result<ActiveModel, Error> {
    let config = seal_document(
        keys,
        owner(account.id),
        "config",
        &account.config,
        SecretRule::ByName,
    )?;
    let verify_token = seal_text(
        keys,
        owner(account.id),
        "verify_token",
        &account.verify_token,
    )?;
    Ok(ActiveModel {
        id: Set(account.id),
        workspace_id: Set(account.workspace_id.clone()),
        channel: Set(account.channel.as_str().to_owned()),
        account_key: Set(account.account_key.clone()),
        display_name: Set(account.display_name.clone()),
        is_active: Set(account.is_active),
        is_default: Set(account.is_default),
        division_id: Set(account.division_id.clone()),
        config: Set(serde_json::Value::Object(config)),
        verify_token: Set(verify_token),
        revision: Set(account.revision),
        created_at: Set(account.created_at),
        updated_at: Set(account.updated_at),
        deleted_at: Set(None),
        deleted_by: Set(None),
        setup_state: Set(account.provider_state.setup_state.as_str().to_owned()),
        setup_registered: Set(account.provider_state.setup_registered),
        verify_token_index: Set(keys.index_of(VERIFY_TOKEN_INDEX, &account.verify_token)),
        setup_error: Set(account.provider_state.setup_error.clone()),
        reauthorization_required: Set(account.provider_state.reauthorization_required),
        token_expires_at: Set(account.provider_state.token_expires_at),
    })
}

pub(super) fn to_domain(keys: &KeyRing, row: Model) -> Result<Account, Error> {
    let channel = Channel::parse(&row.channel).ok_or_else(|| {
        Error::Internal(format!(
            "account {} has unknown channel {:?}",
            row.id, row.channel
        ))
    })?;
    let config = match row.config {
        serde_json::Value::Object(config) => config,
        _ => {
            return Err(Error::Internal(format!(
                "account {} has a config that is not a JSON object",
                row.id
            )));
        }
    };
    let config = open_document(keys, owner(row.id), "config", &config)?;
    let verify_token = open_text(keys, owner(row.id), "verify_token", &row.verify_token)?;
    Ok(Account {
        id: row.id,
        workspace_id: row.workspace_id,
        channel,
        account_key: row.account_key,
        display_name: row.display_name,
        is_active: row.is_active,
        is_default: row.is_default,
        division_id: row.division_id,
        config,
        verify_token,
        revision: row.revision,
        created_at: row.created_at,
        updated_at: row.updated_at,
        provider_state: ProviderState {
            setup_state: SetupState::parse(&row.setup_state).ok_or_else(|| {
                Error::Internal(format!(
                    "account {} has an unknown setup state {:?}",
                    row.id, row.setup_state
                ))
            })?,
            setup_registered: row.setup_registered,
            setup_error: row.setup_error,
            reauthorization_required: row.reauthorization_required,
            token_expires_at: row.token_expires_at,
        },
    })
}
