//! `patchbay.v1.AuditService`.

use patchbay_sdk::proto::{self, audit_service_server::AuditService};
use tonic::{Request, Response, Status};

use super::auth::authorize;
use super::convert::timestamp;
use crate::domain::audit::{AuditAction, AuditEvent, AuditLog, AuditQuery};
use crate::domain::support::PageRequest;
use crate::domain::{Action, FieldViolation, RecordKind, Violations};

pub struct AuditGrpc {
    log: AuditLog,
}

impl AuditGrpc {
    pub fn new(log: AuditLog) -> Self {
        Self { log }
    }
}

#[tonic::async_trait]
impl AuditService for AuditGrpc {
    async fn list_audit_events(
        &self,
        mut request: Request<proto::ListAuditEventsRequest>,
    ) -> Result<Response<proto::ListAuditEventsResponse>, Status> {
        let caller = authorize(&mut request, Action::ListAuditEvents)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let record_kind = violations
            .check(record_kind_from_proto(request.record_kind))
            .flatten();
        let start_time = request
            .start_time
            .and_then(|t| violations.check(time_from_proto(t, "start_time")));
        let end_time = request
            .end_time
            .and_then(|t| violations.check(time_from_proto(t, "end_time")));
        let page = PageRequest::parse(request.page_size, &request.page_token, &mut violations);
        violations.into_result()?;

        let query = AuditQuery {
            record_kind,
            record_id: Some(request.record_id).filter(|s| !s.is_empty()),
            actor: Some(request.actor).filter(|s| !s.is_empty()),
            start_time,
            end_time,
        };
        let page = self.log.list(&caller, query, page).await?;
        let (events, next_page_token) = super::convert::fit_page(
            page.items.into_iter().map(event_to_proto).collect(),
            page.next_page_token,
            |event| event.id.as_str(),
        );
        Ok(Response::new(proto::ListAuditEventsResponse {
            events,
            next_page_token,
        }))
    }
}

fn record_kind_from_proto(value: i32) -> Result<Option<RecordKind>, FieldViolation> {
    let kind = proto::RecordKind::try_from(value).map_err(|_| {
        FieldViolation::new("record_kind", format!("{value} is not a known record kind"))
    })?;
    Ok(match kind {
        proto::RecordKind::Unspecified => None,
        proto::RecordKind::Account => Some(RecordKind::Account),
        proto::RecordKind::ChannelSettings => Some(RecordKind::ChannelSettings),
        proto::RecordKind::Integration => Some(RecordKind::Integration),
        proto::RecordKind::Provider => Some(RecordKind::Provider),
    })
}

fn record_kind_to_proto(kind: RecordKind) -> proto::RecordKind {
    match kind {
        RecordKind::Account => proto::RecordKind::Account,
        RecordKind::ChannelSettings => proto::RecordKind::ChannelSettings,
        RecordKind::Integration => proto::RecordKind::Integration,
        RecordKind::Provider => proto::RecordKind::Provider,
    }
}

fn action_to_proto(action: AuditAction) -> proto::AuditAction {
    match action {
        AuditAction::Create => proto::AuditAction::Create,
        AuditAction::Update => proto::AuditAction::Update,
        AuditAction::Delete => proto::AuditAction::Delete,
        AuditAction::SetDefault => proto::AuditAction::SetDefault,
        AuditAction::Upsert => proto::AuditAction::Upsert,
        AuditAction::RevealCredentials => proto::AuditAction::RevealCredentials,
        AuditAction::SetPrimary => proto::AuditAction::SetPrimary,
        AuditAction::CheckCredentials => proto::AuditAction::CheckCredentials,
    }
}

fn time_from_proto(
    value: prost_types::Timestamp,
    field: &str,
) -> Result<chrono::DateTime<chrono::Utc>, FieldViolation> {
    u32::try_from(value.nanos)
        .ok()
        .and_then(|nanos| chrono::DateTime::from_timestamp(value.seconds, nanos))
        .ok_or_else(|| FieldViolation::new(field, "is not a valid timestamp"))
}

fn event_to_proto(event: AuditEvent) -> proto::AuditEvent {
    proto::AuditEvent {
        id: event.id.to_string(),
        occurred_at: Some(timestamp(event.occurred_at)),
        actor: event.actor,
        actor_role: event.actor_role,
        workspace_id: event.workspace_id,
        division_id: event.division_id,
        record_kind: record_kind_to_proto(event.record_kind).into(),
        record_id: event.record_id,
        action: action_to_proto(event.action).into(),
        changed_fields: event.changed_fields,
        request_id: event.request_id,
        outcome: event.outcome.unwrap_or_default(),
    }
}
