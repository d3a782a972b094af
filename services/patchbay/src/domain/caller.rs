//! Who is calling, and what each role may do. The JWT is checked in `auth`; from then on
//! the domain only sees a [`Caller`].

use super::error::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Supervisor,
    Service,
    /// The installation's webhook gateway: no workspace, only `RouteWebhook`.
    Gateway,
    /// A role claim Patchbay does not know: authenticated, allowed nothing.
    Unrecognized(String),
}

impl Role {
    pub fn parse(name: &str) -> Role {
        match name {
            "admin" => Role::Admin,
            "supervisor" => Role::Supervisor,
            "service" => Role::Service,
            "gateway" => Role::Gateway,
            other => Role::Unrecognized(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Service => "service",
            Role::Gateway => "gateway",
            Role::Unrecognized(name) => name,
        }
    }
}

/// Where a caller acts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A tenant's workspace; with a division, the caller sees its division's and
    /// workspace-wide records, and writes only its division's.
    Workspace {
        id: String,
        division: Option<String>,
    },
    /// The installation's webhook gateway (RouteWebhook): no workspace.
    Gateway,
}

/// The authenticated caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: who acts, recorded as `deleted_by` and in audit events.
    pub subject: String,
    pub role: Role,
    pub scope: Scope,
    /// The request's `x-request-id` (or one generated for it), recorded in audit events.
    pub request_id: String,
    /// The idempotency key this call runs under, recorded with its first write.
    pub idempotency: Option<std::sync::Arc<super::idempotency::IdempotencyClaim>>,
    /// The call's place, shared by every clone (see [`CallPlace`]).
    pub place: Option<CallPlace>,
}

/// The call's place among the calls in flight (the fair-neighbours rule), opaque to the
/// domain: the edge puts it here (`grpc/call.rs`). It rides on the caller rather than
/// beside it because every clone of the caller shares it: work the call spawns (a
/// page's connection, a provider check) holds the place until that work is done, not
/// only until the handler returns or its client goes away.
#[derive(Clone)]
pub struct CallPlace(pub std::sync::Arc<dyn Send + Sync>);

impl std::fmt::Debug for CallPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallPlace")
    }
}

/// Places say nothing about who the caller is: they compare equal.
impl PartialEq for CallPlace {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for CallPlace {}

/// Every operation a caller can ask for, checked against the role table of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ListAccounts,
    GetAccount,
    CreateAccount,
    UpdateAccount,
    DeleteAccount,
    SetDefaultAccount,
    GetDefaultAccount,
    SetFallbackAccounts,
    GetFallbackAccounts,
    WatchDefaultAccounts,
    WatchAccountEvents,
    GetAccountCredentials,
    ListChannelSettings,
    GetChannelSettings,
    UpsertChannelSettings,
    ListAuditEvents,
    ListProviders,
    GetProvider,
    ListIntegrations,
    GetIntegration,
    CreateIntegration,
    UpdateIntegration,
    DeleteIntegration,
    SetPrimaryIntegration,
    CheckIntegration,
    GetWhatsAppHealth,
    CompleteWhatsAppSignup,
    ConnectInstagram,
    ConnectMessenger,
    SubscribeMessengerPages,
    SetMessengerPersistentMenu,
    VerifyWebhookSubscription,
    VerifyWebhookSignature,
    RouteWebhook,
}

impl Action {
    /// The spec's role table: admin does everything, supervisor reads, service reads
    /// accounts and defaults, the gateway only routes webhooks.
    fn allows(self, role: &Role) -> bool {
        if *role == Role::Gateway || self == Action::RouteWebhook {
            // Nothing else for the gateway, and nobody else may route: a tenant's token
            // must not learn where another tenant's webhooks go.
            return *role == Role::Gateway && self == Action::RouteWebhook;
        }
        let (admin, supervisor, service) = match self {
            Action::RouteWebhook => (false, false, false),
            Action::ListAccounts
            | Action::GetAccount
            | Action::GetDefaultAccount
            | Action::GetFallbackAccounts
            | Action::WatchDefaultAccounts
            | Action::WatchAccountEvents
            | Action::ListProviders
            | Action::GetProvider => (true, true, true),
            Action::ListChannelSettings
            | Action::GetChannelSettings
            | Action::ListIntegrations
            | Action::GetIntegration => (true, true, false),
            // The one call that returns secrets in clear: for sending services only.
            Action::GetAccountCredentials => (false, false, true),
            // The webhook gateways' questions: they hold a service token.
            Action::VerifyWebhookSubscription | Action::VerifyWebhookSignature => {
                (false, false, true)
            }
            Action::ListAuditEvents => (true, false, false),
            Action::CreateAccount
            | Action::UpdateAccount
            | Action::DeleteAccount
            | Action::SetDefaultAccount
            | Action::SetFallbackAccounts
            | Action::UpsertChannelSettings
            | Action::CreateIntegration
            | Action::UpdateIntegration
            | Action::DeleteIntegration
            | Action::SetPrimaryIntegration
            | Action::CheckIntegration
            | Action::GetWhatsAppHealth
            | Action::CompleteWhatsAppSignup
            | Action::ConnectInstagram
            | Action::ConnectMessenger
            | Action::SubscribeMessengerPages
            | Action::SetMessengerPersistentMenu => (true, false, false),
        };
        match role {
            Role::Admin => admin,
            Role::Supervisor => supervisor,
            Role::Service => service,
            Role::Gateway | Role::Unrecognized(_) => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::ListAccounts => "ListAccounts",
            Action::GetAccount => "GetAccount",
            Action::CreateAccount => "CreateAccount",
            Action::UpdateAccount => "UpdateAccount",
            Action::DeleteAccount => "DeleteAccount",
            Action::SetDefaultAccount => "SetDefaultAccount",
            Action::GetDefaultAccount => "GetDefaultAccount",
            Action::SetFallbackAccounts => "SetFallbackAccounts",
            Action::GetFallbackAccounts => "GetFallbackAccounts",
            Action::WatchDefaultAccounts => "WatchDefaultAccounts",
            Action::WatchAccountEvents => "WatchAccountEvents",
            Action::GetAccountCredentials => "GetAccountCredentials",
            Action::ListAuditEvents => "ListAuditEvents",
            Action::ListProviders => "ListProviders",
            Action::GetProvider => "GetProvider",
            Action::ListIntegrations => "ListIntegrations",
            Action::GetIntegration => "GetIntegration",
            Action::CreateIntegration => "CreateIntegration",
            Action::UpdateIntegration => "UpdateIntegration",
            Action::DeleteIntegration => "DeleteIntegration",
            Action::SetPrimaryIntegration => "SetPrimaryIntegration",
            Action::CheckIntegration => "CheckIntegration",
            Action::ListChannelSettings => "ListChannelSettings",
            Action::GetChannelSettings => "GetChannelSettings",
            Action::UpsertChannelSettings => "UpsertChannelSettings",
            Action::GetWhatsAppHealth => "GetWhatsAppHealth",
            Action::CompleteWhatsAppSignup => "CompleteWhatsAppSignup",
            Action::ConnectInstagram => "ConnectInstagram",
            Action::ConnectMessenger => "ConnectMessenger",
            Action::SubscribeMessengerPages => "SubscribeMessengerPages",
            Action::SetMessengerPersistentMenu => "SetMessengerPersistentMenu",
            Action::VerifyWebhookSubscription => "VerifyWebhookSubscription",
            Action::VerifyWebhookSignature => "VerifyWebhookSignature",
            Action::RouteWebhook => "RouteWebhook",
        }
    }
}

impl Caller {
    pub fn authorize(&self, action: Action) -> Result<(), Error> {
        if action.allows(&self.role) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "role {:?} may not call {}",
                self.role.as_str(),
                action.name()
            )))
        }
    }

    /// The workspace the caller acts in. The gateway acts in none: it is the empty
    /// name, which no workspace has (a token's `workspace_id` is never empty), so that
    /// nothing of a workspace is ever found for it.
    pub fn workspace_id(&self) -> &str {
        match &self.scope {
            Scope::Workspace { id, .. } => id,
            Scope::Gateway => "",
        }
    }

    /// The division the caller is scoped to, if any.
    pub fn division_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Workspace { division, .. } => division.as_deref(),
            Scope::Gateway => None,
        }
    }

    /// Whether a record of `division_id` exists for this caller. A record it cannot see
    /// is reported as not found, never as forbidden.
    pub fn can_see(&self, division_id: Option<&str>) -> bool {
        match (self.division_id(), division_id) {
            (None, _) | (Some(_), None) => true,
            (Some(mine), Some(theirs)) => mine == theirs,
        }
    }

    /// Whether the caller may write a record of `division_id`: a division-scoped caller
    /// writes only its own division's records, never workspace-wide ones.
    pub fn can_write(&self, division_id: Option<&str>) -> bool {
        match (self.division_id(), division_id) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => mine == theirs,
        }
    }

    pub fn require_write(&self, division_id: Option<&str>) -> Result<(), Error> {
        if self.can_write(division_id) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(match division_id {
                Some(d) => {
                    format!("caller is restricted to its division and may not write division {d:?}")
                }
                None => {
                    "caller is restricted to its division and may not write workspace-wide records"
                        .to_owned()
                }
            }))
        }
    }

    /// Secrets are shown masked to everybody; the few non-config secrets that an admin
    /// needs to set up a provider (the webhook verify token) are shown to admins only.
    pub fn sees_setup_secrets(&self) -> bool {
        self.role == Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, division: Option<&str>) -> Caller {
        Caller {
            subject: "u1".into(),
            role,
            scope: Scope::Workspace {
                id: "acme".into(),
                division: division.map(str::to_owned),
            },
            request_id: "r1".into(),
            idempotency: None,
            place: None,
        }
    }

    #[test]
    fn supervisor_reads_but_never_writes() {
        let supervisor = caller(Role::Supervisor, None);
        assert!(supervisor.authorize(Action::ListAccounts).is_ok());
        assert!(supervisor.authorize(Action::GetChannelSettings).is_ok());
        assert!(supervisor.authorize(Action::CreateAccount).is_err());
        assert!(supervisor.authorize(Action::UpsertChannelSettings).is_err());
    }

    #[test]
    fn service_reads_accounts_only() {
        let service = caller(Role::Service, None);
        assert!(service.authorize(Action::GetDefaultAccount).is_ok());
        assert!(service.authorize(Action::GetAccount).is_ok());
        assert!(service.authorize(Action::ListChannelSettings).is_err());
        assert!(service.authorize(Action::SetDefaultAccount).is_err());
    }

    #[test]
    fn unrecognized_role_is_allowed_nothing() {
        let odd = caller(Role::parse("owner"), None);
        assert!(odd.authorize(Action::GetAccount).is_err());
    }

    #[test]
    fn division_scope_sees_workspace_records_but_writes_only_its_own() {
        let scoped = caller(Role::Admin, Some("d1"));
        assert!(scoped.can_see(None));
        assert!(scoped.can_see(Some("d1")));
        assert!(!scoped.can_see(Some("d2")));
        assert!(!scoped.can_write(None));
        assert!(scoped.can_write(Some("d1")));
    }
}
