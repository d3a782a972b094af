//! Channel settings operations, one per `IntegrationService` channel-settings RPC.

use crate::domain::channel_settings::{self, ChannelSettings, ChannelSettingsPatch, masked};
use crate::domain::ids::now;
use crate::domain::{Caller, Channel, Error, RecordKind};
use crate::store::Store;

#[derive(Clone)]
pub struct ChannelSettingsService {
    store: Store,
}

impl ChannelSettingsService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn list(&self, caller: &Caller) -> Result<Vec<ChannelSettings>, Error> {
        let all = self
            .store
            .channel_settings()
            .list_channel_settings(caller.workspace_id())
            .await?;
        Ok(all
            .into_iter()
            .filter(|s| caller.can_see(s.division_id.as_deref()))
            .map(masked)
            .collect())
    }

    /// A channel never configured is not an error: it has empty, inactive settings.
    pub async fn get(&self, caller: &Caller, channel: Channel) -> Result<ChannelSettings, Error> {
        let settings = self
            .store
            .channel_settings()
            .find_channel_settings(caller.workspace_id(), channel)
            .await?
            .unwrap_or_else(|| ChannelSettings::unconfigured(caller.workspace_id(), channel));
        if !caller.can_see(settings.division_id.as_deref()) {
            return Err(Error::not_found(RecordKind::ChannelSettings, channel));
        }
        Ok(masked(settings))
    }

    pub async fn upsert(
        &self,
        caller: &Caller,
        channel: Channel,
        patch: ChannelSettingsPatch,
    ) -> Result<ChannelSettings, Error> {
        let stored = self
            .store
            .channel_settings()
            .upsert_channel_settings(caller.workspace_id(), channel, |current| {
                channel_settings::upsert(caller, &current, patch, now())
            })
            .await?;
        Ok(masked(stored))
    }
}
