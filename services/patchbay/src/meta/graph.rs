//! The one HTTP client for Meta: Graph API (graph.facebook.com), Instagram Graph
//! (graph.instagram.com) and Instagram Login (api.instagram.com). It adds the API
//! version, sends tokens in the Authorization header wherever Meta accepts them there,
//! retries with backoff only on 5xx and 429 and only calls marked safe to repeat, and
//! decodes Meta's error bodies into [`GraphError`].
//!
//! Nothing here logs or returns a token: URLs that must carry one (OAuth exchanges) are
//! never put in a message, and reqwest errors are reduced to their kind.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::error::{GraphError, MetaError};
use crate::outbound::{
    Answer, Destination, OutboundClient, OutboundError, ProviderUrls, join, settings,
};

/// Which of Meta's hosts a call goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// graph.facebook.com, under the configured API version.
    Graph,
    /// graph.instagram.com, under the configured API version.
    InstagramGraph,
    /// graph.instagram.com without a version (`access_token`, `refresh_access_token`).
    InstagramGraphUnversioned,
    /// api.instagram.com (Instagram Login's code exchange).
    InstagramApi,
}

/// Whether a failed call may be sent again. Registration and subscription are
/// idempotent at Meta; an OAuth code is single-use, so its exchange is never repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    Safe,
    Never,
}

/// How often and how patiently a safe call is retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the first retry; it doubles each time (with up to 25% jitter).
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_backoff: Duration::from_millis(200),
        }
    }
}

/// One call to Meta.
pub struct Call<'a> {
    method: Method,
    host: Host,
    path: String,
    token: Option<&'a str>,
    query: Vec<(&'static str, String)>,
    form: Option<Vec<(&'static str, String)>>,
    json: Option<Value>,
    repeat: Repeat,
}

impl<'a> Call<'a> {
    fn new(method: Method, host: Host, path: impl Into<String>) -> Self {
        Self {
            method,
            host,
            path: path.into(),
            token: None,
            query: Vec::new(),
            form: None,
            json: None,
            repeat: Repeat::Safe,
        }
    }

    pub fn get(host: Host, path: impl Into<String>) -> Self {
        Self::new(Method::GET, host, path)
    }

    pub fn post(host: Host, path: impl Into<String>) -> Self {
        Self::new(Method::POST, host, path)
    }

    pub fn delete(host: Host, path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, host, path)
    }

    /// Sends `token` as `Authorization: Bearer`.
    pub fn token(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// A form-encoded body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, fields: Vec<(&'static str, String)>) -> Self {
        self.form = Some(fields);
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.json = Some(body);
        self
    }

    pub fn never_repeat(mut self) -> Self {
        self.repeat = Repeat::Never;
        self
    }
}

#[derive(Clone, Debug)]
pub struct GraphClient {
    http: OutboundClient,
    graph: String,
    instagram_graph: String,
    instagram_api: String,
    version: String,
    retry: RetryPolicy,
    /// The day version checks take as today; `None`: the system clock's.
    today: Option<chrono::NaiveDate>,
}

impl GraphClient {
    pub fn new(http: OutboundClient, urls: &ProviderUrls, retry: RetryPolicy) -> Self {
        let base = |url: &str| url.trim_end_matches('/').to_owned();
        Self {
            http,
            graph: base(&urls.graph),
            instagram_graph: base(&urls.instagram_graph),
            instagram_api: base(&urls.instagram_api),
            version: urls.graph_version.clone(),
            retry,
            today: None,
        }
    }

    /// The Graph API version calls name.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Takes `today` as the day for version checks (tests); `None`: the system clock.
    pub fn dated(mut self, today: Option<chrono::NaiveDate>) -> Self {
        self.today = today;
        self
    }

    /// What to tell an operator about the Graph API version in use: it ends within 90
    /// days, or has ended (`versions`).
    pub fn version_warning(&self) -> Option<String> {
        let today = self
            .today
            .unwrap_or_else(|| crate::domain::ids::now().date_naive());
        super::versions::warning(&self.version, today)
    }

    /// Sends `call`, retrying a safe call on 5xx and 429, and returns Meta's JSON answer.
    pub async fn send(&self, call: Call<'_>) -> Result<Value, MetaError> {
        let url = self.url(call.host, &call.path);
        let answer = self.exchange(&url, &call).await?;
        serde_json::from_slice(&answer.body).map_err(|_| {
            MetaError::Malformed(format!(
                "{} {} answered with a body that is not JSON",
                call.method, call.path
            ))
        })
    }

    /// Whether Meta takes `token` for `node` (a phone number id, `me`): the one
    /// authenticated read a credential check makes, never repeated. The node is a
    /// tenant's value: it stays one path segment, percent-encoded.
    pub async fn check_token(
        &self,
        host: Host,
        node: &str,
        token: &str,
        version: Option<&str>,
    ) -> Result<(), MetaError> {
        let version = version.unwrap_or(&self.version);
        let url = match host {
            Host::Graph => join(&self.graph, &[version, node]),
            Host::InstagramGraph => join(&self.instagram_graph, &[version, node]),
            Host::InstagramGraphUnversioned => join(&self.instagram_graph, &[node]),
            Host::InstagramApi => join(&self.instagram_api, &[node]),
        };
        let call = Call::get(host, node)
            .token(token)
            .query("fields", "id")
            .never_repeat();
        self.exchange(&url, &call).await.map(drop)
    }

    /// Sends `call` to `url`, retrying a safe call on 5xx and 429; the body of a 2xx
    /// answer, or Meta's error.
    async fn exchange(&self, url: &str, call: &Call<'_>) -> Result<Answer, MetaError> {
        let mut attempt = 1;
        loop {
            let result = self.send_once(url, call).await;
            let retryable = matches!(&result, Err(MetaError::Graph(err)) if err.is_retryable());
            if !retryable || call.repeat == Repeat::Never || attempt >= self.retry.attempts {
                return result;
            }
            tracing::debug!(
                method = %call.method,
                path = %call.path,
                attempt,
                "Meta answered with a transient error; retrying"
            );
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
        }
    }

    async fn send_once(&self, url: &str, call: &Call<'_>) -> Result<Answer, MetaError> {
        let destination = Destination::operator(match call.host {
            Host::Graph => settings::GRAPH,
            Host::InstagramGraph | Host::InstagramGraphUnversioned => settings::INSTAGRAM_GRAPH,
            Host::InstagramApi => settings::INSTAGRAM_API,
        });
        let answer = self
            .http
            .send(destination, call.method.clone(), url, |mut request| {
                if !call.query.is_empty() {
                    request = request.query(&call.query);
                }
                if let Some(token) = call.token {
                    request = request.bearer_auth(token);
                }
                if let Some(form) = &call.form {
                    request = request.form(form);
                }
                if let Some(json) = &call.json {
                    request = request.json(json);
                }
                request
            })
            .await
            .map_err(|err| match err {
                OutboundError::Refused { .. } => MetaError::Refused(err.to_string()),
                OutboundError::Unreachable(kind) => MetaError::Unreachable(kind.to_owned()),
            })?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        Err(MetaError::Graph(GraphError::decode(
            answer.status,
            &answer.body,
        )))
    }

    fn url(&self, host: Host, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match host {
            Host::Graph => format!("{}/{}/{path}", self.graph, self.version),
            Host::InstagramGraph => format!("{}/{}/{path}", self.instagram_graph, self.version),
            Host::InstagramGraphUnversioned => format!("{}/{path}", self.instagram_graph),
            Host::InstagramApi => format!("{}/{path}", self.instagram_api),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .retry
            .first_backoff
            .saturating_mul(1 << (attempt - 1).min(10));
        let mut byte = [0u8; 1];
        // Jitter spreads retries of concurrent calls; without randomness, none.
        let jitter = match getrandom::fill(&mut byte) {
            Ok(()) => base.mul_f64(f64::from(byte[0]) / 255.0 / 4.0),
            Err(_) => Duration::ZERO,
        };
        base + jitter
    }

    /// Follows a Graph list's `paging.next` links, at most `max_pages` pages, and
    /// returns every item of `data`.
    pub async fn list_all(
        &self,
        first: Call<'_>,
        max_pages: usize,
    ) -> Result<Vec<Value>, MetaError> {
        let (token, host, path) = (first.token, first.host, first.path.clone());
        let query = first.query.clone();
        let mut page = self.send(first).await?;
        let mut items = Vec::new();
        for _ in 0..max_pages {
            if let Some(Value::Array(data)) = page.get_mut("data").map(Value::take) {
                items.extend(data);
            }
            // Meta's `next` link repeats the first request with a cursor; send the first
            // request again with that cursor, to our own base URL, so that a link cannot
            // send the token anywhere else.
            let Some(after) = page
                .pointer("/paging/cursors/after")
                .and_then(Value::as_str)
                .filter(|_| page.pointer("/paging/next").is_some())
                .map(str::to_owned)
            else {
                return Ok(items);
            };
            let mut next = Call::get(host, path.clone());
            next.token = token;
            next.query = query.clone();
            next = next.query("after", after);
            page = self.send(next).await?;
        }
        Ok(items)
    }
}

/// A text field of Meta's answer: empty when absent or not a string, as Meta leaves out
/// what does not apply.
pub(crate) fn text(answer: &Value, key: &str) -> String {
    answer
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The `access_token` of an OAuth answer.
pub fn access_token_of(answer: &Value) -> Result<String, MetaError> {
    answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| MetaError::Malformed("Meta's token answer has no access_token".to_owned()))
}

impl GraphError {
    fn is_retryable(&self) -> bool {
        self.http_status.is_server_error() || self.http_status == StatusCode::TOO_MANY_REQUESTS
    }
}
