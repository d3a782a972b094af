//! The decisions of the account RPCs: given the caller, the account as it is under the
//! write lock and the request, what to write. No I/O: `app::accounts` reads, calls one
//! of these, and hands what it returns to the store.

use chrono::{DateTime, Utc};

use super::whatsapp;
use super::{
    Account, AccountPatch, NewAccount, ProviderState, account_changes, check_config, division_from,
    resolve_account_key, validate_display_name, validate_division_id,
};
use crate::domain::audit::{AuditAction, AuditEvent};
use crate::domain::caller::Caller;
use crate::domain::change::{Change, Edit, Revised, check_revision, event};
use crate::domain::channel::Channel;
use crate::domain::config_document::{self, Document};
use crate::domain::error::{Error, RecordKind, Violations};
use crate::domain::ids::{new_id, random_token};

impl Revised for Account {
    const KIND: RecordKind = RecordKind::Account;

    fn revision(&self) -> i64 {
        self.revision
    }

    fn revised(self, at: DateTime<Utc>) -> Self {
        Account {
            revision: self.revision + 1,
            updated_at: at,
            ..self
        }
    }

    fn record_id(&self) -> String {
        self.id.to_string()
    }

    fn division(&self) -> Option<String> {
        self.division_id.clone()
    }
}

/// The division of a new account: the one asked for (`""`: workspace-wide), else the
/// caller's own.
pub fn new_account_division(
    caller: &Caller,
    asked: Option<&str>,
    violations: &mut Violations,
) -> Option<String> {
    match asked {
        None => caller.division_id().map(str::to_owned),
        Some(asked) => division_from(asked, violations),
    }
}

/// The division a defaults question is about: the one asked for, else the caller's own
/// (`None` for a workspace-wide caller). A division-scoped caller may ask only for its own.
pub fn asked_division(caller: &Caller, asked: Option<String>) -> Result<Option<String>, Error> {
    match (asked, caller.division_id()) {
        (None, mine) => Ok(mine.map(str::to_owned)),
        (Some(asked), Some(mine)) if asked != mine => Err(Error::PermissionDenied(
            "caller is restricted to its division and may not ask for another".to_owned(),
        )),
        (Some(asked), _) => {
            validate_division_id(&asked, "division_id")?;
            Ok(Some(asked))
        }
    }
}

/// A record the caller cannot see does not exist for it; one it sees but may not write
/// (a workspace-wide account, for a division admin) is forbidden.
pub fn ensure_writable(caller: &Caller, account: &Account) -> Result<(), Error> {
    if !caller.can_see(account.division_id.as_deref()) {
        return Err(Error::not_found(RecordKind::Account, account.id));
    }
    caller.require_write(account.division_id.as_deref())
}

/// A new account as the caller asked for it, and the event that records it; or every
/// reason the request is invalid. A WhatsApp Cloud account starts with its set-up
/// PENDING: it runs after the write.
pub fn create(
    caller: &Caller,
    new: NewAccount,
    at: DateTime<Utc>,
) -> Result<(Account, AuditEvent), Error> {
    let mut violations = Violations::new();
    let division_id = new_account_division(caller, new.division_id.as_deref(), &mut violations);
    // Read as a merge patch onto nothing: nulls drop out, masked secrets are refused.
    let config = match config_document::merge_patch(&Document::new(), &new.config, "config") {
        Ok(config) => config,
        Err(config_violations) => {
            // Keep checking the rest of the document as sent.
            violations.extend(config_violations);
            new.config.clone()
        }
    };
    check_config(new.channel, &config, &mut violations);
    let config = whatsapp::with_pin(new.channel, config, &mut violations)?;
    let account_key = violations.checked(resolve_account_key(
        new.channel,
        Some(&new.account_key),
        &config,
    ));
    violations.check(validate_display_name(&new.display_name, "display_name"));
    let is_active = new.is_active.unwrap_or(true);
    if new.is_default && !is_active {
        violations.add("is_default", "an inactive account cannot be the default");
    }
    let account_key = violations.finish(account_key)?;
    caller.require_write(division_id.as_deref())?;
    let mut account = Account {
        display_name: display_name_or_key(&new.display_name, &account_key),
        account_key,
        is_active,
        is_default: new.is_default,
        division_id,
        config,
        ..blank(caller, new.channel, at)
    };
    account.provider_state.token_source = super::tokens::pasted_token_source(&account);
    account.provider_state.setup_state = whatsapp::initial_setup_state(&account);
    born(caller, account)
}

/// An account of `channel` made at `at`: a new id, a fresh verify token, revision 1,
/// inactive and empty until the caller's fields are put in.
pub(super) fn blank(caller: &Caller, channel: Channel, at: DateTime<Utc>) -> Account {
    Account {
        id: new_id(),
        workspace_id: caller.workspace_id().to_owned(),
        channel,
        account_key: String::new(),
        display_name: String::new(),
        is_active: false,
        is_default: false,
        division_id: None,
        config: Document::new(),
        verify_token: String::new(),
        // Random (v4), unlike record ids: a route says nothing of when it was made.
        webhook_route: uuid::Uuid::new_v4(),
        revision: 1,
        created_at: at,
        updated_at: at,
        provider_state: ProviderState::default(),
    }
}

/// A new account with its verify token, and the event that records its creation.
pub(super) fn born(caller: &Caller, account: Account) -> Result<(Account, AuditEvent), Error> {
    let account = Account {
        verify_token: random_token(24)?,
        ..account
    };
    let event = event(
        caller,
        &account,
        AuditAction::Create,
        account_changes(None, &account),
    );
    Ok((account, event))
}

/// What an update writes, and whether the WhatsApp set-up runs again after it.
#[derive(Debug)]
pub struct Updated {
    pub change: Edit<Account>,
    pub run_setup: bool,
}

/// UpdateAccount: the patch applied to the account as it is now.
pub fn update(
    caller: &Caller,
    current: &Account,
    patch: AccountPatch,
    at: DateTime<Utc>,
) -> Result<Updated, Error> {
    writable_at(caller, current, patch.expected_revision)?;
    let mut next = apply_patch(caller, current, patch)?;
    // A token stored by hand is a pasted one (or Instagram Login's, by its prefix).
    if super::tokens::meta_token(&next) != super::tokens::meta_token(current) {
        next.provider_state.token_source = super::tokens::pasted_token_source(&next);
    }
    // A WABA-only account given its number takes the number's key (its route stays).
    if current.account_key.starts_with("waba-")
        && whatsapp::is_cloud_account(next.channel, &next.config)
    {
        next.account_key = format!(
            "wa-{}",
            whatsapp::text(&next.config, super::PHONE_NUMBER_ID)
        );
    }
    let run_setup = whatsapp::setup_needed(current, &next, at);
    next.provider_state.setup_state = whatsapp::setup_state_after_update(current, &next, run_setup);
    if whatsapp::setup_inputs_changed(current, &next) {
        next.provider_state.setup_registered = false;
    }
    // Ownership holds for the id Meta vouched for, not for the next one; a number's,
    // for the WABA it was vouched for with (WABA-level entries go by it).
    let waba = |account: &Account| whatsapp::text(&account.config, whatsapp::WABA_ID).to_owned();
    if super::provider_id(next.channel, &next.config)
        != super::provider_id(current.channel, &current.config)
        || (next.channel == Channel::Whatsapp
            && waba(&next) != waba(current)
            && current.provider_state.ownership == super::Ownership::Confirmed)
    {
        next.provider_state.ownership = super::Ownership::Unconfirmed;
    }
    let change = saved_update(caller, current, next, at);
    Ok(Updated { change, run_setup })
}

/// DeleteAccount: a soft delete, at the revision the caller expects. `released` is what
/// came of removing the account's callback at its provider (`None`: nothing to remove),
/// recorded as the audit event's outcome and the DELETED event's reason.
pub fn delete(
    caller: &Caller,
    current: &Account,
    expected_revision: Option<i64>,
    at: DateTime<Utc>,
    released: Option<String>,
) -> Result<Change<Account>, Error> {
    writable_at(caller, current, expected_revision)?;
    let mut change = Change::delete(caller, current, at);
    if let Change::Delete(deletion) = &mut change {
        deletion.event.outcome = released;
    }
    Ok(change)
}

/// SetDefaultAccount: the account becomes its scope's default (the store clears the
/// previous one in the same transaction). Only an active account can be the default;
/// the default already is a no-op.
pub fn set_default(
    caller: &Caller,
    current: &Account,
    expected_revision: Option<i64>,
    at: DateTime<Utc>,
) -> Result<Edit<Account>, Error> {
    writable_at(caller, current, expected_revision)?;
    if !current.is_active {
        return Err(Error::FailedPrecondition(
            "the account is inactive; activate it before making it the default".to_owned(),
        ));
    }
    let next = Account {
        is_default: true,
        ..current.clone()
    };
    Ok(Change::save_if_changed(
        caller,
        current,
        next,
        AuditAction::SetDefault,
        |_, _| vec!["is_default".to_owned()],
        at,
    ))
}

/// The account is the caller's to write, at the revision it expects.
fn writable_at(caller: &Caller, current: &Account, expected: Option<i64>) -> Result<(), Error> {
    ensure_writable(caller, current)?;
    check_revision(expected, current.revision)
}

/// `next` in place of `current`, recorded as an update of the fields that differ.
pub(super) fn saved_update(
    caller: &Caller,
    current: &Account,
    next: Account,
    at: DateTime<Utc>,
) -> Edit<Account> {
    Change::save_if_changed(
        caller,
        current,
        next,
        AuditAction::Update,
        |before, after| account_changes(Some(before), after),
        at,
    )
}

/// The display name asked for, or the key when none was.
fn display_name_or_key(asked: &str, account_key: &str) -> String {
    match asked.trim() {
        "" => account_key.to_owned(),
        name => name.to_owned(),
    }
}

/// Whether any token-named config value changed.
fn token_changed(before: &Document, after: &Document) -> bool {
    before
        .keys()
        .chain(after.keys())
        .filter(|key| key.to_ascii_lowercase().contains("token"))
        .any(|key| before.get(key) != after.get(key))
}

/// The state an update asks for, or every reason it is invalid.
fn apply_patch(caller: &Caller, current: &Account, patch: AccountPatch) -> Result<Account, Error> {
    let mut violations = Violations::new();
    let mut next = current.clone();

    if let Some(config_patch) = &patch.config {
        match config_document::merge_patch(&current.config, config_patch, "config") {
            Ok(config) => {
                check_config(current.channel, &config, &mut violations);
                next.config = whatsapp::with_pin(current.channel, config, &mut violations)?;
                // A new token is the answer to a rejected one.
                if token_changed(&current.config, &next.config) {
                    next.provider_state = next.provider_state.with_new_token();
                }
            }
            Err(config_violations) => violations.extend(config_violations),
        }
    }
    if let Some(name) = &patch.display_name
        && violations
            .check(validate_display_name(name, "display_name"))
            .is_some()
    {
        next.display_name = display_name_or_key(name, &next.account_key);
    }
    if let Some(division) = &patch.division_id {
        next.division_id = division_from(division, &mut violations);
    }
    if patch.account_key.is_some() || patch.config.is_some() {
        // On WhatsApp the key follows the phone number id; elsewhere it stays unless given.
        let requested = match current.channel {
            Channel::Whatsapp => patch.account_key.as_deref(),
            _ => patch.account_key.as_deref().or(Some(&current.account_key)),
        };
        let key = resolve_account_key(current.channel, requested, &next.config);
        if let Some(key) = violations.check(key) {
            next.account_key = key;
        }
    }
    if let Some(active) = patch.is_active {
        next.is_active = active;
    }
    next.is_default = match patch.is_default {
        Some(wanted) => wanted,
        // Moving to another division leaves the old scope's default behind.
        None if next.division_id != current.division_id => false,
        // A default is always active: deactivating it clears the flag.
        None => current.is_default && next.is_active,
    };
    if next.is_default && !next.is_active {
        violations.add("is_default", "an inactive account cannot be the default");
    }
    violations.into_result()?;
    caller.require_write(next.division_id.as_deref())?;
    Ok(next)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
