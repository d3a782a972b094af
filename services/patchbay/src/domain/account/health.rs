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

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use patchbay_sdk::health::{self as decision, Class, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::meta_health::Word;
use super::{ProviderState, SetupState};

/// What stands against an account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct Health {
    pub reasons: Vec<HealthReason>,
    /// When Patchbay last read the account's health from Meta (a check, a round, a
    /// webhook).
    pub checked_at: Option<DateTime<Utc>>,
    /// When Meta last spoke of each code (its webhook's `entry.time`, or the check's
    /// time), kept after a lift too: a word older than the last one about its code (a
    /// retried delivery, a replayed body) changes nothing.
    pub heard: BTreeMap<String, DateTime<Utc>>,
    /// Reasons of a class this version does not know (a newer replica's), kept as
    /// stored and written back, counted by nobody here.
    pub unknown: Vec<Value>,
    /// Meta's calls about this account that failed in a row (outages), and, while the
    /// PROVIDER reason holds, those that succeeded in a row since (`provider_outcome`).
    pub provider_failures: u32,
    pub provider_successes: u32,
}

/// Health as stored: each reason read on its own, so that one this version cannot read
/// is kept rather than losing the others.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    reasons: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    heard: BTreeMap<String, DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    provider_failures: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    provider_successes: u32,
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

impl From<Stored> for Health {
    fn from(stored: Stored) -> Health {
        let mut health = Health {
            checked_at: stored.checked_at,
            heard: stored.heard,
            provider_failures: stored.provider_failures,
            provider_successes: stored.provider_successes,
            ..Health::default()
        };
        for reason in stored.reasons {
            match serde_json::from_value::<HealthReason>(reason.clone()) {
                Ok(known) => health.reasons.push(known),
                Err(_) => health.unknown.push(reason),
            }
        }
        health
    }
}

impl From<Health> for Stored {
    fn from(health: Health) -> Stored {
        let mut reasons: Vec<Value> = health
            .reasons
            .iter()
            .filter_map(|reason| serde_json::to_value(reason).ok())
            .collect();
        reasons.extend(health.unknown);
        Stored {
            reasons,
            checked_at: health.checked_at,
            heard: health.heard,
            provider_failures: health.provider_failures,
            provider_successes: health.provider_successes,
        }
    }
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
/// its code where it stands (keeping its `since` while it held before), a lift removes
/// its codes, and a word older than the last heard about its code (or than the account,
/// `not_before`: said of the id's previous holder) changes nothing. The reading's time
/// is `checked_at`.
pub fn apply_words(
    health: &mut Health,
    words: &[Word],
    not_before: DateTime<Utc>,
    at: DateTime<Utc>,
) {
    // Meta's clock and ours may differ a little; a body from before the account by
    // more than that is of the id's previous holder.
    let slack = chrono::Duration::minutes(5);
    let not_before = not_before - slack;
    // Nothing is said later than now: a time from the future (Meta's clock a little
    // ahead, a relay's bad one) is taken as now, and a word kept as heard later than
    // now by more than the slack is no reason to drop the one at hand.
    let latest = at + slack;
    for word in words {
        let said = word.said_at().unwrap_or(at).min(at);
        if said < not_before {
            continue;
        }
        let newest = |health: &Health, code: &str| {
            health
                .heard
                .get(code)
                .is_none_or(|heard| *heard <= said || *heard > latest)
        };
        match word {
            Word::Set {
                code,
                class,
                detail,
                until,
                ..
            } if newest(health, code) => {
                health.heard.insert((*code).to_owned(), said);
                // A word whose end has passed already says the reason no longer holds.
                if until.is_some_and(|until| until <= at) {
                    health.reasons.retain(|reason| reason.code != *code);
                    continue;
                }
                let reason = HealthReason {
                    code: (*code).to_owned(),
                    class: *class,
                    detail: detail.clone(),
                    since: at,
                    until: *until,
                };
                match health.reasons.iter_mut().find(|held| held.code == *code) {
                    Some(held) => {
                        *held = HealthReason {
                            since: held.since,
                            ..reason
                        }
                    }
                    None => health.reasons.push(reason),
                }
            }
            Word::Set { .. } => {}
            Word::Lift { codes, .. } => {
                for code in codes.iter() {
                    if newest(health, code) {
                        health.heard.insert((*code).to_owned(), said);
                        health.reasons.retain(|reason| reason.code != *code);
                    }
                }
            }
        }
    }
    health.checked_at = Some(at);
}

/// Calls in a row about an account that Meta fails before it is PROVIDER, and that
/// succeed before that is lifted.
pub const PROVIDER_FAILURES: u32 = 3;
pub const PROVIDER_SUCCESSES: u32 = 2;
/// The PROVIDER reason's code.
pub const PROVIDER_FAILING: &str = "provider_failing";

/// What one call to Meta about the account came to (`ok`: answered; otherwise an
/// outage, `detail` saying which): PROVIDER after [`PROVIDER_FAILURES`] failures in a
/// row, lifted after [`PROVIDER_SUCCESSES`] successes in a row, so that one blip
/// neither sets nor clears it.
pub fn provider_outcome(health: &mut Health, ok: bool, detail: &str, at: DateTime<Utc>) {
    let failing = health.reasons.iter().any(|r| r.code == PROVIDER_FAILING);
    if ok {
        health.provider_failures = 0;
        if !failing {
            health.provider_successes = 0;
            return;
        }
        health.provider_successes += 1;
        if health.provider_successes >= PROVIDER_SUCCESSES {
            health.provider_successes = 0;
            health.reasons.retain(|r| r.code != PROVIDER_FAILING);
        }
        return;
    }
    health.provider_successes = 0;
    // Counted up to the threshold only: further outages write nothing more.
    health.provider_failures = (health.provider_failures + 1).min(PROVIDER_FAILURES);
    if !failing && health.provider_failures >= PROVIDER_FAILURES {
        health.reasons.push(HealthReason {
            code: PROVIDER_FAILING.to_owned(),
            class: Class::Provider,
            detail: format!(
                "Meta failed {} calls in a row about this account: {detail}",
                health.provider_failures
            ),
            since: at,
            until: None,
        });
    }
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
