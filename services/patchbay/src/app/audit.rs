//! Lists audit events (AuditService): the caller's workspace, its division only for a
//! division-scoped caller.

use chrono::{DateTime, Utc};

use crate::domain::audit::AuditEvent;
use crate::domain::pages::{Page, PageRequest};
use crate::domain::{Caller, Error, RecordKind};
use crate::store::Store;
use crate::store::audit::AuditFilter;

/// Lists audit events (AuditService).
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
}

/// The filters of a ListAuditEvents call, as domain values.
#[derive(Debug, Default)]
pub struct AuditQuery {
    pub record_kind: Option<RecordKind>,
    pub record_id: Option<String>,
    pub actor: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
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
            .list_audit_events(&AuditFilter {
                workspace_id: caller.workspace_id(),
                division_id: caller.division_id(),
                record_kind: query.record_kind,
                record_id: query.record_id.as_deref(),
                actor: query.actor.as_deref(),
                start_time: query.start_time,
                end_time: query.end_time,
                after: page.after,
                limit: page.size + 1,
            })
            .await?;
        Ok(Page::from_overfetch(events, page.size, |e| e.id))
    }
}
