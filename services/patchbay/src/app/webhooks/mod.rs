//! The webhook gateways' questions: is this Meta verification handshake for one of our
//! accounts, and is this webhook request really from Meta or Twilio? Answered from the
//! stored secrets, which never leave this module. The service role asks them of its
//! workspace's accounts (here); the installation's gateway hands over whole requests,
//! routed across workspaces (`routing`).

mod health;
mod routing;

use std::collections::HashMap;

use serde_json::Value;
use uuid::Uuid;

use crate::app::Accounts;
use crate::domain::WebhookUrls;
use crate::domain::account::{Account, validate_account_key};
use crate::domain::webhook_handshake;
use crate::domain::webhook_routes::TWILIO_SHARED_KEY;
use crate::domain::webhook_signatures::{
    self, META_HEADER, Mismatch, TWILIO_HEADER, TWILIO_SETTINGS_HEADER, TwilioAlgorithm,
};
use crate::domain::{Caller, Channel, Error, FieldViolation, RecordKind, Violations};
use crate::meta::{MetaApp, MetaSettings};
use crate::store::Store;
use crate::views::routes::WebhookRoutes;
use secrecy::SecretString;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    None,
    MetaSha256,
    TwilioSha1,
    TwilioSha256,
}

pub struct SignatureCheck {
    pub account_id: Uuid,
    pub scheme: Scheme,
    /// `Err` says why not valid.
    pub outcome: Result<(), String>,
}

/// A webhook request as the gateway received it.
pub struct WebhookRequest<'a> {
    pub channel: Channel,
    pub account_key: &'a str,
    pub headers: &'a HashMap<String, String>,
    pub raw_body: &'a [u8],
    pub url: &'a str,
}

pub use routing::{RouteRequest, Routed};

#[derive(Clone)]
pub struct Webhooks {
    store: Store,
    /// Where Meta's words about an account's health are recorded.
    accounts: Accounts,
    routes: WebhookRoutes,
    urls: WebhookUrls,
    meta_app: Option<MetaApp>,
    /// The Instagram app: Instagram's webhooks to the app-level callback are signed with
    /// its secret.
    instagram_app: Option<MetaApp>,
    /// The app-level callback's verify token.
    app_verify_token: Option<SecretString>,
}

impl Webhooks {
    pub fn new(
        store: Store,
        accounts: Accounts,
        routes: WebhookRoutes,
        urls: WebhookUrls,
        meta: MetaSettings,
    ) -> Self {
        Self {
            store,
            accounts,
            routes,
            urls,
            meta_app: meta.app,
            instagram_app: meta.instagram_app,
            app_verify_token: meta.webhook_verify_token,
        }
    }

    /// Meta's `hub.mode=subscribe` handshake: the challenge back when the token is the
    /// account's verify token (or, without an account key, any account's of the
    /// channel), PERMISSION_DENIED otherwise.
    pub async fn verify_subscription(
        &self,
        caller: &Caller,
        channel: Channel,
        account_key: &str,
        mode: &str,
        verify_token: &str,
        challenge: &str,
    ) -> Result<(String, Uuid), Error> {
        let mut violations = Violations::new();
        if !account_key.is_empty() {
            violations.check(validate_account_key(account_key, "account_key"));
        }
        violations.into_result()?;
        webhook_handshake::asked(mode, challenge, "challenge")?;
        let denied = || Error::PermissionDenied("webhook verification failed".to_owned());
        let candidates = if account_key.is_empty() {
            // Through the verify-token index: the same work whatever the number of
            // accounts (plus the rows not indexed yet).
            self.store
                .accounts()
                .accounts_by_verify_token(
                    caller.workspace_id(),
                    channel,
                    caller.division_id(),
                    verify_token,
                )
                .await?
        } else {
            self.store
                .accounts()
                .find_account_by_key(caller.workspace_id(), channel, account_key)
                .await?
                .into_iter()
                .filter(|account| caller.can_see(account.division_id.as_deref()))
                .collect()
        };
        // Compare against every candidate, so the time does not tell which one matched.
        let mut matched = None;
        for account in &candidates {
            if webhook_handshake::token_matches(&account.verify_token, verify_token)
                && matched.is_none()
            {
                matched = Some(account.id);
            }
        }
        match matched {
            Some(id) => Ok((challenge.to_owned(), id)),
            None => Err(denied()),
        }
    }

    /// Checks the request's signature with the account's key: Meta's app secret (the
    /// account's own `app_secret` when it has one), Twilio's auth token.
    pub async fn verify_signature(
        &self,
        caller: &Caller,
        request: WebhookRequest<'_>,
    ) -> Result<SignatureCheck, Error> {
        let mut violations = Violations::new();
        violations.check(validate_account_key(request.account_key, "account_key"));
        violations.into_result()?;
        let account = self
            .store
            .accounts()
            .find_account_by_key(caller.workspace_id(), request.channel, request.account_key)
            .await?
            .filter(|account| caller.can_see(account.division_id.as_deref()))
            .ok_or_else(|| Error::NotFound {
                kind: RecordKind::Account,
                id: format!("{} on channel {}", request.account_key, request.channel),
            })?;
        let header = |name: &str| header(request.headers, name);
        let check = |scheme, outcome: Result<(), Mismatch>| SignatureCheck {
            account_id: account.id,
            scheme,
            outcome: outcome.map_err(|m| m.describe().to_owned()),
        };
        if let Some(signature) = header(META_HEADER) {
            let secret = self.meta_secret(&account)?;
            let outcome = webhook_signatures::verify_meta(&secret, signature, request.raw_body);
            return Ok(check(Scheme::MetaSha256, outcome));
        }
        if let Some(signature) = header(TWILIO_HEADER) {
            if request.url.is_empty() {
                return Err(Error::InvalidArgument(vec![FieldViolation::new(
                    "url",
                    "is required to check a Twilio signature (Twilio signs the URL)",
                )]));
            }
            let (field, algorithm) = match twilio_key(request.headers) {
                Ok(TwilioKey::AuthToken) => ("auth_token", TwilioAlgorithm::HmacSha1),
                Ok(TwilioKey::SharedKey(algorithm)) => (TWILIO_SHARED_KEY, algorithm),
                Err(why) => {
                    return Ok(SignatureCheck {
                        account_id: account.id,
                        scheme: Scheme::None,
                        outcome: Err(why),
                    });
                }
            };
            let key = config_text(&account, field).ok_or_else(|| {
                Error::FailedPrecondition(format!(
                    "account {} has no config.{field} to check this Twilio signature with",
                    account.id
                ))
            })?;
            let outcome = webhook_signatures::verify_twilio(
                key.as_bytes(),
                algorithm,
                signature,
                request.url,
                request.raw_body,
                is_form(request.headers),
            );
            let scheme = match algorithm {
                TwilioAlgorithm::HmacSha1 => Scheme::TwilioSha1,
                TwilioAlgorithm::HmacSha256 => Scheme::TwilioSha256,
            };
            return Ok(check(scheme, outcome));
        }
        Ok(SignatureCheck {
            account_id: account.id,
            scheme: Scheme::None,
            outcome: Err(format!(
                "the request carries neither {META_HEADER} nor {TWILIO_HEADER}"
            )),
        })
    }

    fn meta_secret(&self, account: &Account) -> Result<Vec<u8>, Error> {
        use secrecy::ExposeSecret;
        if let Some(own) = config_text(account, "app_secret") {
            return Ok(own.as_bytes().to_vec());
        }
        match &self.meta_app {
            Some(app) => Ok(app.secret.expose_secret().as_bytes().to_vec()),
            None => Err(Error::FailedPrecondition(
                "no Meta app secret to check X-Hub-Signature-256 with: configure PATCHBAY_META_APP_SECRET or the account's app_secret".to_owned(),
            )),
        }
    }
}

/// The value of header `name`, matched case-insensitively.
fn header<'a>(headers: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Which of an account's Twilio secrets signed a request.
enum TwilioKey {
    /// The auth token, with HMAC-SHA1.
    AuthToken,
    /// The SharedKey (`config.webhook_shared_key`), with the algorithm the request names.
    SharedKey(TwilioAlgorithm),
}

/// The secret a Twilio request was signed with: a SharedKey when it carries
/// X-Twilio-Webhooks-Signature-Settings, else the auth token. `Err` says why the
/// request cannot be checked (an algorithm Twilio does not sign with).
fn twilio_key(headers: &HashMap<String, String>) -> Result<TwilioKey, String> {
    let Some(settings) = header(headers, TWILIO_SETTINGS_HEADER) else {
        return Ok(TwilioKey::AuthToken);
    };
    webhook_signatures::twilio_algorithm(settings)
        .map(TwilioKey::SharedKey)
        .map_err(|name| {
            format!(
                "the Twilio signature's algorithm {name:?} is none of HMAC_SHA1 and HMAC_SHA256"
            )
        })
}

/// Whether the body is a form (Twilio signs its parameters) rather than JSON (signed
/// through the URL's bodySHA256); a request without a content type is a form.
fn is_form(headers: &HashMap<String, String>) -> bool {
    header(headers, "content-type").is_none_or(|content_type| {
        content_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

fn config_text<'a>(account: &'a Account, key: &str) -> Option<&'a str> {
    account
        .config
        .get(key)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
}
