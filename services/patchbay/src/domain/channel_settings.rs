//! Channel settings: the workspace-wide configuration of one channel (seed 002
//! "channel integrations").

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::account::division_from;
use super::audit::{AuditAction, document_changes};
use super::caller::Caller;
use super::change::{Change, Revised, check_revision, event};
use super::channel::Channel;
use super::config_document::{self, Document};
use super::error::{Error, RecordKind, Violations};
use super::ids::new_id;

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

/// The names of the channel settings fields that differ between two states.
pub fn settings_changes(before: &ChannelSettings, after: &ChannelSettings) -> Vec<String> {
    let mut fields = Vec::new();
    if before.id.is_none() || before.is_active != after.is_active {
        fields.push("is_active".to_owned());
    }
    if before.division_id != after.division_id {
        fields.push("division_id".to_owned());
    }
    fields.extend(document_changes(&before.config, &after.config, "config"));
    fields
}

impl Revised for ChannelSettings {
    const KIND: RecordKind = RecordKind::ChannelSettings;

    fn revision(&self) -> i64 {
        self.revision
    }

    fn revised(self, at: DateTime<Utc>) -> Self {
        ChannelSettings {
            revision: self.revision + 1,
            updated_at: Some(at),
            ..self
        }
    }

    fn record_id(&self) -> String {
        self.id.map(|id| id.to_string()).unwrap_or_default()
    }

    fn division(&self) -> Option<String> {
        self.division_id.clone()
    }
}

/// UpsertChannelSettings: the patch applied to the settings as they are (or to the
/// unconfigured channel: then they get an id, revision 1, and the caller's division
/// unless another is asked for).
pub fn upsert(
    caller: &Caller,
    current: &ChannelSettings,
    patch: ChannelSettingsPatch,
    at: DateTime<Utc>,
) -> Result<Change<ChannelSettings>, Error> {
    let configured = current.id.is_some();
    if configured {
        if !caller.can_see(current.division_id.as_deref()) {
            return Err(Error::not_found(
                RecordKind::ChannelSettings,
                current.channel,
            ));
        }
        caller.require_write(current.division_id.as_deref())?;
    }
    check_revision(patch.expected_revision, current.revision)?;
    let next = apply_patch(caller, current, patch)?;
    if configured {
        return Ok(Change::save_if_changed(
            caller,
            current,
            next,
            AuditAction::Upsert,
            settings_changes,
            at,
        ));
    }
    let first = ChannelSettings {
        id: Some(new_id()),
        revision: 1,
        created_at: Some(at),
        updated_at: Some(at),
        ..next
    };
    let event = event(
        caller,
        &first,
        AuditAction::Upsert,
        settings_changes(current, &first),
    );
    Ok(Change::Save(Box::new(first), event))
}

/// The state the patch asks for, or every reason it is invalid.
fn apply_patch(
    caller: &Caller,
    current: &ChannelSettings,
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
        next.division_id = division_from(division, &mut violations);
    } else if current.id.is_none() {
        // First configuration by a division-scoped caller lands in its division.
        next.division_id = caller.division_id().map(str::to_owned);
    }
    if let Some(active) = patch.is_active {
        next.is_active = active;
    }
    violations.into_result()?;
    caller.require_write(next.division_id.as_deref())?;
    Ok(next)
}

/// Secrets are masked in every channel settings response, whatever the role.
pub fn masked(settings: ChannelSettings) -> ChannelSettings {
    ChannelSettings {
        config: config_document::mask(&settings.config),
        ..settings
    }
}

#[cfg(test)]
#[path = "channel_settings_tests.rs"]
mod tests;
