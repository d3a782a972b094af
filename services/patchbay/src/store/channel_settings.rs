//! The `channel_settings` table: at most one row per (workspace, channel).

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::entities::channel_settings::{ActiveModel, Column, Entity, Model};
use super::secret_fields::{Owner, open_document, seal_document};
use super::{Store, audit, db_error, lock_scope};
use crate::domain::change::Change;
use crate::domain::config_document::SecretRule;
use crate::domain::{Channel, ChannelSettings, Error, RecordKind};
use crate::sealing::KeyRing;

impl ChannelSettingsRepo<'_> {
    pub async fn list_channel_settings(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<ChannelSettings>, Error> {
        let rows = Entity::find()
            .filter(Column::WorkspaceId.eq(workspace_id))
            .order_by_asc(Column::Channel)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        Ok(super::readable::keep_readable(
            rows,
            RecordKind::ChannelSettings,
            |row| row.id,
            |row| to_domain(self.keys(), row),
        ))
    }

    pub async fn find_channel_settings(
        &self,
        workspace_id: &str,
        channel: Channel,
    ) -> Result<Option<ChannelSettings>, Error> {
        find(self.conn(), self.keys(), workspace_id, channel).await
    }

    /// Reads the settings (or their unconfigured default), lets `change` decide, and
    /// inserts or updates the row with its event in one transaction under the scope
    /// lock. Returns the settings as they are after it.
    pub async fn upsert_channel_settings<F>(
        &self,
        workspace_id: &str,
        channel: Channel,
        change: F,
    ) -> Result<ChannelSettings, Error>
    where
        F: FnOnce(ChannelSettings) -> Result<Change<ChannelSettings>, Error>,
    {
        let txn = self.begin_write().await?;
        lock_scope(
            &txn,
            &format!("channel_settings/{workspace_id}/{}", channel.as_str()),
        )
        .await?;
        let current = find(&*txn, self.keys(), workspace_id, channel).await?;
        let exists = current.is_some();
        let current =
            current.unwrap_or_else(|| ChannelSettings::unconfigured(workspace_id, channel));
        let (next, event) = match change(current.clone())? {
            Change::Keep => return Ok(current),
            Change::Save(next, event) => (*next, event),
            Change::Delete(_) => {
                return Err(Error::Internal(
                    "channel settings are never deleted".to_owned(),
                ));
            }
        };
        let row = to_active(self.keys(), &next)?;
        if exists {
            Entity::update(row).exec(&*txn).await.map_err(db_error)?;
        } else {
            Entity::insert(row)
                .exec_without_returning(&*txn)
                .await
                .map_err(db_error)?;
        }
        audit::insert(&*txn, &event).await?;
        txn.commit().await?;
        Ok(next)
    }
}

async fn find(
    conn: &impl sea_orm::ConnectionTrait,
    keys: &KeyRing,
    workspace_id: &str,
    channel: Channel,
) -> Result<Option<ChannelSettings>, Error> {
    let row = Entity::find()
        .filter(Column::WorkspaceId.eq(workspace_id))
        .filter(Column::Channel.eq(channel.as_str()))
        .one(conn)
        .await
        .map_err(db_error)?;
    row.map(|row| to_domain(keys, row)).transpose()
}

fn owner(id: Uuid) -> Owner {
    Owner {
        kind: RecordKind::ChannelSettings,
        id,
    }
}

fn to_active(keys: &KeyRing, settings: &ChannelSettings) -> Result<ActiveModel, Error> {
    let (Some(id), Some(created_at), Some(updated_at)) =
        (settings.id, settings.created_at, settings.updated_at)
    else {
        return Err(Error::Internal(
            "channel settings to store lack an id or timestamps".to_owned(),
        ));
    };
    let config = seal_document(
        keys,
        owner(id),
        "config",
        &settings.config,
        SecretRule::ByName,
    )?;
    Ok(ActiveModel {
        id: Set(id),
        workspace_id: Set(settings.workspace_id.clone()),
        channel: Set(settings.channel.as_str().to_owned()),
        is_active: Set(settings.is_active),
        config: Set(serde_json::Value::Object(config)),
        division_id: Set(settings.division_id.clone()),
        revision: Set(settings.revision),
        created_at: Set(created_at),
        updated_at: Set(updated_at),
    })
}

fn to_domain(keys: &KeyRing, row: Model) -> Result<ChannelSettings, Error> {
    let channel = Channel::parse(&row.channel).ok_or_else(|| {
        Error::Internal(format!(
            "channel settings {} have unknown channel {:?}",
            row.id, row.channel
        ))
    })?;
    let serde_json::Value::Object(config) = row.config else {
        return Err(Error::Internal(format!(
            "channel settings {} have a config that is not a JSON object",
            row.id
        )));
    };
    let config = open_document(keys, owner(row.id), "config", &config)?;
    Ok(ChannelSettings {
        id: Some(row.id),
        workspace_id: row.workspace_id,
        channel,
        is_active: row.is_active,
        config,
        division_id: row.division_id,
        revision: row.revision,
        created_at: Some(row.created_at),
        updated_at: Some(row.updated_at),
    })
}

/// The repository of channel settings: `store.channel_settings()`.
pub struct ChannelSettingsRepo<'a>(&'a Store);

impl Store {
    pub fn channel_settings(&self) -> ChannelSettingsRepo<'_> {
        ChannelSettingsRepo(self)
    }
}

/// The store's connection, keys and transactions, under the repository's methods.
impl std::ops::Deref for ChannelSettingsRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}
