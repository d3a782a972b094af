//! Channel settings between the wire and the domain.

use patchbay_sdk::proto;

use super::writes::Update;

use super::{
    channel_to_proto, optional_document, required_channel, struct_from_document, timestamp,
};
use crate::domain::{Channel, ChannelSettings, ChannelSettingsPatch, Error, Violations};

pub fn settings_to_proto(settings: ChannelSettings) -> proto::ChannelSettings {
    proto::ChannelSettings {
        id: settings.id.map(|id| id.to_string()).unwrap_or_default(),
        channel: channel_to_proto(settings.channel).into(),
        is_active: settings.is_active,
        config: Some(struct_from_document(&settings.config)),
        division_id: settings.division_id,
        created_at: settings.created_at.map(timestamp),
        updated_at: settings.updated_at.map(timestamp),
        revision: settings.revision,
    }
}

/// An upsert of a channel's settings.
impl TryFrom<proto::UpsertChannelSettingsRequest> for Update<ChannelSettingsPatch, Channel> {
    type Error = Error;

    fn try_from(request: proto::UpsertChannelSettingsRequest) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let channel = violations.checked(required_channel(request.channel, "channel"));
        let config = optional_document(request.config, "config", &mut violations);
        let channel = violations.finish(channel)?;
        Ok(Update {
            id: channel,
            patch: ChannelSettingsPatch {
                is_active: request.is_active,
                config,
                division_id: request.division_id,
                expected_revision: request.expected_revision,
            },
        })
    }
}
