//! Calls to the outside world. For now: credential checks, the cheapest authenticated
//! call each provider offers (SendGrid scopes, OpenAI models, Twilio account fetch, Graph
//! API `me`, Chatwoot profile). Base URLs are configuration, so tests point them at a
//! local fake server.

use std::time::Duration;

use serde_json::Value;

use crate::domain::Error;
use crate::domain::config_document::{Document, SecretRule};

/// Where each provider's API lives.
#[derive(Clone, Debug)]
pub struct ProviderUrls {
    pub sendgrid: String,
    pub openai: String,
    pub twilio: String,
    pub graph: String,
    pub instagram_graph: String,
    /// api.instagram.com: Instagram Login's code exchange.
    pub instagram_api: String,
    /// The Graph API version every Graph call names (`v21.0`).
    pub graph_version: String,
}

impl Default for ProviderUrls {
    fn default() -> Self {
        Self {
            sendgrid: "https://api.sendgrid.com".to_owned(),
            openai: "https://api.openai.com".to_owned(),
            twilio: "https://api.twilio.com".to_owned(),
            graph: "https://graph.facebook.com".to_owned(),
            instagram_graph: "https://graph.instagram.com".to_owned(),
            instagram_api: "https://api.instagram.com".to_owned(),
            graph_version: "v21.0".to_owned(),
        }
    }
}

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The provider accepted the credentials.
    Passed,
    /// The provider offers no way to check (SMTP, some e-signature APIs).
    Unsupported,
}

#[derive(Clone, Debug)]
pub struct CredentialChecker {
    http: reqwest::Client,
    urls: ProviderUrls,
}

const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client every call to a provider uses: rustls, bounded waits, our user agent.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
        .build()
}
const MAX_REASON_CHARS: usize = 300;

impl CredentialChecker {
    pub fn new(urls: ProviderUrls) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: http_client()?,
            urls,
        })
    }

    /// Tries the credentials of `config` against `provider`. A refusal is
    /// FAILED_PRECONDITION with the provider's reason; a provider that cannot be reached
    /// or fails is UNAVAILABLE.
    pub async fn check(&self, provider: &str, config: &Document) -> Result<CheckOutcome, Error> {
        let text = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let base = |url: &str| url.trim_end_matches('/').to_owned();
        let request = match provider {
            "sendgrid" => self
                .http
                .get(format!("{}/v3/scopes", base(&self.urls.sendgrid)))
                .bearer_auth(text("api_key")),
            "openai" => self
                .http
                .get(format!("{}/v1/models", base(&self.urls.openai)))
                .bearer_auth(text("api_key")),
            "whatsapp_twilio" | "twilio_sms" => {
                let sid = text("account_sid");
                self.http
                    .get(format!(
                        "{}/2010-04-01/Accounts/{sid}.json",
                        base(&self.urls.twilio)
                    ))
                    .basic_auth(sid, Some(text("auth_token")))
            }
            "whatsapp_cloud" => {
                let version = Some(text("api_version"))
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| self.urls.graph_version.clone());
                self.http
                    .get(format!(
                        "{}/{version}/{}",
                        base(&self.urls.graph),
                        text("phone_number_id")
                    ))
                    .bearer_auth(text("access_token"))
            }
            "messenger" => self
                .http
                .get(format!("{}/me", base(&self.urls.graph)))
                .bearer_auth(text("page_access_token")),
            "instagram" => self
                .http
                .get(format!("{}/me", base(&self.urls.instagram_graph)))
                .query(&[("fields", "id")])
                .bearer_auth(text("access_token")),
            "chatwoot" => self
                .http
                .get(format!("{}/api/v1/profile", base(&text("chatwootURL"))))
                .header("api_access_token", text("chatwootAccessToken")),
            _ => return Ok(CheckOutcome::Unsupported),
        };
        let response = request.send().await.map_err(|err| {
            Error::Unavailable(format!(
                "{provider} did not answer the credential check: {}",
                without_url(&err)
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(CheckOutcome::Passed);
        }
        let body = response.text().await.unwrap_or_default();
        let reason = scrub(
            &reason_of(&body).unwrap_or_else(|| status.to_string()),
            config,
        );
        if status.is_server_error() || status.as_u16() == 429 {
            Err(Error::Unavailable(format!(
                "{provider} could not check the credentials ({status}): {reason}"
            )))
        } else {
            Err(Error::FailedPrecondition(format!(
                "{provider} refused the credentials: {reason}"
            )))
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

/// Providers sometimes quote the credential they refused; never pass it on.
fn scrub(reason: &str, config: &Document) -> String {
    let mut scrubbed = reason.to_owned();
    for secret in secrets_of(config) {
        if secret.len() >= 4 {
            scrubbed = scrubbed.replace(&secret, "********");
        }
    }
    scrubbed
}

fn secrets_of(config: &Document) -> Vec<String> {
    let rule = SecretRule::ByName;
    config
        .iter()
        .filter(|(key, _)| rule.is_secret(&format!("config.{key}"), key))
        .filter_map(|(_, value)| value.as_str().map(str::to_owned))
        .collect()
}

/// What went wrong with a request, without the URL reqwest's errors name: an OAuth
/// exchange carries the app secret in its query.
pub fn without_url(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
    fn quoted_credentials_are_scrubbed() {
        let config = json!({"api_key": "sk-very-secret"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            scrub("Incorrect API key provided: sk-very-secret", &config),
            "Incorrect API key provided: ********"
        );
    }
}
