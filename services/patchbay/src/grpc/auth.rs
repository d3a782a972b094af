//! Authentication and authorisation as a tonic interceptor: it takes the caller the
//! overload layer verified (or verifies the bearer token), checks its role against the
//! action the method table names (the one check), takes the call's place (the request
//! has arrived by now: the overload layer waits for it), and puts the [`Call`] (its
//! caller and context) into the request extensions, where the handler takes it
//! (`caller_of`).

use std::sync::Arc;

use tonic::{Request, Status, service::Interceptor};

use super::call::{Call, CallContext, Permit};
use super::overload::Verified;
use super::places::CallPlaces;
use super::status;
use crate::auth::{Authenticated, Authenticator};
use crate::domain::caller::CallPlace;
use crate::domain::fair_share::Shed;
use crate::domain::{Action, Role};

#[derive(Clone, Debug)]
pub struct AuthInterceptor {
    authenticator: Arc<Authenticator>,
    /// The server's places for calls in flight, and the gateway's.
    places: Arc<CallPlaces>,
}

impl AuthInterceptor {
    pub fn new(authenticator: Arc<Authenticator>, places: Arc<CallPlaces>) -> Self {
        Self {
            authenticator,
            places,
        }
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Authenticated {
            mut caller,
            valid_until,
        } = match request.extensions_mut().remove::<Verified>() {
            // Verified by the overload layer before it waited for the request: still
            // valid now that the request has arrived?
            Some(Verified::Caller(authenticated)) => {
                if authenticated.valid_until < now_seconds() {
                    return Err(status::unauthenticated("token has expired"));
                }
                authenticated
            }
            Some(Verified::Refused(refused)) => return Err(refused),
            None => {
                let header = match request.metadata().get("authorization") {
                    Some(value) => Some(value.to_str().map_err(|_| {
                        status::unauthenticated("authorization header is not ASCII")
                    })?),
                    None => None,
                };
                self.authenticator.authenticate(header)?
            }
        };
        caller.request_id = request_id(&request);
        // The action the authorization layer found for this method: the role is checked
        // before any handler runs (deny by default: no action, no call).
        let action = request
            .extensions()
            .get::<Action>()
            .copied()
            .ok_or_else(|| status::permission_denied("this method is not open to any role"))?;
        caller.authorize(action)?;
        // The gateway has no workspace and places of its own.
        let permit = if caller.role == Role::Gateway {
            let Some(place) = self.places.take_gateway() else {
                metrics::counter!("patchbay_grpc_shed_total", "reason" => "gateway").increment(1);
                return Err(status::resource_exhausted(
                    "the webhook gateway is at its limit of calls in flight; retry with backoff",
                ));
            };
            Permit::Gateway(place)
        } else {
            match self.places.take(caller.workspace_id()) {
                Ok(place) => Permit::Workspace(place),
                Err(shed) => {
                    metrics::counter!("patchbay_grpc_shed_total", "reason" => shed.reason())
                        .increment(1);
                    return Err(status::resource_exhausted(refusal(shed)));
                }
            }
        };
        let span = tracing::Span::current();
        span.record("workspace", caller.workspace_id());
        caller.place = Some(CallPlace(Arc::new(permit)));
        let context = CallContext { valid_until };
        request.extensions_mut().insert(Call { caller, context });
        Ok(request)
    }
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn refusal(shed: Shed) -> &'static str {
    match shed {
        Shed::Server => "the server is at its limit of calls in flight; retry with backoff",
        Shed::WorkspaceShare => {
            "this workspace is at its share of calls in flight; retry with backoff"
        }
        Shed::FairShare => {
            "the server is nearly full and this workspace holds more than its fair part \
             of the calls in flight; retry with backoff"
        }
    }
}

/// The request id `RequestSpanLayer` settled on (a new one if the layer is absent).
fn request_id(request: &Request<()>) -> String {
    request
        .metadata()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(super::request_span::new_request_id)
}

/// The caller of a request that passed the interceptor, already authorised there for
/// the action the method table names (the one check): taken out of the request, so a
/// handler holds the one copy (and with it the call's place).
pub fn caller_of<T>(request: &mut Request<T>) -> Result<Call, Status> {
    request
        .extensions_mut()
        .remove::<Call>()
        .ok_or_else(|| status::unauthenticated("missing authorization: Bearer <token>"))
}

/// [`caller_of`], with the action the method table named for the call (what a write's
/// idempotency key and audit event record).
pub fn authorized<T>(request: &mut Request<T>) -> Result<(Call, Action), Status> {
    let action = request
        .extensions()
        .get::<Action>()
        .copied()
        .ok_or_else(|| status::permission_denied("this method is not open to any role"))?;
    Ok((caller_of(request)?, action))
}
