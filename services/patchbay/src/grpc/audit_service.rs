//! `patchbay.v1.AuditService`.

use patchbay_sdk::proto::{self, audit_service_server::AuditService};
use tonic::{Request, Response, Status};

use super::compression::answer;

use super::auth::caller_of;
use super::convert::audit::{event_to_proto, query_from_proto};
use super::convert::fit_page;
use crate::app::AuditLog;
use crate::domain::Violations;
use crate::domain::pages::PageRequest;

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
        let caller = caller_of(&mut request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let query = query_from_proto(&request, &mut violations);
        let page = PageRequest::parse(request.page_size, &request.page_token, &mut violations);
        violations.into_result()?;
        let page = self.log.list(&caller, query, page).await?;
        let (events, next_page_token) = fit_page(
            page.items.into_iter().map(event_to_proto).collect(),
            page.next_page_token,
            |event| event.id.as_str(),
        );
        Ok(answer(proto::ListAuditEventsResponse {
            events,
            next_page_token,
        }))
    }
}
