//! Account operations, one per `AccountService` RPC: read the account, let a rule of
//! `domain::account` decide, write what it decided, report default changes, call Meta
//! where the RPC does. This file holds what every operation shares; the RPCs are in
//! the files beside it:
//!
//! - `records`: list, get, create, update, delete, set default, reveal credentials;
//! - `defaults`: the default of a scope, and watches of them;
//! - `setup`: the WhatsApp Cloud set-up at Meta and the number's health;
//! - `signup`, `instagram`, `messenger`: the OAuth flows that connect accounts;
//! - `token_refresh`: the background task that keeps Instagram tokens alive.

mod coexistence;
pub mod defaults;
pub mod events;
pub mod fallbacks;
mod health_counts;
pub mod health_round;
pub mod instagram;
pub mod messenger;
pub mod number_health;
mod ownership;
pub mod records;
mod release;
mod round_place;
mod round_walk;
mod rounds;
pub mod setup;
pub mod signup;
pub mod token_checks;
pub mod token_refresh;

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::account::{self, Connected, StateChange};
use crate::domain::config_document::MASK_PREFIX;
use crate::domain::ids::now;
use crate::domain::{Account, Caller, Channel, Error, RecordKind, WebhookUrls};
use crate::meta::{GraphClient, MetaApp, MetaError, MetaSettings};
use crate::store::Store;
use crate::store::accounts::Written;
use crate::views::changes::{Change, Changes};
use crate::views::defaults::Followers;
use crate::views::defaults::{DefaultAccounts, shareable};
use crate::views::events::tail::EventTails;

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

/// The account operations and what they need: the store, the default-account fast
/// path, the Graph client and the Meta app.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    webhooks: WebhookUrls,
    defaults: DefaultAccounts,
    /// Each watched workspace's one reader of the event log.
    tails: EventTails,
    /// Where this replica's committed writes go: every view.
    changes: Changes,
    graph: GraphClient,
    /// The Meta app of the OAuth flows; `None` makes them FAILED_PRECONDITION.
    meta_app: Option<MetaApp>,
    /// The Instagram app of Instagram Login; `None` makes ConnectInstagram
    /// FAILED_PRECONDITION.
    instagram_app: Option<MetaApp>,
    /// The payload of the Get Started button a persistent menu brings to a page
    /// that has none.
    get_started_payload: String,
}

impl Accounts {
    pub fn new(
        store: Store,
        webhooks: WebhookUrls,
        defaults: DefaultAccounts,
        followers: Followers,
        graph: GraphClient,
        meta: &MetaSettings,
    ) -> Self {
        Self {
            tails: EventTails::new(store.clone(), followers.events.clone()),
            changes: Changes::new(
                defaults.clone(),
                followers.routes.clone(),
                followers.events.clone(),
            ),
            store,
            webhooks,
            defaults,
            graph,
            meta_app: meta.app.clone(),
            instagram_app: meta.instagram_app.clone(),
            get_started_payload: meta.messenger_get_started_payload.clone(),
        }
    }

    /// Reports a committed write's default change (see `defaults`) and routing change
    /// (see `routes`), and passes on what it stored.
    async fn written<T>(&self, written: Written<T>) -> T {
        if let Some(changed) = &written.defaults {
            self.changes.apply(Change::Defaults(changed)).await;
        }
        if let Some(recorded) = &written.events {
            self.changes.apply(Change::Events(recorded)).await;
        }
        if let Some(id) = written.routes {
            self.changes.apply(Change::Routes(id)).await;
        }
        written.value
    }

    /// The account, when the caller may see it; NOT_FOUND otherwise.
    async fn find_visible(&self, caller: &Caller, id: Uuid) -> Result<Account, Error> {
        match self
            .store
            .accounts()
            .find_account(caller.workspace_id(), id)
            .await?
        {
            Some(account) if caller.can_see(account.division_id.as_deref()) => Ok(account),
            _ => Err(Error::not_found(RecordKind::Account, id)),
        }
    }

    /// Refuses, before anything is asked of Meta, a connect of an account (keyed `key`,
    /// or naming `provider_id`) that an account the caller may not write holds: another
    /// division's, or a workspace-wide one for a division caller. ALREADY_EXISTS on
    /// `field`, naming no account; nothing of the holder is opened.
    async fn ensure_not_in_another_division(
        &self,
        caller: &Caller,
        channel: Channel,
        key: &str,
        provider_id: Option<&str>,
        field: &'static str,
    ) -> Result<(), Error> {
        let holders = self
            .store
            .accounts()
            .divisions_holding(caller.workspace_id(), channel, key, provider_id)
            .await?;
        if holders
            .iter()
            .any(|division| !caller.can_write(division.as_deref()))
        {
            return Err(Error::AlreadyExists {
                kind: RecordKind::Account,
                field,
                message: format!(
                    "{} is connected in another division (or workspace-wide)",
                    provider_id.unwrap_or(key)
                ),
            });
        }
        Ok(())
    }

    pub fn view(&self, caller: &Caller, account: Account) -> AccountView {
        self.present(caller, shareable(account))
    }

    /// What `caller` is shown of an account whose config is already masked.
    pub fn present(&self, caller: &Caller, masked: Arc<Account>) -> AccountView {
        self.present_as(masked, caller.sees_setup_secrets())
    }

    /// `present` for a caller who does (or does not) see setup secrets.
    pub fn present_as(&self, masked: Arc<Account>, verify_token_visible: bool) -> AccountView {
        AccountView {
            webhook_url: self.webhook_url(&masked),
            verify_token_visible,
            account: masked,
        }
    }

    fn webhook_url(&self, account: &Account) -> String {
        self.webhooks
            .for_account(account.channel, account.webhook_route)
    }

    /// Meta's words about `account` (an error, a reason) without any secret of the
    /// account or of the Meta app: what may be logged, stored or shown.
    fn meta_words(&self, account: &Account, words: &dyn std::fmt::Display) -> String {
        use secrecy::ExposeSecret;
        let mut secrets = crate::domain::scrub::secret_strings(&account.config);
        secrets.push(account.verify_token.clone());
        for app in [&self.meta_app, &self.instagram_app].into_iter().flatten() {
            secrets.push(app.secret.expose_secret().to_owned());
        }
        crate::domain::scrub::scrub(&words.to_string(), &secrets)
    }

    /// The Meta app the OAuth flows act as.
    fn meta_app(&self) -> Result<&MetaApp, Error> {
        self.meta_app
            .as_ref()
            .ok_or_else(|| MetaError::NoApp.into_error("connecting the account"))
    }

    /// Records what Meta's webhook said about the health of `account` (routed to it by
    /// RouteWebhook), acting as Patchbay itself; a word that changes nothing writes
    /// nothing.
    pub async fn record_meta_health(
        &self,
        workspace_id: &str,
        account_id: Uuid,
        words: Vec<crate::domain::account::meta_health::Word>,
    ) -> Result<(), Error> {
        let caller = system_caller(workspace_id, "meta-webhook");
        self.record_state(&caller, account_id, StateChange::MetaSaid { words })
            .await
            .map(drop)
    }

    /// Records what Meta just said about account `id`, applied to the account as it is
    /// under the write lock. Returns the account as stored.
    async fn record_state(
        &self,
        caller: &Caller,
        id: Uuid,
        change: StateChange,
    ) -> Result<Account, Error> {
        let written = self
            .store
            .accounts()
            .modify_account(caller.workspace_id(), id, |current| {
                Ok(account::record_state(caller, &current, change, now()))
            })
            .await?;
        Ok(self.written(written).await.record())
    }

    /// Saves a connected account: updates the live account with the same key (a new
    /// token re-authorises it), or creates it. A Messenger or Instagram connect takes
    /// the page or account Meta named (`ownership`): its former owner, if any, is LOST.
    async fn save_connected(
        &self,
        caller: &Caller,
        connected: Connected,
    ) -> Result<Account, Error> {
        let existing = self
            .store
            .accounts()
            .find_account_by_key(
                caller.workspace_id(),
                connected.channel,
                &connected.account_key,
            )
            .await?;
        let taken = match connected.channel {
            Channel::Messenger | Channel::Instagram => {
                account::provider_id(connected.channel, &connected.config).map(str::to_owned)
            }
            _ => None,
        };
        // Whether the caller may write it, before any former owner is made LOST.
        match &existing {
            Some(existing) => account::ensure_writable(caller, existing)?,
            None => caller.require_write(connected.division_id.as_deref())?,
        }
        let taker = existing.as_ref().map(|existing| existing.id);
        self.take_then(connected.channel, taken.as_deref(), taker, || {
            self.write_connected(caller, existing.as_ref(), connected.clone())
        })
        .await
    }

    async fn write_connected(
        &self,
        caller: &Caller,
        existing: Option<&Account>,
        connected: Connected,
    ) -> Result<Account, Error> {
        let ws = caller.workspace_id();
        if let Some(existing) = existing {
            let written = self
                .store
                .accounts()
                .modify_account(ws, existing.id, |current| {
                    account::reconnect(caller, &current, connected, now())
                })
                .await?;
            return Ok(self.written(written).await.record());
        }
        caller.require_write(connected.division_id.as_deref())?;
        let scope_has_default = self
            .store
            .accounts()
            .find_default_account(ws, connected.channel, connected.division_id.as_deref())
            .await?
            .is_some();
        let (account, event) =
            account::connected_account(caller, connected, scope_has_default, now())?;
        match self.store.accounts().insert_account(account, &event).await {
            Ok(written) => Ok(self.written(written).await),
            // The key taken since the read: a concurrent connect. (A provider id owned
            // by another account is ALREADY_EXISTS as it is.)
            Err(Error::AlreadyExists {
                field: "account_key",
                ..
            }) => Err(Error::Aborted(
                "the same account was connected concurrently; retry".to_owned(),
            )),
            Err(err) => Err(err),
        }
    }
}

/// What a Meta set-up outcome records on the account.
/// `reason` is Meta's words, scrubbed (see `Accounts::meta_words`).
/// Background work acts as Patchbay itself, recorded as such in audit events.
fn system_caller(workspace_id: &str, task: &str) -> Caller {
    Caller {
        subject: format!("patchbay:{task}"),
        role: crate::domain::Role::Admin,
        scope: crate::domain::caller::Scope::Workspace {
            id: workspace_id.to_owned(),
            division: None,
        },
        request_id: format!("{task}-{}", crate::domain::ids::new_id()),
        idempotency: None,
        place: None,
    }
}
