//! Credential checks: the cheapest authenticated call each provider offers (SendGrid
//! scopes, OpenAI models, Twilio account fetch, Chatwoot profile) through the guarded
//! client, and Meta's through the one Graph client. A tenant's own URL (Chatwoot) is a
//! tenant destination: https only and public addresses only, unless the operator allows
//! private ones. Which check a provider gets is an exhaustive match on its kind.

use reqwest::Method;
use serde_json::Value;

use crate::domain::Error;
use crate::domain::config_document::{Document, value_at};
use crate::domain::provider::{Provider, ProviderKind};
use crate::meta::{GraphClient, Host, MetaError};
use crate::outbound::{Destination, OutboundClient, OutboundError, ProviderUrls, join, settings};

/// What a check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The provider accepted the credentials.
    Passed,
    /// The provider offers no way to check (SMTP, some e-signature APIs).
    Unsupported,
}

/// Why a check did not pass. Each message names the provider and, for a refused
/// destination, the field or setting; a credential the provider quoted is scrubbed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckFailure {
    /// The provider refused the credentials (or answered with a redirect).
    Refused(String),
    /// The outbound guard refused the destination; nothing was sent.
    DestinationRefused(String),
    /// The provider could not be reached, failed or limited us.
    Unavailable(String),
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Passed => "passed",
            CheckOutcome::Unsupported => "unsupported",
        }
    }
}

impl CheckFailure {
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckFailure::Refused(_) => "refused",
            CheckFailure::DestinationRefused(_) => "destination_refused",
            CheckFailure::Unavailable(_) => "unavailable",
        }
    }
}

impl From<CheckFailure> for Error {
    fn from(failure: CheckFailure) -> Self {
        match failure {
            CheckFailure::Refused(message) | CheckFailure::DestinationRefused(message) => {
                Error::FailedPrecondition(message)
            }
            CheckFailure::Unavailable(message) => Error::Unavailable(message),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CredentialChecker {
    client: OutboundClient,
    graph: GraphClient,
    urls: ProviderUrls,
}

const MAX_REASON_CHARS: usize = 300;

/// How a provider's credentials are checked.
enum Check {
    /// One request through the guarded client.
    Http(Probe<'static>),
    /// One authenticated read of a Graph node through the Graph client.
    Meta(MetaProbe),
    /// The provider offers no way to check.
    None,
}

/// The Graph node a Meta check reads, with the token it reads it with.
struct MetaProbe {
    host: Host,
    node: String,
    token: String,
    version: Option<String>,
    sends: &'static [&'static str],
}

/// The one request a check sends.
struct Probe<'a> {
    destination: Destination<'a>,
    url: String,
    auth: Auth,
    /// The secret fields the request carries, as the audit event names them.
    sends: &'static [&'static str],
}

/// What a check did: its result, and the secret fields it sent (none when it sent
/// nothing: no check offered, or a destination the guard refused).
#[derive(Debug)]
pub struct CheckReport {
    pub result: Result<CheckOutcome, CheckFailure>,
    pub sent: &'static [&'static str],
}

enum Auth {
    Bearer(String),
    Basic(String, String),
    Header(&'static str, String),
}

impl CredentialChecker {
    pub fn new(client: OutboundClient, graph: GraphClient, urls: ProviderUrls) -> Self {
        Self {
            client,
            graph,
            urls,
        }
    }

    /// Tries the credentials of `config` against `provider`. A refusal is
    /// FAILED_PRECONDITION with the provider's reason; a provider that cannot be reached
    /// or fails is UNAVAILABLE; a destination the guard refuses is FAILED_PRECONDITION
    /// naming its field, with no connection attempted.
    pub async fn check(&self, provider: &Provider, config: &Document) -> CheckReport {
        let (result, sends) = match self.plan(provider, config) {
            Check::None => {
                return CheckReport {
                    result: Ok(CheckOutcome::Unsupported),
                    sent: &[],
                };
            }
            Check::Http(probe) => {
                let sends = probe.sends;
                (self.send_probe(provider, config, probe).await, sends)
            }
            Check::Meta(probe) => {
                let sends = probe.sends;
                (self.check_at_meta(provider, config, probe).await, sends)
            }
        };
        let sent = match &result {
            Err(CheckFailure::DestinationRefused(_)) => &[],
            _ => sends,
        };
        CheckReport { result, sent }
    }

    async fn check_at_meta(
        &self,
        provider: &Provider,
        config: &Document,
        probe: MetaProbe,
    ) -> Result<CheckOutcome, CheckFailure> {
        let slug = &provider.slug;
        let outcome = self
            .graph
            .check_token(
                probe.host,
                &probe.node,
                &probe.token,
                probe.version.as_deref(),
            )
            .await;
        let err = match outcome {
            Ok(()) => return Ok(CheckOutcome::Passed),
            Err(err) => err,
        };
        Err(match err {
            MetaError::Refused(reason) => {
                CheckFailure::DestinationRefused(format!("{slug} was not called: {reason}"))
            }
            MetaError::Unreachable(kind) => CheckFailure::Unavailable(format!(
                "{slug} did not answer the credential check: {kind}"
            )),
            MetaError::Graph(graph) => {
                let status = graph.http_status;
                let reason = scrub(&graph.message, &secrets_of(provider, config));
                if status.is_redirection() {
                    CheckFailure::Refused(format!(
                        "{slug} answered the credential check with a redirect ({status}), which is not followed"
                    ))
                } else if status.is_server_error() || status.as_u16() == 429 {
                    CheckFailure::Unavailable(format!(
                        "{slug} could not check the credentials ({status}): {reason}"
                    ))
                } else {
                    CheckFailure::Refused(format!("{slug} refused the credentials: {reason}"))
                }
            }
            MetaError::Malformed(reason) => CheckFailure::Unavailable(format!("{slug}: {reason}")),
            MetaError::NoApp => CheckFailure::Refused(format!("{slug}: {}", MetaError::NoApp)),
        })
    }

    async fn send_probe(
        &self,
        provider: &Provider,
        config: &Document,
        probe: Probe<'_>,
    ) -> Result<CheckOutcome, CheckFailure> {
        let slug = &provider.slug;
        let answer = self
            .client
            .send(
                probe.destination,
                Method::GET,
                &probe.url,
                |request| match probe.auth {
                    Auth::Bearer(token) => request.bearer_auth(token),
                    Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
                    Auth::Header(name, value) => request.header(name, value),
                },
            )
            .await
            .map_err(|err| match err {
                OutboundError::Refused { .. } => {
                    CheckFailure::DestinationRefused(format!("{slug} was not called: {err}"))
                }
                OutboundError::Unreachable(kind) => CheckFailure::Unavailable(format!(
                    "{slug} did not answer the credential check: {kind}"
                )),
            })?;
        let status = answer.status;
        if status.is_success() {
            return Ok(CheckOutcome::Passed);
        }
        if status.is_redirection() {
            return Err(CheckFailure::Refused(format!(
                "{slug} answered the credential check with a redirect ({status}), which is not followed"
            )));
        }
        let body = String::from_utf8_lossy(&answer.body);
        let reason = scrub(
            &reason_of(&body).unwrap_or_else(|| status.to_string()),
            &secrets_of(provider, config),
        );
        if status.is_server_error() || status.as_u16() == 429 {
            Err(CheckFailure::Unavailable(format!(
                "{slug} could not check the credentials ({status}): {reason}"
            )))
        } else {
            Err(CheckFailure::Refused(format!(
                "{slug} refused the credentials: {reason}"
            )))
        }
    }

    /// The check of `provider`, with the values of `config` it sends.
    fn plan(&self, provider: &Provider, config: &Document) -> Check {
        let text = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let urls = &self.urls;
        let Some(kind) = provider.kind() else {
            return Check::None;
        };
        // Tenant values become path segments, percent-encoded: an id cannot add a path,
        // a query or a fragment to the request its token goes with.
        match kind {
            ProviderKind::Sendgrid => Check::Http(Probe {
                destination: Destination::operator(settings::SENDGRID),
                url: join(&urls.sendgrid, &["v3", "scopes"]),
                auth: Auth::Bearer(text("api_key")),
                sends: &["config.api_key"],
            }),
            ProviderKind::Openai => Check::Http(Probe {
                destination: Destination::operator(settings::OPENAI),
                url: join(&urls.openai, &["v1", "models"]),
                auth: Auth::Bearer(text("api_key")),
                sends: &["config.api_key"],
            }),
            ProviderKind::WhatsappTwilio | ProviderKind::TwilioSms => {
                let sid = text("account_sid");
                Check::Http(Probe {
                    destination: Destination::operator(settings::TWILIO),
                    url: join(
                        &urls.twilio,
                        &["2010-04-01", "Accounts", &format!("{sid}.json")],
                    ),
                    auth: Auth::Basic(sid, text("auth_token")),
                    sends: &["config.auth_token"],
                })
            }
            ProviderKind::Chatwoot => Check::Http(Probe {
                destination: Destination::tenant("config.chatwootURL"),
                url: join(&text("chatwootURL"), &["api", "v1", "profile"]),
                auth: Auth::Header("api_access_token", text("chatwootAccessToken")),
                sends: &["config.chatwootAccessToken"],
            }),
            ProviderKind::WhatsappCloud => Check::Meta(MetaProbe {
                host: Host::Graph,
                node: text("phone_number_id"),
                token: text("access_token"),
                version: Some(text("api_version")).filter(|v| !v.is_empty()),
                sends: &["config.access_token"],
            }),
            ProviderKind::Messenger => Check::Meta(MetaProbe {
                host: Host::Graph,
                node: "me".to_owned(),
                token: text("page_access_token"),
                version: None,
                sends: &["config.page_access_token"],
            }),
            ProviderKind::Instagram => Check::Meta(MetaProbe {
                host: Host::InstagramGraph,
                node: "me".to_owned(),
                token: text("access_token"),
                version: None,
                sends: &["config.access_token"],
            }),
            ProviderKind::Smtp
            | ProviderKind::Docusign
            | ProviderKind::Clicksign
            | ProviderKind::D4sign
            | ProviderKind::Certisign
            | ProviderKind::AdobeSign => Check::None,
        }
    }
}

/// The error message of a provider's JSON error body, in the shapes the supported
/// providers use.
fn reason_of(body: &str) -> Option<String> {
    let json: Value = serde_json::from_str(body).ok()?;
    let candidates = [
        json.pointer("/error/message"),
        json.pointer("/errors/0/message"),
        json.pointer("/errors/0"),
        json.get("message"),
        json.get("error"),
    ];
    let reason = candidates.into_iter().flatten().find_map(Value::as_str)?;
    Some(reason.chars().take(MAX_REASON_CHARS).collect())
}

use crate::domain::scrub::scrub;

/// The values of the fields the provider's schema flags secret, at any depth.
fn secrets_of(provider: &Provider, config: &Document) -> Vec<String> {
    provider
        .secret_paths()
        .iter()
        .filter_map(|path| value_at(config, path).and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_come_from_each_error_shape() {
        assert_eq!(
            reason_of(r#"{"errors":[{"field":null,"message":"authorization required"}]}"#)
                .as_deref(),
            Some("authorization required")
        );
        assert_eq!(
            reason_of(
                r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#
            )
            .as_deref(),
            Some("Incorrect API key")
        );
        assert_eq!(
            reason_of(r#"{"code":20003,"message":"Authenticate","status":401}"#).as_deref(),
            Some("Authenticate")
        );
        assert_eq!(
            reason_of(r#"{"errors":["Invalid Access Token"]}"#).as_deref(),
            Some("Invalid Access Token")
        );
        assert_eq!(reason_of("<html>"), None);
    }

    #[test]
    fn tenant_values_stay_inside_their_path_segment() {
        assert_eq!(
            join(
                "https://api.twilio.com",
                &["2010-04-01", "Accounts", "AC1.json"]
            ),
            "https://api.twilio.com/2010-04-01/Accounts/AC1.json"
        );
        assert_eq!(
            join(
                "https://graph.facebook.com/",
                &["v21.0", "../me/accounts?x=#y"]
            ),
            "https://graph.facebook.com/v21.0/..%2Fme%2Faccounts%3Fx=%23y"
        );
        assert_eq!(
            join("https://chat.acme.example/base/", &["api", "v1", "profile"]),
            "https://chat.acme.example/base/api/v1/profile"
        );
        assert_eq!(join("not a url", &["x"]), "not a url");
    }

    #[test]
    fn quoted_credentials_are_scrubbed() {
        assert_eq!(
            scrub(
                "Incorrect API key provided: sk-very-secret",
                &["sk-very-secret".to_owned()]
            ),
            "Incorrect API key provided: ********"
        );
    }
}
