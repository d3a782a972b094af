//! Accounts between the wire and the domain: requests become domain values (every bad
//! field reported), accounts become messages as the caller may see them.

use patchbay_sdk::proto;

use super::writes::Update;

use super::health::health_to_proto;
use super::{
    channel_to_proto, optional_document, required_channel, struct_from_document, timestamp,
};
use crate::app::AccountView;
use crate::domain::account::events::{AccountEvent, AccountEventKind};
use crate::domain::account::{Ownership, TokenSource, provider_id};
use crate::domain::ids::{now, parse_id};
use crate::domain::{Account, AccountPatch, Channel, Error, NewAccount, SetupState, Violations};

impl TryFrom<proto::CreateAccountRequest> for NewAccount {
    type Error = Error;

    fn try_from(request: proto::CreateAccountRequest) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let channel = violations.checked(required_channel(request.channel, "channel"));
        let config = optional_document(request.config, "config", &mut violations);
        let channel = violations.finish(channel)?;
        Ok(NewAccount {
            channel,
            account_key: request.account_key,
            display_name: request.display_name,
            is_active: request.is_active,
            is_default: request.is_default,
            division_id: request.division_id,
            config: config.unwrap_or_default(),
        })
    }
}

impl TryFrom<proto::UpdateAccountRequest> for Update<AccountPatch> {
    type Error = Error;

    fn try_from(request: proto::UpdateAccountRequest) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let id = violations.checked(parse_id(&request.id, "id"));
        let config = optional_document(request.config, "config", &mut violations);
        let id = violations.finish(id)?;
        Ok(Update {
            id,
            patch: AccountPatch {
                account_key: request.account_key,
                display_name: request.display_name,
                is_active: request.is_active,
                is_default: request.is_default,
                division_id: request.division_id,
                config,
                expected_revision: request.expected_revision,
            },
        })
    }
}

/// How many channels there are: a watch names at most that many distinct ones.
const MAX_DISTINCT_CHANNELS: usize = Channel::ALL.len();

/// The channels a watch names. Repeats are one channel, and there are eight channels:
/// more distinct values than that is one violation, not one per entry (no work per
/// repeated byte).
pub fn watched_channels(values: &[i32], violations: &mut Violations) -> Vec<Channel> {
    let mut distinct: Vec<(usize, i32)> = Vec::new();
    for (i, &value) in values.iter().enumerate() {
        if distinct.iter().all(|&(_, seen)| seen != value) {
            distinct.push((i, value));
            if distinct.len() > MAX_DISTINCT_CHANNELS {
                break;
            }
        }
    }
    if distinct.len() > MAX_DISTINCT_CHANNELS {
        violations.add(
            "channels",
            format!("names more than the {MAX_DISTINCT_CHANNELS} channels there are"),
        );
        return Vec::new();
    }
    distinct
        .into_iter()
        .filter_map(|(i, value)| {
            violations.check(required_channel(value, &format!("channels[{i}]")))
        })
        .collect()
}

/// A division filter: empty means none.
pub fn division_filter(division_id: String) -> Option<String> {
    Some(division_id).filter(|d| !d.is_empty())
}

pub fn account_to_proto(view: AccountView) -> proto::Account {
    let account = &*view.account;
    proto::Account {
        id: account.id.to_string(),
        channel: channel_to_proto(account.channel).into(),
        account_key: account.account_key.clone(),
        display_name: account.display_name.clone(),
        is_active: account.is_active,
        is_default: account.is_default,
        division_id: account.division_id.clone(),
        config: Some(struct_from_document(&account.config)),
        verify_token: view.verify_token().to_owned(),
        created_at: Some(timestamp(account.created_at)),
        updated_at: Some(timestamp(account.updated_at)),
        revision: account.revision,
        webhook_url: view.webhook_url,
        setup_error: account
            .provider_state
            .setup_error
            .clone()
            .unwrap_or_default(),
        reauthorization_required: account.provider_state.reauthorization_required,
        token_expires_at: account.provider_state.token_expires_at.map(timestamp),
        setup_state: setup_state_to_proto(account.provider_state.setup_state).into(),
        data_access_expires_at: account.provider_state.data_access_expires_at.map(timestamp),
        reauthorization_reason: account
            .provider_state
            .reauthorization_reason
            .clone()
            .unwrap_or_default(),
        display_phone_number: account
            .provider_state
            .display_phone_number
            .clone()
            .unwrap_or_default(),
        setup_retry_after: account.provider_state.setup_retry_after.map(timestamp),
        token_source: token_source_to_proto(account.provider_state.token_source).into(),
        ownership: ownership_to_proto(account).into(),
        health: Some(health_to_proto(&account.provider_state.health, now())),
        coexistence: account
            .provider_state
            .coexistence
            .as_ref()
            .map(|coexistence| proto::WhatsappCoexistence {
                contacts_sync_requested_at: coexistence.contacts_sync_requested_at.map(timestamp),
                history_sync_requested_at: coexistence.history_sync_requested_at.map(timestamp),
                sync_error: coexistence.sync_error.clone().unwrap_or_default(),
            }),
    }
}

/// UNSPECIFIED for an account without a provider id.
fn ownership_to_proto(account: &Account) -> proto::Ownership {
    if provider_id(account.channel, &account.config).is_none() {
        return proto::Ownership::Unspecified;
    }
    match account.provider_state.ownership {
        Ownership::Confirmed => proto::Ownership::Confirmed,
        Ownership::Unconfirmed => proto::Ownership::Unconfirmed,
        Ownership::Lost => proto::Ownership::Lost,
    }
}

fn token_source_to_proto(source: Option<TokenSource>) -> proto::TokenSource {
    match source {
        None => proto::TokenSource::Unspecified,
        Some(TokenSource::InstagramLogin) => proto::TokenSource::InstagramLogin,
        Some(TokenSource::FacebookLogin) => proto::TokenSource::FacebookLogin,
        Some(TokenSource::SystemUser) => proto::TokenSource::SystemUser,
        Some(TokenSource::Pasted) => proto::TokenSource::Pasted,
    }
}

fn setup_state_to_proto(state: SetupState) -> proto::SetupState {
    match state {
        SetupState::NotNeeded => proto::SetupState::NotNeeded,
        SetupState::Pending => proto::SetupState::Pending,
        SetupState::Done => proto::SetupState::Done,
        SetupState::Failed => proto::SetupState::Failed,
        SetupState::AwaitingNumber => proto::SetupState::AwaitingNumber,
    }
}

/// The answer of GetAccountCredentials: the one message that carries secrets in clear.
pub fn credentials_to_proto(account: Account) -> proto::GetAccountCredentialsResponse {
    proto::GetAccountCredentialsResponse {
        account_id: account.id.to_string(),
        channel: channel_to_proto(account.channel).into(),
        account_key: account.account_key,
        config: Some(struct_from_document(&account.config)),
        verify_token: account.verify_token,
        revision: account.revision,
    }
}

pub fn event_to_proto(event: AccountEvent, account: AccountView) -> proto::AccountEvent {
    use AccountEventKind as Kind;
    use proto::AccountEventKind as Wire;
    let kind = match event.kind {
        Kind::Created => Wire::Created,
        Kind::Updated => Wire::Updated,
        Kind::Deleted => Wire::Deleted,
        Kind::DefaultChanged => Wire::DefaultChanged,
        Kind::SetupFailed => Wire::SetupFailed,
        Kind::SetupSucceeded => Wire::SetupSucceeded,
        Kind::ReauthorizationRequired => Wire::ReauthorizationRequired,
        Kind::Reauthorized => Wire::Reauthorized,
        Kind::TokenExpiring => Wire::TokenExpiring,
        Kind::TokenRefreshed => Wire::TokenRefreshed,
        Kind::RefreshExhausted => Wire::RefreshExhausted,
        Kind::OwnershipLost => Wire::OwnershipLost,
        Kind::HealthChanged => Wire::HealthChanged,
    };
    proto::AccountEvent {
        revision: event.revision,
        kind: kind.into(),
        account: Some(account_to_proto(account)),
        reason: event.reason.unwrap_or_default(),
        occurred_at: Some(timestamp(event.occurred_at)),
        previous_health: event
            .previous_health
            .as_ref()
            .map(|health| health_to_proto(health, now())),
    }
}
