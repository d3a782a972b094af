//! Channel settings between the wire and the domain.

use patchbay_sdk::proto;

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

/// The channel and the patch of an upsert.
pub fn upsert_from_proto(
    request: proto::UpsertChannelSettingsRequest,
) -> Result<(Channel, ChannelSettingsPatch), Error> {
    let mut violations = Violations::new();
    let channel = violations.check(required_channel(request.channel, "channel"));
    let config = optional_document(request.config, "config", &mut violations);
    violations.into_result()?;
    let channel =
        channel.ok_or_else(|| Error::Internal("channel missing after validation".to_owned()))?;
    Ok((
        channel,
        ChannelSettingsPatch {
            is_active: request.is_active,
            config,
            division_id: request.division_id,
            expected_revision: request.expected_revision,
        },
    ))
}
