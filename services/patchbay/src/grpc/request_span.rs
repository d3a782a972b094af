//! One `tracing` span per call, opened before anything else runs: the method, the
//! request id, the caller's workspace (filled in once the token is read), the status
//! code and the latency. Every log line written during the call carries these fields.
//! Nothing of the request body or its metadata values (tokens) is recorded.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::propagation::Extractor;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const REQUEST_ID: &str = "x-request-id";

/// The caller's `x-request-id` when it is a short token of safe characters.
pub fn sane_request_id(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        })
        .map(str::to_owned)
}

/// A new request id, shaped as a UUIDv4. Made from a per-process random seed and a
/// counter rather than the system's random source, which would cost a system call on
/// every call: ids need to be unique, not secret.
pub fn new_request_id() -> String {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut bytes = [0u8; 8];
        match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            // Unique enough without it: the time and the process.
            Err(_) => {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |t| t.as_nanos() as u64)
                    ^ u64::from(std::process::id())
            }
        }
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let high = splitmix64(seed ^ n);
    let low = splitmix64(high ^ n.rotate_left(32));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A bijective mix of 64 bits (SplitMix64's finaliser).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Echoes the request id in the response headers and, on an error, adds it to the
/// status details as `google.rpc.RequestInfo`, beside any details already there.
fn attach_request_id(response: &mut http::Response<Body>, request_id: &str) {
    if let Ok(value) = http::HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let Some(headers) = super::status::with_request_info(response.headers(), request_id) else {
        return;
    };
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        match headers.get(name) {
            Some(value) => {
                response.headers_mut().insert(name, value.clone());
            }
            None => {
                response.headers_mut().remove(name);
            }
        }
    }
}

/// Reads W3C trace context headers from a request.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct RequestSpanLayer;

impl<S> Layer<S> for RequestSpanLayer {
    type Service = RequestSpan<S>;

    fn layer(&self, inner: S) -> RequestSpan<S> {
        RequestSpan { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RequestSpan<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for RequestSpan<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        // One request id per call: the caller's when it is sane, else a new one. The
        // interceptor records it for audit events; responses carry it back.
        let request_id = sane_request_id(request.headers()).unwrap_or_else(new_request_id);
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            request.headers_mut().insert(REQUEST_ID, value.clone());
        }
        let span = tracing::info_span!(
            "rpc",
            otel.name = %method.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %method,
            workspace = tracing::field::Empty,
            request_id = %request_id,
            grpc.code = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        // Continue the caller's trace (W3C traceparent) when it sent one.
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        let _ = span.set_parent(parent);
        let started = Instant::now();
        // The interceptor runs inside `call`: enter the span so it can record the caller.
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(
            async move {
                let mut result = future.await;
                if let Ok(response) = &mut result {
                    attach_request_id(response, &request_id);
                }
                let span = tracing::Span::current();
                let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                span.record("latency_ms", latency_ms);
                match &result {
                    Ok(response) => {
                        // Errors travel as trailers-only responses: the status is a header.
                        // A success has no status header yet (it follows in trailers): 0.
                        let code = response
                            .headers()
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<i32>().ok())
                            .unwrap_or(0);
                        span.record("grpc.code", code);
                        span.record("rpc.grpc.status_code", code);
                        let code = tonic::Code::from_i32(code);
                        let method = crate::metrics::method_label(&method);
                        // A static name: nothing is allocated per call for it.
                        let code_name = super::status::code_name(code);
                        crate::metrics::hot::call_finished(method, code_name, latency_ms / 1000.0);
                        // Successes are the hot path: DEBUG. A caller's mistake is INFO;
                        // what the server or its database failed at is WARN.
                        match code {
                            tonic::Code::Ok => {
                                tracing::debug!(code = %code_name, latency_ms, "rpc finished")
                            }
                            tonic::Code::Internal
                            | tonic::Code::Unavailable
                            | tonic::Code::DataLoss
                            | tonic::Code::Unknown
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::ResourceExhausted => {
                                tracing::warn!(code = %code_name, latency_ms, "rpc failed")
                            }
                            _ => tracing::info!(code = %code_name, latency_ms, "rpc refused"),
                        }
                    }
                    Err(_) => tracing::error!(latency_ms, "rpc transport error"),
                }
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_request_ids_are_distinct_v4_uuids() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 4, "{id}");
        }
    }
}
