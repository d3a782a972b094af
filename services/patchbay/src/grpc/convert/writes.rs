//! The write RPCs' validated inputs and answers: what `Idempotency::write` parses a
//! request into (by `TryFrom`, every bad field named) and builds its answer from (by
//! `From`), so that a write handler names only its operation and its replay.

use patchbay_sdk::proto;
use uuid::Uuid;

use super::account::account_to_proto;
use super::channel_settings::settings_to_proto;
use super::integration::integration_to_proto;
use crate::app::AccountView;
use crate::domain::Error;
use crate::domain::change::Target;
use crate::domain::channel_settings::ChannelSettings;
use crate::domain::ids::parse_id;
use crate::domain::integration::Integration;

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
