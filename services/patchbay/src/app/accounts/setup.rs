//! The WhatsApp Cloud set-up at Meta that makes an account usable (phone number
//! registration, WABA webhook subscription), and the number's health.
//!
//! Set-up runs after the account is saved, because Meta verifies the override callback
//! URL while subscribing: the gateway answers that handshake from the stored verify
//! token, so the account must exist first. When Meta refuses, the account stays, with
//! `setup_error` saying why (and `reauthorization_required` when the token was
//! rejected); the call still succeeds. When the set-up runs again is the rule of
//! `domain::account::whatsapp`.

use uuid::Uuid;

use super::{Accounts, setup_outcome};
use crate::domain::account::StateChange;
use crate::domain::account::whatsapp::{
    self, ACCESS_TOKEN, BusinessAccount, NumberStatus, PIN, SubscribedApp, WABA_ID,
    is_cloud_account,
};
use crate::domain::{Account, Caller, Error};
use crate::meta::MetaError;
use crate::meta::whatsapp::{Callback, Number};

/// What GetWhatsAppHealth found: Meta's answers (`None` where Meta did not answer),
/// and every reason the number is not healthy.
pub struct WhatsAppHealth {
    pub account: Account,
    pub phone_number: Option<NumberStatus>,
    pub waba: Option<BusinessAccount>,
    pub subscribed_apps: Option<Vec<SubscribedApp>>,
    pub subscribed_ok: bool,
    pub reasons: Vec<String>,
}

/// The number of a Cloud account, and the token that acts for it.
pub(super) fn number(account: &Account) -> Number<'_> {
    Number {
        phone_number_id: whatsapp::text(&account.config, crate::domain::account::PHONE_NUMBER_ID),
        waba_id: whatsapp::text(&account.config, WABA_ID),
        token: whatsapp::text(&account.config, ACCESS_TOKEN),
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
        let outcome = self.run_whatsapp_setup(&account).await.map_err(|err| {
            let reason = self.meta_words(&account, &err);
            tracing::warn!(account_id = %account.id, error = %reason, "WhatsApp set-up at Meta failed");
            (err.is_invalid_token(), reason)
        });
        let phone_number_id = number(&account).phone_number_id;
        self.record_state(caller, account.id, setup_outcome(phone_number_id, outcome))
            .await
    }

    /// The two steps, each recorded as it completes: a set-up resumed after the number
    /// was registered goes on with the subscription.
    async fn run_whatsapp_setup(&self, account: &Account) -> Result<(), MetaError> {
        let number = number(account);
        if !account.provider_state.setup_registered {
            self.graph
                .register_phone_number(&number, whatsapp::text(&account.config, PIN))
                .await
                .map_err(|err| err.during("registering the phone number"))?;
            if let Err(err) = self
                .store
                .mark_setup_registered(&account.workspace_id, account.id, number.phone_number_id)
                .await
            {
                // Only a repeat of an idempotent step is at stake.
                tracing::warn!(account_id = %account.id, error = %err, "cannot record the registration step");
            }
        }
        let url = self.webhook_url(account);
        let callback = Callback {
            url: &url,
            verify_token: &account.verify_token,
        };
        self.graph
            .subscribe_waba(&number, &callback)
            .await
            .map_err(|err| err.during("subscribing the WABA to webhooks"))
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
        let errors = [
            phone.as_ref().err(),
            waba.as_ref().err(),
            apps.as_ref().err(),
        ];
        if let Some(err) = errors.iter().flatten().find(|err| err.is_transient()) {
            return Err((*err).clone().into_error("fetching WhatsApp health"));
        }
        let token_rejected = errors
            .iter()
            .flatten()
            .find(|err| err.is_invalid_token())
            .map(|err| self.meta_words(&account, err));
        let mut reasons = Vec::new();
        let phone = answered("phone number", phone, &mut reasons);
        let waba = answered("WABA", waba, &mut reasons);
        let apps = answered("subscribed apps", apps, &mut reasons);
        let app_id = self.meta_app.as_ref().map(|app| app.id.as_str());
        let subscribed_ok = apps
            .as_deref()
            .is_some_and(|apps| whatsapp::subscribed(apps, app_id));
        reasons.extend(whatsapp::verdict(
            phone.as_ref(),
            waba.as_ref(),
            apps.as_deref(),
            app_id,
            &self.webhook_url(&account),
        ));
        let account = match token_rejected {
            Some(reason) => {
                let change = StateChange::TokenRejected {
                    reason,
                    token: None,
                };
                self.record_state(caller, account.id, change).await?
            }
            None => account,
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

/// Meta's answer about `what`, or its error as a reason.
fn answered<T>(what: &str, result: Result<T, MetaError>, reasons: &mut Vec<String>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            reasons.push(format!("{what}: {err}"));
            None
        }
    }
}
