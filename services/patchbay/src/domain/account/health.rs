//! An account's health: the reasons that stand against it, each of a class, and when it
//! was last read. Its state (HEALTHY, DEGRADED, UNAVAILABLE) is never stored: it is
//! derived when read by the SDK's decision (`patchbay_sdk::health`), the same code a
//! client runs on its copy, so that a reason past its `until` stops counting by time
//! alone and the two sides never disagree.
//!
//! Two kinds of reasons:
//! - the account's own state gives some (its token refused or its refreshes exhausted:
//!   CREDENTIALS; its set-up pending, failed or waiting for a number: SETUP). They are
//!   [`settle`]d from that state on every read and every write, so they can never
//!   disagree with it (a replica of the previous version, which writes that state but
//!   not the health, is read right);
//! - what Meta says (its webhooks, the health round) gives the others, kept until a
//!   later word lifts them.

use chrono::{DateTime, Utc};
use patchbay_sdk::health::{self as decision, Class, State};
use serde::{Deserialize, Serialize};

use super::meta_health::Word;
use super::{ProviderState, SetupState};

/// What stands against an account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub reasons: Vec<HealthReason>,
    /// When Patchbay last read the account's health from Meta (a check, a round, a
    /// webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
}

/// One thing that stands against an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReason {
    /// Stable for code to read (`reauthorization_required`, `setup_failed`, …).
    pub code: String,
    #[serde(with = "class_name")]
    pub class: Class,
    /// In words; never a secret.
    pub detail: String,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl Health {
    /// The state the reasons still holding at `at` make of the account.
    pub fn state(&self, at: DateTime<Utc>) -> State {
        decision::state_of(
            self.reasons.iter().map(|reason| decision::Reason {
                class: reason.class,
                until: reason.until.map(|until| until.timestamp()),
            }),
            at.timestamp(),
        )
    }

    /// Whether `other` says something else: another reason, class or end (the details
    /// and the reading time aside). What makes a HEALTH_CHANGED event.
    pub fn differs_from(&self, other: &Health) -> bool {
        let key = |health: &Health| {
            let mut keys: Vec<_> = health
                .reasons
                .iter()
                .map(|reason| {
                    (
                        reason.code.clone(),
                        class_name::of(reason.class),
                        reason.until,
                    )
                })
                .collect();
            keys.sort();
            keys
        };
        key(self) != key(other)
    }
}

/// Meta's `words` applied to `health` at `at`: a reason Meta sets replaces the one of
/// its code (keeping its `since` while it held before), a lift removes its codes; the
/// reading's time is `checked_at`.
pub fn apply_words(health: &mut Health, words: &[Word], at: DateTime<Utc>) {
    for word in words {
        match word {
            // A word whose end has passed already says the reason no longer holds.
            Word::Set {
                code,
                until: Some(until),
                ..
            } if *until <= at => health.reasons.retain(|reason| reason.code != *code),
            Word::Set {
                code,
                class,
                detail,
                until,
            } => {
                let since = health
                    .reasons
                    .iter()
                    .find(|reason| reason.code == *code)
                    .map_or(at, |reason| reason.since);
                health.reasons.retain(|reason| reason.code != *code);
                health.reasons.push(HealthReason {
                    code: (*code).to_owned(),
                    class: *class,
                    detail: detail.clone(),
                    since,
                    until: *until,
                });
            }
            Word::Lift(codes) => health
                .reasons
                .retain(|reason| !codes.contains(&reason.code.as_str())),
        }
    }
    health.checked_at = Some(at);
}

/// Reason codes the account's own state gives.
pub mod codes {
    pub const REAUTHORIZATION_REQUIRED: &str = "reauthorization_required";
    pub const REFRESH_EXHAUSTED: &str = "refresh_exhausted";
    pub const SETUP_PENDING: &str = "setup_pending";
    pub const SETUP_FAILED: &str = "setup_failed";
    pub const AWAITING_NUMBER: &str = "awaiting_number";
}

/// `health` with the reasons the account's own `state` gives brought in line with it:
/// each such reason present exactly while the state says so, keeping its `since` when
/// it held before (`at` otherwise); Meta's reasons as they are.
pub fn settle(mut health: Health, state: &ProviderState, at: DateTime<Utc>) -> Health {
    let own = own_reasons(state);
    let since = |code: &str| {
        health
            .reasons
            .iter()
            .find(|reason| reason.code == code)
            .map_or(at, |reason| reason.since)
    };
    let settled: Vec<HealthReason> = own
        .into_iter()
        .map(|(code, class, detail)| HealthReason {
            since: since(code),
            code: code.to_owned(),
            class,
            detail,
            until: None,
        })
        .collect();
    health
        .reasons
        .retain(|reason| !matches!(reason.class, Class::Credentials | Class::Setup));
    health.reasons.splice(0..0, settled);
    health
}

/// The reasons an account's own state gives: (code, class, detail).
fn own_reasons(state: &ProviderState) -> Vec<(&'static str, Class, String)> {
    let mut reasons = Vec::new();
    if state.reauthorization_required {
        let detail = state
            .reauthorization_reason
            .clone()
            .unwrap_or_else(|| "Meta refused the account's token".to_owned());
        reasons.push((codes::REAUTHORIZATION_REQUIRED, Class::Credentials, detail));
    }
    if state.refresh_exhausted {
        reasons.push((
            codes::REFRESH_EXHAUSTED,
            Class::Credentials,
            "refreshing the token failed too many times in a row".to_owned(),
        ));
    }
    match state.setup_state {
        SetupState::Pending => reasons.push((
            codes::SETUP_PENDING,
            Class::Setup,
            "the set-up at Meta has not finished".to_owned(),
        )),
        SetupState::Failed => reasons.push((
            codes::SETUP_FAILED,
            Class::Setup,
            state
                .setup_error
                .clone()
                .unwrap_or_else(|| "Meta refused a step of the set-up".to_owned()),
        )),
        SetupState::AwaitingNumber => reasons.push((
            codes::AWAITING_NUMBER,
            Class::Setup,
            "the account waits for its phone number".to_owned(),
        )),
        SetupState::NotNeeded | SetupState::Done => {}
    }
    reasons
}

/// A class as stored: its name.
mod class_name {
    use patchbay_sdk::health::Class;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    const NAMES: [(Class, &str); 6] = [
        (Class::Credentials, "credentials"),
        (Class::Setup, "setup"),
        (Class::Enforcement, "enforcement"),
        (Class::Quality, "quality"),
        (Class::Configuration, "configuration"),
        (Class::Provider, "provider"),
    ];

    pub fn of(class: Class) -> &'static str {
        NAMES
            .iter()
            .find(|(known, _)| *known == class)
            .map_or("", |(_, name)| name)
    }

    pub fn serialize<S: Serializer>(class: &Class, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(of(*class))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Class, D::Error> {
        let name = String::deserialize(deserializer)?;
        NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(class, _)| *class)
            .ok_or_else(|| D::Error::custom(format!("unknown health class {name:?}")))
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
