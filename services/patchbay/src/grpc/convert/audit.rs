//! Audit events and their filters between the wire and the domain.

use patchbay_sdk::proto;

use super::{time_from_proto, timestamp};
use crate::domain::audit::AuditQuery;
use crate::domain::audit::{AuditAction, AuditEvent};
use crate::domain::{FieldViolation, RecordKind, Violations};

/// The filters of a ListAuditEvents call, every bad one named.
pub fn query_from_proto(
    request: &proto::ListAuditEventsRequest,
    violations: &mut Violations,
) -> AuditQuery {
    let record_kind = violations
        .check(record_kind_from_proto(request.record_kind))
        .flatten();
    let start_time = request
        .start_time
        .and_then(|t| violations.check(time_from_proto(t, "start_time")));
    let end_time = request
        .end_time
        .and_then(|t| violations.check(time_from_proto(t, "end_time")));
    AuditQuery {
        record_kind,
        record_id: Some(request.record_id.clone()).filter(|s| !s.is_empty()),
        actor: Some(request.actor.clone()).filter(|s| !s.is_empty()),
        start_time,
        end_time,
    }
}

pub fn record_kind_from_proto(value: i32) -> Result<Option<RecordKind>, FieldViolation> {
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

pub fn event_to_proto(event: AuditEvent) -> proto::AuditEvent {
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
