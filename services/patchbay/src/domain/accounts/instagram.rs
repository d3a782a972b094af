//! Instagram: connecting an account through Instagram Login, and keeping its
//! long-lived token alive (Meta's tokens live 60 days; a refresh gives 60 more).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::provider_state::{Connected, StateChange};
use super::{Accounts, check_oauth_request, new_account_division};
use crate::domain::account::Account;
use crate::domain::caller::{Caller, Role};
use crate::domain::channel::Channel;
use crate::domain::config_document::Document;
use crate::domain::error::{Error, Violations};
use crate::domain::support::{new_id, now};

pub const ACCESS_TOKEN: &str = "access_token";

/// What ConnectInstagram saved.
pub struct InstagramConnected {
    pub username: String,
    pub account: Account,
}

/// When a token Meta says lives `expires_in` seconds expires. Meta's number is checked
/// arithmetic: one that is not positive, or beyond what a date can hold, gives no expiry
/// rather than a panic.
fn expiry(expires_in: Option<i64>) -> Option<DateTime<Utc>> {
    let seconds = expires_in.filter(|seconds| *seconds > 0)?;
    now().checked_add_signed(chrono::Duration::try_seconds(seconds)?)
}

impl Accounts {
    /// code → short-lived token → long-lived token → profile → the account (key: the
    /// Instagram professional account id, which Instagram's webhooks name).
    pub async fn connect_instagram(
        &self,
        caller: &Caller,
        code: &str,
        redirect_uri: &str,
        division_id: Option<String>,
    ) -> Result<InstagramConnected, Error> {
        let mut violations = Violations::new();
        check_oauth_request(code, redirect_uri, &mut violations);
        let division_id = new_account_division(caller, division_id.as_deref(), &mut violations);
        violations.into_result()?;
        caller.require_write(division_id.as_deref())?;
        let app = self.meta_app()?;

        let short = self
            .graph
            .instagram_code_for_token(app, code.trim(), redirect_uri)
            .await
            .map_err(|err| err.into_exchange_error("code", "exchanging the Instagram code"))?;
        let long = self
            .graph
            .instagram_long_lived(app, &short)
            .await
            .map_err(|err| err.into_error("exchanging for a long-lived Instagram token"))?;
        let profile = self
            .graph
            .instagram_profile(&long.token)
            .await
            .map_err(|err| err.into_error("fetching the Instagram profile"))?;
        let field = |key: &str| match profile.get(key) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        let Some(user_id) = field("user_id").or_else(|| field("id")) else {
            return Err(Error::Unavailable(
                "Meta's Instagram profile answer has no user_id".to_owned(),
            ));
        };
        let username = field("username").unwrap_or_default();
        let mut config = Document::new();
        config.insert(
            "instagram_user_id".to_owned(),
            Value::String(user_id.clone()),
        );
        config.insert("username".to_owned(), Value::String(username.clone()));
        config.insert(ACCESS_TOKEN.to_owned(), Value::String(long.token));
        let account = self
            .save_connected(
                caller,
                Connected {
                    channel: Channel::Instagram,
                    account_key: user_id,
                    display_name: Some(username.clone()).filter(|name| !name.is_empty()),
                    division_id,
                    config,
                    token_expires_at: expiry(long.expires_in),
                },
            )
            .await?;
        Ok(InstagramConnected { username, account })
    }

    /// Refreshes one Instagram account's token; a refusal marks the account
    /// `reauthorization_required`, an outage leaves it for the next round.
    async fn refresh_instagram_token(&self, account: Account) -> Result<(), Error> {
        let caller = system_caller(&account.workspace_id);
        let token = account
            .config
            .get(ACCESS_TOKEN)
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.graph.instagram_refresh(token).await {
            Ok(fresh) => {
                let change = StateChange::NewToken {
                    key: ACCESS_TOKEN,
                    token: fresh.token,
                    expires_at: expiry(fresh.expires_in),
                };
                self.record_state(&caller, account.id, change).await?;
                tracing::info!(account_id = %account.id, "Instagram token refreshed");
                Ok(())
            }
            Err(err) if err.is_transient() => Err(err.into_error("refreshing the Instagram token")),
            Err(err) => {
                tracing::warn!(account_id = %account.id, error = %err, "Instagram token refresh refused; the account needs a new token");
                self.record_state(&caller, account.id, StateChange::TokenRejected)
                    .await?;
                Ok(())
            }
        }
    }
}

/// The background task that refreshes Instagram tokens before they expire.
pub struct TokenRefresher {
    accounts: Accounts,
    every: Duration,
    ahead: Duration,
}

/// Accounts refreshed per round at most; the rest wait for the next.
const REFRESH_BATCH: u64 = 200;

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

/// Background work acts as Patchbay itself, recorded as such in audit events.
fn system_caller(workspace_id: &str) -> Caller {
    Caller {
        subject: "patchbay:token-refresh".to_owned(),
        role: Role::Admin,
        workspace_id: workspace_id.to_owned(),
        division_id: None,
        request_id: format!("token-refresh-{}", new_id()),
        idempotency: None,
        token_valid_until: None,
        held: None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever Meta answers for `expires_in`, the expiry is computed without a
        /// panic: in the future, or none.
        #[test]
        fn any_expires_in_gives_a_future_expiry_or_none(seconds in any::<i64>()) {
            let before = now();
            match expiry(Some(seconds)) {
                Some(at) => prop_assert!(seconds > 0 && at > before),
                None => prop_assert!(seconds <= 0 || seconds > 365 * 86_400 * 1_000),
            }
        }
    }

    #[test]
    fn extreme_answers_give_no_expiry() {
        assert_eq!(expiry(Some(i64::MAX)), None);
        assert_eq!(expiry(Some(0)), None);
        assert_eq!(expiry(None), None);
        assert!(expiry(Some(5_183_944)).is_some());
    }
}
