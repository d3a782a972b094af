//! Writes the Meta flows share: recording what Meta said about an account (set-up
//! outcome, rejected token, new token), and saving a connected account — created the
//! first time, updated (re-authorised) when its key is already there.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::whatsapp::{initial_setup_state, is_cloud_account, with_pin};
use super::{Accounts, account_event, ensure_writable};
use crate::domain::account::{Account, ProviderState, SetupState};
use crate::domain::audit::{AuditAction, account_changes};
use crate::domain::caller::Caller;
use crate::domain::channel::Channel;
use crate::domain::config_document::Document;
use crate::domain::error::{Error, RecordKind, Violations};
use crate::domain::support::{new_id, now, random_token};
use crate::meta::MetaError;
use crate::store::accounts::AccountChange;

/// What Meta just said about an account.
pub enum StateChange {
    /// The set-up ran: success clears `setup_error` (and a rejected token, since the
    /// token just worked); a failure records why.
    SetupSucceeded,
    SetupFailed {
        reason: String,
        token_rejected: bool,
    },
    /// Meta rejected the token (error 190).
    TokenRejected,
    /// A new token under `key`, and when it expires.
    NewToken {
        key: &'static str,
        token: String,
        expires_at: Option<DateTime<Utc>>,
    },
}

impl StateChange {
    pub fn setup(outcome: Result<(), MetaError>) -> Self {
        match outcome {
            Ok(()) => StateChange::SetupSucceeded,
            Err(err) => StateChange::SetupFailed {
                token_rejected: err.is_invalid_token(),
                reason: err.to_string(),
            },
        }
    }

    fn apply(self, account: &mut Account) {
        let state = &mut account.provider_state;
        match self {
            StateChange::SetupSucceeded => {
                state.setup_state = SetupState::Done;
                state.setup_error = None;
                state.reauthorization_required = false;
            }
            StateChange::SetupFailed {
                reason,
                token_rejected,
            } => {
                state.setup_state = SetupState::Failed;
                state.setup_error = Some(reason);
                state.reauthorization_required |= token_rejected;
            }
            StateChange::TokenRejected => state.reauthorization_required = true,
            StateChange::NewToken {
                key,
                token,
                expires_at,
            } => {
                account.config.insert(key.to_owned(), Value::String(token));
                state.token_expires_at = expires_at;
                state.reauthorization_required = false;
            }
        }
    }
}

/// A connected account as Meta describes it.
pub struct Connected {
    pub channel: Channel,
    pub account_key: String,
    pub display_name: Option<String>,
    /// Division of a new account; an existing one keeps its own.
    pub division_id: Option<String>,
    /// Merged into the config (tokens and ids).
    pub config: Document,
    pub token_expires_at: Option<DateTime<Utc>>,
}

impl Accounts {
    /// Records `change` on account `id` as `caller`, applied to the account as it is
    /// under the write lock, unless it changes nothing. Returns the account as stored.
    pub(super) async fn record_state(
        &self,
        caller: &Caller,
        id: Uuid,
        change: StateChange,
    ) -> Result<Account, Error> {
        let written = self
            .store
            .modify_account(&caller.workspace_id, id, move |current| {
                let mut next = current.clone();
                change.apply(&mut next);
                Ok(save_if_changed(caller, &current, next))
            })
            .await?;
        self.written(written)
            .ok_or_else(|| Error::not_found(RecordKind::Account, id))
    }

    /// Saves a connected account: updates the live account with the same key (a new
    /// token re-authorises it), or creates it — as its scope's default when the scope
    /// has none, so that a first connected account is ready to send from.
    pub(super) async fn save_connected(
        &self,
        caller: &Caller,
        connected: Connected,
    ) -> Result<Account, Error> {
        let ws = &caller.workspace_id;
        let existing = self
            .store
            .find_account_by_key(ws, connected.channel, &connected.account_key)
            .await?;
        if let Some(existing) = existing {
            let written = self
                .store
                .modify_account(ws, existing.id, move |current| {
                    ensure_writable(caller, &current)?;
                    let mut next = current.clone();
                    next.config.extend(connected.config);
                    next.config = with_pin(next.channel, next.config, &mut Violations::new())?;
                    if let Some(name) = connected.display_name {
                        next.display_name = name;
                    }
                    // Connecting a Cloud account again runs its set-up again.
                    let setup_state = if is_cloud_account(next.channel, &next.config) {
                        SetupState::Pending
                    } else {
                        current.provider_state.setup_state
                    };
                    // A set-up about to run again has no refusal on record yet; a new token
                    // registers the number again.
                    next.provider_state.setup_registered &=
                        current.config.get("access_token") == next.config.get("access_token");
                    let setup_error = match setup_state {
                        SetupState::Pending => None,
                        _ => current.provider_state.setup_error.clone(),
                    };
                    next.provider_state = ProviderState {
                        setup_state,
                        setup_registered: next.provider_state.setup_registered,
                        setup_error,
                        reauthorization_required: false,
                        token_expires_at: connected.token_expires_at,
                    };
                    Ok(save_if_changed(caller, &current, next))
                })
                .await?;
            return self
                .written(written)
                .ok_or_else(|| Error::not_found(RecordKind::Account, existing.id));
        }

        caller.require_write(connected.division_id.as_deref())?;
        let scope_has_default = self
            .store
            .find_default_account(ws, connected.channel, connected.division_id.as_deref())
            .await?
            .is_some();
        let at = now();
        let account = Account {
            id: new_id(),
            workspace_id: ws.clone(),
            channel: connected.channel,
            display_name: connected
                .display_name
                .unwrap_or_else(|| connected.account_key.clone()),
            account_key: connected.account_key,
            is_active: true,
            is_default: !scope_has_default,
            division_id: connected.division_id,
            config: with_pin(connected.channel, connected.config, &mut Violations::new())?,
            verify_token: random_token(24)?,
            revision: 1,
            created_at: at,
            updated_at: at,
            provider_state: ProviderState::default(),
        };
        let account = Account {
            provider_state: ProviderState {
                setup_state: initial_setup_state(account.channel, &account.config),
                token_expires_at: connected.token_expires_at,
                ..ProviderState::default()
            },
            ..account
        };
        let event = account_event(
            caller,
            &account,
            AuditAction::Create,
            account_changes(None, &account),
        );
        match self.store.insert_account(account, &event).await {
            Ok(written) => Ok(self.written(written)),
            Err(Error::AlreadyExists { .. }) => Err(Error::Aborted(
                "the same account was connected concurrently; retry".to_owned(),
            )),
            Err(err) => Err(err),
        }
    }
}

fn save_if_changed(caller: &Caller, current: &Account, next: Account) -> AccountChange {
    if &next == current {
        return AccountChange::Keep;
    }
    let event = account_event(
        caller,
        &next,
        AuditAction::Update,
        account_changes(Some(current), &next),
    );
    AccountChange::Save(
        Box::new(Account {
            revision: current.revision + 1,
            updated_at: now(),
            ..next
        }),
        event,
    )
}
