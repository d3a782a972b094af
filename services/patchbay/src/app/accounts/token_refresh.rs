//! The background task that refreshes Instagram tokens before they expire. One replica
//! runs each round (the `token_refresh` lease), by the token checks' rules: tokens
//! nearest their expiry first, at most `per_workspace` of a workspace a round, a round
//! cut short resumed where it stopped (`round_place`), and only outages counting toward
//! ending a round. A refusal of one token is that account's outcome: refused as a
//! credential, it is flagged; refused otherwise `max_failures` times in a row, it is
//! left alone until a new token is stored.

use std::time::Duration;

use super::Accounts;
use super::instagram::Refreshed;
use super::round_place::Turn;
use super::round_walk::RoundWalk;
use crate::domain::Error;
use crate::domain::account::tokens::is_instagram_login;
use crate::domain::ids::now;
use crate::store::accounts::ExpiryKey;

/// The round's lease, which keeps where a round was cut short.
const LEASE_NAME: &str = "token_refresh";
/// Accounts read per page of a round.
const PAGE: u64 = 200;
/// Outages in a row that end a round.
const MAX_OUTAGES_IN_A_ROW: usize = 5;

pub struct TokenRefresher {
    accounts: Accounts,
    every: Duration,
    ahead: Duration,
    max_failures: u32,
    /// This replica, as the lease names it.
    holder: String,
    /// Tokens of one workspace refreshed per round at most.
    per_workspace: usize,
}

impl TokenRefresher {
    pub fn new(
        accounts: Accounts,
        every: Duration,
        ahead: Duration,
        max_failures: u32,
        holder: String,
    ) -> Self {
        Self {
            accounts,
            every,
            ahead,
            max_failures,
            holder,
            per_workspace: crate::meta::TOKEN_CHECKS_PER_WORKSPACE_PER_ROUND,
        }
    }

    /// At most `cap` tokens of one workspace per round.
    pub fn per_workspace(mut self, cap: usize) -> Self {
        self.per_workspace = cap;
        self
    }

    /// Runs until the process ends: one round now, then one every interval, each on
    /// the replica that takes its lease.
    pub async fn run(self) {
        let store = self.accounts.store.clone();
        super::rounds::every_round(&store, LEASE_NAME, &self.holder, self.every, || async {
            match self.round().await {
                Ok(refreshed) => tracing::debug!(refreshed, "Instagram token refresh round done"),
                Err(err) => tracing::warn!(error = %err, "Instagram token refresh round stopped"),
            }
        })
        .await;
    }

    /// One round: every token due, each on its own; a refusal never stops the others.
    /// No workspace is carried over: a refreshed token leaves the due set, so the next
    /// round begins with the ones a workspace's cap left, nearest expiry first.
    pub async fn round(&self) -> Result<usize, Error> {
        let store = &self.accounts.store;
        let mut walk =
            RoundWalk::begin(store, LEASE_NAME, &self.holder, self.per_workspace, false).await?;
        let mut refreshed = 0;
        let scanned = self.scan(&mut refreshed, &mut walk).await;
        walk.end(scanned.is_ok()).await;
        scanned.map(|()| refreshed)
    }

    async fn scan(&self, refreshed: &mut usize, walk: &mut RoundWalk<'_>) -> Result<(), Error> {
        let ahead = chrono::Duration::from_std(self.ahead).unwrap_or(chrono::Duration::days(7));
        // Tokens falling due during the round wait for the next.
        let due_before = now() + ahead;
        // Meta refreshes only tokens at least 24 hours old.
        let young_until = now() - chrono::Duration::hours(24);
        let mut outages_in_a_row = 0;
        loop {
            walk.page().await?;
            let page = self
                .accounts
                .store
                .accounts()
                .tokens_expiring(due_before, young_until, walk.after.clone(), PAGE)
                .await?;
            if page.is_empty() {
                return Ok(());
            }
            for account in page {
                let (id, key) = (account.id, ExpiryKey::of(&account));
                // Only Instagram Login tokens are refreshed at Instagram: another token
                // on an Instagram account (a pasted Facebook one) would be refused
                // there, and flagged for nothing. It takes no turn of its workspace.
                if !is_instagram_login(&account) {
                    walk.dealt(&account);
                    continue;
                }
                let outcome = match walk.turn(&account) {
                    Turn::Check => {
                        walk.keep_lease().await?;
                        self.accounts
                            .refresh_instagram_token(account, self.max_failures)
                            .await
                    }
                    Turn::Deferred => Ok(Refreshed::Deferred),
                    Turn::CheckedBefore => continue,
                };
                let label = match &outcome {
                    Ok(Refreshed::Done) => "done",
                    Ok(Refreshed::Flagged) => "flagged",
                    Ok(Refreshed::Deferred) => "deferred",
                    Ok(Refreshed::Outage(_)) => "outage",
                    Ok(Refreshed::NotAsked(_)) => "not_asked",
                    Ok(Refreshed::Failed(_)) | Err(_) => "failed",
                };
                metrics::counter!("patchbay_token_refreshes_total", "outcome" => label)
                    .increment(1);
                match outcome {
                    Ok(Refreshed::Done) => {
                        outages_in_a_row = 0;
                        *refreshed += 1;
                    }
                    Ok(Refreshed::Flagged) => outages_in_a_row = 0,
                    // Meta was not asked: the streak of outages goes on.
                    Ok(Refreshed::Deferred) => {}
                    Ok(Refreshed::Failed(words)) => {
                        outages_in_a_row = 0;
                        tracing::warn!(account_id = %id, error = %words, "Instagram token refresh refused; counted on the account");
                    }
                    Ok(Refreshed::NotAsked(words)) => {
                        tracing::warn!(account_id = %id, error = %words, "Instagram token refresh failed (the call's configuration); trying again next round");
                    }
                    Ok(Refreshed::Outage(words)) => {
                        outages_in_a_row += 1;
                        tracing::warn!(account_id = %id, error = %words, "Instagram token refresh failed (Meta unavailable); trying again next round");
                        if outages_in_a_row >= MAX_OUTAGES_IN_A_ROW {
                            return Err(Error::Unavailable(format!(
                                "{outages_in_a_row} token refreshes failed in a row; the round stops until the next"
                            )));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(account_id = %id, error = %err, "Instagram token refresh not recorded; trying again next round");
                    }
                }
                walk.after = Some(key);
            }
        }
    }
}
