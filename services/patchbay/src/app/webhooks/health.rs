//! What a verified Meta body says of the health of the accounts it is routed to
//! (`domain::account::meta_health`), recorded in the same RouteWebhook call. The
//! gateway's answer does not change with it: a word that cannot be recorded is logged,
//! and the delivery goes on.
//!
//! Only bodies the installation's Meta app signed reach here (an account's own app
//! secret is its tenant's, who could forge a lift of what Meta set), and each word goes
//! only to the accounts routing gave its entry to (`meta_health::words` reads only the
//! entries routing sends exactly to the accounts they are about). A word older than the
//! last heard about its code, or than the account, changes nothing.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Routed, Webhooks};
use crate::domain::account::meta_health::{self, Word};

/// Most accounts one body records health for (a WABA-level entry goes to every number
/// of the WABA); the rest are logged, and read again by the next word or health round.
const MAX_ACCOUNTS_PER_BODY: usize = 256;

impl Webhooks {
    pub(super) async fn record_health(&self, body: &[u8], routed: &Routed) {
        if routed.deliveries.is_empty() {
            return;
        }
        let said: HashMap<usize, Vec<Word>> = meta_health::words(body).into_iter().collect();
        if said.is_empty() {
            return;
        }
        // Each account's words, in the order of the entries that say them.
        let mut order: Vec<(Uuid, &str)> = Vec::new();
        let mut by_account: HashMap<Uuid, Vec<Word>> = HashMap::new();
        for (entry, recipient) in &routed.deliveries {
            let Some(words) = usize::try_from(*entry).ok().and_then(|at| said.get(&at)) else {
                continue;
            };
            let kept = by_account.entry(recipient.account_id).or_insert_with(|| {
                order.push((recipient.account_id, &recipient.workspace_id));
                Vec::new()
            });
            kept.extend(words.iter().cloned());
        }
        if order.len() > MAX_ACCOUNTS_PER_BODY {
            tracing::warn!(
                accounts = order.len(),
                recorded = MAX_ACCOUNTS_PER_BODY,
                "a Meta body speaks of the health of more accounts than one call records"
            );
        }
        for (account_id, workspace_id) in order.into_iter().take(MAX_ACCOUNTS_PER_BODY) {
            let words = by_account.remove(&account_id).unwrap_or_default();
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
