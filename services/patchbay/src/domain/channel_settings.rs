//! Channel settings: the workspace-wide configuration of one channel (seed 002
//! "channel integrations").

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::account::validate_division_id;
use super::audit::{AuditAction, AuditEvent, settings_changes};
use super::caller::Caller;
use super::channel::Channel;
use super::config_document::{self, Document};
use super::error::{Error, RecordKind, Violations};
use super::support::{check_revision, new_id, now};

#[derive(Clone, PartialEq)]
pub struct ChannelSettings {
    /// `None` until the channel is configured for the first time.
    pub id: Option<Uuid>,
    pub workspace_id: String,
    pub channel: Channel,
    pub is_active: bool,
    pub config: Document,
    pub division_id: Option<String>,
    /// 0 until the channel is configured for the first time.
    pub revision: i64,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl ChannelSettings {
    /// What a never-configured channel looks like: inactive, empty config.
    pub fn unconfigured(workspace_id: &str, channel: Channel) -> Self {
        Self {
            id: None,
            workspace_id: workspace_id.to_owned(),
            channel,
            is_active: false,
            config: Document::new(),
            division_id: None,
            revision: 0,
            created_at: None,
            updated_at: None,
        }
    }
}

/// Config holds secrets, so it is left out.
impl std::fmt::Debug for ChannelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSettings")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("channel", &self.channel)
            .field("is_active", &self.is_active)
            .field("division_id", &self.division_id)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// An upsert request: every `None` leaves the field as it is.
pub struct ChannelSettingsPatch {
    pub is_active: Option<bool>,
    /// A JSON merge patch for the config.
    pub config: Option<Document>,
    /// `Some("")` clears the division.
    pub division_id: Option<String>,
    pub expected_revision: Option<i64>,
}

/// Channel settings operations, one per `IntegrationService` channel-settings RPC.
#[derive(Clone)]
pub struct ChannelSettingsService {
    store: crate::store::Store,
}

impl ChannelSettingsService {
    pub fn new(store: crate::store::Store) -> Self {
        Self { store }
    }

    pub async fn list(&self, caller: &Caller) -> Result<Vec<ChannelSettings>, Error> {
        let all = self
            .store
            .list_channel_settings(&caller.workspace_id)
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
            .find_channel_settings(&caller.workspace_id, channel)
            .await?
            .unwrap_or_else(|| ChannelSettings::unconfigured(&caller.workspace_id, channel));
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
            .upsert_channel_settings(&caller.workspace_id, channel, |current| {
                if current.id.is_some() {
                    if !caller.can_see(current.division_id.as_deref()) {
                        return Err(Error::not_found(RecordKind::ChannelSettings, channel));
                    }
                    caller.require_write(current.division_id.as_deref())?;
                }
                check_revision(patch.expected_revision, current.revision)?;
                let next = apply_patch(caller, current.clone(), patch)?;
                if next == current {
                    return Ok((next, None));
                }
                let event = AuditEvent::new(
                    caller,
                    RecordKind::ChannelSettings,
                    next.id.map(|id| id.to_string()).unwrap_or_default(),
                    next.division_id.clone(),
                    AuditAction::Upsert,
                    settings_changes(&current, &next),
                );
                Ok((next, Some(event)))
            })
            .await?;
        Ok(masked(stored))
    }
}

fn apply_patch(
    caller: &Caller,
    current: ChannelSettings,
    patch: ChannelSettingsPatch,
) -> Result<ChannelSettings, Error> {
    let mut violations = Violations::new();
    let mut next = current.clone();
    if let Some(config_patch) = &patch.config {
        match config_document::merge_patch(&current.config, config_patch, "config") {
            Ok(config) => {
                violations.extend(config_document::check_limits(&config, "config"));
                next.config = config;
            }
            Err(config_violations) => violations.extend(config_violations),
        }
    }
    if let Some(division) = &patch.division_id {
        next.division_id = match division.as_str() {
            "" => None,
            division => violations
                .check(validate_division_id(division, "division_id"))
                .map(|()| division.to_owned()),
        };
    } else if current.id.is_none() {
        // First configuration by a division-scoped caller lands in its division.
        next.division_id = caller.division_id.clone();
    }
    if let Some(active) = patch.is_active {
        next.is_active = active;
    }
    violations.into_result()?;
    caller.require_write(next.division_id.as_deref())?;

    let now = now();
    if current.id.is_none() {
        return Ok(ChannelSettings {
            id: Some(new_id()),
            revision: 1,
            created_at: Some(now),
            updated_at: Some(now),
            ..next
        });
    }
    if next == current {
        return Ok(current);
    }
    Ok(ChannelSettings {
        revision: current.revision + 1,
        updated_at: Some(now),
        ..next
    })
}

/// Secrets are masked in every channel settings response, whatever the role.
fn masked(settings: ChannelSettings) -> ChannelSettings {
    ChannelSettings {
        config: config_document::mask(&settings.config),
        ..settings
    }
}
