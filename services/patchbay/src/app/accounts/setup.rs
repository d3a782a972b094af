//! The WhatsApp Cloud set-up at Meta that makes an account usable (phone number
//! registration, WABA webhook subscription), and the number's health.
//!
//! Set-up runs after the account is saved, because Meta verifies the override callback
//! URL while subscribing: the gateway answers that handshake from the stored verify
//! token, so the account must exist first. When Meta refuses, the account stays, with
//! `setup_error` saying why (and `reauthorization_required` when the token was
//! rejected); the call still succeeds. When the set-up runs again is the rule of
//! `domain::account::whatsapp`.

use chrono::{DateTime, Utc};

use super::Accounts;
use crate::domain::account::registration::{self, RegisterAnswer};
use crate::domain::account::tokens::is_instagram_login;
use crate::domain::account::whatsapp::{self, ACCESS_TOKEN, PIN, WABA_ID, is_cloud_account};
use crate::domain::account::{self, StateChange};
use crate::domain::ids::now;
use crate::domain::{Account, Caller, Channel, Error};
use crate::meta::whatsapp::{Callback, Number};
use crate::meta::{Failure, MetaError};

/// The number of a Cloud account, and the token that acts for it.
pub(super) fn number(account: &Account) -> Number<'_> {
    Number {
        phone_number_id: whatsapp::text(&account.config, crate::domain::account::PHONE_NUMBER_ID),
        waba_id: whatsapp::text(&account.config, WABA_ID),
        token: whatsapp::text(&account.config, ACCESS_TOKEN),
    }
}

/// Why a set-up stopped: Meta's words (secrets scrubbed), whether Meta rejected the
/// token, and until when Meta asked to wait.
pub(super) struct SetupStop {
    pub(super) reason: String,
    pub(super) token_rejected: bool,
    pub(super) retry_after: Option<DateTime<Utc>>,
}

impl Accounts {
    /// Runs the account's set-up at Meta, if it has one (`whatsapp::has_setup`), and
    /// records how it went. Only a failure to record is an error.
    pub(super) async fn set_up(&self, caller: &Caller, account: Account) -> Result<Account, Error> {
        if is_cloud_account(account.channel, &account.config) {
            self.set_up_whatsapp(caller, account).await
        } else if is_instagram_login(&account) {
            self.set_up_instagram(caller, account).await
        } else {
            Ok(account)
        }
    }

    /// Sets the number up at Meta, then records how it went on the account. Only a
    /// failure to record is an error.
    async fn set_up_whatsapp(&self, caller: &Caller, account: Account) -> Result<Account, Error> {
        if !is_cloud_account(account.channel, &account.config) {
            return Ok(account);
        }
        let phone_number_id = number(&account).phone_number_id.to_owned();
        let outcome = self.run_whatsapp_setup(&account).await;
        let display_phone_number = match outcome {
            Ok(display_phone_number) => display_phone_number,
            Err(stop) => {
                tracing::warn!(account_id = %account.id, error = %stop.reason, "WhatsApp set-up at Meta failed");
                let change = StateChange::SetupFailed {
                    reason: stop.reason,
                    token_rejected: stop.token_rejected,
                    retry_after: stop.retry_after,
                };
                let account = self.record_state(caller, account.id, change).await?;
                // A failed set-up may still be Meta's word on the number (debug_token).
                return Ok(self.confirm_ownership(caller, account).await);
            }
        };
        // Meta accepted the account's token for the number's callback: the number is
        // the account's, taken from any former owner. The account is read again: the
        // former owner is made LOST only for a taking that holds, by an account that
        // still names the number and its WABA (a set-up of what it no longer names
        // records nothing).
        let key = account::ownership::claim_key(&account).unwrap_or_default();
        let still_named = self
            .store
            .accounts()
            .find_account(&account.workspace_id, account.id)
            .await?
            .is_some_and(|now| account::ownership::claim_key(&now).as_deref() == Some(&key));
        if !still_named {
            return self.find_visible(caller, account.id).await;
        }
        let succeeded = StateChange::SetupSucceeded {
            provider_id: key,
            display_phone_number,
            takes_id: true,
        };
        let taken = self
            .take_then(
                Channel::Whatsapp,
                Some(phone_number_id.as_str()),
                Some(account.id),
                || self.record_state(caller, account.id, succeeded.clone()),
            )
            .await;
        let account = match taken {
            Ok(account) => account,
            // Another taking won twice in a row: Meta sends the number to this URL, and
            // routing sends it to the other owner. Said, for an update to settle.
            Err(Error::AlreadyExists { .. }) => {
                let change = StateChange::SetupFailed {
                    reason: "Meta took the number's callback, but another account took the number at the same moment; update the account to run the set-up again".to_owned(),
                    token_rejected: false,
                    retry_after: None,
                };
                return self.record_state(caller, account.id, change).await;
            }
            Err(err) => return Err(err),
        };
        self.request_coexistence_syncs(caller, account).await
    }

    /// The set-up as Meta's documentation has it, each step idempotent at Meta:
    /// 1. read the number (`status`, `platform_type`, `display_phone_number`);
    /// 2. register it, only when it is not on the Cloud API yet (`status` not
    ///    CONNECTED: registering a registered number asks for its two-step PIN again),
    ///    within Meta's allowance of 10 in 72 hours;
    /// 3. subscribe our app to the WABA, when it is not subscribed yet;
    /// 4. set the number's own callback to the account's URL: Meta sends a number's
    ///    webhooks to its own callback before the WABA's, so two numbers of one WABA
    ///    each reach their own account;
    /// 5. remove a WABA-level callback an earlier version set, once every number of the
    ///    WABA has its own.
    ///
    /// Returns how Meta displays the number.
    async fn run_whatsapp_setup(&self, account: &Account) -> Result<Option<String>, SetupStop> {
        let number = number(account);
        let stop = |err: MetaError| self.setup_stop(account, err);
        let on_cloud = self
            .graph
            .whatsapp()
            .number_on_cloud(&number)
            .await
            .map_err(|err| stop(err.during("reading the phone number")))?;
        // A WhatsApp Business app number is never registered: that would disconnect
        // the app ("Onboard WhatsApp Business app users").
        let business_app = account.provider_state.coexistence.is_some();
        // Not on the Cloud API yet: not CONNECTED, or (as Chatwoot reads it) CONNECTED
        // with no platform (`NOT_APPLICABLE`), which still needs registering.
        let on_cloud_api =
            on_cloud.status == "CONNECTED" && on_cloud.platform_type != "NOT_APPLICABLE";
        if !account.provider_state.setup_registered && !on_cloud_api && !business_app {
            self.register_within_allowance(account, &number).await?;
        }
        let apps = self
            .graph
            .whatsapp()
            .waba_subscribed_apps(&number)
            .await
            .map_err(|err| stop(err.during("reading the WABA's subscribed apps")))?;
        let app_id = self.meta_app.as_ref().map(|app| app.id.as_str());
        let ours = match app_id {
            Some(id) => apps.iter().find(|app| app.app_id == id),
            None => apps.first(),
        };
        if ours.is_none() {
            self.graph
                .whatsapp()
                .subscribe_app_to_waba(&number)
                .await
                .map_err(|err| stop(err.during("subscribing the app to the WABA")))?;
        }
        let url = self.webhook_url(account);
        let callback = Callback {
            url: &url,
            verify_token: &account.verify_token,
        };
        self.graph
            .whatsapp()
            .set_number_callback(&number, &callback)
            .await
            .map_err(|err| stop(err.during("setting the number's webhook callback")))?;
        // Meta took the token for the number's callback: the number's webhooks come to
        // the account's URL from now on, and the set-up is done. Removing a WABA
        // callback is tidying up after an earlier version: best effort, logged.
        if ours.is_some_and(|app| !app.override_callback_uri.is_empty())
            && let Err(err) = self.remove_waba_callback(&number).await
        {
            let words = self.meta_words(account, &err);
            tracing::warn!(account_id = %account.id, error = %words, "the WABA's callback could not be removed; the next set-up tries again");
        }
        Ok(Some(on_cloud.display_phone_number).filter(|shown| !shown.is_empty()))
    }

    /// Removes the WABA-level callback once every number of the WABA has its own.
    async fn remove_waba_callback(&self, number: &Number<'_>) -> Result<(), MetaError> {
        let numbers = self
            .graph
            .whatsapp()
            .waba_numbers(number)
            .await
            .map_err(|err| err.during("reading the WABA's numbers"))?;
        if numbers.iter().all(|number| number.own_callback) {
            self.graph
                .whatsapp()
                .subscribe_app_to_waba(number)
                .await
                .map_err(|err| err.during("removing the WABA's callback"))?;
        }
        Ok(())
    }

    /// Registers the number with the account's PIN, if Meta's allowance for the number
    /// has room (a place is reserved first, and given back when Meta never judged the
    /// attempt), and records the step.
    async fn register_within_allowance(
        &self,
        account: &Account,
        number: &Number<'_>,
    ) -> Result<(), SetupStop> {
        let at = now();
        let reserved = self
            .store
            .whatsapp_registrations()
            .reserve_register_attempt(number.phone_number_id, at)
            .await;
        match reserved {
            Ok(None) => {}
            Ok(Some(until)) => return Err(wait_for_allowance(until, None)),
            Err(err) => {
                return Err(SetupStop {
                    reason: format!("the register allowance could not be read: {err}"),
                    token_rejected: false,
                    retry_after: None,
                });
            }
        }
        let result = self
            .graph
            .whatsapp()
            .register_phone_number(number, whatsapp::text(&account.config, PIN))
            .await;
        let answer = register_answer(&result);
        let settled = self
            .store
            .whatsapp_registrations()
            .settle_register_attempt(number.phone_number_id, at, answer)
            .await;
        if let Err(err) = result {
            let code = match &err {
                MetaError::Graph(graph) => graph.code,
                _ => None,
            };
            if code == Some(registration::PIN_MISMATCH) {
                return Err(SetupStop {
                    reason: self
                        .meta_words(account, &format!("{} ({err})", registration::PIN_REFUSED)),
                    token_rejected: false,
                    retry_after: None,
                });
            }
            let waiting = settled.ok().and_then(|s| s.wait_until(now()));
            if let Some(until) = waiting {
                return Err(wait_for_allowance(
                    until,
                    Some(self.meta_words(account, &err)),
                ));
            }
            return Err(self.setup_stop(account, err.during("registering the phone number")));
        }
        if let Err(err) = self
            .store
            .accounts()
            .mark_setup_registered(&account.workspace_id, account.id, number.phone_number_id)
            .await
        {
            // Only a repeat of a step Meta takes again (the number is CONNECTED now) is
            // at stake.
            tracing::warn!(account_id = %account.id, error = %err, "cannot record the registration step");
        }
        Ok(())
    }

    pub(super) fn setup_stop(&self, account: &Account, err: MetaError) -> SetupStop {
        SetupStop {
            reason: self.meta_words(account, &err),
            token_rejected: err.is_invalid_token(),
            retry_after: None,
        }
    }
}

/// Whether Meta judged a register call for the number, and what it said: only such
/// calls spend the number's allowance. No answer, a server error or a rate limit, and a
/// refused token, app or permission never reached the number.
fn register_answer(result: &Result<(), MetaError>) -> RegisterAnswer {
    match result {
        Ok(()) => RegisterAnswer::Accepted,
        Err(err @ MetaError::Graph(graph))
            if err.failure() == Failure::Configuration
                && graph.http_status.is_client_error()
                && graph.http_status != reqwest::StatusCode::NOT_FOUND
                && !graph.code.is_some_and(is_permission_code) =>
        {
            RegisterAnswer::Refused { code: graph.code }
        }
        Err(_) => RegisterAnswer::NotCounted,
    }
}

/// Meta's permission errors (10, and 200 to 299): the app or token may not act, so the
/// number was never asked about.
fn is_permission_code(code: i64) -> bool {
    code == 10 || (200..=299).contains(&code)
}

/// The set-up waits for the number's register allowance (Meta's 133015 or 133016, or
/// the 10 attempts of 72 hours counted here).
fn wait_for_allowance(until: DateTime<Utc>, meta_said: Option<String>) -> SetupStop {
    let said = meta_said
        .map(|words| format!(" ({words})"))
        .unwrap_or_default();
    SetupStop {
        reason: format!(
            "Meta allows a number 10 registrations in 72 hours and asks to wait{said}: the set-up runs again with an update after {}",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        token_rejected: false,
        retry_after: Some(until),
    }
}
