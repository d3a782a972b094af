//! Ends open server streams when the server shuts down. Graceful shutdown lets calls in
//! flight finish, but a watch stream never finishes by itself: without this, one open
//! health watch (what a load balancer keeps) holds the process until the drain timeout.
//! At shutdown each stream of the listed methods ends with UNAVAILABLE, "the server is
//! shutting down", so the client reconnects elsewhere at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::watch;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

/// The server-streaming methods that never end on their own.
const STREAMING: &[&str] = &[
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/patchbay.v1.AccountService/WatchDefaultAccounts",
    "/patchbay.v1.AccountService/WatchAccountEvents",
];

#[derive(Clone, Debug)]
pub struct StreamShutdownLayer {
    shutting_down: watch::Receiver<bool>,
}

impl StreamShutdownLayer {
    pub fn new(shutting_down: watch::Receiver<bool>) -> Self {
        Self { shutting_down }
    }
}

impl<S> Layer<S> for StreamShutdownLayer {
    type Service = StreamShutdown<S>;

    fn layer(&self, inner: S) -> StreamShutdown<S> {
        StreamShutdown {
            inner,
            shutting_down: self.shutting_down.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct StreamShutdown<S> {
    inner: S,
    shutting_down: watch::Receiver<bool>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for StreamShutdown<S>
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let streaming = STREAMING.contains(&request.uri().path());
        let future = self.inner.call(request);
        let mut shutting_down = self.shutting_down.clone();
        Box::pin(async move {
            let response = future.await?;
            if !streaming {
                return Ok(response);
            }
            let shutdown: BoxFuture<()> = Box::pin(async move {
                let _ = shutting_down.wait_for(|down| *down).await;
            });
            Ok(response.map(|inner| {
                Body::new(EndOnShutdown {
                    inner,
                    shutdown,
                    ended: false,
                })
            }))
        })
    }
}

struct EndOnShutdown {
    inner: Body,
    shutdown: BoxFuture<()>,
    ended: bool,
}

impl http_body::Body for EndOnShutdown {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() {
                this.ended = true;
            }
            return Poll::Ready(frame);
        }
        if this.shutdown.as_mut().poll(cx).is_ready() {
            this.ended = true;
            let status = super::status::unavailable("the server is shutting down; reconnect");
            let trailers = status.into_http::<Body>().into_parts().0.headers;
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Pending
    }

    /// The inner body's own answer until shutdown fires: an error-only answer (tonic
    /// gives an empty body that is already at its end) must go out as gRPC's
    /// Trailers-Only form, one HEADERS frame with END_STREAM, which hyper only sends
    /// when the body says it is at its end before its first poll. grpc-core and
    /// grpc-js lose the status otherwise.
    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.ended {
            http_body::SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}
