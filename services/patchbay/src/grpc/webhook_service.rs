//! `patchbay.v1.WebhookService`: the webhook gateways' checks and routing
//! (`app::webhooks`).

use patchbay_sdk::proto::{self, webhook_service_server::WebhookService};
use tonic::{Request, Response, Status};

use super::compression::answer;

use super::auth::caller_of;
use super::convert::{channel_to_proto, required_channel};
use crate::app::webhooks::{RouteRequest, Scheme, WebhookRequest, Webhooks};

pub struct WebhookGrpc {
    webhooks: Webhooks,
}

impl WebhookGrpc {
    pub fn new(webhooks: Webhooks) -> Self {
        Self { webhooks }
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookGrpc {
    async fn route_webhook(
        &self,
        mut request: Request<proto::RouteWebhookRequest>,
    ) -> Result<Response<proto::RouteWebhookResponse>, Status> {
        caller_of(&mut request)?;
        let request = request.into_inner();
        let routed = self
            .webhooks
            .route(RouteRequest {
                method: &request.method,
                url: &request.url,
                headers: &request.headers,
                raw_body: &request.raw_body,
            })
            .await?;
        Ok(answer(proto::RouteWebhookResponse {
            challenge: routed.challenge,
            deliveries: routed
                .deliveries
                .into_iter()
                .map(|(entry_index, entry)| proto::WebhookDelivery {
                    workspace_id: entry.workspace_id.to_string(),
                    account_id: entry.account_id.to_string(),
                    division_id: entry.division_id.as_deref().map(str::to_owned),
                    channel: channel_to_proto(entry.channel).into(),
                    account_key: entry.account_key.to_string(),
                    entry_index,
                })
                .collect(),
            unrouted: routed
                .unrouted
                .into_iter()
                .map(|(entry_index, reason)| proto::UnroutedEntry {
                    entry_index,
                    reason,
                })
                .collect(),
        }))
    }

    async fn verify_webhook_subscription(
        &self,
        mut request: Request<proto::VerifyWebhookSubscriptionRequest>,
    ) -> Result<Response<proto::VerifyWebhookSubscriptionResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let request = request.into_inner();
        let channel = required_channel(request.channel, "channel")?;
        let (challenge, account_id) = self
            .webhooks
            .verify_subscription(
                &caller,
                channel,
                &request.account_key,
                &request.mode,
                &request.verify_token,
                &request.challenge,
            )
            .await?;
        Ok(answer(proto::VerifyWebhookSubscriptionResponse {
            challenge,
            account_id: account_id.to_string(),
        }))
    }

    async fn verify_webhook_signature(
        &self,
        mut request: Request<proto::VerifyWebhookSignatureRequest>,
    ) -> Result<Response<proto::VerifyWebhookSignatureResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let request = request.into_inner();
        let channel = required_channel(request.channel, "channel")?;
        let check = self
            .webhooks
            .verify_signature(
                &caller,
                WebhookRequest {
                    channel,
                    account_key: &request.account_key,
                    headers: &request.headers,
                    raw_body: &request.raw_body,
                    url: &request.url,
                },
            )
            .await?;
        let scheme = match check.scheme {
            Scheme::None => proto::WebhookSignatureScheme::Unspecified,
            Scheme::MetaSha256 => proto::WebhookSignatureScheme::MetaSha256,
            Scheme::TwilioSha1 => proto::WebhookSignatureScheme::TwilioSha1,
            Scheme::TwilioSha256 => proto::WebhookSignatureScheme::TwilioSha256,
        };
        Ok(answer(proto::VerifyWebhookSignatureResponse {
            valid: check.outcome.is_ok(),
            scheme: scheme.into(),
            reason: check.outcome.err().unwrap_or_default(),
            account_id: check.account_id.to_string(),
        }))
    }
}
