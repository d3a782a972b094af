//! zero2prod's split: [`Application::build`] connects and migrates the database, binds
//! the listener and wires every service and background task (`wiring`), so that
//! anything misconfigured fails the start; [`Application::run_until_stopped`] only
//! serves and drains. Tests build an [`Application`] on port 0 the same way `patchbay
//! serve` does.

mod health;
mod web;
mod wiring;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

use crate::config::Settings;
use crate::grpc::authorization::AuthorizationLayer;
use crate::grpc::compression::CompressionPolicyLayer;
use crate::grpc::overload::OverloadLayer;
use crate::grpc::request_span::RequestSpanLayer;
use crate::grpc::stream_shutdown::StreamShutdownLayer;
use crate::listener::{self, ReloadingTls};
use crate::store::Store;
use crate::supervisor::Supervisor;
use health::set_health;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sea_orm::DbErr),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[source] sea_orm::DbErr),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the TLS configuration: {0}")]
    Tls(#[from] listener::TlsError),
    #[error("cannot load the provider catalog: {0}")]
    Catalog(crate::domain::Error),
    #[error("cannot load the webhook routing index: {0}")]
    Routes(crate::domain::Error),
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
    #[error("cannot build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Concurrent streams one HTTP/2 connection may open.
const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// Streams h2 may reset for a client's protocol errors (a DATA frame past its
/// content-length, for one) over one connection's life before it closes
/// the connection with GOAWAY ENHANCE_YOUR_CALM. h2 and hyper default to 1,024 (the
/// guard of RUSTSEC-2024-0003, and of "MadeYouReset", CVE-2025-8671: streams the client
/// makes the server reset do not count as open, so without it one connection has the
/// handlers start without end), but tonic's `Server` hands hyper `None` unless told,
/// which turns the guard off. A client's own cancels (RST_STREAM from the client) never
/// count here.
const MAX_LOCAL_ERROR_RESETS_PER_CONNECTION: usize = 1024;

pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    /// Serves `/metrics` until the server stops.
    metrics_task: Option<tokio::task::JoinHandle<()>>,
    supervisor: Supervisor,
    tls: Option<Arc<ReloadingTls>>,
    store: Store,
    routes: Routes,
    health: HealthReporter,
    overload: OverloadLayer,
    settings: Settings,
}

impl Application {
    /// Everything short of serving: a setting, file, database or catalog that does not
    /// work stops the start here.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        // Files that do not load stop the start, before anything else is touched.
        let tls = settings.tls.clone().map(ReloadingTls::load).transpose()?;
        let store = Store::connect(&settings.database, settings.keys.clone())
            .await
            .map_err(StartupError::Connect)?;
        store.migrate().await.map_err(StartupError::Migrate)?;
        let bind_error = |source| StartupError::Bind {
            address: settings.listen,
            source,
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let supervisor = Supervisor::new(None);
        let (metrics_addr, metrics_task) = match settings.server.metrics_listen {
            Some(address) => {
                let bind_error = |source| StartupError::Bind { address, source };
                let (bound, serve) = crate::metrics::listen(address, store.clone())
                    .await
                    .map_err(bind_error)?;
                tracing::info!(address = %bound, "metrics listening");
                (Some(bound), Some(tokio::spawn(serve)))
            }
            None => (None, None),
        };
        let wired = wiring::wire(&settings, &store, &supervisor).await?;
        if let Some(tls) = tls.clone() {
            supervisor.spawn("tls_reload", move || tls.clone().watch(), || {});
        }
        Ok(Application {
            listener,
            local_addr,
            metrics_addr,
            metrics_task,
            supervisor,
            tls,
            store,
            routes: wired.routes,
            health: wired.health,
            overload: wired.overload,
            settings,
        })
    }

    /// The supervisor of the background tasks (a test stops one to see it restarted).
    pub fn supervisor(&self) -> Supervisor {
        self.supervisor.clone()
    }

    /// The address actually bound (the port is chosen by the OS when asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where metrics are served, when they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Serves until `shutdown` completes; then reports NOT_SERVING, stops accepting,
    /// gives in-flight calls the drain timeout to finish, and closes the database pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), StartupError> {
        let Application {
            listener,
            local_addr,
            metrics_addr: _,
            metrics_task,
            supervisor,
            tls,
            store,
            routes,
            health,
            overload,
            settings,
        } = self;
        if let Some(data_dir) = &settings.development_keys {
            tracing::warn!(
                data_dir = %data_dir.display(),
                "using development keys generated in the data directory (embedded default only); \
                 configure encryption and JWT keys for anything else"
            );
        }
        tracing::info!(
            address = %local_addr,
            tls = tls.is_some(),
            mtls = settings.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some()),
            "patchbay listening"
        );
        let limits = &settings.server;
        let (close_listener, listener_closed) = tokio::sync::watch::channel(false);
        let per_network = settings
            .tls
            .as_ref()
            .map_or(listener::HANDSHAKES_PER_NETWORK, |t| {
                t.handshakes_per_network
            });
        let incoming = listener::incoming(listener, tls, per_network, listener_closed);
        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let (shutting_down, shutdown_seen) = tokio::sync::watch::channel(false);
        let server = Server::builder()
            // gRPC-Web over HTTP/1.1 too (browsers), beside gRPC over HTTP/2.
            .accept_http1(true)
            // Streams per HTTP/2 connection, health and reflection included.
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .http2_max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS_PER_CONNECTION))
            .http2_keepalive_interval(Some(limits.http2_keepalive))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            // A browser's preflight is answered before anything else, for the allowed
            // origins only; gRPC-Web is turned into gRPC for every layer after it.
            .layer(web::cors(&limits.grpc_web_origins))
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(RequestSpanLayer)
            .layer(CompressionPolicyLayer)
            .layer(AuthorizationLayer)
            .layer(StreamShutdownLayer::new(shutdown_seen))
            .layer(overload)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        tokio::pin!(server);

        let result = tokio::select! {
            result = &mut server => result,
            () = shutdown => {
                tracing::info!("shutting down: finishing in-flight calls");
                // Background tasks stop first: the monitor must not report SERVING again.
                supervisor.stop_all().await;
                set_health(&health, false).await;
                let _ = stop_accepting.send(());
                let _ = close_listener.send(true);
                // Watchers have seen NOT_SERVING; now their streams end.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = shutting_down.send(true);
                match tokio::time::timeout(limits.drain_timeout, &mut server).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!(
                            drain_timeout_seconds = limits.drain_timeout.as_secs(),
                            "calls still in flight after the drain timeout; stopping anyway"
                        );
                        Ok(())
                    }
                }
            }
        };
        supervisor.stop_all().await;
        if let Some(task) = metrics_task {
            task.abort();
        }
        store.close().await;
        tracing::info!("patchbay stopped");
        result.map_err(StartupError::from)
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: a signal that arrives while the server is still
/// starting is not lost (nor does it kill the process the default way).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let (mut interrupt, mut terminate) = match (interrupt, terminate) {
                (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
                (Err(err), _) | (_, Err(err)) => {
                    tracing::error!(error = %err, "cannot listen for SIGINT and SIGTERM");
                    return std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    }
}
