//! The account records themselves: list, get, create, update, delete, set default,
//! reveal credentials.

use uuid::Uuid;

use super::{AccountView, Accounts};
use crate::domain::account::{self, Updated};
use crate::domain::audit::{self, AuditAction};
use crate::domain::change::{Change, Target, event};
use crate::domain::ids::now;
use crate::domain::pages::{Page, PageRequest};
use crate::domain::{Account, AccountPatch, Caller, Channel, Error, NewAccount, SetupState};
use crate::store::accounts::AccountFilter;

impl Accounts {
    pub async fn list(
        &self,
        caller: &Caller,
        channel: Option<Channel>,
        page: PageRequest,
    ) -> Result<Page<AccountView>, Error> {
        let accounts = self
            .store
            .accounts()
            .list_accounts(&AccountFilter {
                workspace_id: caller.workspace_id(),
                channel,
                caller_division: caller.division_id(),
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
        let account = if account.provider_state.setup_state == SetupState::Pending {
            caller.require_write(account.division_id.as_deref())?;
            self.set_up(caller, account).await?
        } else {
            account
        };
        Ok(self.view(caller, account))
    }

    pub async fn create(&self, caller: &Caller, new: NewAccount) -> Result<AccountView, Error> {
        let (account, event) = account::create(caller, new, now())?;
        let stored = self.store.accounts().insert_account(account, &event).await;
        let account = self.written(stored?).await;
        let account = self.set_up(caller, account).await?;
        // Right after the write: the call never fails because Meta could not vouch.
        let account = self.confirm_ownership(caller, account).await;
        Ok(self.view(caller, account))
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        patch: AccountPatch,
    ) -> Result<AccountView, Error> {
        let mut run_setup = false;
        let mut config_changed = false;
        // The account as it was, when the update gives it another provider id: its old
        // callback at Meta is removed, as a delete's is.
        let mut left_behind = None;
        let written = self
            .store
            .accounts()
            .modify_account(caller.workspace_id(), id, |current| {
                let updated: Updated = account::update(caller, &current, patch, now())?;
                run_setup = updated.run_setup;
                // Only a new token, id or WABA is a new question for Meta: an update of
                // anything else asks nothing (each ask spends the app's rate limit).
                config_changed = matches!(&updated.change, Change::Save(next, _)
                    if account::tokens::meta_token(next) != account::tokens::meta_token(&current)
                        || account::provider_id(next.channel, &next.config)
                            != account::provider_id(current.channel, &current.config)
                        || next.config.get(account::whatsapp::WABA_ID)
                            != current.config.get(account::whatsapp::WABA_ID));
                if let Change::Save(next, _) = &updated.change
                    && account::provider_id(next.channel, &next.config)
                        != account::provider_id(current.channel, &current.config)
                    && account::provider_id(current.channel, &current.config).is_some()
                {
                    left_behind = Some(current.clone());
                }
                Ok(updated.change)
            })
            .await?;
        let account = self.written(written).await.record();
        if let Some(old) = left_behind
            && let Some(outcome) = self.release_at_provider(&old).await
        {
            tracing::info!(account_id = %old.id, outcome = %outcome, "the account's former provider id released at Meta");
        }
        let account = if run_setup {
            self.set_up(caller, account).await?
        } else {
            account
        };
        let account = if config_changed {
            self.confirm_ownership(caller, account).await
        } else {
            account
        };
        Ok(self.view(caller, account))
    }

    pub async fn delete(
        &self,
        caller: &Caller,
        Target {
            id,
            expected_revision,
        }: Target,
    ) -> Result<(), Error> {
        // Whether the caller may delete it, before anything is asked of Meta. A record
        // that cannot be read (its secrets sealed with a key no longer held) has no token
        // to act with: the delete alone decides what it answers.
        let released = match self.find_visible(caller, id).await {
            Ok(current) => {
                account::delete(caller, &current, expected_revision, now(), None)?;
                self.release_at_provider(&current).await
            }
            Err(_) => None,
        };
        let written = self
            .store
            .accounts()
            .modify_account(caller.workspace_id(), id, |current| {
                account::delete(caller, &current, expected_revision, now(), released)
            })
            .await?;
        self.written(written).await;
        Ok(())
    }

    pub async fn set_default(
        &self,
        caller: &Caller,
        Target {
            id,
            expected_revision,
        }: Target,
    ) -> Result<AccountView, Error> {
        let written = self
            .store
            .accounts()
            .modify_account(caller.workspace_id(), id, |current| {
                account::set_default(caller, &current, expected_revision, now())
            })
            .await?;
        let account = self.written(written).await.record();
        Ok(self.view(caller, account))
    }

    /// The account with its secrets in clear. The reveal is audited first: no audit
    /// event, no secrets.
    pub async fn credentials(&self, caller: &Caller, id: Uuid) -> Result<Account, Error> {
        let account = self.find_visible(caller, id).await?;
        let mut revealed = audit::secret_fields(&account.config, "config");
        revealed.push("verify_token".to_owned());
        let event = event(caller, &account, AuditAction::RevealCredentials, revealed);
        self.store.audit().record_audit_event(&event).await?;
        Ok(account)
    }
}
