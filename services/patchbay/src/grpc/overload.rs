//! Overload protection as a tower layer in front of every service: a deadline per call
//! (the server's, or the caller's `grpc-timeout` when shorter) answered with
//! DEADLINE_EXCEEDED, and a limit on calls in flight beyond which new calls are refused
//! at once with RESOURCE_EXHAUSTED — never queued. Health and reflection stay exempt
//! from the limit, so that probes and operators get answers under load. RouteWebhook,
//! the webhook gateway's one call, runs on places of its own: tenants' calls cannot take
//! them, and the gateway cannot take theirs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::body::Body;
use tower::{Layer, Service};

/// The gateway's call.
const ROUTE_WEBHOOK: &str = "/patchbay.v1.WebhookService/RouteWebhook";

#[derive(Clone, Debug)]
pub struct OverloadLayer {
    in_flight: Arc<Semaphore>,
    gateway_in_flight: Arc<Semaphore>,
    timeout: Duration,
}

impl OverloadLayer {
    pub fn new(max_in_flight: usize, max_gateway_in_flight: usize, timeout: Duration) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            gateway_in_flight: Arc::new(Semaphore::new(max_gateway_in_flight)),
            timeout,
        }
    }
}

impl<S> Layer<S> for OverloadLayer {
    type Service = Overload<S>;

    fn layer(&self, inner: S) -> Overload<S> {
        Overload {
            inner,
            in_flight: self.in_flight.clone(),
            gateway_in_flight: self.gateway_in_flight.clone(),
            timeout: self.timeout,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Overload<S> {
    inner: S,
    in_flight: Arc<Semaphore>,
    gateway_in_flight: Arc<Semaphore>,
    timeout: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Overload<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let exempt = path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.");
        let (places, reason, refusal) = if path == ROUTE_WEBHOOK {
            (
                &self.gateway_in_flight,
                "gateway",
                "the webhook gateway is at its limit of calls in flight; retry with backoff",
            )
        } else {
            (
                &self.in_flight,
                "server",
                "the server is at its limit of calls in flight; retry with backoff",
            )
        };
        let permit = if exempt {
            None
        } else {
            match places.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    metrics::counter!("patchbay_grpc_shed_total", "reason" => reason).increment(1);
                    let refused = super::status::resource_exhausted(refusal);
                    return Box::pin(async move { Ok(refused.into_http()) });
                }
            }
        };
        let deadline = match caller_timeout(request.headers()) {
            Some(asked) => asked.min(self.timeout),
            None => self.timeout,
        };
        // The service that was polled ready handles this call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let _permit = permit;
            let _in_flight = InFlight::new();
            match tokio::time::timeout(deadline, inner.call(request)).await {
                Ok(result) => result,
                Err(_) => Ok(super::status::deadline_exceeded(format!(
                    "the call did not finish within {} ms",
                    deadline.as_millis()
                ))
                .into_http()),
            }
        })
    }
}

/// The caller's `grpc-timeout` header (`<up to 8 digits><H|M|S|m|u|n>`).
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
