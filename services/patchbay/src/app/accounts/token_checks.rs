//! The background task that asks Meta about every Meta token (debug_token): validity,
//! expiry, data-access expiry and scopes, recorded on the account. Only Meta calling
//! the token invalid (or a credential answer) flags `reauthorization_required`; an
//! outage or a fault of configuration is logged and the token is asked about again
//! next round. One replica runs each round (the `token_checks` lease), and one
//! failing account never stops it.

use std::time::Duration;

use super::{Accounts, system_caller};
use crate::domain::account::StateChange;
use crate::domain::account::tokens::{CHECKED_CHANNELS, meta_token, missing_scopes};
use crate::domain::support::now;
use crate::domain::{Account, Error};
use crate::meta::{Failure, MetaApp};

/// Accounts read per page of a round.
const PAGE: u64 = 200;

pub struct TokenChecker {
    accounts: Accounts,
    app: MetaApp,
    every: Duration,
    /// The expiry-warning thresholds, in days.
    thresholds: Vec<u32>,
    holder: String,
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub checked: usize,
    pub flagged: usize,
    pub failed: usize,
}

impl TokenChecker {
    pub fn new(
        accounts: Accounts,
        app: MetaApp,
        every: Duration,
        thresholds: Vec<u32>,
        holder: String,
    ) -> Self {
        Self {
            accounts,
            app,
            every,
            thresholds,
            holder,
        }
    }

    /// Runs until the process ends: a round now, then one every interval, each on the
    /// replica that takes its lease.
    pub async fn run(self) {
        let mut interval = tokio::time::interval(self.every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let store = &self.accounts.store;
            match store
                .try_take_round("token_checks", &self.holder, self.every, now())
                .await
            {
                Ok(true) => match self.round().await {
                    Ok(round) => tracing::info!(
                        checked = round.checked,
                        flagged = round.flagged,
                        failed = round.failed,
                        "token check round done"
                    ),
                    Err(err) => tracing::warn!(error = %err, "token check round stopped"),
                },
                Ok(false) => tracing::debug!("another replica runs this token check round"),
                Err(err) => tracing::warn!(error = %err, "cannot take the token check round"),
            }
        }
    }

    /// Every live Meta account with a token, a page at a time.
    pub async fn round(&self) -> Result<Round, Error> {
        let mut round = Round::default();
        let mut after = None;
        loop {
            let page = self
                .accounts
                .store
                .accounts_of_channels(&CHECKED_CHANNELS, after, PAGE)
                .await?;
            let Some(last) = page.last() else {
                return Ok(round);
            };
            after = Some(last.id);
            for account in page {
                let id = account.id;
                match self.check(account).await {
                    Ok(Some(true)) => {
                        round.checked += 1;
                        round.flagged += 1;
                    }
                    Ok(Some(false)) => round.checked += 1,
                    Ok(None) => {}
                    Err(err) => {
                        round.failed += 1;
                        tracing::warn!(account_id = %id, error = %err, "token check failed; asking again next round");
                    }
                }
            }
        }
    }

    /// Checks one account's token: `Some(flagged)` once Meta answered about it, `None`
    /// for an account without a token.
    async fn check(&self, account: Account) -> Result<Option<bool>, Error> {
        let Some(token) = meta_token(&account) else {
            return Ok(None);
        };
        let change = match self.accounts.graph.debug_token(&self.app, token).await {
            Ok(info) if info.is_valid => StateChange::TokenChecked {
                expires_at: info.expires_at,
                data_access_expires_at: info.data_access_expires_at,
                missing_scopes: missing_scopes(account.channel, &info.scopes),
                thresholds: self.thresholds.clone(),
            },
            Ok(info) => StateChange::TokenRejected {
                reason: info
                    .reason
                    .unwrap_or_else(|| "Meta says the token is not valid".to_owned()),
            },
            Err(err) if err.failure() == Failure::Credential => StateChange::TokenRejected {
                reason: err.to_string(),
            },
            Err(err) => return Err(err.into_error("checking the token")),
        };
        let caller = system_caller(&account.workspace_id, "token-check");
        let stored = self
            .accounts
            .record_state(&caller, account.id, change)
            .await?;
        Ok(Some(stored.provider_state.reauthorization_required))
    }
}
