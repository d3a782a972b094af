//! `patchbay.v1.IntegrationService`: the provider catalog, integrations and channel
//! settings. Each handler: authorise its action, convert the request
//! (`convert::integration`, `convert::channel_settings`), run one operation of `app`
//! (through its idempotency key when it writes), and convert the answer back.

use std::sync::Arc;

use patchbay_sdk::proto::{self, integration_service_server::IntegrationService};
use tonic::{Request, Response, Status};

use super::compression::answer;

use super::auth::caller_of;
use super::convert::channel_settings::settings_to_proto;
use super::convert::integration::{integration_to_proto, provider_to_proto};
use super::convert::writes::Update;
use super::convert::{fit_page, optional_channel, required_channel};
use super::idempotency::{Idempotency, replayed_id};
use crate::app::checks::CheckOutcome;
use crate::app::{ChannelSettingsService, Integrations};
use crate::domain::idempotency::RecordRef;
use crate::domain::ids::parse_id;
use crate::domain::integration::Integration;
use crate::domain::integration::IntegrationQuery;
use crate::domain::pages::PageRequest;
use crate::domain::provider::Catalog;
use crate::domain::{Caller, Error, RecordKind, Violations};

pub struct IntegrationGrpc {
    channel_settings: ChannelSettingsService,
    integrations: Integrations,
    catalog: Arc<Catalog>,
    idempotency: Idempotency,
}

impl IntegrationGrpc {
    pub fn new(
        channel_settings: ChannelSettingsService,
        integrations: Integrations,
        catalog: Arc<Catalog>,
        idempotency: Idempotency,
    ) -> Self {
        Self {
            channel_settings,
            integrations,
            catalog,
            idempotency,
        }
    }
}

#[tonic::async_trait]
impl IntegrationService for IntegrationGrpc {
    async fn list_providers(
        &self,
        mut request: Request<proto::ListProvidersRequest>,
    ) -> Result<Response<proto::ListProvidersResponse>, Status> {
        caller_of(&mut request)?;
        Ok(answer(proto::ListProvidersResponse {
            providers: self.catalog.all().map(provider_to_proto).collect(),
        }))
    }

    async fn get_provider(
        &self,
        mut request: Request<proto::GetProviderRequest>,
    ) -> Result<Response<proto::GetProviderResponse>, Status> {
        caller_of(&mut request)?;
        let slug = &request.get_ref().slug;
        if slug.is_empty() {
            return Err(Error::invalid("slug", "is required").into());
        }
        let provider = self.catalog.get(slug).ok_or_else(|| Error::NotFound {
            kind: RecordKind::Provider,
            id: slug.clone(),
        })?;
        Ok(answer(proto::GetProviderResponse {
            provider: Some(provider_to_proto(provider)),
        }))
    }

    async fn create_integration(
        &self,
        request: Request<proto::CreateIntegrationRequest>,
    ) -> Result<Response<proto::CreateIntegrationResponse>, Status> {
        let create = async |caller: Caller, new| self.integrations.create(&caller, new).await;
        let replay = async |caller: Caller, _, record| self.replayed(&caller, &record).await;
        self.idempotency.write(request, create, replay).await
    }

    async fn list_integrations(
        &self,
        mut request: Request<proto::ListIntegrationsRequest>,
    ) -> Result<Response<proto::ListIntegrationsResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let channel = violations
            .check(optional_channel(request.channel, "channel"))
            .flatten();
        let page = PageRequest::parse(request.page_size, &request.page_token, &mut violations);
        violations.into_result()?;
        let query = IntegrationQuery {
            provider: Some(request.provider).filter(|p| !p.is_empty()),
            channel,
            active: request.active,
            include_deleted: request.include_deleted,
        };
        let page = self.integrations.list(&caller, query, page).await?;
        let (integrations, next_page_token) = fit_page(
            page.items.into_iter().map(integration_to_proto).collect(),
            page.next_page_token,
            |integration| integration.id.as_str(),
        );
        Ok(answer(proto::ListIntegrationsResponse {
            integrations,
            next_page_token,
        }))
    }

    async fn get_integration(
        &self,
        mut request: Request<proto::GetIntegrationRequest>,
    ) -> Result<Response<proto::GetIntegrationResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let id = parse_id(&request.get_ref().id, "id")?;
        let integration = self.integrations.get(&caller, id).await?;
        Ok(answer(proto::GetIntegrationResponse {
            integration: Some(integration_to_proto(integration)),
        }))
    }

    async fn update_integration(
        &self,
        request: Request<proto::UpdateIntegrationRequest>,
    ) -> Result<Response<proto::UpdateIntegrationResponse>, Status> {
        let update = async |caller: Caller, Update { id, patch }| {
            self.integrations.update(&caller, id, patch).await
        };
        let replay = async |caller: Caller, _, record| self.replayed(&caller, &record).await;
        self.idempotency.write(request, update, replay).await
    }

    async fn delete_integration(
        &self,
        request: Request<proto::DeleteIntegrationRequest>,
    ) -> Result<Response<proto::DeleteIntegrationResponse>, Status> {
        let delete = async |caller: Caller, target| self.integrations.delete(&caller, target).await;
        self.idempotency.delete(request, delete).await
    }

    async fn set_primary_integration(
        &self,
        request: Request<proto::SetPrimaryIntegrationRequest>,
    ) -> Result<Response<proto::SetPrimaryIntegrationResponse>, Status> {
        let set =
            async |caller: Caller, target| self.integrations.set_primary(&caller, target).await;
        let replay = async |caller: Caller, _, record| self.replayed(&caller, &record).await;
        self.idempotency.write(request, set, replay).await
    }

    async fn check_integration(
        &self,
        mut request: Request<proto::CheckIntegrationRequest>,
    ) -> Result<Response<proto::CheckIntegrationResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let id = parse_id(&request.get_ref().id, "id")?;
        let (checked, message) = match self.integrations.check(&caller, id).await? {
            CheckOutcome::Passed => (true, "the provider accepted the credentials".to_owned()),
            CheckOutcome::Unsupported => {
                (false, "this provider offers no credential check".to_owned())
            }
        };
        Ok(answer(proto::CheckIntegrationResponse { checked, message }))
    }

    async fn list_channel_settings(
        &self,
        mut request: Request<proto::ListChannelSettingsRequest>,
    ) -> Result<Response<proto::ListChannelSettingsResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let all = self.channel_settings.list(&caller).await?;
        Ok(answer(proto::ListChannelSettingsResponse {
            channel_settings: all.into_iter().map(settings_to_proto).collect(),
        }))
    }

    async fn get_channel_settings(
        &self,
        mut request: Request<proto::GetChannelSettingsRequest>,
    ) -> Result<Response<proto::GetChannelSettingsResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let channel = required_channel(request.get_ref().channel, "channel")?;
        let settings = self.channel_settings.get(&caller, channel).await?;
        Ok(answer(proto::GetChannelSettingsResponse {
            channel_settings: Some(settings_to_proto(settings)),
        }))
    }

    async fn upsert_channel_settings(
        &self,
        request: Request<proto::UpsertChannelSettingsRequest>,
    ) -> Result<Response<proto::UpsertChannelSettingsResponse>, Status> {
        let upsert = async |caller: Caller, Update { id: channel, patch }| {
            self.channel_settings.upsert(&caller, channel, patch).await
        };
        // Settings are keyed by their channel: a replay reads that channel's again.
        let replay = async |caller: Caller, Update { id: channel, .. }, _| {
            self.channel_settings.get(&caller, channel).await
        };
        self.idempotency.write(request, upsert, replay).await
    }
}

impl IntegrationGrpc {
    /// The integration a replayed call wrote, as the caller may see it now.
    async fn replayed(&self, caller: &Caller, record: &RecordRef) -> Result<Integration, Error> {
        self.integrations.get(caller, replayed_id(record)?).await
    }
}
