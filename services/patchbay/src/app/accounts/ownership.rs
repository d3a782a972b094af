//! Meta's word on who owns a provider id (the rules: `domain::account::ownership`).
//!
//! - After each write of an account, at start-up and in each token-check round, an
//!   UNCONFIRMED account is confirmed when Meta vouches for its token for its id and
//!   nobody owns the id (`confirm_ownership`). Meta not answering, or not vouching,
//!   leaves the account as it is: the write it follows never fails for it.
//! - A flow that takes an id (a connect of a page or Instagram account, a set-up whose
//!   number callback Meta accepted) first makes the id's confirmed owner LOST, then
//!   writes the taker CONFIRMED (`take_then`).

use std::future::Future;

use uuid::Uuid;

use super::{Accounts, system_caller};
use crate::domain::account::ownership::{DebugTokenWord, claim_key, debug_token_word};
use crate::domain::account::tokens::{CHECKED_CHANNELS, is_instagram_login, meta_token};
use crate::domain::account::{Ownership, StateChange, provider_id, provider_id_field};
use crate::domain::{Account, Caller, Channel, Error};
use crate::meta::tokens::TokenInfo;
use crate::meta::{Failure, MetaError};

/// Accounts read per page of the start-up pass.
const PAGE: u64 = 200;
/// Meta failing this many accounts in a row ends the start-up pass (the token-check
/// rounds ask again).
const MAX_OUTAGES_IN_A_ROW: usize = 5;

impl Accounts {
    /// Confirms `account`'s ownership of its id when Meta vouches for its token and
    /// nobody owns the id; otherwise returns it as it was. Never an error: Meta's
    /// silence or absence is logged, and asked about again later.
    pub(super) async fn confirm_ownership(&self, caller: &Caller, account: Account) -> Account {
        let Some(key) = unconfirmed_key(&account) else {
            return account;
        };
        match self.meta_vouches(&account).await {
            Ok(true) => self.record_vouched(caller, account, &key).await,
            Ok(false) => account,
            Err(err) => {
                let words = self.meta_words(&account, &err);
                tracing::info!(account_id = %account.id, error = %words, "Meta could not vouch for the account's provider id now; asking again later");
                account
            }
        }
    }

    /// Whether Meta vouches for an UNCONFIRMED account's token for its id: Instagram's
    /// `/me` for an Instagram Login token, debug_token for any other (with our app).
    async fn meta_vouches(&self, account: &Account) -> Result<bool, MetaError> {
        let Some(id) = unconfirmed_id(account) else {
            return Ok(false);
        };
        let Some(token) = meta_token(account) else {
            return Ok(false);
        };
        if is_instagram_login(account) {
            let profile = self.graph.instagram().instagram_profile(token).await?;
            return Ok(profile.user_id.as_deref() == Some(id));
        }
        let Some(app) = &self.meta_app else {
            return Ok(false);
        };
        let info = self.graph.debug_token(app, token).await?;
        self.vouched_by(account, &info).await
    }

    /// Whether debug_token's answer about the account's token vouches for its id: a
    /// number's WABA named under `whatsapp_business_messaging` vouches once the WABA's
    /// numbers, read with the account's token, list the number.
    pub(super) async fn vouched_by(
        &self,
        account: &Account,
        info: &TokenInfo,
    ) -> Result<bool, MetaError> {
        let Some(id) = unconfirmed_id(account) else {
            return Ok(false);
        };
        if !info.is_valid {
            return Ok(false);
        }
        match debug_token_word(account, info.profile_id.as_deref(), |scope| {
            info.targets(scope)
        }) {
            DebugTokenWord::Vouches => Ok(true),
            DebugTokenWord::Silent => Ok(false),
            DebugTokenWord::IfWabaLists => {
                let numbers = self
                    .graph
                    .whatsapp()
                    .waba_numbers(&super::setup::number(account))
                    .await?;
                Ok(numbers.iter().any(|number| number.id == id))
            }
        }
    }

    /// Records Meta's vouching for `vouched_id` (the `claim_key` Meta was asked about,
    /// never the account's as it is by now): CONFIRMED, when the account still names
    /// it and nobody else owns the id; otherwise the account stays as it was.
    pub(super) async fn record_vouched(
        &self,
        caller: &Caller,
        account: Account,
        vouched_id: &str,
    ) -> Account {
        let change = StateChange::OwnershipVouched {
            provider_id: vouched_id.to_owned(),
        };
        match self.record_state(caller, account.id, change).await {
            Ok(stored) => stored,
            Err(err) if is_owned_elsewhere(&err, account.channel) => account,
            Err(err) => {
                tracing::warn!(account_id = %account.id, error = %err, "Meta vouched for the account's provider id, but it could not be recorded; asking again later");
                account
            }
        }
    }

    /// Runs `write`, a write that takes `channel`'s `id` for account `taker` (`None`:
    /// an account not created yet), after making the id's confirmed owner LOST. When
    /// another taking wins the race in between, once more.
    pub(super) async fn take_then<T, F, Fut>(
        &self,
        channel: Channel,
        id: Option<&str>,
        taker: Option<Uuid>,
        write: F,
    ) -> Result<T, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let Some(id) = id else {
            return write().await;
        };
        self.oust(channel, id, taker).await?;
        match write().await {
            Err(err) if is_owned_elsewhere(&err, channel) => {
                self.oust(channel, id, taker).await?;
                write().await
            }
            other => other,
        }
    }

    /// Makes every confirmed owner of `channel`'s `id` but `taker` LOST, each in a
    /// write of its own workspace (its revision, audit event and OWNERSHIP_LOST event).
    async fn oust(&self, channel: Channel, id: &str, taker: Option<Uuid>) -> Result<(), Error> {
        for (workspace_id, holder) in self.store.accounts().confirmed_owners(channel, id).await? {
            if Some(holder) == taker {
                continue;
            }
            let caller = system_caller(&workspace_id, "ownership");
            let change = StateChange::OwnershipLost {
                provider_id: id.to_owned(),
            };
            match self.record_state(&caller, holder, change).await {
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
            tracing::info!(account_id = %holder, "another account took the account's provider id: ownership lost");
        }
        Ok(())
    }

    /// Runs the start-up pass, unless another replica runs it or began it within the
    /// last minute (the `ownership_confirmations` lease): replicas starting together
    /// ask Meta once; a later start asks again about the accounts still unconfirmed.
    /// Then idles.
    pub async fn run_confirmation_pass(self, holder: String) {
        let store = self.store.clone();
        let guard = std::time::Duration::from_secs(60);
        super::rounds::once_then_idle(
            &store,
            "ownership_confirmations",
            &holder,
            guard,
            || async {
                match self.confirmation_pass().await {
                    Ok(confirmed) => tracing::info!(confirmed, "ownership confirmation pass done"),
                    Err(err) => tracing::warn!(error = %err, "ownership confirmation pass stopped"),
                }
            },
        )
        .await;
    }

    /// The start-up pass: every UNCONFIRMED account with a Meta token is asked about,
    /// so that routing returns within minutes of an upgrade that unconfirmed them.
    /// Returns how many were confirmed.
    pub async fn confirmation_pass(&self) -> Result<usize, Error> {
        let mut confirmed = 0;
        let mut outages_in_a_row = 0;
        let mut after = None;
        loop {
            let page = self
                .store
                .accounts()
                .accounts_of_channels(&CHECKED_CHANNELS, after, PAGE)
                .await?;
            let Some(last) = page.last() else {
                return Ok(confirmed);
            };
            after = Some(last.id);
            for account in page {
                if unconfirmed_id(&account).is_none() || meta_token(&account).is_none() {
                    continue;
                }
                match self.meta_vouches(&account).await {
                    Ok(vouched) => {
                        outages_in_a_row = 0;
                        if let (true, Some(key)) = (vouched, unconfirmed_key(&account)) {
                            let caller = system_caller(&account.workspace_id, "ownership");
                            let stored = self.record_vouched(&caller, account, &key).await;
                            if stored.provider_state.ownership == Ownership::Confirmed {
                                confirmed += 1;
                            }
                        }
                    }
                    // Meta down, or our app refused: the rounds ask again.
                    Err(err) if err.failure() != Failure::Configuration => {
                        outages_in_a_row += 1;
                        if outages_in_a_row >= MAX_OUTAGES_IN_A_ROW {
                            return Err(Error::Unavailable(format!(
                                "{outages_in_a_row} ownership checks failed in a row; the token-check rounds ask again"
                            )));
                        }
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

/// The id of an account whose ownership is UNCONFIRMED (a LOST one is confirmed again
/// only by a taking; a CONFIRMED one needs nothing).
fn unconfirmed_id(account: &Account) -> Option<&str> {
    if account.provider_state.ownership != Ownership::Unconfirmed {
        return None;
    }
    provider_id(account.channel, &account.config)
}

/// The `claim_key` of an UNCONFIRMED account: what Meta is asked about.
pub(super) fn unconfirmed_key(account: &Account) -> Option<String> {
    unconfirmed_id(account)?;
    claim_key(account)
}

/// The store refused a confirmation: another account owns the id.
fn is_owned_elsewhere(err: &Error, channel: Channel) -> bool {
    matches!(err, Error::AlreadyExists { field, .. } if *field == provider_id_field(channel))
}
