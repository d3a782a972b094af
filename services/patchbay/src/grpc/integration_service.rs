//! `patchbay.v1.IntegrationService`: channel settings.

use patchbay_sdk::proto::{self, integration_service_server::IntegrationService};
use tonic::{Request, Response, Status};

use super::auth::authorize;
use super::convert::{
    channel_to_proto, optional_document, required_channel, struct_from_document, timestamp,
};
use super::idempotency::Idempotency;
use crate::domain::Caller;
use std::sync::Arc;

use super::convert::{optional_channel, provider_to_proto};
use super::integration_convert::{integration_to_proto, update_from_proto};
use crate::domain::integration::NewIntegration;
use crate::domain::integrations::{IntegrationQuery, Integrations};
use crate::domain::provider::Catalog;
use crate::domain::support::{PageRequest, parse_id};
use crate::domain::{
    Action, ChannelSettings, ChannelSettingsPatch, ChannelSettingsService, Error, RecordKind,
    Violations,
};
use crate::outbound::CheckOutcome;

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
        authorize(&mut request, Action::ListProviders)?;
        Ok(Response::new(proto::ListProvidersResponse {
            providers: self.catalog.all().map(provider_to_proto).collect(),
        }))
    }

    async fn get_provider(
        &self,
        mut request: Request<proto::GetProviderRequest>,
    ) -> Result<Response<proto::GetProviderResponse>, Status> {
        authorize(&mut request, Action::GetProvider)?;
        let slug = &request.get_ref().slug;
        if slug.is_empty() {
            return Err(Error::invalid("slug", "is required").into());
        }
        let provider = self.catalog.get(slug).ok_or_else(|| Error::NotFound {
            kind: RecordKind::Provider,
            id: slug.clone(),
        })?;
        Ok(Response::new(proto::GetProviderResponse {
            provider: Some(provider_to_proto(provider)),
        }))
    }

    async fn create_integration(
        &self,
        request: Request<proto::CreateIntegrationRequest>,
    ) -> Result<Response<proto::CreateIntegrationResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::CreateIntegration,
                |caller, request| self.create_integration_now(caller, request),
                |caller, _, record| async move {
                    Ok(proto::CreateIntegrationResponse {
                        integration: Some(self.replayed_integration(&caller, &record).await?),
                    })
                },
            )
            .await
    }

    async fn list_integrations(
        &self,
        mut request: Request<proto::ListIntegrationsRequest>,
    ) -> Result<Response<proto::ListIntegrationsResponse>, Status> {
        let caller = authorize(&mut request, Action::ListIntegrations)?;
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
        let (integrations, next_page_token) = super::convert::fit_page(
            page.items.into_iter().map(integration_to_proto).collect(),
            page.next_page_token,
            |integration| integration.id.as_str(),
        );
        Ok(Response::new(proto::ListIntegrationsResponse {
            integrations,
            next_page_token,
        }))
    }

    async fn get_integration(
        &self,
        mut request: Request<proto::GetIntegrationRequest>,
    ) -> Result<Response<proto::GetIntegrationResponse>, Status> {
        let caller = authorize(&mut request, Action::GetIntegration)?;
        let id =
            parse_id(&request.get_ref().id, "id").map_err(|v| Error::InvalidArgument(vec![v]))?;
        let integration = self.integrations.get(&caller, id).await?;
        Ok(Response::new(proto::GetIntegrationResponse {
            integration: Some(integration_to_proto(integration)),
        }))
    }

    async fn update_integration(
        &self,
        request: Request<proto::UpdateIntegrationRequest>,
    ) -> Result<Response<proto::UpdateIntegrationResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::UpdateIntegration,
                |caller, request| self.update_integration_now(caller, request),
                |caller, _, record| async move {
                    Ok(proto::UpdateIntegrationResponse {
                        integration: Some(self.replayed_integration(&caller, &record).await?),
                    })
                },
            )
            .await
    }

    async fn delete_integration(
        &self,
        request: Request<proto::DeleteIntegrationRequest>,
    ) -> Result<Response<proto::DeleteIntegrationResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::DeleteIntegration,
                |caller, request| self.delete_integration_now(caller, request),
                |_, _, _| async { Ok(proto::DeleteIntegrationResponse {}) },
            )
            .await
    }

    async fn set_primary_integration(
        &self,
        request: Request<proto::SetPrimaryIntegrationRequest>,
    ) -> Result<Response<proto::SetPrimaryIntegrationResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::SetPrimaryIntegration,
                |caller, request| self.set_primary_integration_now(caller, request),
                |caller, _, record| async move {
                    Ok(proto::SetPrimaryIntegrationResponse {
                        integration: Some(self.replayed_integration(&caller, &record).await?),
                    })
                },
            )
            .await
    }

    async fn check_integration(
        &self,
        mut request: Request<proto::CheckIntegrationRequest>,
    ) -> Result<Response<proto::CheckIntegrationResponse>, Status> {
        let caller = authorize(&mut request, Action::CheckIntegration)?;
        let id =
            parse_id(&request.get_ref().id, "id").map_err(|v| Error::InvalidArgument(vec![v]))?;
        let (checked, message) = match self.integrations.check(&caller, id).await? {
            CheckOutcome::Passed => (true, "the provider accepted the credentials".to_owned()),
            CheckOutcome::Unsupported => {
                (false, "this provider offers no credential check".to_owned())
            }
        };
        Ok(Response::new(proto::CheckIntegrationResponse {
            checked,
            message,
        }))
    }

    async fn list_channel_settings(
        &self,
        mut request: Request<proto::ListChannelSettingsRequest>,
    ) -> Result<Response<proto::ListChannelSettingsResponse>, Status> {
        let caller = authorize(&mut request, Action::ListChannelSettings)?;
        let all = self.channel_settings.list(&caller).await?;
        Ok(Response::new(proto::ListChannelSettingsResponse {
            channel_settings: all.into_iter().map(settings_to_proto).collect(),
        }))
    }

    async fn get_channel_settings(
        &self,
        mut request: Request<proto::GetChannelSettingsRequest>,
    ) -> Result<Response<proto::GetChannelSettingsResponse>, Status> {
        let caller = authorize(&mut request, Action::GetChannelSettings)?;
        let channel = required_channel(request.get_ref().channel, "channel")
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        let settings = self.channel_settings.get(&caller, channel).await?;
        Ok(Response::new(proto::GetChannelSettingsResponse {
            channel_settings: Some(settings_to_proto(settings)),
        }))
    }

    async fn upsert_channel_settings(
        &self,
        request: Request<proto::UpsertChannelSettingsRequest>,
    ) -> Result<Response<proto::UpsertChannelSettingsResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::UpsertChannelSettings,
                |caller, request| self.upsert_channel_settings_now(caller, request),
                |caller, request, _| async move {
                    let channel = required_channel(request.channel, "channel")
                        .map_err(|v| Error::InvalidArgument(vec![v]))?;
                    let settings = self.channel_settings.get(&caller, channel).await?;
                    Ok(proto::UpsertChannelSettingsResponse {
                        channel_settings: Some(settings_to_proto(settings)),
                    })
                },
            )
            .await
    }
}

fn settings_to_proto(settings: ChannelSettings) -> proto::ChannelSettings {
    proto::ChannelSettings {
        id: settings.id.map(|id| id.to_string()).unwrap_or_default(),
        channel: channel_to_proto(settings.channel).into(),
        is_active: settings.is_active,
        config: Some(struct_from_document(&settings.config)),
        division_id: settings.division_id,
        created_at: settings.created_at.map(timestamp),
        updated_at: settings.updated_at.map(timestamp),
        revision: settings.revision,
    }
}

/// The mutating calls themselves; the trait methods run them through idempotency keys.
impl IntegrationGrpc {
    async fn upsert_channel_settings_now(
        &self,
        caller: Caller,
        request: Request<proto::UpsertChannelSettingsRequest>,
    ) -> Result<Response<proto::UpsertChannelSettingsResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let channel = violations.check(required_channel(request.channel, "channel"));
        let config = optional_document(request.config, "config", &mut violations);
        violations.into_result()?;
        let Some(channel) = channel else {
            return Err(Status::internal("channel missing after validation"));
        };
        let patch = ChannelSettingsPatch {
            is_active: request.is_active,
            config,
            division_id: request.division_id,
            expected_revision: request.expected_revision,
        };
        let settings = self
            .channel_settings
            .upsert(&caller, channel, patch)
            .await?;
        Ok(Response::new(proto::UpsertChannelSettingsResponse {
            channel_settings: Some(settings_to_proto(settings)),
        }))
    }
    /// The integration a replayed call wrote, as the caller may see it now.
    async fn replayed_integration(
        &self,
        caller: &Caller,
        record: &crate::domain::idempotency::RecordRef,
    ) -> Result<proto::Integration, Status> {
        let id = super::idempotency::replayed_id(record)?;
        Ok(integration_to_proto(
            self.integrations.get(caller, id).await?,
        ))
    }

    async fn create_integration_now(
        &self,
        caller: Caller,
        request: Request<proto::CreateIntegrationRequest>,
    ) -> Result<Response<proto::CreateIntegrationResponse>, Status> {
        let new = NewIntegration::try_from(request.into_inner())?;
        let integration = self.integrations.create(&caller, new).await?;
        Ok(Response::new(proto::CreateIntegrationResponse {
            integration: Some(integration_to_proto(integration)),
        }))
    }
    async fn update_integration_now(
        &self,
        caller: Caller,
        request: Request<proto::UpdateIntegrationRequest>,
    ) -> Result<Response<proto::UpdateIntegrationResponse>, Status> {
        let (id, patch) = update_from_proto(request.into_inner())?;
        let integration = self.integrations.update(&caller, id, patch).await?;
        Ok(Response::new(proto::UpdateIntegrationResponse {
            integration: Some(integration_to_proto(integration)),
        }))
    }
    async fn delete_integration_now(
        &self,
        caller: Caller,
        request: Request<proto::DeleteIntegrationRequest>,
    ) -> Result<Response<proto::DeleteIntegrationResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id(&request.id, "id").map_err(|v| Error::InvalidArgument(vec![v]))?;
        self.integrations
            .delete(&caller, id, request.expected_revision)
            .await?;
        Ok(Response::new(proto::DeleteIntegrationResponse {}))
    }
    async fn set_primary_integration_now(
        &self,
        caller: Caller,
        request: Request<proto::SetPrimaryIntegrationRequest>,
    ) -> Result<Response<proto::SetPrimaryIntegrationResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id(&request.id, "id").map_err(|v| Error::InvalidArgument(vec![v]))?;
        let integration = self
            .integrations
            .set_primary(&caller, id, request.expected_revision)
            .await?;
        Ok(Response::new(proto::SetPrimaryIntegrationResponse {
            integration: Some(integration_to_proto(integration)),
        }))
    }
}
