//! `patchbay.v1.WebhookService`: the webhook gateways' checks (`app::webhooks`).

use patchbay_sdk::proto::{self, webhook_service_server::WebhookService};
use tonic::{Request, Response, Status};

use super::auth::authorize;
use super::convert::required_channel;
use crate::app::webhooks::{Scheme, WebhookRequest, Webhooks};
use crate::domain::Action;

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
    async fn verify_webhook_subscription(
        &self,
        mut request: Request<proto::VerifyWebhookSubscriptionRequest>,
    ) -> Result<Response<proto::VerifyWebhookSubscriptionResponse>, Status> {
        let caller = authorize(&mut request, Action::VerifyWebhookSubscription)?;
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
        Ok(Response::new(proto::VerifyWebhookSubscriptionResponse {
            challenge,
            account_id: account_id.to_string(),
        }))
    }

    async fn verify_webhook_signature(
        &self,
        mut request: Request<proto::VerifyWebhookSignatureRequest>,
    ) -> Result<Response<proto::VerifyWebhookSignatureResponse>, Status> {
        let caller = authorize(&mut request, Action::VerifyWebhookSignature)?;
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
        };
        Ok(Response::new(proto::VerifyWebhookSignatureResponse {
            valid: check.outcome.is_ok(),
            scheme: scheme.into(),
            reason: check.outcome.err().unwrap_or_default(),
            account_id: check.account_id.to_string(),
        }))
    }
}
