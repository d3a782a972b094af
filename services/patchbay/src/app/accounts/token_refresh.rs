//! The background task that refreshes Instagram tokens before they expire. One replica
//! runs each round (the `token_refresh` lease); an account whose refreshes keep failing
//! for reasons that are not its token's is left alone after `max_failures` in a row.

use std::time::Duration;

use super::Accounts;
use crate::domain::support::now;
use crate::domain::{Channel, Error};

/// Accounts refreshed per round at most; the rest wait for the next.
const REFRESH_BATCH: u64 = 200;

pub struct TokenRefresher {
    accounts: Accounts,
    every: Duration,
    ahead: Duration,
    max_failures: u32,
    /// This replica, as the lease names it.
    holder: String,
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
        }
    }

    /// Runs until the process ends: one round now, then one every interval, each on
    /// the replica that takes its lease.
    pub async fn run(self) {
        let store = self.accounts.store.clone();
        super::rounds::every_round(
            &store,
            "token_refresh",
            &self.holder,
            self.every,
            || async {
                if let Err(err) = self.round().await {
                    tracing::warn!(error = %err, "Instagram token refresh round failed");
                }
            },
        )
        .await;
    }

    /// One round: every token due, each on its own; a failure never stops the others.
    pub async fn round(&self) -> Result<usize, Error> {
        let ahead = chrono::Duration::from_std(self.ahead).unwrap_or(chrono::Duration::days(7));
        let due = self
            .accounts
            .store
            .tokens_expiring(Channel::Instagram, now() + ahead, REFRESH_BATCH)
            .await?;
        let mut refreshed = 0;
        for account in due {
            let id = account.id;
            match self
                .accounts
                .refresh_instagram_token(account, self.max_failures)
                .await
            {
                Ok(()) => {
                    metrics::counter!("patchbay_token_refreshes_total", "outcome" => "done")
                        .increment(1);
                    refreshed += 1;
                }
                Err(err) => {
                    metrics::counter!("patchbay_token_refreshes_total", "outcome" => "failed")
                        .increment(1);
                    tracing::warn!(account_id = %id, error = %err, "Instagram token refresh failed; will retry")
                }
            }
        }
        Ok(refreshed)
    }
}
