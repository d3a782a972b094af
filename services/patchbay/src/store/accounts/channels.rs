//! The channel of each account a write has looked up. A write takes the lock of its
//! (workspace, channel) scope before it reads the account, so it must learn the channel
//! first; an account's channel never changes and ids are never reused, so once read it
//! is remembered, and a replica's steady writes skip that read (one round trip each).
//! An id is remembered with the workspace a read found it in, and answers for that
//! workspace only (another workspace's caller reads, and finds nothing, as before). A
//! remembered id says nothing about the account now: the read under the lock decides
//! whether it is still there. The map is bounded: a full map starts over.

use std::collections::HashMap;
use std::sync::RwLock;

use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::super::entities::account::{Column, Entity};
use super::super::{Store, db_error, live};
use crate::domain::{Channel, Error};
use crate::locks::{read, write};

/// How many accounts' channels are remembered at most (about 3 MiB; 20 MiB at worst,
/// with workspace ids of the longest kind a token may carry).
const CAPACITY: usize = 65_536;

#[derive(Default)]
pub(crate) struct KnownChannels {
    /// id → (its workspace, its channel).
    entries: RwLock<HashMap<Uuid, (Box<str>, Channel)>>,
}

impl KnownChannels {
    pub(crate) fn len(&self) -> usize {
        read(&self.entries).len()
    }

    fn get(&self, workspace_id: &str, id: Uuid) -> Option<Channel> {
        match read(&self.entries).get(&id) {
            Some((workspace, channel)) if **workspace == *workspace_id => Some(*channel),
            _ => None,
        }
    }

    fn remember(&self, workspace_id: &str, id: Uuid, channel: Channel) {
        let mut entries = write(&self.entries);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(id, (workspace_id.into(), channel));
    }

    /// Drops what was remembered of `id` (it proved wrong).
    pub(super) fn forget(&self, id: Uuid) {
        write(&self.entries).remove(&id);
    }
}

impl Store {
    /// The channel of live account `id` of the workspace, remembered or read (its
    /// channel column only: nothing is unsealed); `None` when the read finds none.
    pub(super) async fn account_channel(
        &self,
        workspace_id: &str,
        id: Uuid,
    ) -> Result<Option<Channel>, Error> {
        if let Some(channel) = self.known_channels.get(workspace_id, id) {
            return Ok(Some(channel));
        }
        let stored: Option<String> = live::live::<Entity>(workspace_id)
            .select_only()
            .column(Column::Channel)
            .filter(Column::Id.eq(id))
            .into_tuple()
            .one(self.conn())
            .await
            .map_err(db_error)?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let channel = Channel::parse(&stored).ok_or_else(|| {
            Error::Internal(format!("account {id} has an unknown channel {stored:?}"))
        })?;
        self.known_channels.remember(workspace_id, id, channel);
        Ok(Some(channel))
    }
}
