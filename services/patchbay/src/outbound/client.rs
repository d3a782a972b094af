//! The one HTTP client for every call Patchbay makes to a provider (credential checks,
//! the Meta Graph client, anything later; the OTLP exporter is the operator's own and
//! does not use it). Its guard:
//!
//! - the URL's literal form is checked before each request (`guard::check_url`), since
//!   the connector never asks a resolver about an IP literal;
//! - every name is resolved by [`GuardedResolver`], which refuses the whole lookup when
//!   any address it got is refused, so the connection only ever goes to addresses that
//!   were checked (names resolving to loopback, hosts-file entries, DNS rebinding);
//! - no proxy from the environment (`HTTPS_PROXY` would otherwise connect for us to
//!   wherever it is told), no redirects, and response bodies read up to [`MAX_BODY_BYTES`].

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, RequestBuilder, StatusCode};

use super::guard::{self, AddressPolicy, Origin, Refusal};

const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a response body that is read; the rest is dropped with the connection.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Resolves host names to addresses. The system resolver by default; tests inject one
/// to make a name point where they want (a rebinding name, a hosts-file entry).
pub trait NameResolver: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// A resolver from a function, for tests: `|host| Ok(vec![...])`.
impl<F> NameResolver for F
where
    F: Fn(&str) -> io::Result<Vec<IpAddr>> + Send + Sync + 'static,
{
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let answer = self(host);
        Box::pin(async move { answer })
    }
}

/// getaddrinfo, through Tokio's blocking pool.
struct SystemResolver;

impl NameResolver for SystemResolver {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let host = host.to_owned();
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addresses.map(|address| address.ip()).collect())
        })
    }
}

/// How outbound calls are guarded, validated.
#[derive(Clone)]
pub struct OutboundSettings {
    pub policy: AddressPolicy,
    /// `None`: the system resolver.
    pub resolver: Option<Arc<dyn NameResolver>>,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            policy: AddressPolicy::PublicOnly,
            resolver: None,
        }
    }
}

impl std::fmt::Debug for OutboundSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundSettings")
            .field("policy", &self.policy)
            .field("injected_resolver", &self.resolver.is_some())
            .finish()
    }
}

/// Checks every address a name resolves to before the connector may use any of them.
struct GuardedResolver {
    inner: Arc<dyn NameResolver>,
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let inner = self.inner.clone();
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = inner.lookup(&host).await?;
            if addresses.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no address").into());
            }
            for address in &addresses {
                guard::check_address(*address, policy).map_err(|refusal| {
                    Box::new(Refusal(format!("{host} resolves to {refusal}")))
                        as Box<dyn std::error::Error + Send + Sync>
                })?;
            }
            let addresses: Addrs = Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addresses)
        })
    }
}

/// Where a request goes, as named in errors: the config field a tenant set
/// (`config.chatwootURL`) or the operator's setting (`PATCHBAY_GRAPH_BASE_URL`).
#[derive(Clone, Copy, Debug)]
pub struct Destination<'a> {
    pub name: &'a str,
    pub origin: Origin,
}

impl<'a> Destination<'a> {
    pub fn tenant(field: &'a str) -> Self {
        Self {
            name: field,
            origin: Origin::Tenant,
        }
    }

    pub fn operator(setting: &'a str) -> Self {
        Self {
            name: setting,
            origin: Origin::Operator,
        }
    }
}

/// A provider's answer: its status and at most [`MAX_BODY_BYTES`] of its body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The guard refused the destination; no connection was attempted.
    #[error("{destination}: {refusal}")]
    Refused {
        destination: String,
        refusal: Refusal,
    },
    /// The provider was not reached or did not answer in time; the kind only, never the
    /// URL (an OAuth exchange carries the app secret in its query).
    #[error("{0}")]
    Unreachable(&'static str),
}

#[derive(Clone, Debug)]
pub struct OutboundClient {
    http: reqwest::Client,
    policy: AddressPolicy,
}

impl OutboundClient {
    pub fn new(settings: &OutboundSettings) -> Result<Self, reqwest::Error> {
        let resolver = GuardedResolver {
            inner: settings
                .resolver
                .clone()
                .unwrap_or_else(|| Arc::new(SystemResolver)),
            policy: settings.policy,
        };
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(resolver))
            .build()?;
        Ok(Self {
            http,
            policy: settings.policy,
        })
    }

    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// Sends `method url` (as `build` completes it) to `destination`, and reads at most
    /// [`MAX_BODY_BYTES`] of the answer. A redirect is an answer like any other (3xx):
    /// it is never followed.
    pub async fn send(
        &self,
        destination: Destination<'_>,
        method: Method,
        url: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Answer, OutboundError> {
        let parsed = guard::check_url(url, destination.origin, self.policy).map_err(|refusal| {
            OutboundError::Refused {
                destination: destination.name.to_owned(),
                refusal,
            }
        })?;
        let outcome = |label: &'static str| {
            metrics::counter!("patchbay_outbound_calls_total", "provider" => destination.name.to_owned(), "outcome" => label)
                .increment(1);
        };
        let response = match build(self.http.request(method, parsed)).send().await {
            Ok(response) => response,
            Err(err) => {
                outcome("unreachable");
                return Err(classify_error(&err, destination));
            }
        };
        let status = response.status();
        outcome(match status.as_u16() {
            200..=399 => "ok",
            429 => "rate_limited",
            400..=499 => "refused",
            _ => "failed",
        });
        let body = read_capped(response)
            .await
            .map_err(|err| classify_error(&err, destination))?;
        Ok(Answer { status, body })
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Bytes, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY_BYTES - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// A refusal by the resolver is the guard's; anything else is reduced to its kind.
fn classify_error(err: &reqwest::Error, destination: Destination<'_>) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(refusal) = current.downcast_ref::<Refusal>() {
            return OutboundError::Refused {
                destination: destination.name.to_owned(),
                refusal: refusal.clone(),
            };
        }
        source = current.source();
    }
    OutboundError::Unreachable(if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    })
}
/// `base` with `segments` appended, each percent-encoded. A base that is no URL stays as
/// it is, for the guard to refuse by name.
pub fn join(base: &str, segments: &[&str]) -> String {
    let Ok(mut url) = url::Url::parse(base.trim()) else {
        return base.to_owned();
    };
    match url.path_segments_mut() {
        Ok(mut path) => {
            path.pop_if_empty().extend(segments);
        }
        Err(()) => return base.to_owned(),
    }
    url.to_string()
}
