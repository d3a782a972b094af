//! The rules of a WhatsApp Cloud API account: which accounts have a set-up at Meta, its
//! PIN, when the set-up runs again, and the health verdict read from what Meta says of
//! the number, the WABA and its subscriptions.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Account, PHONE_NUMBER_ID, SetupState};
use crate::domain::channel::Channel;
use crate::domain::config_document::Document;
use crate::domain::error::{Error, Violations};
use crate::domain::ids::random_digits;

pub const WABA_ID: &str = "waba_id";
pub const ACCESS_TOKEN: &str = "access_token";
pub const PIN: &str = "pin";

/// A WhatsApp Cloud API account: one Patchbay registers and subscribes at Meta. A
/// WhatsApp account without `waba_id` and `access_token` (a Twilio number) has no
/// set-up here.
pub fn is_cloud_account(channel: Channel, config: &Document) -> bool {
    let has = |key: &str| !text(config, key).is_empty();
    channel == Channel::Whatsapp && has(WABA_ID) && has(ACCESS_TOKEN) && has(PHONE_NUMBER_ID)
}

/// A config value as text (empty when absent or not a string).
pub fn text<'a>(config: &'a Document, key: &str) -> &'a str {
    config.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The config of a Cloud API account gets its two-step verification PIN: the one given
/// (six digits), else a generated one, stored as a secret like any `pin`.
pub fn with_pin(
    channel: Channel,
    mut config: Document,
    violations: &mut Violations,
) -> Result<Document, Error> {
    if !is_cloud_account(channel, &config) {
        return Ok(config);
    }
    match config.get(PIN) {
        None | Some(Value::Null) => {
            config.insert(PIN.to_owned(), Value::String(random_digits(6)?));
        }
        Some(Value::String(pin)) if pin.len() == 6 && pin.chars().all(|c| c.is_ascii_digit()) => {}
        Some(_) => violations.add(
            "config.pin",
            "must be six digits (Meta's two-step verification PIN)",
        ),
    }
    Ok(config)
}

/// Whether the account has a set-up at Meta: a WhatsApp Cloud number (registration,
/// subscription, callback), or an Instagram Login account (its webhook subscription).
pub fn has_setup(account: &Account) -> bool {
    is_cloud_account(account.channel, &account.config) || super::tokens::is_instagram_login(account)
}

/// A WhatsApp account with a WABA and its token but no number yet (Embedded Signup's
/// FINISH_ONLY_WABA): its set-up waits for the number.
pub fn is_waba_only(channel: Channel, config: &Document) -> bool {
    let has = |key: &str| !text(config, key).is_empty();
    channel == Channel::Whatsapp && has(WABA_ID) && has(ACCESS_TOKEN) && !has(PHONE_NUMBER_ID)
}

/// The state of an account without a set-up to run now: awaiting its number, or none.
fn without_setup(account: &Account) -> SetupState {
    if is_waba_only(account.channel, &account.config) {
        SetupState::AwaitingNumber
    } else {
        SetupState::NotNeeded
    }
}

/// The set-up state of a new account: one with a set-up starts PENDING, so that a
/// set-up that never ran to the end (a crash, a deadline) never reads as done.
pub fn initial_setup_state(account: &Account) -> SetupState {
    if has_setup(account) {
        SetupState::Pending
    } else {
        without_setup(account)
    }
}

/// The set-up state an update stores: PENDING when it must run the set-up again (it
/// runs after the write), NOT_NEEDED for an account that has no set-up any more.
pub fn setup_state_after_update(current: &Account, next: &Account, redo: bool) -> SetupState {
    if !has_setup(next) {
        without_setup(next)
    } else if redo {
        SetupState::Pending
    } else {
        current.provider_state.setup_state
    }
}

/// Whether an update changes what the set-up registers (number, PIN, token, WABA): then
/// it starts over from its first step.
pub fn setup_inputs_changed(current: &Account, next: &Account) -> bool {
    let changed = |key: &str| current.config.get(key) != next.config.get(key);
    !has_setup(current)
        || [
            PHONE_NUMBER_ID,
            WABA_ID,
            ACCESS_TOKEN,
            PIN,
            INSTAGRAM_USER_ID,
        ]
        .into_iter()
        .any(changed)
}

/// The Instagram account id an Instagram Login account is subscribed for.
pub const INSTAGRAM_USER_ID: &str = "instagram_user_id";

/// Whether an update at `at` must run the set-up again.
pub fn setup_needed(current: &Account, next: &Account, at: DateTime<Utc>) -> bool {
    if !has_setup(next) {
        return false;
    }
    // Meta asked to wait before registering this number again: no update spends its
    // allowance before then (another number is another allowance). A set-up refused
    // for its PIN waits for another PIN: retrying the same one would only spend it.
    let same_number = current.config.get(PHONE_NUMBER_ID) == next.config.get(PHONE_NUMBER_ID);
    let same_pin = current.config.get(PIN) == next.config.get(PIN);
    let waiting = current
        .provider_state
        .setup_retry_after
        .is_some_and(|after| after > at);
    let pin_refused = current
        .provider_state
        .setup_error
        .as_deref()
        .is_some_and(|error| error.starts_with(super::registration::PIN_REFUSED));
    if same_number && (waiting || pin_refused && same_pin) {
        return false;
    }
    // A set-up that never finished is run again by any update; a failed one too, unless
    // Meta rejected the token: that needs a new token, which is a change below.
    let retry = match current.provider_state.setup_state {
        SetupState::Pending | SetupState::AwaitingNumber => true,
        SetupState::Failed => !next.provider_state.reauthorization_required,
        SetupState::Done | SetupState::NotNeeded => false,
    };
    // A WhatsApp Business app number's syncs not asked for yet, within Meta's window.
    let syncs = current
        .provider_state
        .coexistence
        .as_ref()
        .is_some_and(|coexistence| coexistence.may_request(at));
    retry || syncs || setup_inputs_changed(current, next)
}

/// How an Embedded Signup session finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupEvent {
    Finish,
    FinishOnlyWaba,
    /// A WhatsApp Business app number (coexistence).
    FinishBusinessAppOnboarding,
}

/// The fields of a CompleteWhatsAppSignup request: `phone_number_id` may be empty only
/// for a session without a number (only a WABA), or a business-app onboarding (the
/// WABA's one number is taken).
pub fn check_signup(
    code: &str,
    waba_id: &str,
    phone_number_id: &str,
    event: SignupEvent,
    violations: &mut Violations,
) {
    if code.trim().is_empty() {
        violations.add("code", "is required");
    }
    if !is_meta_id(waba_id) {
        violations.add("waba_id", "must be Meta's numeric id");
    }
    let may_be_empty = event != SignupEvent::Finish;
    if !(is_meta_id(phone_number_id) || may_be_empty && phone_number_id.is_empty()) {
        violations.add(
            "phone_number_id",
            if may_be_empty {
                "must be Meta's numeric id, or empty"
            } else {
                "must be Meta's numeric id (empty only for FINISH_ONLY_WABA and FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING)"
            },
        );
    }
}

fn is_meta_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= 32 && value.bytes().all(|b| b.is_ascii_digit())
}

/// The key of a signed-up account: the number's, or the WABA's until it has one.
pub fn signup_key(phone_number_id: &str, waba_id: &str) -> String {
    if phone_number_id.is_empty() {
        format!("waba-{waba_id}")
    } else {
        format!("wa-{phone_number_id}")
    }
}

/// The config of a signed-up number (or WABA, when `phone_number_id` is empty).
pub fn signup_config(phone_number_id: &str, waba_id: &str, token: String) -> Document {
    let mut config = Document::new();
    if !phone_number_id.is_empty() {
        config.insert(
            PHONE_NUMBER_ID.to_owned(),
            Value::String(phone_number_id.to_owned()),
        );
    }
    config.insert(WABA_ID.to_owned(), Value::String(waba_id.to_owned()));
    config.insert(ACCESS_TOKEN.to_owned(), Value::String(token));
    config
}

/// What Meta says of a phone number (GET /{phone_number_id}).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberStatus {
    pub display_phone_number: String,
    pub verified_name: String,
    pub quality_rating: String,
    pub code_verification_status: String,
    pub name_status: String,
    /// From `whatsapp_business_manager_messaging_limit` (Meta deprecated
    /// `messaging_limit_tier`, and sets the limit per business portfolio).
    pub messaging_limit_tier: String,
    pub throughput_level: String,
    pub status: String,
    /// `CLOUD_API` for a number on the Cloud API.
    pub platform_type: String,
    pub webhooks: WebhookConfiguration,
}

/// `webhook_configuration` of a number: the callback set on the number, on its WABA
/// (present only when the WABA has one), and the app's. Empty where absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookConfiguration {
    pub phone_number: String,
    pub whatsapp_business_account: String,
    pub application: String,
}

impl WebhookConfiguration {
    /// Where Meta sends the number's webhooks, resolved as Meta resolves it: the
    /// number's callback, else the WABA's, else the app's ("Webhook overrides").
    pub fn effective(&self) -> Option<&str> {
        [
            &self.phone_number,
            &self.whatsapp_business_account,
            &self.application,
        ]
        .into_iter()
        .map(String::as_str)
        .find(|url| !url.is_empty())
    }
}

/// The two places a number's webhooks may go to reach its account: the account's own
/// URL, and Patchbay's app-level callback (which routes by the number's id).
pub struct WebhookTargets<'a> {
    pub account: &'a str,
    pub app_level: &'a str,
}

/// What Meta says of a WhatsApp Business Account (GET /{waba_id}).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusinessAccount {
    pub id: String,
    pub name: String,
    pub account_review_status: String,
}

/// An app subscribed to a WABA's webhooks (GET /{waba_id}/subscribed_apps).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscribedApp {
    pub app_id: String,
    pub name: String,
    pub override_callback_uri: String,
}

/// Whether our app (any app, when none is configured) is subscribed.
pub fn subscribed(apps: &[SubscribedApp], app_id: Option<&str>) -> bool {
    match app_id {
        Some(id) => apps.iter().any(|app| app.app_id == id),
        None => !apps.is_empty(),
    }
}

pub use super::number_findings::{CHECK_CODES, Finding, findings, lifted_by_reading, verdict};

#[cfg(test)]
#[path = "whatsapp_tests.rs"]
mod tests;
