//! What Meta's webhooks say about an account's health, read from a verified body: the
//! words of each entry, which `app::webhooks` records for the accounts the entry is
//! routed to. Pure and bounded: the body is read again only when it names one of the
//! fields below, and only those fields' values are kept.
//!
//! The payloads, as Meta's webhook reference documents them:
//! - `account_update` (WhatsApp, by WABA): `ACCOUNT_RESTRICTION` with
//!   `restriction_info[{restriction_type, expiration}]` (expiration a Unix time; some
//!   relays send ISO text), `DISABLED_UPDATE` with `ban_info.waba_ban_state`
//!   (`DISABLE`, `SCHEDULE_FOR_DISABLE`, `REINSTATE`), `ACCOUNT_VIOLATION` with
//!   `violation_info.violation_type`;
//! - `phone_number_quality_update` (by displayed number): `FLAGGED`, `UNFLAGGED`,
//!   `DOWNGRADE`, `UPGRADE` (Meta's current reference lists only `ONBOARDING` and
//!   `THROUGHPUT_UPGRADE`: since October 2025 a number is no longer flagged nor its
//!   limit lowered for quality, so these four come from older integrations and relays;
//!   a health reading of a CONNECTED number lifts `quality_flagged`, see
//!   `whatsapp::lifted_by_reading`). `THROUGHPUT_UPGRADE` lifts a lowered limit (1,000
//!   messages a second needs an unlimited portfolio); `ONBOARDING` says nothing. The
//!   limit from `max_daily_conversations_per_business`, then `current_limit` (which
//!   Meta removed in February 2026);
//! - `phone_number_name_update`: `decision` `REJECTED` (with `rejection_reason`) or
//!   `APPROVED`;
//! - `business_capability_update`: the limits alone, no trouble: nothing to record;
//! - Messenger's `messaging_policy_enforcement` (in `messaging[]`): `action` `block`,
//!   `warning` or `unblock`, with a `reason`.

use chrono::{DateTime, Utc};
use patchbay_sdk::health::Class;
use serde::Deserialize;
use serde_json::Value;

/// Reason codes Meta's words give.
pub mod codes {
    pub const ACCOUNT_RESTRICTED: &str = "account_restricted";
    pub const ACCOUNT_DISABLED: &str = "account_disabled";
    pub const DISABLE_SCHEDULED: &str = "disable_scheduled";
    pub const POLICY_VIOLATION: &str = "policy_violation";
    pub const QUALITY_FLAGGED: &str = "quality_flagged";
    pub const MESSAGING_LIMIT_LOWERED: &str = "messaging_limit_lowered";
    pub const NAME_REJECTED: &str = "name_rejected";
    pub const PAGE_BLOCKED: &str = "page_blocked";
    pub const POLICY_WARNING: &str = "policy_warning";
}

/// What a body that says something about health names: the WhatsApp fields, and
/// Messenger's `policy_enforcement` event.
const NEEDLES: [&str; 4] = [
    "account_update",
    "phone_number_quality_update",
    "phone_number_name_update",
    "policy_enforcement",
];
/// Most entries read (as routing reads them), and changes or events of one entry.
const MAX_ENTRIES: usize = 1000;
const MAX_ITEMS_PER_ENTRY: usize = 64;
/// Longest detail kept from Meta's words.
const MAX_DETAIL: usize = 300;

/// One thing Meta says about an account's health, and when it said it (the entry's
/// `time`; `None`: now, a check's reading).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Word {
    /// This reason holds (until `until`, when Meta gives an end).
    Set {
        code: &'static str,
        class: Class,
        detail: String,
        until: Option<DateTime<Utc>>,
        at: Option<DateTime<Utc>>,
    },
    /// These reasons no longer hold.
    Lift {
        codes: &'static [&'static str],
        at: Option<DateTime<Utc>>,
    },
}

impl Word {
    pub fn said_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Word::Set { at, .. } | Word::Lift { at, .. } => *at,
        }
    }

    fn lift(codes: &'static [&'static str]) -> Word {
        Word::Lift { codes, at: None }
    }

    fn said(mut self, when: Option<DateTime<Utc>>) -> Word {
        match &mut self {
            Word::Set { at, .. } | Word::Lift { at, .. } => *at = when,
        }
        self
    }
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    object: Value,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    time: Value,
    #[serde(default)]
    changes: Vec<Change>,
    #[serde(default)]
    messaging: Vec<Value>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: Value,
    #[serde(default)]
    value: Option<Value>,
}

/// The WhatsApp fields that say something about health.
const HEALTH_FIELDS: [&str; 3] = [
    "account_update",
    "phone_number_quality_update",
    "phone_number_name_update",
];

/// Meta's words about health in a verified body, by entry index (the index routing
/// gives its deliveries). Empty for a body that names none of the fields.
///
/// Only an entry whose changes all speak of health, and name at most one number, is
/// read: routing sends such an entry exactly to the accounts it is about (the WABA's,
/// or the number's), so a word never lands on an account it does not name. Other
/// entries (a message beside a quality update, two numbers in one entry) say nothing
/// here. WhatsApp's fields count only in a WhatsApp body, Messenger's event only in a
/// page's.
pub fn words(raw: &[u8]) -> Vec<(usize, Vec<Word>)> {
    let names_one = NEEDLES.iter().any(|field| {
        raw.windows(field.len())
            .any(|window| window == field.as_bytes())
    });
    if !names_one {
        return Vec::new();
    }
    let Ok(body) = serde_json::from_slice::<Body>(raw) else {
        return Vec::new();
    };
    let object = body.object.as_str().unwrap_or_default();
    body.entry
        .iter()
        .take(MAX_ENTRIES)
        .enumerate()
        .filter_map(|(at, entry)| {
            // A WhatsApp entry's `time` is in seconds; a page's in milliseconds (Meta's
            // Messenger webhook examples: `"time": 1570053170926`).
            let when = entry.time.as_i64().and_then(|time| match object {
                "page" => DateTime::from_timestamp_millis(time),
                _ => DateTime::from_timestamp(time, 0),
            });
            let said = match object {
                "whatsapp_business_account" => whatsapp_entry_words(entry),
                "page" => entry
                    .messaging
                    .iter()
                    .take(MAX_ITEMS_PER_ENTRY)
                    .filter_map(|event| event.get("policy_enforcement"))
                    .flat_map(enforcement_words)
                    .collect(),
                _ => Vec::new(),
            };
            let said: Vec<Word> = said.into_iter().map(|word| word.said(when)).collect();
            (!said.is_empty()).then_some((at, said))
        })
        .collect()
}

/// A WhatsApp entry's words: only when every change is a health field, and they name
/// one number at most.
fn whatsapp_entry_words(entry: &Entry) -> Vec<Word> {
    if entry.changes.len() > MAX_ITEMS_PER_ENTRY {
        return Vec::new();
    }
    let mut numbers = Vec::new();
    for change in &entry.changes {
        let field = change.field.as_str().unwrap_or_default();
        if !HEALTH_FIELDS.contains(&field) {
            return Vec::new();
        }
        let value = change.value.as_ref().unwrap_or(&Value::Null);
        let number = value
            .get("display_phone_number")
            .or_else(|| value.get("phone_number"));
        if let Some(number) = number
            && !numbers.contains(&number)
        {
            numbers.push(number);
        }
    }
    if numbers.len() > 1 {
        return Vec::new();
    }
    entry
        .changes
        .iter()
        .filter_map(|change| {
            let field = change.field.as_str()?;
            Some(change_words(field, change.value.as_ref()?))
        })
        .flatten()
        .collect()
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Meta's text, cut to a detail's length (never a secret: these fields carry none).
fn detail(text: String) -> String {
    if text.len() <= MAX_DETAIL {
        return text;
    }
    let mut end = MAX_DETAIL;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn set(code: &'static str, class: Class, words: String) -> Word {
    Word::Set {
        code,
        class,
        detail: detail(words),
        until: None,
        at: None,
    }
}

fn change_words(field: &str, value: &Value) -> Vec<Word> {
    use codes::*;
    match field {
        "account_update" => match text(value, "event") {
            "ACCOUNT_RESTRICTION" => vec![restriction(value)],
            "DISABLED_UPDATE" => {
                let ban = value.get("ban_info").unwrap_or(&Value::Null);
                let date = text(ban, "waba_ban_date");
                match text(ban, "waba_ban_state") {
                    "DISABLE" => vec![set(
                        ACCOUNT_DISABLED,
                        Class::Enforcement,
                        format!("Meta disabled the WhatsApp Business Account {date}")
                            .trim_end()
                            .to_owned(),
                    )],
                    "SCHEDULE_FOR_DISABLE" => vec![set(
                        DISABLE_SCHEDULED,
                        Class::Quality,
                        format!(
                            "Meta scheduled the WhatsApp Business Account to be disabled {date}"
                        )
                        .trim_end()
                        .to_owned(),
                    )],
                    "REINSTATE" => vec![Word::lift(&[ACCOUNT_DISABLED, DISABLE_SCHEDULED])],
                    _ => Vec::new(),
                }
            }
            "ACCOUNT_VIOLATION" => {
                let kind = value
                    .get("violation_info")
                    .map(|info| text(info, "violation_type"))
                    .unwrap_or_default();
                vec![set(
                    POLICY_VIOLATION,
                    Class::Quality,
                    format!("Meta reported a policy violation: {kind}"),
                )]
            }
            _ => Vec::new(),
        },
        "phone_number_quality_update" => {
            let limit = value
                .get("max_daily_conversations_per_business")
                .or_else(|| value.get("current_limit"))
                .map(|limit| match limit {
                    Value::String(limit) => limit.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            match text(value, "event") {
                "FLAGGED" => vec![set(
                    QUALITY_FLAGGED,
                    Class::Quality,
                    "Meta flagged the number's quality".to_owned(),
                )],
                "UNFLAGGED" => vec![Word::lift(&[QUALITY_FLAGGED])],
                "DOWNGRADE" => vec![set(
                    MESSAGING_LIMIT_LOWERED,
                    Class::Quality,
                    format!("Meta lowered the messaging limit to {limit}"),
                )],
                "UPGRADE" | "THROUGHPUT_UPGRADE" => vec![Word::lift(&[MESSAGING_LIMIT_LOWERED])],
                _ => Vec::new(),
            }
        }
        "phone_number_name_update" => match text(value, "decision") {
            "REJECTED" => vec![set(
                NAME_REJECTED,
                Class::Quality,
                format!(
                    "Meta rejected the display name {:?}: {}",
                    text(value, "requested_verified_name"),
                    text(value, "rejection_reason")
                ),
            )],
            "APPROVED" => vec![Word::lift(&[NAME_REJECTED])],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// ACCOUNT_RESTRICTION: what is restricted, until the latest expiration Meta gives; a
/// restriction with none listed lifts it.
fn restriction(value: &Value) -> Word {
    let restrictions: Vec<&Value> = value
        .get("restriction_info")
        .and_then(Value::as_array)
        .map(|list| list.iter().take(MAX_ITEMS_PER_ENTRY).collect())
        .unwrap_or_default();
    if restrictions.is_empty() {
        return Word::lift(&[codes::ACCOUNT_RESTRICTED]);
    }
    let kinds: Vec<&str> = restrictions
        .iter()
        .map(|r| text(r, "restriction_type"))
        .filter(|kind| !kind.is_empty())
        .collect();
    let until = restrictions
        .iter()
        .filter_map(|r| expiration(r.get("expiration")?))
        .max();
    Word::Set {
        code: codes::ACCOUNT_RESTRICTED,
        class: Class::Enforcement,
        detail: detail(format!("Meta restricted the account: {}", kinds.join(", "))),
        until,
        at: None,
    }
}

/// An expiration as Meta documents it (Unix seconds), or as relays send it (RFC 3339,
/// or `+0000` offsets).
fn expiration(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(seconds) => DateTime::from_timestamp(seconds.as_i64()?, 0),
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
            .ok()
            .map(|at| at.with_timezone(&Utc)),
        _ => None,
    }
}

fn enforcement_words(enforcement: &Value) -> Vec<Word> {
    use codes::*;
    let reason = text(enforcement, "reason").to_owned();
    match text(enforcement, "action") {
        "block" => vec![set(PAGE_BLOCKED, Class::Enforcement, reason)],
        "warning" => vec![set(POLICY_WARNING, Class::Quality, reason)],
        "unblock" => vec![Word::lift(&[PAGE_BLOCKED, POLICY_WARNING])],
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[path = "meta_health_tests.rs"]
mod tests;
