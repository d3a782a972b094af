//! Messenger: Facebook Login (user token and pages), page subscriptions, and the
//! persistent menu.
//!
//! The long-lived user token ConnectMessenger obtains is handed back to the caller only
//! sealed with Patchbay's active key and bound to the workspace and an expiry: the
//! caller passes it to SubscribeMessengerPages, and no Meta token ever reaches it. A
//! workspace cannot open another workspace's handle.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::Accounts;
use crate::domain::account::messenger::{
    PAGE_ACCESS_TOKEN, check_page_ids, handle_context, handle_payload, page_config, token_of_handle,
};
use crate::domain::account::{
    Connected, StateChange, TokenSource, check_oauth_request, new_account_division,
};
use crate::domain::ids::now;
use crate::domain::persistent_menu::{self, Menu};
use crate::domain::{Account, Caller, Channel, Error, FieldViolation, RecordKind, Violations};
use crate::meta::MetaError;
use crate::meta::messenger::FacebookPage;

/// Pages connected at once by one call.
const PAGES_AT_ONCE: usize = 8;

/// What ConnectMessenger found.
pub struct MessengerConnected {
    /// The sealed user token handle.
    pub user_token: String,
    pub pages: Vec<FacebookPage>,
}

/// What happened to one page of SubscribeMessengerPages.
pub struct PageResult {
    pub page_id: String,
    pub outcome: Result<Account, Error>,
}

impl Accounts {
    pub async fn connect_messenger(
        &self,
        caller: &Caller,
        code: &str,
        redirect_uri: &str,
    ) -> Result<MessengerConnected, Error> {
        let mut violations = Violations::new();
        check_oauth_request(code, redirect_uri, &mut violations);
        violations.into_result()?;
        caller.require_write(caller.division_id())?;
        let app = self.meta_app()?;

        let short = self
            .graph
            .messenger()
            .facebook_code_for_token(app, code.trim(), redirect_uri)
            .await
            .map_err(|err| err.into_exchange_error("code", "exchanging the Facebook Login code"))?;
        let long = self
            .graph
            .messenger()
            .facebook_long_lived(app, &short)
            .await
            .map_err(|err| err.into_error("exchanging for a long-lived user token"))?;
        let pages = self
            .graph
            .messenger()
            .user_pages(&long.token)
            .await
            .map_err(|err| err.into_error("listing the user's Facebook Pages"))?;
        Ok(MessengerConnected {
            user_token: self.seal_user_token(caller, &long.token)?,
            pages,
        })
    }

    /// Connects each page on its own: one page failing leaves the others connected.
    pub async fn subscribe_messenger_pages(
        &self,
        caller: &Caller,
        user_token: &str,
        page_ids: &[String],
        division_id: Option<String>,
    ) -> Result<Vec<PageResult>, Error> {
        let mut violations = Violations::new();
        let token = violations.checked(
            self.open_user_token(caller, user_token)
                .map_err(|reason| FieldViolation::new("user_token", reason)),
        );
        check_page_ids(page_ids, &mut violations);
        let division_id = new_account_division(caller, division_id.as_deref(), &mut violations);
        let token = violations.finish(token)?;
        caller.require_write(division_id.as_deref())?;

        // Pages connect in parallel (a few at a time), each on a task of its own: a call
        // whose deadline passes, or whose client goes away, leaves the pages under way
        // to finish by themselves, and a replay of its key finds them connected.
        let slots = Arc::new(Semaphore::new(PAGES_AT_ONCE));
        let tasks: Vec<_> = page_ids
            .iter()
            .map(|page_id| {
                let (accounts, caller, token) = (self.clone(), caller.clone(), token.clone());
                let (page_id, division_id, slots) =
                    (page_id.clone(), division_id.clone(), slots.clone());
                tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    let outcome = match accounts.connected_since_first_try(&caller, &page_id).await
                    {
                        Ok(Some(done)) => Ok(done),
                        Ok(None) => {
                            accounts
                                .connect_page(&caller, &token, &page_id, division_id)
                                .await
                        }
                        Err(err) => Err(err),
                    };
                    if let Err(err) = &outcome {
                        tracing::info!(page_id, error = %err, "Messenger page not connected");
                    }
                    PageResult { page_id, outcome }
                })
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for (task, page_id) in tasks.into_iter().zip(page_ids) {
            results.push(task.await.unwrap_or_else(|err| PageResult {
                page_id: page_id.clone(),
                outcome: Err(Error::Internal(format!("page task failed: {err}"))),
            }));
        }
        Ok(results)
    }

    /// For a call that resumes one cut off: the page's account when the first call (or
    /// its tasks, which go on by themselves) connected it already, so that it is not
    /// fetched and subscribed again.
    async fn connected_since_first_try(
        &self,
        caller: &Caller,
        page_id: &str,
    ) -> Result<Option<Account>, Error> {
        let Some(since) = caller
            .idempotency
            .as_ref()
            .filter(|claim| claim.resumed)
            .map(|claim| claim.created_at)
        else {
            return Ok(None);
        };
        let found = self
            .store
            .accounts()
            .find_account_by_key(caller.workspace_id(), Channel::Messenger, page_id)
            .await?;
        match found {
            // Read as GetAccount reads it: another division's page is not found, and
            // names no account.
            Some(account) if !caller.can_see(account.division_id.as_deref()) => {
                Err(Error::NotFound {
                    kind: RecordKind::Account,
                    id: format!("of page {page_id}"),
                })
            }
            found => Ok(found.filter(|account| account.updated_at >= since)),
        }
    }

    async fn connect_page(
        &self,
        caller: &Caller,
        user_token: &str,
        page_id: &str,
        division_id: Option<String>,
    ) -> Result<Account, Error> {
        self.ensure_not_in_another_division(
            caller,
            Channel::Messenger,
            page_id,
            Some(page_id),
            "page_ids",
        )
        .await?;
        let page = self
            .graph
            .messenger()
            .page_with_token(user_token, page_id)
            .await
            .map_err(|err| err.into_error("fetching the page token"))?;
        if page.access_token.is_empty() {
            return Err(Error::FailedPrecondition(
                "Meta gave no page token: the user does not manage this page, or did not grant pages_messaging".to_owned(),
            ));
        }
        self.graph
            .messenger()
            .subscribe_page(page_id, &page.access_token)
            .await
            .map_err(|err| err.into_error("subscribing the page to messaging webhooks"))?;
        self.save_connected(
            caller,
            Connected {
                channel: Channel::Messenger,
                account_key: page_id.to_owned(),
                display_name: Some(page.name.clone()).filter(|name| !name.is_empty()),
                division_id,
                config: page_config(page_id, &page.name, &page.access_token),
                // Page tokens from a long-lived user token do not expire.
                token_expires_at: None,
                token_source: TokenSource::FacebookLogin,
                coexistence: None,
            },
        )
        .await
    }

    /// Sets (`Some`) or deletes (`None`) a Messenger account's persistent menu.
    pub async fn set_persistent_menu(
        &self,
        caller: &Caller,
        id: Uuid,
        menu: Option<Vec<Menu>>,
    ) -> Result<(), Error> {
        if let Some(menus) = &menu {
            let mut violations = Violations::new();
            persistent_menu::validate(menus, &mut violations);
            violations.into_result()?;
        }
        let account = self.find_visible(caller, id).await?;
        caller.require_write(account.division_id.as_deref())?;
        if account.channel != Channel::Messenger {
            return Err(Error::FailedPrecondition(format!(
                "account {id} is on channel {}, not messenger",
                account.channel
            )));
        }
        let token = account
            .config
            .get(PAGE_ACCESS_TOKEN)
            .and_then(Value::as_str)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "account {id} has no page_access_token; connect the page first"
            )));
        }
        let result = match &menu {
            Some(menus) => self.set_menu_with_get_started(token, menus).await,
            None => self.graph.messenger().delete_persistent_menu(token).await,
        };
        match result {
            Ok(()) => Ok(()),
            Err(err) => {
                if err.is_invalid_token() {
                    let change = StateChange::TokenRejected {
                        reason: self.meta_words(&account, &err),
                        token: Some(token.to_owned()),
                    };
                    self.record_state(caller, account.id, change).await?;
                }
                Err(err.into_error("setting the persistent menu"))
            }
        }
    }

    /// Sets the menu, bringing a Get Started button when the page has none (an
    /// existing one is never replaced nor removed).
    async fn set_menu_with_get_started(
        &self,
        token: &str,
        menus: &[Menu],
    ) -> Result<(), MetaError> {
        let has_get_started = self
            .graph
            .messenger()
            .has_get_started(token)
            .await
            .map_err(|err| err.during("reading the page's Get Started button"))?;
        let get_started = (!has_get_started).then_some(self.get_started_payload.as_str());
        self.graph
            .messenger()
            .set_persistent_menu(token, menus, get_started)
            .await
    }

    fn seal_user_token(&self, caller: &Caller, token: &str) -> Result<String, Error> {
        let payload = handle_payload(token, now().timestamp());
        self.store
            .keys()
            .seal(&handle_context(caller.workspace_id()), &payload)
            .map_err(|err| Error::Internal(format!("cannot seal the user token: {err}")))
    }

    /// The Meta token inside a handle, or why the handle is refused.
    fn open_user_token(&self, caller: &Caller, handle: &str) -> Result<String, &'static str> {
        if handle.is_empty() {
            return Err("is required (ConnectMessengerResponse.user_token)");
        }
        let payload = self
            .store
            .keys()
            .open(&handle_context(caller.workspace_id()), handle)
            .map_err(|_| "is not a user token ConnectMessenger gave this workspace")?;
        token_of_handle(&payload, now().timestamp())
    }
}
