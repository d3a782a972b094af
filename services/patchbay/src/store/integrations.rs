//! The `integrations` table. Writers of one workspace serialise on its scope lock, so
//! that identifier uniqueness and the one-primary rule hold under any concurrency; the
//! partial unique indexes of the migration back both up.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::entities::integration::{ActiveModel, Column, Entity, Model};
use super::live::{self, LiveTable};
use super::secret_fields::{Owner, open_document, seal_document};
use super::{Store, audit, db_error, lock_scope, unique_violation};
use crate::domain::audit::AuditEvent;
use crate::domain::change::{After, Change, Deletes};
use crate::domain::config_document::SecretRule;
use crate::domain::integration::{Condition, Integration, IntegrationQuery};
use crate::domain::provider::Catalog;
use crate::domain::{Channel, Error, RecordKind};
use crate::sealing::KeyRing;

impl IntegrationsRepo<'_> {
    /// The integrations of a workspace that `filter` asks for, in id order after `after`.
    pub async fn list_integrations(
        &self,
        workspace_id: &str,
        filter: &IntegrationQuery,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Integration>, Error> {
        let mut query = Entity::find().filter(Column::WorkspaceId.eq(workspace_id));
        if !filter.include_deleted {
            query = query.filter(Column::DeletedAt.is_null());
        }
        if let Some(provider) = &filter.provider {
            query = query.filter(Column::Provider.eq(provider));
        }
        if let Some(channel) = filter.channel {
            query = query.filter(Column::Channel.eq(channel.as_str()));
        }
        if let Some(active) = filter.active {
            query = query.filter(Column::Active.eq(active));
        }
        live::page(self.conn(), query, after, limit, |row| {
            to_domain(self.keys(), row)
        })
        .await
    }

    pub async fn find_integration(
        &self,
        workspace_id: &str,
        id: Uuid,
    ) -> Result<Option<Integration>, Error> {
        live::find::<Entity, _>(self.conn(), workspace_id, id, |row| {
            to_domain(self.keys(), row)
        })
        .await
    }

    /// Inserts a new integration (clearing the previous primary of its scope when it is
    /// primary) with its audit event.
    pub async fn insert_integration(
        &self,
        integration: Integration,
        catalog: &Catalog,
        event: &AuditEvent,
    ) -> Result<Integration, Error> {
        let txn = self.begin_write().await?;
        lock_scope(&txn, &scope_key(&integration.workspace_id)).await?;
        ensure_identifier_free(&*txn, &integration).await?;
        if integration.primary {
            clear_primaries(&*txn, &integration).await?;
        }
        Entity::insert(to_active(self.keys(), catalog, &integration)?)
            .exec_without_returning(&*txn)
            .await
            .map_err(|err| conflict_error(err, &integration))?;
        audit::insert(&*txn, event).await?;
        txn.commit().await?;
        Ok(integration)
    }

    /// Reads a live integration, lets `change` decide, and writes the result with its
    /// audit event in one transaction under the workspace's lock. Returns the
    /// integration after it, as `modify_account` does.
    pub async fn modify_integration<F, D>(
        &self,
        workspace_id: &str,
        id: Uuid,
        catalog: &Catalog,
        change: F,
    ) -> Result<After<Integration, D>, Error>
    where
        F: FnOnce(Integration) -> Result<Change<Integration, D>, Error>,
        D: Deletes,
    {
        let txn = self.begin_write().await?;
        lock_scope(&txn, &scope_key(workspace_id)).await?;
        let decode = |row| to_domain(self.keys(), row);
        let Some((current, unreadable)) =
            live::find_for_change::<Entity, _>(&*txn, workspace_id, id, decode).await?
        else {
            return Err(Error::not_found(RecordKind::Integration, id));
        };
        let decided = change(current.clone())?;
        live::ensure_changeable(unreadable, &decided)?;
        let after = match decided {
            Change::Keep => After::Stored(current),
            Change::Save(next, event) => {
                let next = *next;
                if next.identifier != current.identifier {
                    ensure_identifier_free(&*txn, &next).await?;
                }
                if next.primary && !current.primary {
                    clear_primaries(&*txn, &next).await?;
                }
                Entity::update(to_active(self.keys(), catalog, &next)?)
                    .exec(&*txn)
                    .await
                    .map_err(|err| conflict_error(err, &next))?;
                audit::insert(&*txn, &event).await?;
                After::Stored(next)
            }
            Change::Delete(deleted) => {
                let deletion = deleted.deletion();
                live::soft_delete::<Entity>(&*txn, id, current.revision, deletion).await?;
                erase_secrets(&*txn, catalog, id).await?;
                audit::insert(&*txn, &deletion.event).await?;
                After::Deleted(deleted)
            }
        };
        txn.commit().await?;
        Ok(after)
    }
}

/// What a deleted integration keeps of its secrets: nothing (the provider's secret
/// paths, and any sealed value, become null). Read from the stored row, so that a
/// record whose secrets no longer open is erased too.
async fn erase_secrets(
    conn: &impl ConnectionTrait,
    catalog: &Catalog,
    id: Uuid,
) -> Result<(), Error> {
    let Some(row) = Entity::find_by_id(id).one(conn).await.map_err(db_error)? else {
        return Ok(());
    };
    let unknown = std::collections::BTreeSet::new();
    let paths = catalog
        .get(&row.provider)
        .map_or(&unknown, |provider| provider.secret_paths());
    let config = match row.config {
        serde_json::Value::Object(config) => serde_json::Value::Object(
            super::secret_fields::erase_secrets(&config, "config", SecretRule::Schema(paths)),
        ),
        _ => serde_json::Value::Object(serde_json::Map::new()),
    };
    Entity::update_many()
        .col_expr(Column::Config, Expr::value(config))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

fn scope_key(workspace_id: &str) -> String {
    format!("integrations/{workspace_id}")
}

async fn ensure_identifier_free(
    conn: &impl ConnectionTrait,
    integration: &Integration,
) -> Result<(), Error> {
    let taken = Entity::find()
        .filter(Column::WorkspaceId.eq(integration.workspace_id.as_str()))
        .filter(Column::Identifier.eq(integration.identifier.as_str()))
        .filter(Column::DeletedAt.is_null())
        .filter(Column::Id.ne(integration.id))
        .one(conn)
        .await
        .map_err(db_error)?
        .is_some();
    if taken {
        return Err(identifier_taken(integration));
    }
    Ok(())
}

async fn clear_primaries(
    conn: &impl ConnectionTrait,
    integration: &Integration,
) -> Result<(), Error> {
    Entity::update_many()
        .col_expr(Column::IsPrimary, Expr::value(false))
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(integration.updated_at))
        .filter(Column::WorkspaceId.eq(integration.workspace_id.as_str()))
        .filter(Column::PrimaryScope.eq(integration.primary_scope()))
        .filter(Column::IsPrimary.eq(true))
        .filter(Column::DeletedAt.is_null())
        .filter(Column::Id.ne(integration.id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

fn identifier_taken(integration: &Integration) -> Error {
    Error::AlreadyExists {
        kind: RecordKind::Integration,
        field: "identifier",
        message: format!(
            "an integration with identifier {:?} already exists",
            integration.identifier
        ),
    }
}

fn conflict_error(err: sea_orm::DbErr, integration: &Integration) -> Error {
    match unique_violation(&err) {
        Some(message) if message.contains("one_primary") => {
            Error::Aborted("a concurrent change of the primary integration won; retry".to_owned())
        }
        Some(_) => identifier_taken(integration),
        None => db_error(err),
    }
}

impl LiveTable for Entity {
    const KIND: RecordKind = RecordKind::Integration;
    fn id() -> Column {
        Column::Id
    }
    fn workspace() -> Column {
        Column::WorkspaceId
    }
    fn deleted_at() -> Column {
        Column::DeletedAt
    }
    fn deleted_by() -> Column {
        Column::DeletedBy
    }
    fn revision() -> Column {
        Column::Revision
    }
    fn updated_at() -> Column {
        Column::UpdatedAt
    }
    fn flag() -> Column {
        Column::IsPrimary
    }
    fn row_id(row: &Model) -> Uuid {
        row.id
    }
    /// An integration whose secrets cannot be opened: an empty config.
    fn without_secrets(row: Model) -> Model {
        Model {
            config: serde_json::json!({}),
            ..row
        }
    }
}

fn owner(id: Uuid) -> Owner {
    Owner {
        kind: RecordKind::Integration,
        id,
    }
}

fn to_active(
    keys: &KeyRing,
    catalog: &Catalog,
    integration: &Integration,
) -> Result<ActiveModel, Error> {
    let provider = catalog.get(&integration.provider).ok_or_else(|| {
        Error::Internal(format!(
            "integration {} has unknown provider {:?}",
            integration.id, integration.provider
        ))
    })?;
    let rule = SecretRule::Schema(provider.secret_paths());
    let config = seal_document(
        keys,
        owner(integration.id),
        "config",
        &integration.config,
        rule,
    )?;
    let conditions = serde_json::to_value(&integration.conditions)
        .map_err(|err| Error::Internal(format!("cannot encode conditions: {err}")))?;
    Ok(ActiveModel {
        id: Set(integration.id),
        workspace_id: Set(integration.workspace_id.clone()),
        provider: Set(integration.provider.clone()),
        name: Set(integration.name.clone()),
        identifier: Set(integration.identifier.clone()),
        channel: Set(integration.channel.map(|c| c.as_str().to_owned())),
        active: Set(integration.active),
        is_primary: Set(integration.primary),
        primary_scope: Set(integration.primary_scope()),
        conditions: Set(conditions),
        account_id: Set(integration.account_id),
        config: Set(serde_json::Value::Object(config)),
        revision: Set(integration.revision),
        created_at: Set(integration.created_at),
        updated_at: Set(integration.updated_at),
        deleted_at: Set(integration.deleted_at),
        deleted_by: Set(integration.deleted_by.clone()),
    })
}

fn to_domain(keys: &KeyRing, row: Model) -> Result<Integration, Error> {
    let broken = |what: &str| Error::Internal(format!("integration {} has {what}", row.id));
    let channel = match row.channel.as_deref() {
        None => None,
        Some(name) => Some(Channel::parse(name).ok_or_else(|| broken("an unknown channel"))?),
    };
    let serde_json::Value::Object(config) = &row.config else {
        return Err(broken("a config that is not a JSON object"));
    };
    let conditions: Vec<Condition> = serde_json::from_value(row.conditions.clone())
        .map_err(|_| broken("unreadable conditions"))?;
    let config = open_document(keys, owner(row.id), "config", config)?;
    Ok(Integration {
        id: row.id,
        workspace_id: row.workspace_id,
        provider: row.provider,
        name: row.name,
        identifier: row.identifier,
        channel,
        active: row.active,
        primary: row.is_primary,
        conditions,
        account_id: row.account_id,
        config,
        revision: row.revision,
        created_at: row.created_at,
        updated_at: row.updated_at,
        deleted_at: row.deleted_at,
        deleted_by: row.deleted_by,
    })
}

/// The repository of the `integrations` table: `store.integrations()`.
pub struct IntegrationsRepo<'a>(&'a Store);

impl Store {
    pub fn integrations(&self) -> IntegrationsRepo<'_> {
        IntegrationsRepo(self)
    }
}

/// The store's connection, keys and transactions, under the repository's methods.
impl std::ops::Deref for IntegrationsRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}
