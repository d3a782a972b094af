//! What a verified Meta body says of the health of the accounts it is routed to
//! (`domain::account::meta_health`), recorded in the same RouteWebhook call. The
//! gateway's answer does not change with it: a word that cannot be recorded is logged,
//! and the delivery goes on.
//!
//! Only Meta's bodies whose signature verified reach here, and each word goes only to
//! the accounts routing gave the entry to: an account's own app secret speaks only for
//! that account, as it does for routing.

use uuid::Uuid;

use super::{Routed, Webhooks};
use crate::domain::account::meta_health::{self, Word};

/// Most accounts one body records health for (a WABA-level entry goes to every number
/// of the WABA); the rest are logged, and read again by the next word or health round.
const MAX_ACCOUNTS_PER_BODY: usize = 256;

impl Webhooks {
    pub(super) async fn record_health(&self, body: &[u8], routed: &Routed) {
        let said = meta_health::words(body);
        if said.is_empty() {
            return;
        }
        // Each account's words, in the order of the entries that say them.
        let mut by_account: Vec<(Uuid, &str, Vec<Word>)> = Vec::new();
        for (entry, recipient) in &routed.deliveries {
            let Some((_, words)) = said
                .iter()
                .find(|(at, _)| i32::try_from(*at).is_ok_and(|at| at == *entry))
            else {
                continue;
            };
            match by_account
                .iter_mut()
                .find(|(id, _, _)| *id == recipient.account_id)
            {
                Some((_, _, kept)) => kept.extend(words.iter().cloned()),
                None => {
                    by_account.push((recipient.account_id, &recipient.workspace_id, words.clone()))
                }
            }
        }
        if by_account.len() > MAX_ACCOUNTS_PER_BODY {
            tracing::warn!(
                accounts = by_account.len(),
                recorded = MAX_ACCOUNTS_PER_BODY,
                "a Meta body speaks of the health of more accounts than one call records"
            );
        }
        for (account_id, workspace_id, words) in by_account.into_iter().take(MAX_ACCOUNTS_PER_BODY)
        {
            if let Err(err) = self
                .accounts
                .record_meta_health(workspace_id, account_id, words)
                .await
            {
                tracing::warn!(%account_id, error = %err, "cannot record what Meta said of an account's health");
            }
        }
    }
}
