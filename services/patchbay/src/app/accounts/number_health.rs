//! GetWhatsAppHealth: Meta's answers about a Cloud number, its WABA and their webhooks,
//! judged (`domain::account::whatsapp::findings`) and recorded as the account's health
//! (what the check finds is set, what it no longer finds lifted), so that `healthy` is
//! the one decision of `AccountHealth.state`. The health round (`health_round`) reads
//! each number the same way.

use std::collections::HashMap;

use uuid::Uuid;

use super::Accounts;
use super::setup::number;
use crate::domain::account::StateChange;
use crate::domain::account::meta_health::Word;
use crate::domain::account::whatsapp::{
    self, BusinessAccount, NumberStatus, SubscribedApp, is_cloud_account,
};
use crate::domain::{Account, Caller, Error};
use crate::meta::MetaError;

/// What GetWhatsAppHealth found: Meta's answers (`None` where Meta did not answer),
/// and every reason the number is not healthy.
pub struct WhatsAppHealth {
    pub account: Account,
    pub phone_number: Option<NumberStatus>,
    pub waba: Option<BusinessAccount>,
    pub subscribed_apps: Option<Vec<SubscribedApp>>,
    pub subscribed_ok: bool,
    /// Exactly when the account's health, with this reading, is HEALTHY, and Meta
    /// answered every question.
    pub healthy: bool,
    pub reasons: Vec<String>,
    /// What needs attention without making the number unhealthy (the Graph API
    /// version ending soon).
    pub warnings: Vec<String>,
}

impl Accounts {
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
        self.read_whatsapp_health(caller, account, None).await
    }

    /// Reads a Cloud number's health from Meta and records it: GetWhatsAppHealth's
    /// reading, and the health round's (`health_round`). A Meta outage is
    /// UNAVAILABLE, and counts toward the account's PROVIDER reason.
    /// `wabas` keeps a round's answers about each WABA, so that a WABA of many
    /// numbers is asked once a round.
    pub(super) async fn read_whatsapp_health(
        &self,
        caller: &Caller,
        account: Account,
        wabas: Option<&mut WabaAnswers>,
    ) -> Result<WhatsAppHealth, Error> {
        let number = number(&account);
        let whatsapp = self.graph.whatsapp();
        let key = (number.waba_id.to_owned(), number.token.to_owned());
        let kept = wabas.as_ref().and_then(|wabas| wabas.0.get(&key).cloned());
        let (phone, (waba, apps)) = match kept {
            Some(answers) => (whatsapp.phone_number_status(&number).await, answers),
            None => {
                let (phone, waba, apps) = tokio::join!(
                    whatsapp.phone_number_status(&number),
                    whatsapp.waba_info(&number),
                    whatsapp.waba_subscribed_apps(&number),
                );
                if let Some(wabas) = wabas {
                    wabas.0.insert(key, (waba.clone(), apps.clone()));
                }
                (phone, (waba, apps))
            }
        };
        // Without every answer there is no verdict: a Meta outage is UNAVAILABLE.
        let errors = [
            phone.as_ref().err(),
            waba.as_ref().err(),
            apps.as_ref().err(),
        ];
        // An outage counts toward the account's PROVIDER reason; an answer, against it.
        let outage = errors.iter().flatten().find(|err| err.is_transient());
        let outcome = StateChange::ProviderOutcome {
            ok: outage.is_none(),
            detail: outage
                .map(|err| self.meta_words(&account, err))
                .unwrap_or_default(),
        };
        let account = self.record_state(caller, account.id, outcome).await?;
        if let Some(err) = outage {
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
        let account_url = self.webhook_url(&account);
        let app_level = self.webhooks.for_meta_app();
        // Meta not answering a question (but for an outage) leaves the number unjudged:
        // it is not healthy, and nothing of it is recorded.
        let answered_all = reasons.is_empty();
        let mut findings = whatsapp::findings(
            phone.as_ref(),
            waba.as_ref(),
            apps.as_deref(),
            app_id,
            &whatsapp::WebhookTargets {
                account: &account_url,
                app_level: &app_level,
            },
        );
        reasons.extend(findings.iter().map(|found| found.detail.clone()));
        let warnings: Vec<String> = self.graph.version_warning().into_iter().collect();
        findings.extend(warnings.iter().map(|warning| whatsapp::Finding {
            code: "graph_version_ending",
            class: patchbay_sdk::health::Class::Configuration,
            detail: warning.clone(),
        }));
        let mut account = match token_rejected {
            Some(reason) => {
                let change = StateChange::TokenRejected {
                    reason,
                    token: None,
                };
                self.record_state(caller, account.id, change).await?
            }
            None => account,
        };
        if answered_all {
            // The reading is the account's health as far as the check sees it: what it
            // found is set, what it no longer finds is lifted.
            let change = StateChange::MetaSaid {
                words: checked_words(&findings, phone.as_ref()),
            };
            account = self.record_state(caller, account.id, change).await?;
        }
        let healthy = answered_all
            && account
                .provider_state
                .health
                .state(crate::domain::ids::now())
                == patchbay_sdk::health::State::Healthy;
        Ok(WhatsAppHealth {
            account,
            phone_number: phone,
            waba,
            subscribed_apps: apps,
            subscribed_ok,
            healthy,
            reasons,
            warnings,
        })
    }
}

/// What Meta answered about each WABA during one round (its info, its subscriptions),
/// by WABA and token: the token is part of the key, so that a number is judged only by
/// what its own token was answered.
#[derive(Default)]
pub(super) struct WabaAnswers(HashMap<(String, String), WabaAnswer>);

type WabaAnswer = (
    Result<BusinessAccount, MetaError>,
    Result<Vec<SubscribedApp>, MetaError>,
);

/// A health check's reading as Meta's words: each finding set, each check code not
/// found lifted, and what the webhooks set that the reading shows over.
fn checked_words(findings: &[whatsapp::Finding], phone: Option<&NumberStatus>) -> Vec<Word> {
    let mut words: Vec<Word> = whatsapp::CHECK_CODES
        .iter()
        .filter(|code| !findings.iter().any(|found| found.code == **code))
        .map(|code| Word::Lift {
            codes: std::slice::from_ref(code),
            at: None,
        })
        .collect();
    let lifted = phone.map(whatsapp::lifted_by_reading).unwrap_or_default();
    words.extend(
        lifted
            .into_iter()
            .map(|codes| Word::Lift { codes, at: None }),
    );
    words.extend(findings.iter().map(|found| Word::Set {
        code: found.code,
        class: found.class,
        detail: found.detail.clone(),
        until: None,
        at: None,
    }));
    words
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
