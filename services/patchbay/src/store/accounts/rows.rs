//! An account as a row: sealed on the way in, opened on the way out.

use sea_orm::ActiveValue::Set;
use uuid::Uuid;

use super::super::entities::account::{ActiveModel, Column, Entity, Model};
use super::super::live::LiveTable;
use super::super::secret_fields::{Owner, open_document, open_text, seal_document, seal_text};
use super::VERIFY_TOKEN_INDEX;
use crate::domain::account::health::Health;
use crate::domain::account::provider_id;
use crate::domain::account::tokens::pasted_token_source;
use crate::domain::account::{Ownership, TokenSource};
use crate::domain::config_document::SecretRule;
use crate::domain::{Account, Channel, Error, ProviderState, RecordKind, SetupState};
use crate::sealing::KeyRing;

impl LiveTable for Entity {
    const KIND: RecordKind = RecordKind::Account;
    fn id() -> Column {
        Column::Id
    }
    fn workspace() -> Column {
        Column::WorkspaceId
    }
    fn deleted_at() -> Column {
        Column::DeletedAt
    }
    fn deleted_by() -> Column {
        Column::DeletedBy
    }
    fn revision() -> Column {
        Column::Revision
    }
    fn updated_at() -> Column {
        Column::UpdatedAt
    }
    fn flag() -> Column {
        Column::IsDefault
    }
    fn row_id(row: &Model) -> Uuid {
        row.id
    }
    /// An account whose secrets cannot be opened: empty config, no verify token.
    fn without_secrets(row: Model) -> Model {
        Model {
            config: serde_json::json!({}),
            verify_token: String::new(),
            ..row
        }
    }
}

fn owner(id: Uuid) -> Owner {
    Owner {
        kind: RecordKind::Account,
        id,
    }
}

pub(super) fn to_active(keys: &KeyRing, account: &Account) -> Result<ActiveModel, Error> {
    let config = seal_document(
        keys,
        owner(account.id),
        "config",
        &account.config,
        SecretRule::ByName,
    )?;
    let verify_token = seal_text(
        keys,
        owner(account.id),
        "verify_token",
        &account.verify_token,
    )?;
    Ok(ActiveModel {
        id: Set(account.id),
        workspace_id: Set(account.workspace_id.clone()),
        channel: Set(account.channel.as_str().to_owned()),
        account_key: Set(account.account_key.clone()),
        display_name: Set(account.display_name.clone()),
        is_active: Set(account.is_active),
        is_default: Set(account.is_default),
        division_id: Set(account.division_id.clone()),
        config: Set(serde_json::Value::Object(config)),
        verify_token: Set(verify_token),
        revision: Set(account.revision),
        created_at: Set(account.created_at),
        updated_at: Set(account.updated_at),
        deleted_at: Set(None),
        deleted_by: Set(None),
        setup_state: Set(account.provider_state.setup_state.as_str().to_owned()),
        setup_registered: Set(account.provider_state.setup_registered),
        verify_token_index: Set(keys.index_of(VERIFY_TOKEN_INDEX, &account.verify_token)),
        setup_error: Set(account.provider_state.setup_error.clone()),
        reauthorization_required: Set(account.provider_state.reauthorization_required),
        token_expires_at: Set(account.provider_state.token_expires_at),
        webhook_route: Set(account.webhook_route.simple().to_string()),
        // Derived on every write, never taken from a client: what routing and the
        // one-owner index read.
        provider_id: Set(provider_id(account.channel, &account.config).map(str::to_owned)),
        ownership: Set(account.provider_state.ownership.as_str().to_owned()),
        data_access_expires_at: Set(account.provider_state.data_access_expires_at),
        reauthorization_reason: Set(account.provider_state.reauthorization_reason.clone()),
        token_checked_at: Set(account.provider_state.token_checked_at),
        refresh_failures: Set(account.provider_state.refresh_failures),
        refresh_exhausted: Set(account.provider_state.refresh_exhausted),
        token_warned_days: Set(account.provider_state.token_warned_days),
        token_refreshed_at: Set(account.provider_state.token_refreshed_at),
        setup_retry_after: Set(account.provider_state.setup_retry_after),
        display_phone_number: Set(account.provider_state.display_phone_number.clone()),
        token_source: Set(account
            .provider_state
            .token_source
            .map(|source| source.as_str().to_owned())),
        coexistence: Set(account
            .provider_state
            .coexistence
            .as_ref()
            .and_then(|coexistence| serde_json::to_value(coexistence).ok())),
        health: Set(serde_json::to_value(&account.provider_state.health).ok()),
    })
}

pub(crate) fn to_domain(keys: &KeyRing, row: Model) -> Result<Account, Error> {
    let channel = Channel::parse(&row.channel).ok_or_else(|| {
        Error::Internal(format!(
            "account {} has unknown channel {:?}",
            row.id, row.channel
        ))
    })?;
    let config = match row.config {
        serde_json::Value::Object(config) => config,
        _ => {
            return Err(Error::Internal(format!(
                "account {} has a config that is not a JSON object",
                row.id
            )));
        }
    };
    let config = open_document(keys, owner(row.id), "config", &config)?;
    let verify_token = open_text(keys, owner(row.id), "verify_token", &row.verify_token)?;
    let webhook_route = Uuid::parse_str(&row.webhook_route).map_err(|_| {
        Error::Internal(format!("account {} has a malformed webhook route", row.id))
    })?;
    let mut account = Account {
        id: row.id,
        workspace_id: row.workspace_id,
        channel,
        account_key: row.account_key,
        display_name: row.display_name,
        is_active: row.is_active,
        is_default: row.is_default,
        division_id: row.division_id,
        config,
        verify_token,
        webhook_route,
        revision: row.revision,
        created_at: row.created_at,
        updated_at: row.updated_at,
        provider_state: ProviderState {
            setup_state: SetupState::parse(&row.setup_state).ok_or_else(|| {
                Error::Internal(format!(
                    "account {} has an unknown setup state {:?}",
                    row.id, row.setup_state
                ))
            })?,
            setup_registered: row.setup_registered,
            setup_error: row.setup_error,
            reauthorization_required: row.reauthorization_required,
            token_expires_at: row.token_expires_at,
            ownership: Ownership::parse(&row.ownership).ok_or_else(|| {
                Error::Internal(format!(
                    "account {} has an unknown ownership {:?}",
                    row.id, row.ownership
                ))
            })?,
            data_access_expires_at: row.data_access_expires_at,
            reauthorization_reason: row.reauthorization_reason,
            token_checked_at: row.token_checked_at,
            refresh_failures: row.refresh_failures,
            refresh_exhausted: row.refresh_exhausted,
            token_warned_days: row.token_warned_days,
            token_refreshed_at: row.token_refreshed_at,
            setup_retry_after: row.setup_retry_after,
            display_phone_number: row.display_phone_number,
            token_source: match row.token_source.as_deref() {
                Some(name) => Some(TokenSource::parse(name).ok_or_else(|| {
                    Error::Internal(format!(
                        "account {} has an unknown token source {name:?}",
                        row.id
                    ))
                })?),
                None => None,
            },
            coexistence: match row.coexistence {
                Some(value) => Some(serde_json::from_value(value).map_err(|_| {
                    Error::Internal(format!("account {} has a malformed coexistence", row.id))
                })?),
                None => None,
            },
            health: stored_health(row.id, row.health).unwrap_or_default(),
        },
    };
    // An account older than the column: its token tells what it can.
    if account.provider_state.token_source.is_none() {
        account.provider_state.token_source = pasted_token_source(&account);
    }
    // Its own state's reasons as that state says now (a replica of the previous
    // version writes the state, not the health).
    let updated_at = account.updated_at;
    Ok(account.with_settled_health(updated_at))
}

/// The stored health of account `id` (a reason of a class this version does not know
/// is kept aside, `Health::unknown`); one that is not health at all is read as none,
/// its own state's reasons settled from it again.
pub(crate) fn stored_health(id: uuid::Uuid, value: Option<serde_json::Value>) -> Option<Health> {
    match value.map(serde_json::from_value::<Health>) {
        Some(Ok(health)) => Some(health),
        Some(Err(err)) => {
            tracing::warn!(account_id = %id, error = %err, "an account's stored health is unreadable");
            None
        }
        None => None,
    }
}
