//! Building and running the server: connect and migrate the database, bind the
//! listener, assemble the gRPC services. Tests build an [`Application`] on port 0 the
//! same way `patchbay serve` does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use patchbay_sdk::proto::{
    account_service_server::AccountServiceServer, audit_service_server::AuditServiceServer,
    integration_service_server::IntegrationServiceServer,
    webhook_service_server::WebhookServiceServer,
};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::app::accounts::token_refresh::TokenRefresher;
use crate::app::{
    Accounts, AuditLog, ChannelSettingsService, IdempotencyKeys, Integrations, Webhooks,
};
use crate::auth::Authenticator;
use crate::config::Settings;
use crate::defaults::DefaultAccounts;
use crate::domain::WebhookUrls;
use crate::grpc::account_service::AccountGrpc;
use crate::grpc::audit_service::AuditGrpc;
use crate::grpc::auth::AuthInterceptor;
use crate::grpc::authorization::AuthorizationLayer;
use crate::grpc::idempotency::Idempotency;
use crate::grpc::integration_service::IntegrationGrpc;
use crate::grpc::overload::OverloadLayer;
use crate::grpc::request_span::RequestSpanLayer;
use crate::grpc::shares::WorkspaceShares;
use crate::grpc::stream_shutdown::StreamShutdownLayer;
use crate::grpc::webhook_service::WebhookGrpc;
use crate::listener::{self, ReloadingTls};
use crate::meta::GraphClient;
use crate::outbound::{CredentialChecker, OutboundClient};
use crate::store::Store;
use crate::supervisor::Supervisor;

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
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
    #[error("cannot build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Concurrent streams one HTTP/2 connection may open.
const MAX_STREAMS_PER_CONNECTION: u32 = 256;

pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    supervisor: Supervisor,
    tls: Option<Arc<ReloadingTls>>,
    store: Store,
    settings: Settings,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        // Files that do not load stop the start, before anything else is touched.
        let tls = settings.tls.clone().map(ReloadingTls::load).transpose()?;
        let store = Store::connect(&settings.database, settings.keys.clone())
            .await
            .map_err(StartupError::Connect)?;
        store.migrate().await.map_err(StartupError::Migrate)?;
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    address: settings.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            address: settings.listen,
            source,
        })?;
        Ok(Application {
            listener,
            local_addr,
            supervisor: Supervisor::new(None),
            tls,
            store,
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

    /// Serves until `shutdown` completes, then lets in-flight calls finish and closes
    /// the database pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), StartupError> {
        let Application {
            listener,
            local_addr,
            supervisor,
            tls,
            store,
            settings,
        } = self;

        let authenticator = Arc::new(Authenticator::with_token_cache(
            &settings.jwt,
            settings.server.token_cache_capacity,
        ));
        let interceptor = AuthInterceptor::new(
            authenticator,
            Arc::new(WorkspaceShares::new(
                settings.server.max_concurrent_requests_per_workspace,
            )),
        );
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        set_health(&health_reporter, true).await;
        supervisor.set_health(health_reporter.clone());
        let defaults = DefaultAccounts::new(store.clone(), &settings.defaults);
        {
            let (feeds, told) = (defaults.clone(), defaults.clone());
            supervisor.spawn(
                "defaults",
                move || feeds.feeds_task(),
                move || told.close_feeds(),
            );
        }
        if defaults
            .listener_task(&settings.database.url, settings.defaults.listener_heartbeat)
            .is_some()
        {
            let (hub, url, heartbeat) = (
                defaults.clone(),
                settings.database.url.clone(),
                settings.defaults.listener_heartbeat,
            );
            supervisor.spawn(
                "replication",
                move || async_listener(hub.clone(), url.clone(), heartbeat),
                || {},
            );
        }
        let outbound = OutboundClient::new(&settings.outbound).map_err(StartupError::Http)?;
        let graph = GraphClient::new(
            outbound.clone(),
            &settings.provider_urls,
            settings.meta.retry,
        );
        let accounts = Accounts::new(
            store.clone(),
            WebhookUrls::new(&settings.public_base_url),
            defaults,
            graph,
            settings.meta.app.clone(),
        );
        let idempotency = Idempotency::new(IdempotencyKeys::new(store.clone()));
        let limits = &settings.server;
        let account_service = InterceptedService::new(
            AccountServiceServer::new(AccountGrpc::new(
                accounts.clone(),
                idempotency.clone(),
                limits.max_watch_streams,
                limits.max_watch_streams_per_workspace,
            ))
            .max_decoding_message_size(limits.max_message_bytes),
            interceptor.clone(),
        );
        let catalog = Arc::new(store.load_catalog().await.map_err(StartupError::Catalog)?);
        let checker = CredentialChecker::new(outbound, settings.provider_urls.clone());
        let integration_service = InterceptedService::new(
            IntegrationServiceServer::new(IntegrationGrpc::new(
                ChannelSettingsService::new(store.clone()),
                Integrations::new(
                    store.clone(),
                    catalog.clone(),
                    checker,
                    settings.outbound.policy,
                ),
                catalog,
                idempotency,
            ))
            .max_decoding_message_size(limits.max_message_bytes),
            interceptor.clone(),
        );
        let audit_service = InterceptedService::new(
            AuditServiceServer::new(AuditGrpc::new(AuditLog::new(store.clone())))
                .max_decoding_message_size(limits.max_message_bytes),
            interceptor.clone(),
        );
        let webhook_service = InterceptedService::new(
            WebhookServiceServer::new(WebhookGrpc::new(Webhooks::new(
                store.clone(),
                settings.meta.app.clone(),
            )))
            .max_decoding_message_size(limits.max_message_bytes),
            interceptor,
        );
        if let Some(every) = settings.meta.refresh_every {
            let (accounts, ahead) = (accounts.clone(), settings.meta.refresh_ahead);
            supervisor.spawn(
                "token_refresh",
                move || TokenRefresher::new(accounts.clone(), every, ahead).run(),
                || {},
            );
        }

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(patchbay_sdk::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(patchbay_sdk::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        {
            let (store, health, every) = (
                store.clone(),
                health_reporter.clone(),
                limits.health_check_interval,
            );
            supervisor.spawn(
                "database_monitor",
                move || watch_database(store.clone(), health.clone(), every),
                || {},
            );
        }

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
        if let Some(tls) = tls.clone() {
            supervisor.spawn("tls_reload", move || tls.clone().watch(), || {});
        }
        let (close_listener, listener_closed) = tokio::sync::watch::channel(false);
        let incoming = listener::incoming(listener, tls, listener_closed);
        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let (shutting_down, shutdown_seen) = tokio::sync::watch::channel(false);
        let server = Server::builder()
            // Streams per HTTP/2 connection, health and reflection included.
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .http2_keepalive_interval(Some(limits.http2_keepalive))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .layer(RequestSpanLayer)
            .layer(AuthorizationLayer)
            .layer(StreamShutdownLayer::new(shutdown_seen))
            .layer(OverloadLayer::new(
                limits.max_concurrent_requests,
                limits.request_timeout,
            ))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(account_service)
            .add_service(integration_service)
            .add_service(audit_service)
            .add_service(webhook_service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        tokio::pin!(server);

        // Serve until the shutdown signal; then report NOT_SERVING, stop accepting, and
        // give in-flight calls the drain timeout to finish.
        let result = tokio::select! {
            result = &mut server => result,
            () = shutdown => {
                tracing::info!("shutting down: finishing in-flight calls");
                // Background tasks stop first: the monitor must not report SERVING again.
                supervisor.stop_all().await;
                set_health(&health_reporter, false).await;
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
        store.close().await;
        tracing::info!("patchbay stopped");
        result.map_err(StartupError::from)
    }
}

/// Reports every service SERVING while the database answers and NOT_SERVING while it
/// does not, so that load balancers steer away from a replica that cannot work.
async fn watch_database(store: Store, health: HealthReporter, interval: Duration) {
    let mut serving = true;
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let up = store.ping().await;
        if up != serving {
            if up {
                tracing::info!("database reachable again: serving");
            } else {
                tracing::warn!("database unreachable: reporting NOT_SERVING");
            }
            set_health(&health, up).await;
            serving = up;
        }
    }
}

async fn set_health(health: &HealthReporter, serving: bool) {
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status("", status).await;
    health
        .set_service_status(
            <WebhookServiceServer<WebhookGrpc> as NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <AccountServiceServer<AccountGrpc> as NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <IntegrationServiceServer<IntegrationGrpc> as NamedService>::NAME,
            status,
        )
        .await;
    health
        .set_service_status(
            <AuditServiceServer<AuditGrpc> as NamedService>::NAME,
            status,
        )
        .await;
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// The PostgreSQL listener's task (a function, so that the supervisor can make it again).
async fn async_listener(hub: DefaultAccounts, url: String, heartbeat: Duration) {
    if let Some(task) = hub.listener_task(&url, heartbeat) {
        task.await;
    }
}
