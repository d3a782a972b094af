//! The `audit_events` table: written in the transaction of the change it records,
//! listed by `AuditService`.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::audit_event::{ActiveModel, Column, Entity, Model};
use super::{Store, db_error};
use crate::domain::audit::{AuditAction, AuditEvent, AuditQuery};
use crate::domain::idempotency::RecordRef;
use crate::domain::{Error, RecordKind};

pub(crate) async fn insert(conn: &impl ConnectionTrait, event: &AuditEvent) -> Result<(), Error> {
    let row = ActiveModel {
        id: Set(event.id),
        workspace_id: Set(event.workspace_id.clone()),
        division_id: Set(event.division_id.clone()),
        actor: Set(event.actor.clone()),
        actor_role: Set(event.actor_role.clone()),
        record_kind: Set(event.record_kind.as_str().to_owned()),
        record_id: Set(event.record_id.clone()),
        action: Set(event.action.as_str().to_owned()),
        changed_fields: Set(serde_json::json!(event.changed_fields)),
        request_id: Set(event.request_id.clone()),
        occurred_at: Set(event.occurred_at),
        outcome: Set(event.outcome.clone()),
    };
    Entity::insert(row)
        .exec_without_returning(conn)
        .await
        .map_err(db_error)?;
    // The call's idempotency key commits with its first write: same transaction.
    if let Some(claim) = &event.idempotency {
        super::idempotency::record_in_txn(
            conn,
            claim,
            RecordRef {
                kind: event.record_kind.as_str().to_owned(),
                id: event.record_id.clone(),
            },
        )
        .await?;
    }
    Ok(())
}

impl AuditRepo<'_> {
    /// Records an event that goes with no write of its own (a credential reveal).
    pub async fn record_audit_event(&self, event: &AuditEvent) -> Result<(), Error> {
        insert(self.conn(), event).await
    }

    /// The events of a workspace (of one division only, when `division_id` is given:
    /// a division-scoped caller's) that `filter` asks for, in id order after `after`.
    pub async fn list_audit_events(
        &self,
        workspace_id: &str,
        division_id: Option<&str>,
        filter: &AuditQuery,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEvent>, Error> {
        let mut query = Entity::find().filter(Column::WorkspaceId.eq(workspace_id));
        if let Some(division) = division_id {
            query = query.filter(Condition::all().add(Column::DivisionId.eq(division)));
        }
        if let Some(kind) = filter.record_kind {
            query = query.filter(Column::RecordKind.eq(kind.as_str()));
        }
        if let Some(record_id) = &filter.record_id {
            query = query.filter(Column::RecordId.eq(record_id));
        }
        if let Some(actor) = &filter.actor {
            query = query.filter(Column::Actor.eq(actor));
        }
        if let Some(start) = filter.start_time {
            query = query.filter(Column::OccurredAt.gte(start));
        }
        if let Some(end) = filter.end_time {
            query = query.filter(Column::OccurredAt.lt(end));
        }
        if let Some(after) = after {
            query = query.filter(Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(self.conn())
            .await
            .map_err(db_error)?;
        rows.into_iter().map(to_domain).collect()
    }
}

fn to_domain(row: Model) -> Result<AuditEvent, Error> {
    let unknown =
        |what: &str| Error::Internal(format!("audit event {} has an unknown {what}", row.id));
    let record_kind = RecordKind::parse(&row.record_kind).ok_or_else(|| unknown("record kind"))?;
    let action = AuditAction::parse(&row.action).ok_or_else(|| unknown("action"))?;
    let changed_fields = serde_json::from_value(row.changed_fields.clone())
        .map_err(|_| unknown("list of changed fields"))?;
    Ok(AuditEvent {
        id: row.id,
        workspace_id: row.workspace_id,
        division_id: row.division_id,
        actor: row.actor,
        actor_role: row.actor_role,
        record_kind,
        record_id: row.record_id,
        action,
        changed_fields,
        request_id: row.request_id,
        occurred_at: row.occurred_at,
        outcome: row.outcome,
        idempotency: None,
    })
}

/// The repository of the audit log: `store.audit()`.
pub struct AuditRepo<'a>(&'a Store);

impl Store {
    pub fn audit(&self) -> AuditRepo<'_> {
        AuditRepo(self)
    }
}

/// The store's connection, keys and transactions, under the repository's methods.
impl std::ops::Deref for AuditRepo<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.0
    }
}
