//! The object graph: every service and background task, wired from the settings. It
//! runs inside `Application::build`, so that a catalog that does not load or a client
//! that cannot be built stops the start before the first call is accepted.

use std::sync::Arc;
use std::time::Duration;

use patchbay_sdk::proto::{
    account_service_server::AccountServiceServer, audit_service_server::AuditServiceServer,
    integration_service_server::IntegrationServiceServer,
    webhook_service_server::WebhookServiceServer,
};
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

use crate::grpc::default_answer::DefaultAnswerService;
use tonic_health::server::HealthReporter;

use super::StartupError;
use super::health::{set_health, watch_database};
use crate::app::accounts::health_round::HealthRound;
use crate::app::accounts::token_checks::TokenChecker;
use crate::app::accounts::token_refresh::TokenRefresher;
use crate::app::checks::CredentialChecker;
use crate::app::{
    Accounts, AuditLog, ChannelSettingsService, IdempotencyKeys, Integrations, Webhooks,
};
use crate::auth::Authenticator;
use crate::config::Settings;
use crate::domain::WebhookUrls;
use crate::grpc::account_service::AccountGrpc;
use crate::grpc::audit_service::AuditGrpc;
use crate::grpc::auth::AuthInterceptor;
use crate::grpc::compression::{UNAUTHENTICATED_MAX_BYTES, with_compression};
use crate::grpc::idempotency::Idempotency;
use crate::grpc::integration_service::IntegrationGrpc;
use crate::grpc::overload::OverloadLayer;
use crate::grpc::places::CallPlaces;
use crate::grpc::webhook_service::WebhookGrpc;
use crate::meta::GraphClient;
use crate::meta::MetaSettings;
use crate::outbound::OutboundClient;
use crate::store::Store;
use crate::supervisor::Supervisor;
use crate::views::defaults::DefaultAccounts;
use crate::views::defaults::Followers;
use crate::views::events::AccountEventHub;
use crate::views::routes::WebhookRoutes;
use tonic::codec::CompressionEncoding;

/// What the server serves: every gRPC service, and the health reporter that says
/// whether they serve.
pub struct Wired {
    pub routes: Routes,
    pub health: HealthReporter,
    /// Deadlines and the wait for each request (it verifies bearer tokens first).
    pub overload: OverloadLayer,
}

/// How long a start on PostgreSQL waits for the webhook routing index.
const ROUTES_READY_WAIT: Duration = Duration::from_secs(10);

/// Builds every service and starts the background tasks under `supervisor`.
pub async fn wire(
    settings: &Settings,
    store: &Store,
    supervisor: &Supervisor,
) -> Result<Wired, StartupError> {
    let authenticator = Arc::new(Authenticator::with_token_cache(
        &settings.jwt,
        settings.server.token_cache_capacity,
    ));
    crate::memory::register(
        "verified_tokens",
        &authenticator,
        Authenticator::remembered_tokens,
    );
    let overload = OverloadLayer::new(
        settings.server.request_timeout,
        settings.server.request_read_timeout,
        settings.server.max_message_bytes,
        authenticator.clone(),
    );
    let interceptor = AuthInterceptor::new(
        authenticator,
        CallPlaces::new(
            settings.server.max_concurrent_requests,
            settings.server.max_concurrent_requests_per_workspace,
            settings.server.max_concurrent_gateway_requests,
        ),
    );
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    set_health(&health_reporter, true).await;
    supervisor.set_health(health_reporter.clone());
    let defaults = DefaultAccounts::new(store.clone(), &settings.defaults);
    let webhook_routes = WebhookRoutes::new(store.clone());
    let followers = Followers {
        routes: webhook_routes.clone(),
        events: AccountEventHub::new(),
    };
    followers.events.count_in_memory_gauges();
    if store.backend() != sea_orm::DbBackend::Postgres {
        // One replica: the index is loaded now, and followed by this replica's writes.
        // On PostgreSQL the listener loads it once it hears the others.
        webhook_routes.load().await.map_err(StartupError::Routes)?;
    }
    {
        let routes = webhook_routes.clone();
        supervisor.spawn("webhook_routes", move || routes.repair_task(), || {});
    }
    {
        let (feeds, told) = (defaults.clone(), defaults.clone());
        supervisor.spawn(
            "defaults",
            move || feeds.feeds_task(),
            move || told.close_feeds(),
        );
    }
    if store.backend() == sea_orm::DbBackend::Postgres {
        let (hub, also, url, heartbeat) = (
            defaults.clone(),
            followers.clone(),
            settings.database.url.clone(),
            settings.defaults.listener_heartbeat,
        );
        supervisor.spawn(
            "replication",
            move || async_listener(hub.clone(), also.clone(), url.clone(), heartbeat),
            || {},
        );
        // Serve webhooks from the first call: the listener loads the index as soon as
        // it hears. Should the database be slow, RouteWebhook is UNAVAILABLE until then.
        if !webhook_routes.wait_ready(ROUTES_READY_WAIT).await {
            tracing::warn!(
                "the webhook routing index is not loaded yet: RouteWebhook answers UNAVAILABLE until it is"
            );
        }
    }
    let outbound = OutboundClient::new(&settings.outbound).map_err(StartupError::Http)?;
    let graph = GraphClient::new(
        outbound.clone(),
        &settings.provider_urls,
        settings.meta.retry,
    )
    .dated(settings.meta.today);
    if let Some(warning) = graph.version_warning() {
        tracing::warn!("{warning}");
    }
    let accounts = Accounts::new(
        store.clone(),
        WebhookUrls::new(&settings.public_base_url),
        defaults,
        followers.clone(),
        graph.clone(),
        &settings.meta,
    );
    {
        let (store, keep) = (store.clone(), settings.server.account_events_retention);
        supervisor.spawn(
            "account_events_retention",
            move || crate::app::accounts::events::retention_task(store.clone(), keep),
            || {},
        );
    }
    let idempotency = Idempotency::new(IdempotencyKeys::new(store.clone()));
    let limits = &settings.server;
    let account_service = InterceptedService::new(
        DefaultAnswerService::new(
            with_compression!(AccountServiceServer::new(AccountGrpc::new(
                accounts.clone(),
                idempotency.clone(),
                limits.max_watch_streams,
                limits.max_watch_streams_per_workspace,
            )))
            .max_decoding_message_size(limits.max_message_bytes),
            accounts.clone(),
            limits.max_message_bytes,
        ),
        interceptor.clone(),
    );
    let catalog = Arc::new(store.load_catalog().await.map_err(StartupError::Catalog)?);
    let checker = CredentialChecker::new(outbound, graph.clone(), settings.provider_urls.clone());
    let integration_service = InterceptedService::new(
        with_compression!(IntegrationServiceServer::new(IntegrationGrpc::new(
            ChannelSettingsService::new(store.clone()),
            Integrations::new(
                store.clone(),
                catalog.clone(),
                checker,
                settings.outbound.policy,
            ),
            catalog,
            idempotency,
        )))
        .max_decoding_message_size(limits.max_message_bytes),
        interceptor.clone(),
    );
    let audit_service = InterceptedService::new(
        with_compression!(AuditServiceServer::new(AuditGrpc::new(AuditLog::new(
            store.clone()
        ))))
        .max_decoding_message_size(limits.max_message_bytes),
        interceptor.clone(),
    );
    let webhook_service = InterceptedService::new(
        with_compression!(WebhookServiceServer::new(WebhookGrpc::new(Webhooks::new(
            store.clone(),
            accounts.clone(),
            webhook_routes,
            WebhookUrls::new(&settings.public_base_url),
            settings.meta.clone(),
        ))))
        .max_decoding_message_size(limits.max_message_bytes),
        interceptor,
    );
    spawn_token_tasks(&settings.meta, &accounts, supervisor);

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
    let mut routes = Routes::builder();
    routes
        // No login needed here: gzip only, small messages (grpc/compression.rs).
        .add_service(
            health_service
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(UNAUTHENTICATED_MAX_BYTES),
        )
        .add_service(
            reflection_v1
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(UNAUTHENTICATED_MAX_BYTES),
        )
        .add_service(
            reflection_v1alpha
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(UNAUTHENTICATED_MAX_BYTES),
        )
        .add_service(account_service)
        .add_service(integration_service)
        .add_service(audit_service)
        .add_service(webhook_service);
    let routes = routes.routes();
    Ok(Wired {
        routes,
        health: health_reporter,
        overload,
    })
}

/// The token refresher, the token checker, the health round and the start-up ownership
/// pass, each taking its round's lease in turn with the other replicas.
fn spawn_token_tasks(meta: &MetaSettings, accounts: &Accounts, supervisor: &Supervisor) {
    // This replica, as the leases name it.
    let holder = format!("replica-{}", uuid::Uuid::new_v4());
    if let Some(every) = meta.refresh_every {
        let (accounts, ahead, max, cap) = (
            accounts.clone(),
            meta.refresh_ahead,
            meta.refresh_max_failures,
            meta.checks_per_workspace,
        );
        let holder = holder.clone();
        supervisor.spawn(
            "token_refresh",
            move || {
                let refresher =
                    TokenRefresher::new(accounts.clone(), every, ahead, max, holder.clone());
                refresher.per_workspace(cap).run()
            },
            || {},
        );
    }
    // Ownership confirmations at start-up: Meta's word on every unconfirmed account.
    if meta.app.is_some() || meta.instagram_app.is_some() {
        let (accounts, holder) = (accounts.clone(), holder.clone());
        supervisor.spawn(
            "ownership_confirmations",
            move || accounts.clone().run_confirmation_pass(holder.clone()),
            || {},
        );
    }
    match (meta.check_every, &meta.app) {
        (Some(every), Some(app)) => {
            let (accounts, app, days, cap, holder) = (
                accounts.clone(),
                app.clone(),
                meta.expiry_warning_days.clone(),
                meta.checks_per_workspace,
                holder.clone(),
            );
            supervisor.spawn(
                "token_checks",
                move || {
                    TokenChecker::new(
                        accounts.clone(),
                        app.clone(),
                        every,
                        days.clone(),
                        holder.clone(),
                    )
                    .per_workspace(cap)
                    .run()
                },
                || {},
            );
        }
        (Some(_), None) => tracing::warn!(
            "token checks are off: they need the Meta app (PATCHBAY_META_APP_ID and PATCHBAY_META_APP_SECRET)"
        ),
        (None, _) => {}
    }
    // The health round reads WhatsApp numbers with their own tokens (no app needed),
    // and counts every account's health and the scopes a fallback serves.
    if let Some(every) = meta.health_every {
        let (accounts, holder, cap) = (accounts.clone(), holder.clone(), meta.checks_per_workspace);
        supervisor.spawn(
            "account_health",
            move || {
                HealthRound::new(accounts.clone(), every, holder.clone())
                    .per_workspace(cap)
                    .run()
            },
            || {},
        );
    }
}

/// The PostgreSQL listener's task (a function, so that the supervisor can make it again).
async fn async_listener(
    hub: DefaultAccounts,
    followers: Followers,
    url: String,
    heartbeat: Duration,
) {
    if let Some(task) = hub.listener_task(&followers, &url, heartbeat) {
        task.await;
    }
}
