//! WhatsApp Cloud: the set-up at Meta that makes an account usable (phone number
//! registration, WABA webhook subscription), Embedded Signup, and health.
//!
//! Set-up runs after the account is saved, because Meta verifies the override callback
//! URL while subscribing: the gateway answers that handshake from the stored verify
//! token, so the account must exist first. When Meta refuses, the account stays, with
//! `setup_error` saying why (and `reauthorization_required` when the token was
//! rejected); the call still succeeds. UpdateAccount runs the set-up again when the
//! number, WABA, token or PIN changes, and on any update while `setup_error` is set
//! (unless the token was rejected: then only a new token helps).

use serde_json::Value;
use uuid::Uuid;

use super::provider_state::{Connected, StateChange};
use super::{Accounts, new_account_division};
use crate::domain::account::{Account, PHONE_NUMBER_ID, SetupState};
use crate::domain::caller::Caller;
use crate::domain::channel::Channel;
use crate::domain::config_document::Document;
use crate::domain::error::{Error, Violations};
use crate::domain::support::random_digits;
use crate::meta::MetaError;
use crate::meta::whatsapp::{Callback, Number};

pub const WABA_ID: &str = "waba_id";
pub const ACCESS_TOKEN: &str = "access_token";
pub const PIN: &str = "pin";

/// What GetWhatsAppHealth found.
pub struct WhatsAppHealth {
    pub account: Account,
    pub phone_number: Option<Value>,
    pub waba: Option<Value>,
    pub subscribed_apps: Option<Vec<Value>>,
    pub subscribed_ok: bool,
    pub reasons: Vec<String>,
}

/// What CompleteWhatsAppSignup did.
pub struct SignupResult {
    pub account: Account,
    pub waba_id: String,
    pub phone_number_id: String,
}

/// A WhatsApp Cloud API account: one Patchbay registers and subscribes at Meta. A
/// WhatsApp account without `waba_id` and `access_token` (a Twilio number) has no
/// set-up here.
pub fn is_cloud_account(channel: Channel, config: &Document) -> bool {
    let has = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    channel == Channel::Whatsapp && has(WABA_ID) && has(ACCESS_TOKEN) && has(PHONE_NUMBER_ID)
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

/// The set-up state of a new account: a Cloud API account starts PENDING, so that a
/// set-up that never ran to the end (a crash, a deadline) never reads as done.
pub fn initial_setup_state(channel: Channel, config: &Document) -> SetupState {
    if is_cloud_account(channel, config) {
        SetupState::Pending
    } else {
        SetupState::NotNeeded
    }
}

/// The set-up state an update stores: PENDING when it must run the set-up again (it
/// runs after the write), NOT_NEEDED for an account that is no Cloud account any more.
pub fn setup_state_after_update(current: &Account, next: &Account, redo: bool) -> SetupState {
    if !is_cloud_account(next.channel, &next.config) {
        SetupState::NotNeeded
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
    !is_cloud_account(current.channel, &current.config)
        || changed(PHONE_NUMBER_ID)
        || changed(WABA_ID)
        || changed(ACCESS_TOKEN)
        || changed(PIN)
}

/// Whether an update must run the set-up again.
pub fn setup_needed(current: &Account, next: &Account) -> bool {
    if !is_cloud_account(next.channel, &next.config) {
        return false;
    }
    let changed = |key: &str| current.config.get(key) != next.config.get(key);
    // A set-up that never finished is run again by any update; a failed one too, unless
    // Meta rejected the token: that needs a new token, which is a change below.
    let retry = match current.provider_state.setup_state {
        SetupState::Pending => true,
        SetupState::Failed => !next.provider_state.reauthorization_required,
        SetupState::Done | SetupState::NotNeeded => false,
    };
    retry
        || !is_cloud_account(current.channel, &current.config)
        || changed(PHONE_NUMBER_ID)
        || changed(WABA_ID)
        || changed(ACCESS_TOKEN)
        || changed(PIN)
}

fn text<'a>(config: &'a Document, key: &str) -> &'a str {
    config.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn number(account: &Account) -> Number<'_> {
    Number {
        phone_number_id: text(&account.config, PHONE_NUMBER_ID),
        waba_id: text(&account.config, WABA_ID),
        token: text(&account.config, ACCESS_TOKEN),
    }
}

impl Accounts {
    /// Registers the number and subscribes the WABA, then records how it went on the
    /// account. Only a failure to record is an error.
    pub(super) async fn set_up_whatsapp(
        &self,
        caller: &Caller,
        account: Account,
    ) -> Result<Account, Error> {
        if !is_cloud_account(account.channel, &account.config) {
            return Ok(account);
        }
        let outcome = self.run_whatsapp_setup(&account).await;
        if let Err(err) = &outcome {
            tracing::warn!(account_id = %account.id, error = %err, "WhatsApp set-up at Meta failed");
        }
        self.record_state(caller, account.id, StateChange::setup(outcome))
            .await
    }

    /// The two steps, each recorded as it completes: a set-up resumed after the number
    /// was registered goes on with the subscription.
    async fn run_whatsapp_setup(&self, account: &Account) -> Result<(), MetaError> {
        let number = number(account);
        if !account.provider_state.setup_registered {
            self.graph
                .register_phone_number(&number, text(&account.config, PIN))
                .await
                .map_err(|err| step("registering the phone number", err))?;
            if let Err(err) = self
                .store
                .mark_setup_registered(&account.workspace_id, account.id)
                .await
            {
                // Only a repeat of an idempotent step is at stake.
                tracing::warn!(account_id = %account.id, error = %err, "cannot record the registration step");
            }
        }
        let url = self
            .webhooks
            .for_account(account.channel, &account.account_key);
        let callback = Callback {
            url: &url,
            verify_token: &account.verify_token,
        };
        self.graph
            .subscribe_waba(&number, &callback)
            .await
            .map_err(|err| step("subscribing the WABA to webhooks", err))
    }

    /// Embedded Signup: code → business token, then the account `wa-<phone_number_id>`
    /// is created or re-authorised, registered and subscribed.
    pub async fn complete_whatsapp_signup(
        &self,
        caller: &Caller,
        code: &str,
        waba_id: &str,
        phone_number_id: &str,
        division_id: Option<String>,
    ) -> Result<SignupResult, Error> {
        let mut violations = Violations::new();
        if code.trim().is_empty() {
            violations.add("code", "is required");
        }
        for (field, value) in [("waba_id", waba_id), ("phone_number_id", phone_number_id)] {
            if value.is_empty() || value.len() > 32 || !value.chars().all(|c| c.is_ascii_digit()) {
                violations.add(field, "must be Meta's numeric id");
            }
        }
        let division_id = new_account_division(caller, division_id.as_deref(), &mut violations);
        violations.into_result()?;
        caller.require_write(division_id.as_deref())?;
        let app = self.meta_app()?;

        let token = self
            .graph
            .exchange_signup_code(app, code.trim())
            .await
            .map_err(|err| {
                err.into_exchange_error("code", "exchanging the Embedded Signup code")
            })?;
        let probe = Number {
            phone_number_id,
            waba_id,
            token: &token,
        };
        // The name Meta verified for the number, when it tells; the key otherwise.
        let display_name = match self.graph.phone_number_status(&probe).await {
            Ok(status) => status
                .get("verified_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            Err(err) => {
                tracing::info!(error = %err, "no verified name for the signed-up number");
                None
            }
        };
        let mut config = Document::new();
        config.insert(
            PHONE_NUMBER_ID.to_owned(),
            Value::String(phone_number_id.to_owned()),
        );
        config.insert(WABA_ID.to_owned(), Value::String(waba_id.to_owned()));
        config.insert(ACCESS_TOKEN.to_owned(), Value::String(token));
        let saved = self
            .save_connected(
                caller,
                Connected {
                    channel: Channel::Whatsapp,
                    account_key: format!("wa-{phone_number_id}"),
                    display_name,
                    division_id,
                    config,
                    token_expires_at: None,
                },
            )
            .await?;
        let account = self.set_up_whatsapp(caller, saved).await?;
        Ok(SignupResult {
            account,
            waba_id: waba_id.to_owned(),
            phone_number_id: phone_number_id.to_owned(),
        })
    }

    /// Asks Meta about the number, the WABA and its subscriptions, all at once.
    pub async fn whatsapp_health(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<WhatsAppHealth, Error> {
        let account = self.find_visible(caller, id).await?;
        if !is_cloud_account(account.channel, &account.config) {
            return Err(Error::FailedPrecondition(format!(
                "account {id} is not a WhatsApp Cloud account (its config needs phone_number_id, waba_id and access_token)"
            )));
        }
        let number = number(&account);
        let (phone, waba, apps) = tokio::join!(
            self.graph.phone_number_status(&number),
            self.graph.waba_info(&number),
            self.graph.waba_subscribed_apps(&number),
        );
        // Without every answer there is no verdict: a Meta outage is UNAVAILABLE.
        for result in [&phone, &waba, &apps] {
            if let Err(err) = result {
                if err.is_transient() {
                    return Err(err.clone().into_error("fetching WhatsApp health"));
                }
            }
        }
        let token_rejected = [&phone, &waba, &apps]
            .iter()
            .any(|result| matches!(result, Err(err) if err.is_invalid_token()));
        let mut reasons = Vec::new();
        let mut part = |what: &str, result: Result<Value, MetaError>| match result {
            Ok(value) => Some(value),
            Err(err) => {
                reasons.push(format!("{what}: {err}"));
                None
            }
        };
        let phone = part("phone number", phone);
        let waba = part("WABA", waba);
        let apps = part("subscribed apps", apps).map(|answer| match answer.get("data") {
            Some(Value::Array(apps)) => apps.clone(),
            _ => Vec::new(),
        });
        let webhook_url = self
            .webhooks
            .for_account(account.channel, &account.account_key);
        let app_id = self.meta_app.as_ref().map(|app| app.id.as_str());
        let subscribed_ok = apps.as_deref().is_some_and(|apps| subscribed(apps, app_id));
        reasons.extend(verdict(
            phone.as_ref(),
            waba.as_ref(),
            apps.as_deref(),
            app_id,
            &webhook_url,
        ));
        let account = if token_rejected {
            self.record_state(caller, account.id, StateChange::TokenRejected)
                .await?
        } else {
            account
        };
        Ok(WhatsAppHealth {
            account,
            phone_number: phone,
            waba,
            subscribed_apps: apps,
            subscribed_ok,
            reasons,
        })
    }
}

/// Names the step in Meta's error.
fn step(what: &str, err: MetaError) -> MetaError {
    match err {
        MetaError::Graph(mut graph) => {
            graph.message = format!("{what}: {}", graph.message);
            MetaError::Graph(graph)
        }
        MetaError::Unreachable(reason) => MetaError::Unreachable(format!("{reason} ({what})")),
        MetaError::Malformed(reason) => MetaError::Malformed(format!("{reason} ({what})")),
        MetaError::Refused(reason) => MetaError::Refused(format!("{reason} ({what})")),
        MetaError::NoApp => MetaError::NoApp,
    }
}

fn subscribed(apps: &[Value], app_id: Option<&str>) -> bool {
    match app_id {
        Some(id) => apps.iter().any(|app| {
            app.pointer("/whatsapp_business_api_data/id")
                .and_then(Value::as_str)
                == Some(id)
        }),
        None => !apps.is_empty(),
    }
}

/// Why a number is not healthy, from Meta's answers; empty when it is.
pub fn verdict(
    phone: Option<&Value>,
    waba: Option<&Value>,
    apps: Option<&[Value]>,
    app_id: Option<&str>,
    webhook_url: &str,
) -> Vec<String> {
    let field = |value: Option<&Value>, key: &str| {
        value
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut reasons = Vec::new();
    if phone.is_some() {
        let quality = field(phone, "quality_rating");
        if quality == "RED" {
            reasons.push("phone number quality rating is RED".to_owned());
        }
        let verification = field(phone, "code_verification_status");
        if !verification.is_empty() && verification != "VERIFIED" {
            reasons.push(format!("phone number code verification is {verification}"));
        }
        let name = field(phone, "name_status");
        if !name.is_empty() && !matches!(name.as_str(), "APPROVED" | "AVAILABLE_WITHOUT_REVIEW") {
            reasons.push(format!("display name status is {name}"));
        }
        let status = field(phone, "status");
        if !status.is_empty() && status != "CONNECTED" {
            reasons.push(format!("phone number status is {status}"));
        }
    }
    if waba.is_some() {
        let review = field(waba, "account_review_status");
        if !review.is_empty() && review != "APPROVED" {
            reasons.push(format!("WABA review status is {review}"));
        }
    }
    if let Some(apps) = apps {
        if !subscribed(apps, app_id) {
            reasons.push("the app is not subscribed to the WABA's webhooks".to_owned());
        } else {
            let overrides: Vec<&str> = apps
                .iter()
                .filter_map(|app| app.get("override_callback_uri").and_then(Value::as_str))
                .collect();
            if !overrides.is_empty() && !overrides.contains(&webhook_url) {
                reasons.push(format!(
                    "the WABA's webhooks go to {}, not to this account's webhook URL",
                    overrides.join(", ")
                ));
            }
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const URL: &str = "https://hooks.example.test/webhooks/whatsapp/wa-1";

    #[test]
    fn a_green_connected_subscribed_number_is_healthy() {
        let phone = json!({"quality_rating": "GREEN", "code_verification_status": "VERIFIED",
            "name_status": "APPROVED", "status": "CONNECTED"});
        let waba = json!({"account_review_status": "APPROVED"});
        let apps =
            [json!({"whatsapp_business_api_data": {"id": "app-1"}, "override_callback_uri": URL})];
        assert!(verdict(Some(&phone), Some(&waba), Some(&apps), Some("app-1"), URL).is_empty());
    }

    #[test]
    fn every_problem_is_a_reason() {
        let phone = json!({"quality_rating": "RED", "code_verification_status": "EXPIRED",
            "name_status": "DECLINED", "status": "FLAGGED"});
        let waba = json!({"account_review_status": "PENDING"});
        let reasons = verdict(Some(&phone), Some(&waba), Some(&[]), Some("app-1"), URL);
        assert_eq!(reasons.len(), 6, "{reasons:?}");
        let elsewhere = [json!({"whatsapp_business_api_data": {"id": "app-1"},
            "override_callback_uri": "https://old.example/hook"})];
        let reasons = verdict(None, None, Some(&elsewhere), Some("app-1"), URL);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("https://old.example/hook"));
    }

    #[test]
    fn pins_are_generated_kept_or_refused() {
        let cloud = |pin: Value| {
            let mut config = Document::new();
            for key in [PHONE_NUMBER_ID, WABA_ID, ACCESS_TOKEN] {
                config.insert(key.to_owned(), json!("1"));
            }
            config.insert(PIN.to_owned(), pin);
            config
        };
        let mut violations = Violations::new();
        let generated =
            with_pin(Channel::Whatsapp, cloud(Value::Null), &mut violations).expect("pin");
        let pin = generated[PIN].as_str().expect("string pin");
        assert!(pin.len() == 6 && pin.chars().all(|c| c.is_ascii_digit()));
        let kept =
            with_pin(Channel::Whatsapp, cloud(json!("123456")), &mut violations).expect("pin");
        assert_eq!(kept[PIN], json!("123456"));
        assert!(violations.into_result().is_ok());
        let mut violations = Violations::new();
        let _ = with_pin(Channel::Whatsapp, cloud(json!("12ab")), &mut violations);
        assert!(violations.into_result().is_err());
    }
}
