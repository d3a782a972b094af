//! Overload protection as a tower layer in front of every service.
//!
//! - A call's request must arrive within the read timeout of its headers, or the call
//!   is DEADLINE_EXCEEDED; while it arrives it holds no place (`request_read`). Only
//!   then does the call go on, to the interceptor that takes its place (`places`): a
//!   caller sending headers and stalling its body costs the others nothing. Only a
//!   caller whose bearer token verifies is waited for (any other is refused by the
//!   interceptor at once, its body unread), and health and reflection, open to all,
//!   are waited for only up to their own message limit.
//! - A deadline per call (the server's, or the caller's `grpc-timeout` when shorter)
//!   answered with DEADLINE_EXCEEDED.
//!
//! Health and reflection take no place, so that probes and operators get answers under
//! load; their messages are waited for in the same way.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tonic::body::Body;
use tower::{Layer, Service};

use super::compression::UNAUTHENTICATED_MAX_BYTES;
use super::request_read::{self, NotArrived, ReadBudget, ReadBudgets, Until};
use crate::auth::Authenticator;

/// Bytes of requests still arriving one workspace (or the gateway) may hold at once:
/// this, or twice the message limit when that is larger.
const READ_BUDGET_BYTES: usize = 32 * 1024 * 1024;
/// The same for health's and reflection's callers, all together (their messages are
/// 16 KiB at most).
const OPEN_READ_BUDGET_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct OverloadLayer {
    limits: Limits,
}

#[derive(Clone, Debug)]
struct Limits {
    timeout: Duration,
    read_timeout: Duration,
    max_message: usize,
    budgets: Arc<ReadBudgets>,
    open_budget: Arc<ReadBudget>,
    authenticator: Arc<Authenticator>,
}

impl OverloadLayer {
    pub fn new(
        timeout: Duration,
        read_timeout: Duration,
        max_message: usize,
        authenticator: Arc<Authenticator>,
    ) -> Self {
        Self {
            limits: Limits {
                timeout,
                read_timeout,
                max_message,
                budgets: Arc::new(ReadBudgets::new(
                    READ_BUDGET_BYTES.max(max_message.saturating_mul(2)),
                )),
                open_budget: ReadBudget::new(OPEN_READ_BUDGET_BYTES),
                authenticator,
            },
        }
    }
}

/// What is waited for of a call before it goes on, and whose budget its bytes count
/// in; `None`: nothing (a caller without a valid token, refused by the interceptor
/// without reading its body). The token is verified once, here: the interceptor gets
/// the caller, or the refusal ([`Verified`]).
fn wait_for<B>(
    limits: &Limits,
    request: &mut http::Request<B>,
) -> Option<(Until, usize, Arc<ReadBudget>)> {
    let path = request.uri().path();
    if path.starts_with("/grpc.reflection.") {
        return Some((
            Until::FirstMessage,
            UNAUTHENTICATED_MAX_BYTES,
            limits.open_budget.clone(),
        ));
    }
    if path.starts_with("/grpc.health.") {
        return Some((
            Until::End,
            UNAUTHENTICATED_MAX_BYTES,
            limits.open_budget.clone(),
        ));
    }
    let header = request.headers().get(http::header::AUTHORIZATION)?;
    // A header that is not ASCII is the interceptor's to refuse, with its own words.
    let header = header.to_str().ok()?;
    match limits.authenticator.authenticate(Some(header)) {
        Ok(authenticated) => {
            let budget = limits.budgets.of(authenticated.caller.workspace_id());
            request
                .extensions_mut()
                .insert(Verified::Caller(authenticated));
            Some((Until::End, limits.max_message, budget))
        }
        Err(err) => {
            request
                .extensions_mut()
                .insert(Verified::Refused(err.into()));
            None
        }
    }
}

/// What the overload layer made of the call's bearer token.
#[derive(Clone)]
pub enum Verified {
    Caller(crate::auth::Authenticated),
    Refused(tonic::Status),
}

impl<S> Layer<S> for OverloadLayer {
    type Service = Overload<S>;

    fn layer(&self, inner: S) -> Overload<S> {
        Overload {
            inner,
            limits: self.limits.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Overload<S> {
    inner: S,
    limits: Limits,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Overload<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let started = tokio::time::Instant::now();
        let deadline = match caller_timeout(request.headers()) {
            Some(asked) => asked.min(self.limits.timeout),
            None => self.limits.timeout,
        };
        let limits = self.limits.clone();
        // The service that was polled ready handles this call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let wait = wait_for(&limits, &mut request);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = match wait {
                None => Body::new(body),
                Some((until, max_message, budget)) => {
                    let reading = request_read::request(body, until, max_message, &budget);
                    match tokio::time::timeout(limits.read_timeout.min(deadline), reading).await {
                        Ok(Ok(arrived)) => Body::new(arrived),
                        Ok(Err(NotArrived::OverBudget)) => {
                            shed("request_read_budget");
                            return Ok(super::status::resource_exhausted(
                                "the server is reading too many large requests at once; \
                                 retry with backoff",
                            )
                            .into_http());
                        }
                        Ok(Err(NotArrived::MoreThanOneMessage)) => {
                            return Ok(super::status::more_than_one_message().into_http());
                        }
                        Err(_) if limits.read_timeout < deadline => {
                            shed("request_read_timeout");
                            return Ok(super::status::deadline_exceeded(format!(
                                "the request did not arrive within {} ms of its headers",
                                limits.read_timeout.as_millis()
                            ))
                            .into_http());
                        }
                        Err(_) => return Ok(past_deadline(deadline)),
                    }
                }
            };
            let _in_flight = InFlight::new();
            let left = deadline.saturating_sub(started.elapsed());
            let request = http::Request::from_parts(parts, body);
            match tokio::time::timeout(left, inner.call(request)).await {
                Ok(result) => result,
                Err(_) => Ok(past_deadline(deadline)),
            }
        })
    }
}

fn shed(reason: &'static str) {
    metrics::counter!("patchbay_grpc_shed_total", "reason" => reason).increment(1);
}

fn past_deadline(deadline: Duration) -> http::Response<Body> {
    super::status::deadline_exceeded(format!(
        "the call did not finish within {} ms",
        deadline.as_millis()
    ))
    .into_http()
}

/// Counts a call in `patchbay_grpc_in_flight` while it lives.
struct InFlight;

impl InFlight {
    fn new() -> Self {
        crate::metrics::hot::in_flight(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        crate::metrics::hot::in_flight(-1.0);
    }
}

/// The caller's `grpc-timeout` header (`<up to 8 digits><H|M|S|m|u|n>`).
fn caller_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_headers_parse() {
        let mut headers = http::HeaderMap::new();
        for (text, expected) in [
            ("250m", Some(Duration::from_millis(250))),
            ("3S", Some(Duration::from_secs(3))),
            ("1H", Some(Duration::from_secs(3600))),
            ("100u", Some(Duration::from_micros(100))),
            ("5x", None),
            ("123456789S", None),
            ("m", None),
        ] {
            headers.insert("grpc-timeout", text.parse().expect("header"));
            assert_eq!(caller_timeout(&headers), expected, "{text}");
        }
    }
}
