//! Accounts Meta tells us about: what it just said of an account (set-up outcome,
//! rejected token, new token), and an account connected through an OAuth flow —
//! created the first time, re-authorised when its key is already there.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::meta_health::Word;
use super::rules::{blank, born, saved_update};
use super::whatsapp::{ACCESS_TOKEN, initial_setup_state, with_pin};
use super::{Account, ProviderState, SetupState, TokenSource, ensure_writable};
use crate::domain::audit::AuditEvent;
use crate::domain::caller::Caller;
use crate::domain::change::{Change, Edit};
use crate::domain::channel::Channel;
use crate::domain::config_document::Document;
use crate::domain::error::{Error, Violations};
use crate::domain::provider::is_url;

/// What Meta just said about an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateChange {
    /// The set-up ran for `provider_id` (`ownership::claim_key`: the number and its
    /// WABA, or the Instagram account); nothing is recorded once the account names
    /// another. Success
    /// clears `setup_error` (and a rejected token, since the token just worked). With
    /// `takes_id` (Meta accepted the token for the number's callback) it takes the id
    /// (`ownership::taken`), if it is still the account's. A failure records why.
    /// `display_phone_number`: what Meta said the number is, when it said.
    SetupSucceeded {
        provider_id: String,
        display_phone_number: Option<String>,
        takes_id: bool,
    },
    /// `retry_after`: Meta asked to wait before the next attempt (see
    /// `ProviderState::setup_retry_after`).
    SetupFailed {
        reason: String,
        token_rejected: bool,
        retry_after: Option<DateTime<Utc>>,
    },
    /// Meta was asked to sync a WhatsApp Business app number: when each sync request
    /// was taken (`None`: not this time), and why one is still missing.
    SyncsRequested {
        contacts_at: Option<DateTime<Utc>>,
        history_at: Option<DateTime<Utc>>,
        error: Option<String>,
    },
    /// Meta rejected the token (a credential answer, or debug_token's is_valid false),
    /// saying why. With `token`, only while that is still the account's token (a check
    /// of an old copy must not flag the token stored since).
    TokenRejected {
        reason: String,
        token: Option<String>,
    },
    /// debug_token said the token is valid: when it and its data access expire, and
    /// the scopes it misses (then the account needs reauthorization all the same);
    /// `thresholds` are the expiry-warning days.
    TokenChecked {
        /// The token checked: nothing is recorded once the account has another.
        token: String,
        expires_at: Option<DateTime<Utc>>,
        data_access_expires_at: Option<DateTime<Utc>>,
        missing_scopes: Vec<&'static str>,
        thresholds: Vec<u32>,
    },
    /// A refresh of `token` failed for a reason that is not the token's (an outage, a
    /// fault of configuration); after `max` in a row the token is left alone.
    RefreshFailed { token: String, max: u32 },
    /// Meta vouched for the account's token for `provider_id` (its `claim_key`; debug_token's
    /// `profile_id` or `granular_scopes`, the WABA's numbers, Instagram's `/me`): an
    /// UNCONFIRMED claim of it becomes CONFIRMED (`ownership::vouched`), unless another
    /// account owns the id (the store keeps the account as it was).
    OwnershipVouched { provider_id: String },
    /// Another account took `provider_id` through a flow Meta vouches for: the
    /// account, its confirmed owner until now, becomes LOST.
    OwnershipLost { provider_id: String },
    /// What Meta's webhooks said about the account's health (`meta_health`).
    MetaSaid { words: Vec<Word> },
    /// A call to Meta about the account was answered (`ok`) or failed as an outage
    /// (`detail`): the PROVIDER reason's count (`health::provider_outcome`).
    ProviderOutcome { ok: bool, detail: String },
    /// A new token under `key`, and when it expires.
    NewToken {
        key: &'static str,
        token: String,
        expires_at: Option<DateTime<Utc>>,
        /// The token it replaces (a refresh): nothing is stored once the account has
        /// another.
        replaces: Option<String>,
    },
}

impl StateChange {
    /// The token the change is about, when it must still be the account's.
    fn about_token(&self) -> Option<&str> {
        match self {
            StateChange::TokenRejected { token, .. } => token.as_deref(),
            StateChange::TokenChecked { token, .. } | StateChange::RefreshFailed { token, .. } => {
                Some(token)
            }
            StateChange::NewToken { replaces, .. } => replaces.as_deref(),
            StateChange::SetupSucceeded { .. }
            | StateChange::SetupFailed { .. }
            | StateChange::SyncsRequested { .. }
            | StateChange::OwnershipVouched { .. }
            | StateChange::OwnershipLost { .. }
            | StateChange::MetaSaid { .. }
            | StateChange::ProviderOutcome { .. } => None,
        }
    }

    fn apply(self, account: &mut Account, at: DateTime<Utc>) {
        // What Meta's word makes of the ownership, read before the state is changed.
        let ownership = match &self {
            StateChange::SetupSucceeded {
                provider_id,
                takes_id: true,
                ..
            } => Some(super::ownership::taken(account, provider_id)),
            StateChange::OwnershipVouched { provider_id } => {
                Some(super::ownership::vouched(account, provider_id))
            }
            StateChange::OwnershipLost { provider_id } => {
                Some(super::ownership::lost(account, provider_id))
            }
            _ => None,
        };
        if let Some(ownership) = ownership {
            account.provider_state.ownership = ownership;
        }
        let state = &mut account.provider_state;
        match self {
            StateChange::SetupSucceeded {
                display_phone_number,
                ..
            } => {
                state.setup_state = SetupState::Done;
                state.setup_error = None;
                state.setup_retry_after = None;
                state.reauthorization_required = false;
                if display_phone_number.is_some() {
                    state.display_phone_number = display_phone_number;
                }
                // Meta took the token for that number's callback: the number is the
                // account's (`ownership` above), unless it was given another while
                // the set-up ran.
            }
            StateChange::SetupFailed {
                reason,
                token_rejected,
                retry_after,
            } => {
                state.setup_state = SetupState::Failed;
                state.setup_retry_after = retry_after;
                if token_rejected {
                    state.reauthorization_required = true;
                    state.reauthorization_reason = Some(reason.clone());
                }
                // A failed set-up gives no number up: ownership stays as it was.
                state.setup_error = Some(reason);
            }
            StateChange::SyncsRequested {
                contacts_at,
                history_at,
                error,
            } => {
                if let Some(coexistence) = &mut state.coexistence {
                    if contacts_at.is_some() {
                        coexistence.contacts_sync_requested_at = contacts_at;
                    }
                    if history_at.is_some() {
                        coexistence.history_sync_requested_at = history_at;
                    }
                    coexistence.sync_error = error;
                }
            }
            StateChange::TokenRejected { reason, .. } => {
                state.reauthorization_required = true;
                state.reauthorization_reason = Some(reason);
                // Being flagged is not giving the id up: ownership stays.
            }
            // Decided above.
            StateChange::OwnershipVouched { .. } | StateChange::OwnershipLost { .. } => {}
            StateChange::ProviderOutcome { ok, detail } => {
                super::health::provider_outcome(
                    &mut account.provider_state.health,
                    ok,
                    &detail,
                    at,
                );
            }
            StateChange::MetaSaid { words } => {
                let created = account.created_at;
                super::health::apply_words(&mut account.provider_state.health, &words, created, at);
            }
            StateChange::TokenChecked {
                expires_at,
                data_access_expires_at,
                token: _,
                missing_scopes,
                thresholds,
            } => {
                state.token_checked_at = Some(at);
                state.token_expires_at = expires_at;
                state.data_access_expires_at = data_access_expires_at;
                state.token_warned_days = super::tokens::expiry_warning(
                    expires_at,
                    at,
                    &thresholds,
                    state.token_warned_days,
                );
                if !missing_scopes.is_empty() {
                    state.reauthorization_required = true;
                    state.reauthorization_reason = Some(format!(
                        "the token lacks the scopes {}",
                        missing_scopes.join(", ")
                    ));
                }
            }
            StateChange::RefreshFailed { max, .. } => {
                state.refresh_failures = state.refresh_failures.saturating_add(1);
                if u32::try_from(state.refresh_failures).is_ok_and(|failures| failures >= max) {
                    state.refresh_exhausted = true;
                }
            }
            StateChange::NewToken {
                key,
                token,
                expires_at,
                replaces: _,
            } => {
                account.config.insert(key.to_owned(), Value::String(token));
                *state = std::mem::take(state).with_new_token();
                state.token_expires_at = expires_at;
                state.token_refreshed_at = Some(at);
            }
        }
    }
}

/// Records `change` on the account as it is now, unless it changes nothing.
pub fn record_state(
    caller: &Caller,
    current: &Account,
    change: StateChange,
    at: DateTime<Utc>,
) -> Edit<Account> {
    if change
        .about_token()
        .is_some_and(|token| super::tokens::meta_token(current) != Some(token))
    {
        return Change::Keep;
    }
    // A set-up that ran for what the account no longer names says nothing of it now.
    if let StateChange::SetupSucceeded { provider_id, .. } = &change
        && super::ownership::claim_key(current).as_deref() != Some(provider_id.as_str())
    {
        return Change::Keep;
    }
    let mut next = current.clone();
    change.apply(&mut next, at);
    // A check that learnt nothing new is not a change of the record (no revision, no
    // audit event, no watch message); when the token was last checked is kept only
    // with what the check changed.
    let mut unchanged = next.clone();
    unchanged.provider_state.token_checked_at = current.provider_state.token_checked_at;
    unchanged.provider_state.health.checked_at = current.provider_state.health.checked_at;
    unchanged
        .provider_state
        .health
        .heard
        .clone_from(&current.provider_state.health.heard);
    if unchanged == *current {
        return Change::Keep;
    }
    saved_update(caller, current, next, at)
}

/// A connected account as Meta describes it.
#[derive(Clone, Debug)]
pub struct Connected {
    pub channel: Channel,
    pub account_key: String,
    pub display_name: Option<String>,
    /// Division of a new account; an existing one keeps its own.
    pub division_id: Option<String>,
    /// Merged into the config (tokens and ids).
    pub config: Document,
    pub token_expires_at: Option<DateTime<Utc>>,
    /// How Meta gave the token.
    pub token_source: TokenSource,
    /// A WhatsApp Business app number onboarded now (coexistence).
    pub coexistence: Option<super::Coexistence>,
}

/// Connecting an account again: Meta's config merged in, the token trusted again, and a
/// Cloud account's set-up made to run again (from the start when the token changed).
pub fn reconnect(
    caller: &Caller,
    current: &Account,
    connected: Connected,
    at: DateTime<Utc>,
) -> Result<Edit<Account>, Error> {
    ensure_writable(caller, current)?;
    let mut next = current.clone();
    next.config.extend(connected.config);
    next.config = with_pin(next.channel, next.config, &mut Violations::new())?;
    if let Some(name) = connected.display_name {
        next.display_name = name;
    }
    next.provider_state.token_source = Some(connected.token_source);
    let setup_state = if super::whatsapp::has_setup(&next) {
        SetupState::Pending
    } else {
        current.provider_state.setup_state
    };
    // A set-up about to run again has no refusal on record yet.
    let setup_error = match setup_state {
        SetupState::Pending => None,
        _ => current.provider_state.setup_error.clone(),
    };
    // Connected again: a token Meta just gave, trusted, with the old one's record gone.
    next.provider_state = ProviderState {
        setup_state,
        // A new token registers the number again.
        setup_registered: current.provider_state.setup_registered
            && current.config.get(ACCESS_TOKEN) == next.config.get(ACCESS_TOKEN),
        setup_error,
        token_expires_at: connected.token_expires_at,
        ownership: ownership_after_connect(&next),
        token_source: Some(connected.token_source),
        coexistence: connected
            .coexistence
            .or_else(|| current.provider_state.coexistence.clone()),
        ..current.provider_state.clone().with_new_token()
    };
    Ok(saved_update(caller, current, next, at))
}

/// A first connected account, and its event: its scope's default when the scope has
/// none, so that it is ready to send from.
pub fn connected_account(
    caller: &Caller,
    connected: Connected,
    scope_has_default: bool,
    at: DateTime<Utc>,
) -> Result<(Account, AuditEvent), Error> {
    caller.require_write(connected.division_id.as_deref())?;
    let config = with_pin(connected.channel, connected.config, &mut Violations::new())?;
    let mut account = Account {
        display_name: connected
            .display_name
            .unwrap_or_else(|| connected.account_key.clone()),
        account_key: connected.account_key,
        is_active: true,
        is_default: !scope_has_default,
        division_id: connected.division_id,
        provider_state: ProviderState {
            token_expires_at: connected.token_expires_at,
            token_source: Some(connected.token_source),
            coexistence: connected.coexistence,
            ..ProviderState::default()
        },
        config,
        ..blank(caller, connected.channel, at)
    };
    account.provider_state.setup_state = initial_setup_state(&account);
    account.provider_state.ownership = ownership_after_connect(&account);
    born(caller, account)
}

/// The ownership a connect leaves: on Messenger and Instagram Meta itself named the
/// page or account the token acts for, so the connect takes the id (the former owner,
/// if any, was made LOST first); a WhatsApp signup names a number the client chose,
/// taken only once Meta accepts the token for the number's callback in the set-up.
fn ownership_after_connect(account: &Account) -> super::Ownership {
    match (
        account.channel,
        super::provider_id(account.channel, &account.config),
    ) {
        (Channel::Messenger | Channel::Instagram, Some(id)) => super::ownership::taken(account, id),
        _ => account.provider_state.ownership,
    }
}

/// The fields every OAuth connect request has.
pub fn check_oauth_request(code: &str, redirect_uri: &str, violations: &mut Violations) {
    if code.trim().is_empty() {
        violations.add("code", "is required");
    } else if code.len() > 2048 {
        violations.add("code", "must be at most 2048 characters");
    }
    if !is_url(redirect_uri) {
        violations.add(
            "redirect_uri",
            "must be the absolute http(s) URL used in the OAuth dialog",
        );
    }
}

/// When a token Meta says lives `expires_in` seconds from `now` expires. Meta's number
/// is checked arithmetic: one that is not positive, or beyond what a date can hold,
/// gives no expiry rather than a panic.
pub fn token_expiry(expires_in: Option<i64>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let seconds = expires_in.filter(|seconds| *seconds > 0)?;
    now.checked_add_signed(chrono::Duration::try_seconds(seconds)?)
}

#[cfg(test)]
#[path = "connected_tests.rs"]
mod tests;
