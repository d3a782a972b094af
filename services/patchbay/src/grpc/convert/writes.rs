//! The write RPCs' validated inputs and answers: what `Idempotency::write` parses a
//! request into (by `TryFrom`, every bad field named) and builds its answer from (by
//! `From`), so that a write handler names only its operation and its replay.

use patchbay_sdk::proto;
use uuid::Uuid;

use super::account::account_to_proto;
use super::account::division_filter;
use super::channel_settings::settings_to_proto;
use super::integration::integration_to_proto;
use super::required_channel;
use crate::app::AccountView;
use crate::domain::change::Target;
use crate::domain::channel_settings::ChannelSettings;
use crate::domain::fallbacks;
use crate::domain::ids::parse_id;
use crate::domain::integration::Integration;
use crate::domain::{Channel, Error, Violations};

/// An update of the record `id` (an id, or a channel's settings).
#[derive(Debug)]
pub struct Update<P, K = Uuid> {
    pub id: K,
    pub patch: P,
}

/// DeleteAccount, SetDefaultAccount, DeleteIntegration and SetPrimaryIntegration name
/// their record by `id`, at `expected_revision`.
macro_rules! targets {
    ($($request:ident),+) => {$(
        impl TryFrom<proto::$request> for Target {
            type Error = Error;

            fn try_from(request: proto::$request) -> Result<Self, Error> {
                Ok(Target {
                    id: parse_id(&request.id, "id")?,
                    expected_revision: request.expected_revision,
                })
            }
        }
    )+};
}
targets!(
    DeleteAccountRequest,
    SetDefaultAccountRequest,
    DeleteIntegrationRequest,
    SetPrimaryIntegrationRequest
);

macro_rules! answers {
    ($record:ty => $field:ident by $convert:ident: $($response:ident),+) => {$(
        impl From<$record> for proto::$response {
            fn from(record: $record) -> Self {
                Self { $field: Some($convert(record)) }
            }
        }
    )+};
}
answers!(AccountView => account by account_to_proto:
    CreateAccountResponse, UpdateAccountResponse, SetDefaultAccountResponse);
answers!(Integration => integration by integration_to_proto:
    CreateIntegrationResponse, UpdateIntegrationResponse, SetPrimaryIntegrationResponse);
answers!(ChannelSettings => channel_settings by settings_to_proto: UpsertChannelSettingsResponse);

/// A scope's list of fallbacks, as SetFallbackAccounts asks for it.
#[derive(Debug)]
pub struct FallbackList {
    pub channel: Channel,
    /// `None`: the workspace's scope (a division-scoped caller's own division).
    pub division: Option<String>,
    pub ids: Vec<Uuid>,
}

impl TryFrom<proto::SetFallbackAccountsRequest> for FallbackList {
    type Error = Error;

    fn try_from(request: proto::SetFallbackAccountsRequest) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let channel = violations.checked(required_channel(request.channel, "channel"));
        let ids = fallbacks::parse_list(&request.account_ids, &mut violations);
        Ok(FallbackList {
            channel: violations.finish(channel)?,
            division: division_filter(request.division_id),
            ids,
        })
    }
}

/// A scope's fallbacks, in order, as the caller may see them.
pub struct Listed(pub Vec<AccountView>);

impl From<Listed> for proto::SetFallbackAccountsResponse {
    fn from(Listed(accounts): Listed) -> Self {
        Self {
            accounts: accounts.into_iter().map(account_to_proto).collect(),
        }
    }
}
