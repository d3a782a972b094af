//! `RouteWebhook`: the installation's gateway hands over a provider's HTTP request as it
//! arrived; the answer says whether it is genuine and whose it is. Deliveries are
//! answered from the routing index (`routes`) without a database query; only Meta's
//! handshake on an account's URL reads the account's verify token from the store.
//!
//! Who may speak for whom:
//! - the installation's Meta app secret verifies any Meta body, whose entries then
//!   route by their ids to the ids' owners Meta confirmed, in whichever workspace (and
//!   on an account's own URL, the account's own id to it, unless another owns it);
//! - an account's own `app_secret` verifies a body sent to that account's URL, and then
//!   routes only the entries of that account's own id (and WABA);
//! - a Twilio signature is checked with the auth token of the account the URL names, or
//!   its SharedKey secret when the request says it was signed with a SharedKey.

use std::collections::HashMap;

use secrecy::ExposeSecret;

use super::{TwilioKey, Webhooks, header, is_form, twilio_key};
use crate::domain::webhook_handshake;
use crate::domain::webhook_routes::{
    Deliveries, MetaBody, RouteEntry, SignedBy, Target, Unrouted, is_meta_channel, query_param,
    route_meta_entries, target,
};
use crate::domain::webhook_signatures::{self, META_HEADER, Mismatch, TWILIO_HEADER};
use crate::domain::{Error, FieldViolation, RecordKind};
use crate::meta::MetaApp;

/// Longest URL taken (Twilio signs it; Meta's handshake carries three parameters).
const MAX_URL_BYTES: usize = 8 * 1024;
/// Most headers, and the longest name and value, taken.
const MAX_HEADERS: usize = 128;
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Largest body taken: Meta's and Twilio's are a few kilobytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A provider's request as the gateway received it.
pub struct RouteRequest<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a HashMap<String, String>,
    pub raw_body: &'a [u8],
}

/// The verdict: the handshake's challenge, or who each entry of a delivery is for.
#[derive(Debug, Default)]
pub struct Routed {
    pub challenge: String,
    pub deliveries: Deliveries,
    pub unrouted: Unrouted,
    /// A Meta body signed by the installation's app (not an account's own secret, which
    /// its tenant holds): what it says of health is recorded.
    pub meta_app: bool,
}

impl Webhooks {
    /// Checks and routes one webhook request. Writes only what a verified Meta body
    /// says of the health of the accounts it is routed to (`health.rs`).
    pub async fn route(&self, request: RouteRequest<'_>) -> Result<Routed, Error> {
        check_sizes(&request)?;
        let target = target(request.url, self.urls.base_path()).ok_or_else(no_route)?;
        if request.method.eq_ignore_ascii_case("GET") {
            self.handshake(target, request.url).await
        } else if request.method.eq_ignore_ascii_case("POST") {
            let routed = self.delivery(target, &request)?;
            if routed.meta_app {
                self.record_health(request.raw_body, &routed).await;
            }
            Ok(routed)
        } else {
            Err(invalid(
                "method",
                "must be GET (Meta's handshake) or POST (a delivery)",
            ))
        }
    }

    /// Meta's `hub.mode=subscribe` handshake on an account's URL (its verify token) or
    /// the app-level URL (the installation's).
    async fn handshake(&self, target: Target, url: &str) -> Result<Routed, Error> {
        let Some(mode) = query_param(url, "hub.mode") else {
            return Err(invalid(
                "url",
                "a GET is Meta's handshake and needs hub.mode, hub.verify_token and hub.challenge",
            ));
        };
        let challenge = query_param(url, "hub.challenge").unwrap_or_default();
        // RouteWebhook's refusals all read "webhook refused: …".
        webhook_handshake::asked(&mode, &challenge, "url").map_err(|err| match err {
            Error::PermissionDenied(_) => denied("hub.mode is not subscribe"),
            other => other,
        })?;
        let token = query_param(url, "hub.verify_token").unwrap_or_default();
        let matches = match target {
            Target::MetaApp => {
                let expected = self.app_verify_token.as_ref().ok_or_else(|| {
                    Error::FailedPrecondition(
                        "the app-level callback has no verify token: configure PATCHBAY_META_WEBHOOK_VERIFY_TOKEN"
                            .to_owned(),
                    )
                })?;
                webhook_handshake::token_matches(expected.expose_secret(), &token)
            }
            Target::Account { .. } => {
                let entry = self.entry(target)?;
                let account = self
                    .store
                    .accounts()
                    .find_account(&entry.workspace_id, entry.account_id)
                    .await?
                    .ok_or_else(no_route)?;
                webhook_handshake::token_matches(&account.verify_token, &token)
            }
        };
        if !matches {
            return Err(denied("the verify token does not match"));
        }
        Ok(Routed {
            challenge,
            ..Routed::default()
        })
    }

    /// A signed delivery: the signature header decides the scheme, which must fit the
    /// URL's account.
    fn delivery(&self, target: Target, request: &RouteRequest<'_>) -> Result<Routed, Error> {
        let meta = header(request.headers, META_HEADER);
        let twilio = header(request.headers, TWILIO_HEADER);
        match target {
            Target::MetaApp => match (meta, twilio) {
                (Some(signature), _) => self.meta_app_delivery(signature, request.raw_body),
                (None, Some(_)) => Err(denied(
                    "a Twilio signature on Meta's app-level URL: Twilio webhooks go to the account's URL",
                )),
                (None, None) => Err(unsigned()),
            },
            Target::Account { .. } => {
                let entry = self.entry(target)?;
                match (meta, twilio) {
                    (Some(signature), _) if is_meta_channel(entry.channel) => {
                        self.meta_account_delivery(&entry, signature, request.raw_body)
                    }
                    (_, Some(signature)) => twilio_delivery(entry, signature, request),
                    (Some(_), None) => Err(denied(&format!(
                        "a Meta signature on the URL of a {} account",
                        entry.channel
                    ))),
                    (None, None) => Err(unsigned()),
                }
            }
        }
    }

    /// Meta's app-level callback: only the installation's apps verify it. The Meta
    /// app's secret verifies any body; the Instagram app's (Instagram Login webhooks are
    /// signed with it) only Instagram's (`"object": "instagram"`), so that it never
    /// speaks for WhatsApp or Messenger.
    fn meta_app_delivery(&self, signature: &str, body: &[u8]) -> Result<Routed, Error> {
        if self.meta_app.is_none() && self.instagram_app.is_none() {
            return Err(Error::FailedPrecondition(
                "no Meta app secret to check X-Hub-Signature-256 with: configure PATCHBAY_META_APP_SECRET (and PATCHBAY_INSTAGRAM_APP_SECRET for Instagram)"
                    .to_owned(),
            ));
        }
        let verifies = |app: &MetaApp| {
            webhook_signatures::verify_meta(app.secret.expose_secret().as_bytes(), signature, body)
        };
        let mut outcome = Err(Mismatch::Wrong);
        if let Some(app) = &self.meta_app {
            outcome = verifies(app);
        }
        if outcome == Err(Mismatch::Wrong)
            && let Some(app) = &self.instagram_app
            && is_instagram_body(body)
        {
            outcome = verifies(app);
        }
        outcome.map_err(refused)?;
        self.route_meta(body, SignedBy::App, None)
    }

    /// A Meta body on an account's URL: the installation's app secret, else the
    /// account's own.
    fn meta_account_delivery(
        &self,
        entry: &RouteEntry,
        signature: &str,
        body: &[u8],
    ) -> Result<Routed, Error> {
        let app_secret = self.meta_app.as_ref().map(|app| &app.secret);
        if app_secret.is_none() && entry.app_secret.is_none() {
            return Err(Error::FailedPrecondition(
                "no Meta app secret to check X-Hub-Signature-256 with: configure PATCHBAY_META_APP_SECRET or the account's app_secret"
                    .to_owned(),
            ));
        }
        let verifies = |secret: &secrecy::SecretString| {
            webhook_signatures::verify_meta(secret.expose_secret().as_bytes(), signature, body)
        };
        let mut outcome = Err(Mismatch::Wrong);
        if let Some(secret) = app_secret {
            outcome = verifies(secret).map(|()| SignedBy::App);
        }
        if outcome.is_err()
            && let Some(secret) = &entry.app_secret
        {
            outcome = verifies(secret).map(|()| SignedBy::Account(entry.account_id));
        }
        self.route_meta(body, outcome.map_err(refused)?, Some(entry))
    }

    fn route_meta(
        &self,
        body: &[u8],
        signed_by: SignedBy,
        url_account: Option<&RouteEntry>,
    ) -> Result<Routed, Error> {
        let body = MetaBody::parse(body).map_err(|why| invalid("raw_body", &why))?;
        let (deliveries, unrouted) = self
            .routes
            .read(|index| route_meta_entries(index, &body, signed_by, url_account))?;
        Ok(Routed {
            challenge: String::new(),
            deliveries,
            unrouted,
            meta_app: matches!(signed_by, SignedBy::App),
        })
    }

    /// The live account a URL's route names, on the URL's channel.
    fn entry(&self, target: Target) -> Result<RouteEntry, Error> {
        let Target::Account { channel, route } = target else {
            return Err(no_route());
        };
        self.routes
            .read(|index| index.by_route(route))?
            .filter(|entry| entry.channel == channel)
            .ok_or_else(no_route)
    }
}

/// A Twilio webhook: the account the URL names, checked with its auth token, or with
/// its SharedKey secret when the request names a SharedKey's algorithm.
fn twilio_delivery(
    entry: RouteEntry,
    signature: &str,
    request: &RouteRequest<'_>,
) -> Result<Routed, Error> {
    let (key, algorithm) = match twilio_key(request.headers).map_err(|why| denied(&why))? {
        TwilioKey::AuthToken => (
            entry.auth_token.as_ref().ok_or_else(|| {
                denied("a Twilio signature on the URL of an account with no Twilio auth token")
            })?,
            webhook_signatures::TwilioAlgorithm::HmacSha1,
        ),
        TwilioKey::SharedKey(algorithm) => (
            entry.shared_key.as_ref().ok_or_else(|| {
                denied("a Twilio SharedKey signature on the URL of an account with no webhook_shared_key")
            })?,
            algorithm,
        ),
    };
    webhook_signatures::verify_twilio(
        key.expose_secret().as_bytes(),
        algorithm,
        signature,
        request.url,
        request.raw_body,
        is_form(request.headers),
    )
    .map_err(refused)?;
    Ok(Routed {
        deliveries: vec![(0, entry.recipient())],
        ..Routed::default()
    })
}

/// Every size the request could grow the work or the answer with, bounded first.
fn check_sizes(request: &RouteRequest<'_>) -> Result<(), Error> {
    let mut violations = Vec::new();
    if request.url.len() > MAX_URL_BYTES {
        violations.push(FieldViolation::new("url", "must be at most 8 KiB"));
    } else if !request.url.contains("://") {
        violations.push(FieldViolation::new(
            "url",
            "must be the full URL the provider requested, scheme and host included",
        ));
    }
    let oversized = request
        .headers
        .iter()
        .any(|(name, value)| name.len() > 256 || value.len() > MAX_HEADER_BYTES);
    if request.headers.len() > MAX_HEADERS || oversized {
        violations.push(FieldViolation::new(
            "headers",
            "must be at most 128 headers, names of at most 256 bytes and values of at most 8 KiB",
        ));
    }
    if request.raw_body.len() > MAX_BODY_BYTES {
        violations.push(FieldViolation::new("raw_body", "must be at most 1 MiB"));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(violations))
    }
}

fn invalid(field: &str, message: &str) -> Error {
    Error::InvalidArgument(vec![FieldViolation::new(field, message)])
}

fn denied(why: &str) -> Error {
    Error::PermissionDenied(format!("webhook refused: {why}"))
}

fn refused(mismatch: Mismatch) -> Error {
    denied(mismatch.describe())
}

fn unsigned() -> Error {
    denied("the request carries neither X-Hub-Signature-256 nor X-Twilio-Signature")
}

/// The URL names no route: not under the public base URL's path, no account with that
/// route on that channel, or one deleted since.
fn no_route() -> Error {
    Error::NotFound {
        kind: RecordKind::Account,
        id: "with the URL's webhook route".to_owned(),
    }
}

/// Whether a Meta body is Instagram's (`"object": "instagram"`).
fn is_instagram_body(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            json.get("object")
                .and_then(|o| o.as_str())
                .map(|o| o == "instagram")
        })
        .unwrap_or(false)
}
