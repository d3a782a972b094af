//! Instagram: connecting an account through Instagram Login, and refreshing its
//! long-lived token (Meta's tokens live 60 days; a refresh gives 60 more).

use serde_json::Value;

use super::{Accounts, system_caller};
use crate::domain::account::whatsapp::{self, INSTAGRAM_USER_ID};
use crate::domain::account::{
    Connected, Ownership, StateChange, TokenSource, check_oauth_request, new_account_division,
    token_expiry,
};
use crate::domain::config_document::Document;
use crate::domain::ids::now;
use crate::domain::{Account, Caller, Channel, Error, Violations};
use crate::meta::{Failure, MetaError};

pub const ACCESS_TOKEN: &str = "access_token";

/// What ConnectInstagram saved.
pub struct InstagramConnected {
    pub username: String,
    pub account: Account,
}

impl Accounts {
    /// Subscribes an Instagram Login account to its webhooks, then records how it went.
    pub(super) async fn set_up_instagram(
        &self,
        caller: &Caller,
        account: Account,
    ) -> Result<Account, Error> {
        let user_id = whatsapp::text(&account.config, whatsapp::INSTAGRAM_USER_ID).to_owned();
        let token = whatsapp::text(&account.config, ACCESS_TOKEN);
        let change = if user_id.is_empty() || token.is_empty() {
            StateChange::SetupFailed {
                reason: "an Instagram Login account needs config.instagram_user_id and config.access_token to be subscribed to its webhooks".to_owned(),
                token_rejected: false,
                retry_after: None,
            }
        } else {
            match self.subscribe_instagram(&account, &user_id, token).await {
                // `/me` named the account: Meta's word for an id nobody owns (a
                // connect took it already), recorded below.
                Ok(()) => StateChange::SetupSucceeded {
                    provider_id: user_id,
                    display_phone_number: None,
                    takes_id: false,
                },
                Err(err) => {
                    let stop = self.setup_stop(
                        &account,
                        err.during("subscribing the Instagram account to webhooks"),
                    );
                    tracing::warn!(account_id = %account.id, error = %stop.reason, "Instagram set-up at Meta failed");
                    StateChange::SetupFailed {
                        reason: stop.reason,
                        token_rejected: stop.token_rejected,
                        retry_after: None,
                    }
                }
            }
        };
        // The id `/me` named, which the account may no longer name by now.
        let vouched = match &change {
            StateChange::SetupSucceeded { provider_id, .. } => Some(provider_id.clone()),
            _ => None,
        };
        let account = self.record_state(caller, account.id, change).await?;
        match vouched {
            Some(id) if account.provider_state.ownership == Ownership::Unconfirmed => {
                Ok(self.record_vouched(caller, account, &id).await)
            }
            _ => Ok(account),
        }
    }

    /// The token must be that Instagram account's (`/me`'s `user_id`), so that a
    /// subscription made with one account's token never confirms another's id; then
    /// the account is subscribed.
    async fn subscribe_instagram(
        &self,
        account: &Account,
        user_id: &str,
        token: &str,
    ) -> Result<(), MetaError> {
        let profile = self
            .graph
            .instagram()
            .instagram_profile(token)
            .await
            .map_err(|err| err.during("reading the token's Instagram account"))?;
        if profile.user_id.as_deref() != Some(user_id) {
            return Err(MetaError::Malformed(format!(
                "the token is Instagram account {}'s, not config.instagram_user_id {user_id}'s ({})",
                profile.user_id.as_deref().unwrap_or("(none)"),
                account.id
            )));
        }
        self.graph
            .instagram()
            .subscribe_instagram(user_id, token)
            .await
    }

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
        let app = self.instagram_app.as_ref().ok_or_else(|| {
            Error::FailedPrecondition(
                "no Instagram app is configured: set PATCHBAY_INSTAGRAM_APP_ID and PATCHBAY_INSTAGRAM_APP_SECRET (Instagram Login takes the Instagram app's own id and secret, not the Meta app's)".to_owned(),
            )
        })?;
        // Meta appends `#_` to the redirect: "not part of the code itself".
        let code = code.trim();
        let code = code.strip_suffix("#_").unwrap_or(code);

        let short = self
            .graph
            .instagram()
            .instagram_code_for_token(app, code, redirect_uri)
            .await
            .map_err(|err| err.into_exchange_error("code", "exchanging the Instagram code"))?;
        let long = self
            .graph
            .instagram()
            .instagram_long_lived(app, &short)
            .await
            .map_err(|err| err.into_error("exchanging for a long-lived Instagram token"))?;
        let profile = self
            .graph
            .instagram()
            .instagram_profile(&long.token)
            .await
            .map_err(|err| err.into_error("fetching the Instagram profile"))?;
        let Some(user_id) = profile.user_id else {
            return Err(Error::Unavailable(
                "Meta's Instagram profile answer has no user_id".to_owned(),
            ));
        };
        let username = profile.username;
        let mut config = Document::new();
        config.insert(INSTAGRAM_USER_ID.to_owned(), Value::String(user_id.clone()));
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
                    token_expires_at: token_expiry(long.expires_in, now()),
                    token_source: TokenSource::InstagramLogin,
                    coexistence: None,
                },
            )
            .await?;
        let account = self.set_up(caller, account).await?;
        Ok(InstagramConnected { username, account })
    }

    /// Refreshes one Instagram account's token. Meta refusing the credential marks the
    /// account `reauthorization_required`; another refusal of this token (a 4xx) counts
    /// as one of its failures, and after `max_failures` in a row the token is left alone
    /// (refresh exhausted) until a new one is stored. An outage (5xx, 429, rate limits,
    /// no answer) is no account's outcome: it is the round's to count; nor is a fault of
    /// the call's configuration (a 404 of a wrong base URL, a refused address).
    pub(super) async fn refresh_instagram_token(
        &self,
        account: Account,
        max_failures: u32,
    ) -> Result<Refreshed, Error> {
        let caller = system_caller(&account.workspace_id, "token-refresh");
        let token = account
            .config
            .get(ACCESS_TOKEN)
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.graph.instagram().instagram_refresh(token).await {
            Ok(fresh) => {
                let change = StateChange::NewToken {
                    key: ACCESS_TOKEN,
                    token: fresh.token,
                    expires_at: token_expiry(fresh.expires_in, now()),
                    replaces: Some(token.to_owned()),
                };
                self.record_state(&caller, account.id, change).await?;
                tracing::info!(account_id = %account.id, "Instagram token refreshed");
                Ok(Refreshed::Done)
            }
            Err(err) if err.failure() == Failure::Credential => {
                let reason = self.meta_words(&account, &err);
                tracing::warn!(account_id = %account.id, error = %reason, "Instagram token refresh refused; the account needs a new token");
                let change = StateChange::TokenRejected {
                    reason,
                    token: Some(token.to_owned()),
                };
                self.record_state(&caller, account.id, change).await?;
                Ok(Refreshed::Flagged)
            }
            Err(err) if err.failure() == Failure::Outage => {
                Ok(Refreshed::Outage(self.meta_words(&account, &err)))
            }
            // A fault of ours (a 404 of a wrong base URL, a refused address): nothing
            // about this token is learnt.
            Err(err) if !refusal_of_the_token(&err) => {
                Ok(Refreshed::NotAsked(self.meta_words(&account, &err)))
            }
            Err(err) => {
                let words = self.meta_words(&account, &err);
                let change = StateChange::RefreshFailed {
                    token: token.to_owned(),
                    max: max_failures,
                };
                self.record_state(&caller, account.id, change).await?;
                Ok(Refreshed::Failed(words))
            }
        }
    }
}

/// Whether Meta's refusal is about the token: an answer of Meta's (4xx, not a 404 of a
/// wrong path) rather than a fault of the call.
fn refusal_of_the_token(err: &crate::meta::MetaError) -> bool {
    matches!(err, crate::meta::MetaError::Graph(graph)
        if graph.http_status.is_client_error() && graph.http_status != reqwest::StatusCode::NOT_FOUND)
}

/// What one refresh came to.
pub enum Refreshed {
    Done,
    /// Meta refused the token: the account is flagged.
    Flagged,
    /// Another refusal of the token, counted on the account.
    Failed(String),
    /// Meta down or limiting: nothing recorded on the account.
    Outage(String),
    /// A fault of the call's configuration: nothing recorded on the account.
    NotAsked(String),
    /// Not asked this round: its workspace had its refreshes.
    Deferred,
}
