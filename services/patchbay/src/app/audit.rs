//! Lists audit events (AuditService): the caller's workspace, its division only for a
//! division-scoped caller.

use crate::domain::audit::{AuditEvent, AuditQuery};
use crate::domain::pages::{Page, PageRequest};
use crate::domain::{Caller, Error};
use crate::store::Store;

/// Lists audit events (AuditService).
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
}

impl AuditLog {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Events of the caller's workspace (of its division, for a division-scoped caller).
    pub async fn list(
        &self,
        caller: &Caller,
        query: AuditQuery,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, Error> {
        let events = self
            .store
            .audit()
            .list_audit_events(
                caller.workspace_id(),
                caller.division_id(),
                &query,
                page.after,
                page.size + 1,
            )
            .await?;
        Ok(Page::from_overfetch(events, page.size, |e| e.id))
    }
}
