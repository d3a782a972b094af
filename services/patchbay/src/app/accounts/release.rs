//! A deleted account stops its webhooks at the provider, best effort: with the stored
//! token, its callback is removed at Meta, so that its number, page or Instagram account
//! no longer sends to the gateway. What came of it is recorded with the delete; a
//! failure never blocks it.

use super::Accounts;
use super::setup::number;
use crate::domain::account::tokens::is_instagram_login;
use crate::domain::account::whatsapp::{self, INSTAGRAM_USER_ID, is_cloud_account};
use crate::domain::{Account, Channel};
use crate::meta::{Failure, MetaError};

impl Accounts {
    /// Removes the account's callback at Meta; `None` when it has none to remove.
    pub(super) async fn release_at_provider(&self, account: &Account) -> Option<String> {
        let text = |key: &str| whatsapp::text(&account.config, key);
        let result = if is_cloud_account(account.channel, &account.config) {
            self.graph
                .whatsapp()
                .remove_number_callback(&number(account))
                .await
        } else if account.channel == Channel::Messenger
            && !text("page_id").is_empty()
            && !text("page_access_token").is_empty()
        {
            self.graph
                .messenger()
                .unsubscribe_page(text("page_id"), text("page_access_token"))
                .await
        } else if is_instagram_login(account) && !text(INSTAGRAM_USER_ID).is_empty() {
            self.graph
                .instagram()
                .unsubscribe_instagram(text(INSTAGRAM_USER_ID), text("access_token"))
                .await
        } else {
            return None;
        };
        Some(self.release_outcome(account, result))
    }

    fn release_outcome(&self, account: &Account, result: Result<(), MetaError>) -> String {
        let Err(err) = result else {
            return "webhook callback removed at Meta".to_owned();
        };
        let words = self.meta_words(account, &err);
        tracing::warn!(account_id = %account.id, error = %words, "the deleted account's callback could not be removed at Meta");
        match err.failure() {
            Failure::Credential => {
                format!("webhook callback not removed: Meta rejected the token ({words})")
            }
            Failure::Outage => format!("webhook callback not removed: Meta unreachable ({words})"),
            Failure::Configuration => {
                format!("webhook callback not removed: Meta refused ({words})")
            }
        }
    }
}
