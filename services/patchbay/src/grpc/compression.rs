//! Compressed messages, the same on every service.
//!
//! - Requests compressed with gzip or zstd are accepted everywhere (grpcio, grpc-go and
//!   grpc-js clients turn it on with one option). tonic inflates a message into a
//!   buffer capped at the service's maximum message size, so a small body that
//!   inflates past it is RESOURCE_EXHAUSTED and never more than that cap in memory.
//! - An encoding we do not accept is UNIMPLEMENTED naming those we do, before the
//!   call takes any place ([`CompressionPolicyLayer`]).
//! - Answers: grpcio and grpc-js offer `gzip` on every call, so an answer is only
//!   compressed when it is over [`COMPRESS_FROM`] bytes ([`answer`]): below that gzip
//!   costs CPU and saves nothing. An answer that carries secrets in clear is never
//!   compressed ([`secret_answer`], [`answer_for`]: GetAccountCredentials, and every
//!   account answer to an admin, who sees verify tokens): compressing a secret beside
//!   data another caller chose (a display name) leaks it through the answer's size.
//!   The watches are not compressed either: their messages are small, and tonic can
//!   only decide per stream.
//! - Health and reflection need no login: they take gzip only, in messages of at most
//!   [`UNAUTHENTICATED_MAX_BYTES`] (reflection echoes its request in its answer), and
//!   health answers, a few bytes, are never compressed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Response;
use tonic::body::Body;
use tonic::codec::{CompressionEncoding, SingleMessageCompressionOverride};
use tower::{Layer, Service};

/// The encodings accepted on requests and offered on answers.
pub const ENCODINGS: [CompressionEncoding; 2] =
    [CompressionEncoding::Gzip, CompressionEncoding::Zstd];

/// The largest request message health and reflection take (compressed or not): what
/// anyone may send without a token stays small.
pub const UNAUTHENTICATED_MAX_BYTES: usize = 16 * 1024;

/// Answers shorter than this are sent as they are.
pub const COMPRESS_FROM: usize = 1024;

/// The methods whose answers are never compressed: secrets in clear, and streams.
const NEVER_COMPRESSED: &[&str] = &[
    "/patchbay.v1.AccountService/GetAccountCredentials",
    "/patchbay.v1.AccountService/WatchDefaultAccounts",
    "/patchbay.v1.AccountService/WatchAccountEvents",
];

/// A generated server (or tonic's `Grpc`) that accepts [`ENCODINGS`] and may answer
/// with them.
macro_rules! with_compression {
    ($server:expr) => {{
        let [first, second] = $crate::grpc::compression::ENCODINGS;
        $server
            .accept_compressed(first)
            .accept_compressed(second)
            .send_compressed(first)
            .send_compressed(second)
    }};
}
pub(crate) use with_compression;

/// A unary answer, compressed (when the caller asked) only if it is large enough to
/// gain from it.
pub fn answer<M: prost::Message>(message: M) -> Response<M> {
    let small = message.encoded_len() < COMPRESS_FROM;
    let mut response = Response::new(message);
    if small {
        response
            .extensions_mut()
            .insert(SingleMessageCompressionOverride::Disable);
    }
    response
}

/// A unary answer to a caller who may see secrets in clear in it (an admin sees
/// accounts' verify tokens): never compressed, else as [`answer`].
pub fn answer_for<M: prost::Message>(sees_secrets: bool, message: M) -> Response<M> {
    if sees_secrets {
        secret_answer(message)
    } else {
        answer(message)
    }
}

/// An answer with secrets in clear: never compressed, whatever the caller offers.
pub fn secret_answer<M>(message: M) -> Response<M> {
    let mut response = Response::new(message);
    response
        .extensions_mut()
        .insert(SingleMessageCompressionOverride::Disable);
    response
}

/// The compression of an answer of `len` bytes already encoded.
pub fn for_encoded(len: usize) -> SingleMessageCompressionOverride {
    if len < COMPRESS_FROM {
        SingleMessageCompressionOverride::Disable
    } else {
        SingleMessageCompressionOverride::Inherit
    }
}

/// Refuses an encoding no service accepts, naming those it does, and keeps the
/// answers of [`NEVER_COMPRESSED`] methods plain whatever the caller offers.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompressionPolicyLayer;

impl<S> Layer<S> for CompressionPolicyLayer {
    type Service = CompressionPolicy<S>;

    fn layer(&self, inner: S) -> CompressionPolicy<S> {
        CompressionPolicy { inner }
    }
}

#[derive(Clone, Debug)]
pub struct CompressionPolicy<S> {
    inner: S,
}

/// The inner call's future, or the refusal at once: no allocation on the way through.
pub enum PolicyFuture<F> {
    Refused(Option<http::Response<Body>>),
    Inner(F),
}

impl<F, E> Future for PolicyFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, E>> + Unpin,
{
    type Output = Result<http::Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            PolicyFuture::Refused(refused) => Poll::Ready(Ok(refused.take().unwrap_or_default())),
            PolicyFuture::Inner(inner) => Pin::new(inner).poll(cx),
        }
    }
}

const ENCODING: &str = "grpc-encoding";
const ACCEPT_ENCODING: &str = "grpc-accept-encoding";

impl<S, B> Service<http::Request<B>> for CompressionPolicy<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Unpin,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = PolicyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(encoding) = request.headers().get(ENCODING)
            && !accepted(encoding.as_bytes())
        {
            let shown = String::from_utf8_lossy(encoding.as_bytes());
            let refused = super::status::unimplemented_encoding(&shown);
            let mut response = refused.into_http::<Body>();
            response.headers_mut().insert(
                ACCEPT_ENCODING,
                http::HeaderValue::from_static(ACCEPTED_HEADER),
            );
            return PolicyFuture::Refused(Some(response));
        }
        if NEVER_COMPRESSED.contains(&request.uri().path()) {
            request.headers_mut().remove(ACCEPT_ENCODING);
        }
        PolicyFuture::Inner(self.inner.call(request))
    }
}

/// What `grpc-accept-encoding` says on a refusal.
pub const ACCEPTED_HEADER: &str = "identity,gzip,zstd";

fn accepted(encoding: &[u8]) -> bool {
    [b"identity".as_slice(), b"gzip", b"zstd"].contains(&encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_encodings_tonic_inflates_are_accepted() {
        for known in ["identity", "gzip", "zstd"] {
            assert!(accepted(known.as_bytes()), "{known}");
        }
        for unknown in ["deflate", "snappy", "", "gzip,zstd", "br", "GZIP"] {
            assert!(!accepted(unknown.as_bytes()), "{unknown}");
        }
    }

    #[test]
    fn small_answers_are_sent_plain() {
        let small = answer(prost_types::Duration {
            seconds: 1,
            nanos: 0,
        });
        assert_eq!(
            small.extensions().get::<SingleMessageCompressionOverride>(),
            Some(&SingleMessageCompressionOverride::Disable)
        );
        let large = answer(prost_types::Struct {
            fields: [(
                "k".to_owned(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue("x".repeat(2000))),
                },
            )]
            .into(),
        });
        assert_eq!(
            large.extensions().get::<SingleMessageCompressionOverride>(),
            None
        );
        assert_eq!(for_encoded(1023), SingleMessageCompressionOverride::Disable);
        assert_eq!(for_encoded(1024), SingleMessageCompressionOverride::Inherit);
    }
}
