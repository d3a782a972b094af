//! The one post-commit change stream every view is fed by: what a committed write
//! changed, whether this replica wrote it (`Accounts::written`, once the transaction
//! commits) or another replica did (heard by the PostgreSQL listener,
//! `defaults/listener.rs`). Each change goes to the view it concerns; no view is fed
//! any other way.

use uuid::Uuid;

use super::defaults::DefaultAccounts;
use super::events::AccountEventHub;
use super::routes::WebhookRoutes;
use crate::store::account_events::EventsRecorded;
use crate::store::default_changes::DefaultsChanged;

/// One committed change, as a view sees it.
pub enum Change<'a> {
    /// A scope's default changed: the defaults view drops the workspace's answers and
    /// wakes its feeds.
    Defaults(&'a DefaultsChanged),
    /// The workspace's account events reached a revision: its tail reads on.
    Events(&'a EventsRecorded),
    /// An account's webhook routing changed: the routing index reloads it.
    Routes(Uuid),
}

/// Where changes go; cheap to clone.
#[derive(Clone)]
pub struct Changes {
    defaults: DefaultAccounts,
    routes: WebhookRoutes,
    events: AccountEventHub,
}

impl Changes {
    pub fn new(defaults: DefaultAccounts, routes: WebhookRoutes, events: AccountEventHub) -> Self {
        Self {
            defaults,
            routes,
            events,
        }
    }

    /// Applies one change to the view it concerns.
    pub async fn apply(&self, change: Change<'_>) {
        match change {
            Change::Defaults(changed) => self.defaults.changed(changed),
            Change::Events(recorded) => self.events.recorded(recorded),
            Change::Routes(id) => {
                // On a task of its own: a caller that goes away (a deadline) must not
                // leave the index without the write it just committed.
                let routes = self.routes.clone();
                if let Err(err) = tokio::spawn(async move { routes.refresh(id).await }).await {
                    // A refresh that did not finish (a panic) leaves the account's old
                    // entry: the index is loaded whole again before it routes.
                    tracing::error!(account_id = %id, error = %err, "webhook routing refresh failed; reloading all");
                    self.routes.mark_stale();
                }
            }
        }
    }
}
