//! The background task that refreshes Instagram tokens before they expire.

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
}

impl TokenRefresher {
    pub fn new(accounts: Accounts, every: Duration, ahead: Duration) -> Self {
        Self {
            accounts,
            every,
            ahead,
        }
    }

    /// Runs until the process ends: one round now, then one every interval. Several
    /// replicas may refresh the same token; each refresh gives a valid token, so the
    /// last one written wins harmlessly.
    pub async fn run(self) {
        let mut interval = tokio::time::interval(self.every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(err) = self.round().await {
                tracing::warn!(error = %err, "Instagram token refresh round failed");
            }
        }
    }

    pub async fn round(&self) -> Result<usize, Error> {
        let ahead = chrono::Duration::from_std(self.ahead).unwrap_or(chrono::Duration::days(7));
        let due = self
            .accounts
            .store
            .tokens_expiring(Channel::Instagram, now() + ahead, REFRESH_BATCH)
            .await?;
        let mut refreshed = 0;
        for account in due {
            match self.accounts.refresh_instagram_token(account).await {
                Ok(()) => refreshed += 1,
                Err(err) => {
                    tracing::warn!(error = %err, "Instagram token refresh failed; will retry")
                }
            }
        }
        Ok(refreshed)
    }
}
