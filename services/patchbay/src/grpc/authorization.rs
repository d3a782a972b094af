//! Authorisation before any handler runs: one table from method path to action, deny by
//! default. A tower layer looks the path up (an RPC missing from the table is
//! PERMISSION_DENIED for every role, so a method added without an entry cannot be
//! called) and hands the action to the auth interceptor, which checks the caller's role
//! against it: the one check. Handlers take the caller already authorised
//! (`auth::caller_of`, `auth::authorized`) and do the record and division checks.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tower::{Layer, Service};

use crate::domain::Action;

const PREFIX: &str = "/patchbay.v1.";

/// The action a Patchbay method path asks for; `None` for a path not in the table.
pub fn action_of(path: &str) -> Option<Action> {
    let method = path.strip_prefix(PREFIX)?;
    Some(match method {
        "AccountService/ListAccounts" => Action::ListAccounts,
        "AccountService/GetAccount" => Action::GetAccount,
        "AccountService/CreateAccount" => Action::CreateAccount,
        "AccountService/UpdateAccount" => Action::UpdateAccount,
        "AccountService/DeleteAccount" => Action::DeleteAccount,
        "AccountService/SetDefaultAccount" => Action::SetDefaultAccount,
        "AccountService/GetDefaultAccount" => Action::GetDefaultAccount,
        "AccountService/SetFallbackAccounts" => Action::SetFallbackAccounts,
        "AccountService/GetFallbackAccounts" => Action::GetFallbackAccounts,
        "AccountService/WatchDefaultAccounts" => Action::WatchDefaultAccounts,
        "AccountService/WatchAccountEvents" => Action::WatchAccountEvents,
        "AccountService/GetAccountCredentials" => Action::GetAccountCredentials,
        "AccountService/GetWhatsAppHealth" => Action::GetWhatsAppHealth,
        "AccountService/CompleteWhatsAppSignup" => Action::CompleteWhatsAppSignup,
        "AccountService/ConnectInstagram" => Action::ConnectInstagram,
        "AccountService/ConnectMessenger" => Action::ConnectMessenger,
        "AccountService/SubscribeMessengerPages" => Action::SubscribeMessengerPages,
        "AccountService/SetMessengerPersistentMenu" => Action::SetMessengerPersistentMenu,
        "IntegrationService/ListChannelSettings" => Action::ListChannelSettings,
        "IntegrationService/GetChannelSettings" => Action::GetChannelSettings,
        "IntegrationService/UpsertChannelSettings" => Action::UpsertChannelSettings,
        "IntegrationService/ListProviders" => Action::ListProviders,
        "IntegrationService/GetProvider" => Action::GetProvider,
        "IntegrationService/ListIntegrations" => Action::ListIntegrations,
        "IntegrationService/GetIntegration" => Action::GetIntegration,
        "IntegrationService/CreateIntegration" => Action::CreateIntegration,
        "IntegrationService/UpdateIntegration" => Action::UpdateIntegration,
        "IntegrationService/DeleteIntegration" => Action::DeleteIntegration,
        "IntegrationService/SetPrimaryIntegration" => Action::SetPrimaryIntegration,
        "IntegrationService/CheckIntegration" => Action::CheckIntegration,
        "AuditService/ListAuditEvents" => Action::ListAuditEvents,
        "WebhookService/VerifyWebhookSubscription" => Action::VerifyWebhookSubscription,
        "WebhookService/VerifyWebhookSignature" => Action::VerifyWebhookSignature,
        "WebhookService/RouteWebhook" => Action::RouteWebhook,
        _ => return None,
    })
}

#[derive(Clone, Copy, Debug, Default)]
pub struct AuthorizationLayer;

impl<S> Layer<S> for AuthorizationLayer {
    type Service = Authorization<S>;

    fn layer(&self, inner: S) -> Authorization<S> {
        Authorization { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Authorization<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Authorization<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        if path.starts_with(PREFIX) {
            match action_of(path) {
                Some(action) => {
                    request.extensions_mut().insert(action);
                }
                None => {
                    let denied =
                        super::status::permission_denied("this method is not open to any role");
                    return Box::pin(async move { Ok(denied.into_http()) });
                }
            }
        }
        let call = self.inner.call(request);
        Box::pin(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_its_method_and_unknown_paths_have_none() {
        for (path, name) in [
            ("/patchbay.v1.AccountService/CreateAccount", "CreateAccount"),
            (
                "/patchbay.v1.WebhookService/VerifyWebhookSignature",
                "VerifyWebhookSignature",
            ),
        ] {
            assert_eq!(action_of(path).map(Action::name), Some(name));
        }
        assert_eq!(
            action_of("/patchbay.v1.AccountService/DropEverything"),
            None
        );
        assert_eq!(
            action_of("/patchbay.v1.IntegrationService/CreateAccount"),
            None
        );
        assert_eq!(action_of("/grpc.health.v1.Health/Check"), None);
    }

    /// Every method of the API, read from the compiled protos: each has its action, and
    /// the gateway may call exactly one of them, which nobody else may call.
    #[test]
    fn the_gateway_routes_webhooks_and_nothing_else() {
        use crate::domain::{Caller, Role};
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(patchbay_sdk::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let caller = |role: &str| Caller {
            subject: "s".into(),
            role: Role::parse(role),
            scope: if role == "gateway" {
                crate::domain::caller::Scope::Gateway
            } else {
                crate::domain::caller::Scope::Workspace {
                    id: "acme".into(),
                    division: None,
                }
            },
            request_id: String::new(),
            idempotency: None,
            place: None,
        };
        let mut methods = 0;
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    let action = action_of(&path).unwrap_or_else(|| panic!("{path} has no action"));
                    let routes = action == Action::RouteWebhook;
                    assert_eq!(
                        caller("gateway").authorize(action).is_ok(),
                        routes,
                        "{path}"
                    );
                    for role in ["admin", "supervisor", "service"] {
                        if routes {
                            assert!(caller(role).authorize(action).is_err(), "{role} routes");
                        }
                    }
                    methods += 1;
                }
            }
        }
        assert!(methods > 30, "only {methods} methods read");
    }
}
