//! Account operations: authorise the caller, validate the request, decide the new state,
//! and hand it to the store. Each public method is one RPC of `AccountService`; the
//! flows that also talk to Meta are in the submodules, one per product.

mod instagram;
mod messenger;
mod provider_state;
mod whatsapp;

pub use instagram::{InstagramConnected, TokenRefresher};
pub use messenger::{MessengerConnected, PageResult};
pub use whatsapp::{SignupResult, WhatsAppHealth};

use std::sync::Arc;

use uuid::Uuid;

use super::account::{
    Account, AccountPatch, NewAccount, ProviderState, WebhookUrls, check_config,
    resolve_account_key, validate_display_name, validate_division_id,
};
use super::audit::{self, AuditAction, AuditEvent, account_changes};
use super::caller::Caller;
use super::channel::Channel;
use super::config_document::{self, Document, MASK_PREFIX};
use super::error::{Error, RecordKind, Violations};
use super::support::{Page, PageRequest, check_revision, new_id, now, random_token};
use crate::defaults::{DefaultAccounts, Subscription, shareable};
use crate::domain::provider::is_url;
use crate::meta::{GraphClient, MetaApp, MetaError};
use crate::store::Store;
use crate::store::accounts::{AccountChange, AccountFilter, Written};
use crate::store::default_changes::DefaultsFilter;

/// What a caller is shown of an account: config secrets masked (shared, not copied:
/// the default-account cache hands out the same one to every caller), the verify token
/// only to callers who may see it, the webhook URL computed.
#[derive(Clone, Debug)]
pub struct AccountView {
    pub account: Arc<Account>,
    pub verify_token_visible: bool,
    pub webhook_url: String,
}

impl AccountView {
    /// The verify token as this caller may see it.
    pub fn verify_token(&self) -> &str {
        if self.verify_token_visible {
            &self.account.verify_token
        } else {
            MASK_PREFIX
        }
    }
}

/// What a watch starts from: the defaults it covers now, and its place in the feed of
/// changes that follow.
pub struct DefaultsWatch {
    pub snapshot: Vec<AccountView>,
    pub subscription: Subscription,
    pub filter: DefaultsFilter,
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    webhooks: WebhookUrls,
    defaults: DefaultAccounts,
    graph: GraphClient,
    /// The Meta app of the OAuth flows; `None` makes them FAILED_PRECONDITION.
    meta_app: Option<MetaApp>,
}

impl Accounts {
    pub fn new(
        store: Store,
        webhooks: WebhookUrls,
        defaults: DefaultAccounts,
        graph: GraphClient,
        meta_app: Option<MetaApp>,
    ) -> Self {
        Self {
            store,
            webhooks,
            defaults,
            graph,
            meta_app,
        }
    }

    /// Reports a committed write's default change (see `defaults`), and passes on what
    /// it stored.
    fn written<T>(&self, written: Written<T>) -> T {
        if let Some(changed) = &written.defaults {
            self.defaults.changed(changed);
        }
        written.value
    }

    pub async fn list(
        &self,
        caller: &Caller,
        channel: Option<Channel>,
        page: PageRequest,
    ) -> Result<Page<AccountView>, Error> {
        let accounts = self
            .store
            .list_accounts(&AccountFilter {
                workspace_id: &caller.workspace_id,
                channel,
                caller_division: caller.division_id.as_deref(),
                after: page.after,
                limit: page.size + 1,
            })
            .await?;
        Ok(Page::from_overfetch(accounts, page.size, |a| a.id).map(|a| self.view(caller, a)))
    }

    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<AccountView, Error> {
        let account = self.find_visible(caller, id).await?;
        Ok(self.view(caller, account))
    }

    /// The account a replayed create or signup wrote, its set-up resumed when it never
    /// ran to the end (the first call's deadline passed, or the server stopped, while
    /// Meta was being called). Registration and subscription are idempotent at Meta.
    pub async fn resume(&self, caller: &Caller, id: Uuid) -> Result<AccountView, Error> {
        let account = self.find_visible(caller, id).await?;
        let account = if account.provider_state.setup_state == crate::domain::SetupState::Pending {
            caller.require_write(account.division_id.as_deref())?;
            self.set_up_whatsapp(caller, account).await?
        } else {
            account
        };
        Ok(self.view(caller, account))
    }

    pub async fn create(&self, caller: &Caller, new: NewAccount) -> Result<AccountView, Error> {
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
        let account_key = resolve_account_key(
            new.channel,
            Some(&new.account_key),
            &config,
            &mut violations,
        );
        violations.check(validate_display_name(&new.display_name, "display_name"));
        let is_active = new.is_active.unwrap_or(true);
        if new.is_default && !is_active {
            violations.add("is_default", "an inactive account cannot be the default");
        }
        violations.into_result()?;
        caller.require_write(division_id.as_deref())?;

        let Some(account_key) = account_key else {
            return Err(Error::Internal(
                "account key missing after validation".to_owned(),
            ));
        };
        let config_for_state = config.clone();
        let display_name = match new.display_name.trim() {
            "" => account_key.clone(),
            name => name.to_owned(),
        };
        let now = now();
        let account = Account {
            id: new_id(),
            workspace_id: caller.workspace_id.clone(),
            channel: new.channel,
            account_key,
            display_name,
            is_active,
            is_default: new.is_default,
            division_id,
            config,
            verify_token: random_token(24)?,
            revision: 1,
            created_at: now,
            updated_at: now,
            provider_state: ProviderState {
                setup_state: whatsapp::initial_setup_state(new.channel, &config_for_state),
                ..ProviderState::default()
            },
        };
        let event = AuditEvent::new(
            caller,
            RecordKind::Account,
            account.id,
            account.division_id.clone(),
            AuditAction::Create,
            account_changes(None, &account),
        );
        let stored = self.store.insert_account(account, &event).await;
        let account = self.written(stored?);
        let account = self.set_up_whatsapp(caller, account).await?;
        Ok(self.view(caller, account))
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        patch: AccountPatch,
    ) -> Result<AccountView, Error> {
        let mut redo_setup = false;
        let written = self
            .store
            .modify_account(&caller.workspace_id, id, |current| {
                ensure_writable(caller, &current)?;
                check_revision(patch.expected_revision, current.revision)?;
                let mut next = apply_patch(caller, &current, patch)?;
                redo_setup = whatsapp::setup_needed(&current, &next);
                next.provider_state.setup_state =
                    whatsapp::setup_state_after_update(&current, &next, redo_setup);
                if whatsapp::setup_inputs_changed(&current, &next) {
                    next.provider_state.setup_registered = false;
                }
                if next == current {
                    return Ok(AccountChange::Keep);
                }
                let event = account_event(
                    caller,
                    &next,
                    AuditAction::Update,
                    account_changes(Some(&current), &next),
                );
                Ok(AccountChange::Save(
                    Box::new(Account {
                        revision: current.revision + 1,
                        updated_at: now(),
                        ..next
                    }),
                    event,
                ))
            })
            .await?;
        let account = self
            .written(written)
            .ok_or_else(|| Error::Internal("updated account vanished".to_owned()))?;
        let account = if redo_setup {
            self.set_up_whatsapp(caller, account).await?
        } else {
            account
        };
        Ok(self.view(caller, account))
    }

    pub async fn delete(
        &self,
        caller: &Caller,
        id: Uuid,
        expected_revision: Option<i64>,
    ) -> Result<(), Error> {
        let written = self
            .store
            .modify_account(&caller.workspace_id, id, |current| {
                ensure_writable(caller, &current)?;
                check_revision(expected_revision, current.revision)?;
                Ok(AccountChange::Delete {
                    deleted_by: caller.subject.clone(),
                    at: now(),
                    event: account_event(
                        caller,
                        &current,
                        AuditAction::Delete,
                        vec!["deleted_at".to_owned()],
                    ),
                })
            })
            .await?;
        self.written(written);
        Ok(())
    }

    pub async fn set_default(
        &self,
        caller: &Caller,
        id: Uuid,
        expected_revision: Option<i64>,
    ) -> Result<AccountView, Error> {
        let written = self
            .store
            .modify_account(&caller.workspace_id, id, |current| {
                ensure_writable(caller, &current)?;
                check_revision(expected_revision, current.revision)?;
                if !current.is_active {
                    return Err(Error::FailedPrecondition(
                        "the account is inactive; activate it before making it the default"
                            .to_owned(),
                    ));
                }
                if current.is_default {
                    return Ok(AccountChange::Keep);
                }
                let event = account_event(
                    caller,
                    &current,
                    AuditAction::SetDefault,
                    vec!["is_default".to_owned()],
                );
                Ok(AccountChange::Save(
                    Box::new(Account {
                        is_default: true,
                        revision: current.revision + 1,
                        updated_at: now(),
                        ..current
                    }),
                    event,
                ))
            })
            .await?;
        let account = self
            .written(written)
            .ok_or_else(|| Error::Internal("default account vanished".to_owned()))?;
        Ok(self.view(caller, account))
    }

    /// The division's default when it has one, else the workspace-wide default.
    pub async fn get_default(
        &self,
        caller: &Caller,
        channel: Channel,
        division_id: Option<String>,
    ) -> Result<AccountView, Error> {
        let division = asked_division(caller, division_id)?;
        let ws = &caller.workspace_id;
        let defaults = &self.defaults;
        let found = match division.as_deref() {
            Some(division) => match defaults.scope_default(ws, channel, Some(division)).await? {
                Some(account) => Some(account),
                None => defaults.scope_default(ws, channel, None).await?,
            },
            None => defaults.scope_default(ws, channel, None).await?,
        };
        let account = found.ok_or_else(|| Error::NotFound {
            kind: RecordKind::Account,
            id: format!("default of channel {channel}"),
        })?;
        Ok(self.present(caller, account))
    }

    /// Starts a watch of the caller's defaults: of `channels` (every channel when
    /// empty), of the division asked for and the workspace-wide scopes, or of every
    /// division the caller sees when none is asked for.
    pub async fn watch_defaults(
        &self,
        caller: &Caller,
        channels: Vec<Channel>,
        division_id: Option<String>,
    ) -> Result<DefaultsWatch, Error> {
        let division_id = asked_division(caller, division_id)?;
        let filter = DefaultsFilter {
            channels,
            division_id,
        };
        // Subscribe first, then read: whatever changes in between is in the snapshot
        // and comes again as a change, which a watcher applies twice harmlessly.
        let subscription = self.defaults.subscribe(&caller.workspace_id).await?;
        let snapshot = self
            .store
            .list_default_accounts(&caller.workspace_id, &filter)
            .await?
            .into_iter()
            .map(|account| self.present(caller, shareable(account)))
            .collect();
        Ok(DefaultsWatch {
            snapshot,
            subscription,
            filter,
        })
    }

    /// The account with its secrets in clear. The reveal is audited first: no audit
    /// event, no secrets.
    pub async fn credentials(&self, caller: &Caller, id: Uuid) -> Result<Account, Error> {
        let account = self.find_visible(caller, id).await?;
        let mut revealed = audit::secret_fields(&account.config, "config");
        revealed.push("verify_token".to_owned());
        let event = account_event(caller, &account, AuditAction::RevealCredentials, revealed);
        self.store.record_audit_event(&event).await?;
        Ok(account)
    }

    async fn find_visible(&self, caller: &Caller, id: Uuid) -> Result<Account, Error> {
        match self.store.find_account(&caller.workspace_id, id).await? {
            Some(account) if caller.can_see(account.division_id.as_deref()) => Ok(account),
            _ => Err(Error::not_found(RecordKind::Account, id)),
        }
    }

    pub fn view(&self, caller: &Caller, account: Account) -> AccountView {
        self.present(caller, shareable(account))
    }

    /// The Meta app the OAuth flows act as.
    fn meta_app(&self) -> Result<&MetaApp, Error> {
        self.meta_app
            .as_ref()
            .ok_or_else(|| MetaError::NoApp.into_error("connecting the account"))
    }

    /// What `caller` is shown of an account whose config is already masked.
    pub fn present(&self, caller: &Caller, masked: Arc<Account>) -> AccountView {
        AccountView {
            webhook_url: self
                .webhooks
                .for_account(masked.channel, &masked.account_key),
            verify_token_visible: caller.sees_setup_secrets(),
            account: masked,
        }
    }
}

/// The division of a new account: the one asked for (`""`: workspace-wide), else the
/// caller's own.
fn new_account_division(
    caller: &Caller,
    asked: Option<&str>,
    violations: &mut Violations,
) -> Option<String> {
    match asked {
        None => caller.division_id.clone(),
        Some("") => None,
        Some(division) => violations
            .check(validate_division_id(division, "division_id"))
            .map(|()| division.to_owned()),
    }
}

/// The fields every OAuth connect request has.
fn check_oauth_request(code: &str, redirect_uri: &str, violations: &mut Violations) {
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

/// The division a defaults question is about: the one asked for, else the caller's own
/// (`None` for a workspace-wide caller). A division-scoped caller may ask only for its own.
fn asked_division(caller: &Caller, asked: Option<String>) -> Result<Option<String>, Error> {
    match (asked, &caller.division_id) {
        (None, mine) => Ok(mine.clone()),
        (Some(asked), Some(mine)) if &asked != mine => Err(Error::PermissionDenied(
            "caller is restricted to its division and may not ask for another".to_owned(),
        )),
        (Some(asked), _) => {
            validate_division_id(&asked, "division_id")
                .map_err(|v| Error::InvalidArgument(vec![v]))?;
            Ok(Some(asked))
        }
    }
}

fn account_event(
    caller: &Caller,
    account: &Account,
    action: AuditAction,
    fields: Vec<String>,
) -> AuditEvent {
    AuditEvent::new(
        caller,
        RecordKind::Account,
        account.id,
        account.division_id.clone(),
        action,
        fields,
    )
}

/// A record the caller cannot see does not exist for it; one it sees but may not write
/// (a workspace-wide account, for a division admin) is forbidden.
fn ensure_writable(caller: &Caller, account: &Account) -> Result<(), Error> {
    if !caller.can_see(account.division_id.as_deref()) {
        return Err(Error::not_found(RecordKind::Account, account.id));
    }
    caller.require_write(account.division_id.as_deref())
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
                    next.provider_state.reauthorization_required = false;
                }
            }
            Err(config_violations) => violations.extend(config_violations),
        }
    }
    if let Some(name) = &patch.display_name {
        if violations
            .check(validate_display_name(name, "display_name"))
            .is_some()
        {
            next.display_name = match name.trim() {
                "" => next.account_key.clone(),
                name => name.to_owned(),
            };
        }
    }
    if let Some(division) = &patch.division_id {
        next.division_id = match division.as_str() {
            "" => None,
            division => violations
                .check(validate_division_id(division, "division_id"))
                .map(|()| division.to_owned()),
        };
    }
    if patch.account_key.is_some() || patch.config.is_some() {
        // On WhatsApp the key follows the phone number id; elsewhere it stays unless given.
        let requested = match current.channel {
            Channel::Whatsapp => patch.account_key.as_deref(),
            _ => patch.account_key.as_deref().or(Some(&current.account_key)),
        };
        let key = resolve_account_key(current.channel, requested, &next.config, &mut violations);
        if let Some(key) = key {
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
