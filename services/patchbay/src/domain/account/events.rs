//! What happened to an account, read from its state before and after a write: the
//! events `WatchAccountEvents` streams. Pure: the store records them in the write's
//! transaction, without any secret (the account is read and masked for each watcher).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::health::Health;
use super::{Account, Ownership, SetupState};
use crate::domain::channel::Channel;

/// One recorded event: which account, what, why and when. Its division and channel
/// are the account's when it happened, what watches filter on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountEvent {
    pub revision: i64,
    pub account_id: Uuid,
    pub channel: Channel,
    pub division_id: Option<String>,
    pub kind: AccountEventKind,
    pub reason: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// HEALTH_CHANGED: the account's health before the change.
    pub previous_health: Option<Health>,
}

/// The kinds of account event, as the API names them (`ACCOUNT_EVENT_KIND_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountEventKind {
    Created,
    Updated,
    Deleted,
    DefaultChanged,
    SetupFailed,
    SetupSucceeded,
    ReauthorizationRequired,
    Reauthorized,
    TokenExpiring,
    TokenRefreshed,
    RefreshExhausted,
    OwnershipLost,
    HealthChanged,
}

impl AccountEventKind {
    pub const ALL: [AccountEventKind; 13] = [
        AccountEventKind::Created,
        AccountEventKind::Updated,
        AccountEventKind::Deleted,
        AccountEventKind::DefaultChanged,
        AccountEventKind::SetupFailed,
        AccountEventKind::SetupSucceeded,
        AccountEventKind::ReauthorizationRequired,
        AccountEventKind::Reauthorized,
        AccountEventKind::TokenExpiring,
        AccountEventKind::TokenRefreshed,
        AccountEventKind::RefreshExhausted,
        AccountEventKind::OwnershipLost,
        AccountEventKind::HealthChanged,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountEventKind::Created => "created",
            AccountEventKind::Updated => "updated",
            AccountEventKind::Deleted => "deleted",
            AccountEventKind::DefaultChanged => "default_changed",
            AccountEventKind::SetupFailed => "setup_failed",
            AccountEventKind::SetupSucceeded => "setup_succeeded",
            AccountEventKind::ReauthorizationRequired => "reauthorization_required",
            AccountEventKind::Reauthorized => "reauthorized",
            AccountEventKind::TokenExpiring => "token_expiring",
            AccountEventKind::TokenRefreshed => "token_refreshed",
            AccountEventKind::RefreshExhausted => "refresh_exhausted",
            AccountEventKind::OwnershipLost => "ownership_lost",
            AccountEventKind::HealthChanged => "health_changed",
        }
    }

    pub fn parse(name: &str) -> Option<AccountEventKind> {
        AccountEventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// One event of a write: its kind, and why (never a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccountEvent {
    pub kind: AccountEventKind,
    pub reason: Option<String>,
    /// HEALTH_CHANGED: the health before the write.
    pub previous_health: Option<Health>,
}

fn event(kind: AccountEventKind, reason: Option<String>) -> NewAccountEvent {
    NewAccountEvent {
        kind,
        reason,
        previous_health: None,
    }
}

/// The events of a write from `before` to `after` (`None`: not there, or deleted), in
/// the order they are numbered.
pub fn account_events(before: Option<&Account>, after: Option<&Account>) -> Vec<NewAccountEvent> {
    use AccountEventKind as Kind;
    let (before, after) = match (before, after) {
        (None, None) => return Vec::new(),
        (None, Some(created)) => {
            let mut events = vec![event(Kind::Created, None)];
            if created.is_default {
                events.push(event(Kind::DefaultChanged, None));
            }
            return events;
        }
        (Some(_), None) => return vec![event(Kind::Deleted, None)],
        (Some(before), Some(after)) => (before, after),
    };
    let mut events = Vec::new();
    let record_changed = before.account_key != after.account_key
        || before.display_name != after.display_name
        || before.is_active != after.is_active
        || before.division_id != after.division_id
        || before.config != after.config;
    let (was, now) = (&before.provider_state, &after.provider_state);
    if record_changed && now.token_refreshed_at == was.token_refreshed_at {
        events.push(event(Kind::Updated, None));
    }
    if after.is_default && !before.is_default {
        events.push(event(Kind::DefaultChanged, None));
    }
    if now.setup_state != was.setup_state || now.setup_error != was.setup_error {
        match now.setup_state {
            SetupState::Failed => events.push(event(Kind::SetupFailed, now.setup_error.clone())),
            SetupState::Done => events.push(event(Kind::SetupSucceeded, None)),
            SetupState::Pending | SetupState::NotNeeded | SetupState::AwaitingNumber => {}
        }
    }
    if now.reauthorization_required && !was.reauthorization_required {
        events.push(event(
            Kind::ReauthorizationRequired,
            now.reauthorization_reason.clone(),
        ));
    }
    if was.reauthorization_required && !now.reauthorization_required {
        events.push(event(Kind::Reauthorized, None));
    }
    if now.token_refreshed_at != was.token_refreshed_at && now.token_refreshed_at.is_some() {
        events.push(event(Kind::TokenRefreshed, None));
    }
    if let Some(days) = now.token_warned_days
        && was.token_warned_days.is_none_or(|warned| days < warned)
    {
        events.push(event(
            Kind::TokenExpiring,
            Some(format!("the token expires within {days} days")),
        ));
    }
    if now.refresh_exhausted && !was.refresh_exhausted {
        events.push(event(
            Kind::RefreshExhausted,
            Some(format!(
                "refreshing the token failed {} times in a row",
                now.refresh_failures
            )),
        ));
    }
    if now.ownership == Ownership::Lost && was.ownership != Ownership::Lost {
        // Names no other workspace, nor the account that took the id.
        events.push(event(
            Kind::OwnershipLost,
            Some("another account took the provider id through a flow Meta vouches for".to_owned()),
        ));
    }
    // Last: what the write made of the account's health, beside what it was.
    if now.health.differs_from(&was.health) {
        events.push(NewAccountEvent {
            kind: Kind::HealthChanged,
            reason: None,
            previous_health: Some(was.health.clone()),
        });
    }
    events
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
