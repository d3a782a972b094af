//! PostgreSQL only: hears the default changes other replicas commit (`NOTIFY` sent by
//! `store::default_changes::record`) and applies them here as a local write would; and
//! the webhook routing changes (`store::accounts::routes`), which reload the account in
//! the routing index (`routes`), loaded whole each time the listener connects.
//!
//! While the listener is not connected this replica could miss changes, so the read
//! cache is off (every read goes to the database) until it hears again; then every feed
//! catches up from the log. A connection can also die without telling (a network
//! partition): the listener sends itself a heartbeat notification and, when none comes
//! back in time, reconnects.

use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::PgListener;

use super::DefaultAccounts;
use crate::store::account_events::{EVENTS_NOTIFY_CHANNEL, EventsRecorded};
use crate::store::accounts::ROUTES_NOTIFY_CHANNEL;
use crate::store::default_changes::{DefaultsChanged, NOTIFY_CHANNEL};
use crate::views::changes::{Change, Changes};
use crate::views::events::AccountEventHub;
use crate::views::routes::WebhookRoutes;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the listener keeps current besides the defaults.
#[derive(Clone)]
pub struct Followers {
    pub routes: WebhookRoutes,
    pub events: AccountEventHub,
}

pub(super) async fn run(
    hub: DefaultAccounts,
    followers: Followers,
    url: String,
    heartbeat: Duration,
) {
    let Followers { routes, events } = followers;
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen(&url).await {
            Ok(listener) => {
                // Changes committed from now on are heard: what the load reads is
                // brought up to date by them.
                match routes.load().await {
                    Ok(held) => {
                        routes.listening(true);
                        tracing::info!(accounts = held, "webhook routing index loaded");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot load the webhook routing index; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
                backoff = Duration::from_millis(100);
                hub.listening(true);
                events.wake_all();
                tracing::info!("listening for other replicas' default changes");
                let changes = Changes::new(hub.clone(), routes.clone(), events.clone());
                follow(&hub, &routes, &changes, listener, heartbeat).await;
                routes.listening(false);
                hub.listening(false);
                tracing::warn!(
                    "lost the default-change listener: reading defaults from the database until it is back"
                );
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for default changes; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn listen(url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener
        .listen_all([NOTIFY_CHANNEL, ROUTES_NOTIFY_CHANNEL, EVENTS_NOTIFY_CHANNEL])
        .await?;
    Ok(listener)
}

/// Applies notifications until the connection is lost or goes quiet.
async fn follow(
    hub: &DefaultAccounts,
    routes: &WebhookRoutes,
    changes: &Changes,
    mut listener: PgListener,
    heartbeat: Duration,
) {
    let mut last_heard = Instant::now();
    let mut ticker = tokio::time::interval(heartbeat);
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => {
                    last_heard = Instant::now();
                    // Heard again after a quiet spell: nothing was lost, only late.
                    routes.listening(true);
                    // The other replicas' commits, into the one change stream.
                    if notification.channel() == ROUTES_NOTIFY_CHANNEL {
                        if let Ok(id) = uuid::Uuid::parse_str(notification.payload()) {
                            changes.apply(Change::Routes(id)).await;
                        }
                    } else if notification.channel() == EVENTS_NOTIFY_CHANNEL {
                        if let Ok(recorded) = serde_json::from_str::<EventsRecorded>(notification.payload()) {
                            changes.apply(Change::Events(&recorded)).await;
                        }
                    // Heartbeats and anything else unreadable only prove the line is up.
                    } else if let Ok(changed) = serde_json::from_str::<DefaultsChanged>(notification.payload()) {
                        changes.apply(Change::Defaults(&changed)).await;
                    }
                }
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "default-change listener failed");
                    return;
                }
            },
            _ = ticker.tick() => {
                // A heartbeat overdue: other replicas' changes may not be arriving, so
                // webhooks are not routed by what may be old until they are heard again.
                if last_heard.elapsed() > heartbeat * 2 {
                    routes.listening(false);
                }
                if last_heard.elapsed() > heartbeat * 3 {
                    tracing::warn!("default-change listener heard nothing, not even its heartbeat");
                    return;
                }
                if let Err(err) = hub.store().default_changes().notify_heartbeat().await {
                    tracing::debug!(error = %err, "cannot send the listener heartbeat");
                }
            }
        }
    }
}
