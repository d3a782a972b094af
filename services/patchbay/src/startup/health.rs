//! Health: every service SERVING while the database answers, NOT_SERVING while it does
//! not (and from the start of a shutdown).

use std::time::Duration;

use patchbay_sdk::proto::{
    account_service_server::AccountServiceServer, audit_service_server::AuditServiceServer,
    integration_service_server::IntegrationServiceServer,
    webhook_service_server::WebhookServiceServer,
};
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::grpc::account_service::AccountGrpc;
use crate::grpc::audit_service::AuditGrpc;
use crate::grpc::integration_service::IntegrationGrpc;
use crate::grpc::webhook_service::WebhookGrpc;
use crate::store::Store;

/// Reports every service SERVING while the database answers and NOT_SERVING while it
/// does not, so that load balancers steer away from a replica that cannot work.
pub(super) async fn watch_database(store: Store, health: HealthReporter, interval: Duration) {
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

pub(super) async fn set_health(health: &HealthReporter, serving: bool) {
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
