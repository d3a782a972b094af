//! The health round: every `--account-health-interval-seconds`, on one replica (the
//! `account_health` lease), with the token checks' pacing and per-workspace cap. It
//! reads each active WhatsApp Cloud number from Meta as GetWhatsAppHealth does (status,
//! quality, name status, messaging limit, where its webhooks go) and records what it
//! finds: a reading that changes nothing writes nothing, and an outage counts toward
//! the account's PROVIDER reason. Then it counts: every active account by channel and
//! health state, and the scopes a fallback serves, as gauges without a workspace label
//! (`patchbay_accounts_by_health{channel,state}`, `patchbay_scopes_on_fallback{channel}`).
//! The counts are set only by a round that walked every account from the start, so a
//! round cut short and resumed never publishes half a count.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use patchbay_sdk::health::State;
use uuid::Uuid;

use super::health_counts::{self as counts, Counts};
use super::number_health::WabaAnswers;
use super::round_place::Turn;
use super::round_walk::RoundWalk;
use super::{Accounts, system_caller};
use crate::domain::account::whatsapp::{self, is_cloud_account};
use crate::domain::{Account, Channel, Error, fallbacks, ids::now};
use crate::store::accounts::ExpiryKey;

/// The round's lease, which keeps where a round was cut short.
const LEASE_NAME: &str = "account_health";
/// Accounts read per page of a round, and defaults per page of the census.
const PAGE: u64 = 200;
/// Outages in a row that end a round.
const MAX_OUTAGES_IN_A_ROW: usize = 5;

pub struct HealthRound {
    accounts: Accounts,
    every: Duration,
    holder: String,
    /// Numbers of one workspace read per round at most.
    per_workspace: usize,
}

/// What one round did, and what it counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HealthTally {
    pub read: usize,
    pub failed: usize,
    /// Left for a later round: their workspace had its reads this round.
    pub deferred: usize,
    /// Active accounts by channel and state; published only when `whole`.
    pub by_health: HashMap<(Channel, State), u64>,
    /// Whether the round walked every account from the start.
    pub whole: bool,
    /// Scopes whose default a fallback stands in for, by channel.
    pub on_fallback: HashMap<Channel, u64>,
}

impl HealthRound {
    pub fn new(accounts: Accounts, every: Duration, holder: String) -> Self {
        Self {
            accounts,
            every,
            holder,
            per_workspace: crate::meta::TOKEN_CHECKS_PER_WORKSPACE_PER_ROUND,
        }
    }

    /// At most `cap` numbers of one workspace read per round.
    pub fn per_workspace(mut self, cap: usize) -> Self {
        self.per_workspace = cap;
        self
    }

    /// Runs until the process ends: a round now, then one every interval, each on the
    /// replica that takes its lease.
    /// Every replica also exports the last round's counts, read back each minute.
    pub async fn run(self) {
        let store = self.accounts.store.clone();
        let follow = counts::follow(&store);
        let rounds =
            super::rounds::every_round(&store, LEASE_NAME, &self.holder, self.every, || async {
                match self.round().await {
                    Ok(tally) => tracing::info!(
                        read = tally.read,
                        failed = tally.failed,
                        deferred = tally.deferred,
                        "account health round done"
                    ),
                    Err(err) => tracing::warn!(error = %err, "account health round stopped"),
                }
            });
        tokio::join!(rounds, follow);
    }

    /// One round: the numbers read (a page at a time, resuming where the last round
    /// was cut short), then the counts published and kept for the other replicas.
    pub async fn round(&self) -> Result<HealthTally, Error> {
        let store = &self.accounts.store;
        let mut walk =
            RoundWalk::begin(store, LEASE_NAME, &self.holder, self.per_workspace, true).await?;
        let mut tally = HealthTally {
            whole: walk.after.is_none(),
            ..HealthTally::default()
        };
        let scanned = self.scan(&mut tally, &mut walk).await;
        walk.end(scanned.is_ok()).await;
        // A round cut short counts no accounts (half a count is none); the scopes a
        // fallback serves are read from the store whatever Meta did, and the accounts'
        // counts stand when they cannot be.
        tally.whole &= scanned.is_ok();
        let census = self.scopes_on_fallback().await;
        if let Ok(on_fallback) = &census {
            tally.on_fallback = on_fallback.clone();
        }
        let counts = Counts::of(&tally, census.is_ok());
        counts::keep(store, &self.holder, &counts).await;
        scanned?;
        census?;
        Ok(tally)
    }

    async fn scan(&self, tally: &mut HealthTally, walk: &mut RoundWalk<'_>) -> Result<(), Error> {
        let mut pass = Pass::default();
        loop {
            walk.page().await?;
            // Meta's answers about WABAs are kept for a page: fresh, and bounded.
            pass.wabas = WabaAnswers::default();
            let page = self
                .accounts
                .store
                .accounts()
                .accounts_in_round_order(walk.after.clone(), PAGE)
                .await?;
            if page.is_empty() {
                return Ok(());
            }
            for account in page {
                // The walk goes on after the account as the page ordered it.
                let key = ExpiryKey::of(&account);
                let account = self.deal_with(account, tally, walk, &mut pass).await?;
                if account.is_active {
                    let state = account.provider_state.health.state(now());
                    *tally.by_health.entry((account.channel, state)).or_default() += 1;
                }
                walk.after = Some(key);
            }
        }
    }

    /// Reads one account's number when it has one to read, its workspace's turn allows
    /// and its WABA has not failed this round; gives back the account as it is now.
    /// Ends the round (an error) when Meta failed for the numbers of
    /// [`MAX_OUTAGES_IN_A_ROW`] different workspaces with no answer between: an outage
    /// of Meta, not of one tenant.
    async fn deal_with(
        &self,
        account: Account,
        tally: &mut HealthTally,
        walk: &mut RoundWalk<'_>,
        pass: &mut Pass,
    ) -> Result<Account, Error> {
        let readable = account.is_active
            && !account.provider_state.reauthorization_required
            && is_cloud_account(account.channel, &account.config);
        if !readable {
            return Ok(account);
        }
        let waba = (
            account.workspace_id.clone(),
            whatsapp::text(&account.config, whatsapp::WABA_ID).to_owned(),
        );
        // One tenant's WABA failing (its rate limit reached, say) is its own outcome:
        // the workspace's other numbers of it wait for the next round rather than
        // being asked again (keyed by workspace: another tenant naming the same WABA
        // cannot hold this one's numbers back).
        if pass.failed.contains(&waba) {
            tally.deferred += 1;
            read_metric("waba_failing");
            return Ok(account);
        }
        match walk.turn(&account) {
            Turn::Check => {}
            Turn::Deferred => {
                tally.deferred += 1;
                read_metric("deferred");
                return Ok(account);
            }
            Turn::CheckedBefore => return Ok(account),
        }
        walk.keep_lease().await?;
        let caller = system_caller(&account.workspace_id, "account-health");
        let read = self
            .accounts
            .read_whatsapp_health(&caller, account.clone(), Some(&mut pass.wabas))
            .await;
        match read {
            Ok(health) => {
                read_metric("read");
                tally.read += 1;
                pass.failing_in_a_row.clear();
                Ok(health.account)
            }
            Err(err @ Error::Unavailable(_)) => {
                read_metric("outage");
                tally.failed += 1;
                tracing::warn!(account_id = %account.id, error = %err, "health read failed (Meta unavailable); reading again next round");
                pass.failing_in_a_row.insert(waba.0.clone());
                pass.failed.insert(waba);
                if pass.failing_in_a_row.len() >= MAX_OUTAGES_IN_A_ROW {
                    return Err(Error::Unavailable(format!(
                        "Meta failed for {MAX_OUTAGES_IN_A_ROW} workspaces' numbers in a row; the round stops until the next"
                    )));
                }
                // The account as the outage left it (its PROVIDER count moved).
                let store = self.accounts.store.accounts();
                let now = store.find_account(&account.workspace_id, account.id).await;
                Ok(now.ok().flatten().unwrap_or(account))
            }
            Err(err) => {
                read_metric("failed");
                tally.failed += 1;
                tracing::warn!(account_id = %account.id, error = %err, "health read failed; reading again next round");
                Ok(account)
            }
        }
    }

    /// The scopes, in every workspace, whose default a fallback stands in for now
    /// (what GetDefaultAccount serves), by channel: the defaults a page at a time, the
    /// fallbacks read only of a default that would be stepped over.
    async fn scopes_on_fallback(&self) -> Result<HashMap<Channel, u64>, Error> {
        let store = &self.accounts.store;
        let mut counts = HashMap::new();
        let mut after: Option<Uuid> = None;
        loop {
            let (defaults, last) = store.accounts().defaults_after(after, PAGE).await?;
            let Some(last) = last else {
                return Ok(counts);
            };
            after = Some(last);
            let at = now();
            for default in defaults {
                if !fallbacks::would_step_over(&default, at) {
                    continue;
                }
                let list = store
                    .fallbacks()
                    .fallback_accounts(
                        &default.workspace_id,
                        default.channel,
                        default.division_id.as_deref(),
                    )
                    .await?;
                if fallbacks::served(&default, &list, at).is_some() {
                    *counts.entry(default.channel).or_default() += 1;
                }
            }
        }
    }
}

/// What a round keeps while it walks.
#[derive(Default)]
struct Pass {
    /// Meta's answers about each WABA, asked once a round.
    wabas: WabaAnswers,
    /// (workspace, WABA) Meta failed for this round: their other numbers wait for the
    /// next.
    failed: HashSet<(String, String)>,
    /// Workspaces whose numbers Meta failed for since the last answer: five different
    /// ones is Meta's outage, not a tenant's.
    failing_in_a_row: HashSet<String>,
}

fn read_metric(outcome: &'static str) {
    metrics::counter!("patchbay_account_health_reads_total", "outcome" => outcome).increment(1);
}
