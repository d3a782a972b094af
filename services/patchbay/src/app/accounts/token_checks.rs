//! The background task that asks Meta about every Meta token (debug_token): validity,
//! expiry, data-access expiry and scopes, recorded on the account. Meta calling the
//! token invalid, or refusing it with a 4xx about it (another app's token, a malformed
//! or unknown one), flags `reauthorization_required`: one account's outcome, never an
//! outage. An outage or a fault of configuration is logged and the token is asked about
//! again next round. One replica runs each round (the `token_checks` lease), and no
//! tenant's tokens can stop it: only outages count toward ending it. Tokens nearest
//! their expiry come first, at most `per_workspace` of a workspace a round, and a round
//! cut short resumes where it stopped (`round_place`).

use std::time::Duration;

use secrecy::ExposeSecret;

use super::round_place::Turn;
use super::round_walk::RoundWalk;
use super::{Accounts, system_caller};
use crate::domain::account::StateChange;
use crate::domain::account::tokens::{
    CHECKED_CHANNELS, is_instagram_login, meta_token, missing_scopes,
};
use crate::domain::{Account, Error};
use crate::meta::{Failure, Host, MetaApp, MetaError};
use crate::store::accounts::ExpiryKey;

/// The round's lease, which keeps where a round was cut short.
const LEASE_NAME: &str = "token_checks";
/// Accounts read per page of a round.
const PAGE: u64 = 200;
/// Outages in a row that end a round.
const MAX_OUTAGES_IN_A_ROW: usize = 5;

pub struct TokenChecker {
    accounts: Accounts,
    app: MetaApp,
    every: Duration,
    /// The expiry-warning thresholds, in days.
    thresholds: Vec<u32>,
    holder: String,
    /// Tokens of one workspace checked per round at most.
    per_workspace: usize,
    /// Whether Meta takes our app token, asked once a round when debug_token answers a
    /// credential error (`None`: not asked this round).
    app_token_taken: std::sync::Mutex<Option<bool>>,
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub checked: usize,
    pub flagged: usize,
    pub failed: usize,
    /// Left for a later round: their workspace had its checks this round.
    pub deferred: usize,
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
            per_workspace: crate::meta::TOKEN_CHECKS_PER_WORKSPACE_PER_ROUND,
            app_token_taken: std::sync::Mutex::new(None),
        }
    }

    /// At most `cap` tokens of one workspace per round.
    pub fn per_workspace(mut self, cap: usize) -> Self {
        self.per_workspace = cap;
        self
    }

    /// Runs until the process ends: a round now, then one every interval, each on the
    /// replica that takes its lease.
    pub async fn run(self) {
        let store = self.accounts.store.clone();
        super::rounds::every_round(&store, LEASE_NAME, &self.holder, self.every, || async {
            match self.round().await {
                Ok(round) => tracing::info!(
                    checked = round.checked,
                    flagged = round.flagged,
                    failed = round.failed,
                    "token check round done"
                ),
                Err(err) => tracing::warn!(error = %err, "token check round stopped"),
            }
        })
        .await;
    }

    /// Every live Meta account with a token, a page at a time. Meta refusing the call's
    /// own credential (the app token) is no account's fault: it ends the round at once,
    /// logged once. Outages (5xx, 429, rate-limit codes, no answer) are logged per
    /// account, and end the round after a few in a row, to be tried again next round;
    /// faults of configuration (a 404, a refused address) are logged and never end it.
    pub async fn round(&self) -> Result<Round, Error> {
        let store = &self.accounts.store;
        let mut walk =
            RoundWalk::begin(store, LEASE_NAME, &self.holder, self.per_workspace, true).await?;
        let mut round = Round::default();
        *crate::locks::lock(&self.app_token_taken) = None;
        let scanned = self.scan(&mut round, &mut walk).await;
        walk.end(scanned.is_ok()).await;
        scanned.map(|()| round)
    }

    /// The accounts after the walk's place, a page at a time (the one a stop happens
    /// at is not dealt with: it comes first next time).
    async fn scan(&self, round: &mut Round, walk: &mut RoundWalk<'_>) -> Result<(), Error> {
        let mut outages_in_a_row = 0;
        loop {
            walk.page().await?;
            let page = self
                .accounts
                .store
                .accounts()
                .accounts_by_token_expiry(&CHECKED_CHANNELS, walk.after.clone(), PAGE)
                .await?;
            if page.is_empty() {
                return Ok(());
            }
            for account in page {
                let id = account.id;
                match walk.turn(&account) {
                    Turn::Check => {}
                    Turn::Deferred => {
                        round.deferred += 1;
                        metrics::counter!("patchbay_token_checks_total", "outcome" => "deferred")
                            .increment(1);
                        continue;
                    }
                    Turn::CheckedBefore => continue,
                }
                walk.keep_lease().await?;
                let key = ExpiryKey::of(&account);
                let checked = self.check(account).await;
                let outcome = match &checked {
                    Ok(Checked::Flagged) => "flagged",
                    Ok(Checked::Fine) => "valid",
                    Ok(Checked::NoToken) => "no_token",
                    Err(Stop::Outage(_) | Stop::Config(_)) => "failed",
                    Err(Stop::Call(_)) => "refused_call",
                    Err(Stop::Store(_)) => "not_recorded",
                };
                metrics::counter!("patchbay_token_checks_total", "outcome" => outcome).increment(1);
                match checked {
                    Ok(Checked::Flagged) => {
                        outages_in_a_row = 0;
                        round.checked += 1;
                        round.flagged += 1;
                    }
                    Ok(Checked::Fine) => {
                        outages_in_a_row = 0;
                        round.checked += 1;
                    }
                    Ok(Checked::NoToken) => {}
                    Err(Stop::Outage(words)) => {
                        round.failed += 1;
                        outages_in_a_row += 1;
                        tracing::warn!(account_id = %id, error = %words, "token check failed (Meta unavailable or misconfigured); asking again next round");
                        if outages_in_a_row >= MAX_OUTAGES_IN_A_ROW {
                            return Err(Error::Unavailable(format!(
                                "{outages_in_a_row} token checks failed in a row; the round stops until the next"
                            )));
                        }
                    }
                    Err(Stop::Config(words)) => {
                        round.failed += 1;
                        tracing::warn!(account_id = %id, error = %words, "token check failed (the call's configuration); asking again next round");
                    }
                    Err(Stop::Call(words)) => {
                        return Err(Error::FailedPrecondition(format!(
                            "debug_token itself was refused ({words}): check PATCHBAY_META_APP_ID, PATCHBAY_META_APP_SECRET and the Graph base URL; no account was flagged"
                        )));
                    }
                    Err(Stop::Store(err)) => {
                        round.failed += 1;
                        tracing::warn!(account_id = %id, error = %err, "token check not recorded; asking again next round");
                    }
                }
                walk.after = Some(key);
            }
        }
    }

    /// Checks one account's token. Only Meta's answer about the token can flag it; an
    /// error of the call is the call's. Instagram Login tokens are asked about at
    /// graph.instagram.com (`/me`), never sent to debug_token, which cannot parse them.
    async fn check(&self, account: Account) -> Result<Checked, Stop> {
        // A WhatsApp Business app number's syncs not yet taken: asked again while Meta's
        // window lasts (failed for good after it).
        let syncs_pending = account
            .provider_state
            .coexistence
            .as_ref()
            .is_some_and(|c| {
                c.contacts_sync_requested_at.is_none() || c.history_sync_requested_at.is_none()
            });
        if syncs_pending {
            let caller = system_caller(&account.workspace_id, "coexistence-sync");
            if let Err(err) = self
                .accounts
                .request_coexistence_syncs(&caller, account.clone())
                .await
            {
                tracing::warn!(account_id = %account.id, error = %err, "coexistence syncs not recorded; asking again next round");
            }
        }
        let Some(token) = meta_token(&account) else {
            return Ok(Checked::NoToken);
        };
        if is_instagram_login(&account) {
            return self.check_instagram(&account, token).await;
        }
        let answer = self.accounts.graph.debug_token(&self.app, token).await;
        let change = match &answer {
            Ok(info) if info.is_valid => StateChange::TokenChecked {
                token: token.to_owned(),
                expires_at: info.expires_at,
                data_access_expires_at: info.data_access_expires_at,
                missing_scopes: info
                    .scopes
                    .as_deref()
                    .map(|scopes| missing_scopes(account.channel, scopes))
                    .unwrap_or_default(),
                thresholds: self.thresholds.clone(),
            },
            Ok(info) => StateChange::TokenRejected {
                reason: self.accounts.meta_words(
                    &account,
                    &info
                        .reason
                        .as_deref()
                        .unwrap_or("Meta says the token is not valid"),
                ),
                token: Some(token.to_owned()),
            },
            Err(err) => {
                let words = self.accounts.meta_words(&account, err);
                match (err.failure(), refusal_of_the_token(err)) {
                    (Failure::Outage, _) => return Err(Stop::Outage(words)),
                    (Failure::Configuration, None) => return Err(Stop::Config(words)),
                    // A credential error, or a refusal of the input token (code 100), is
                    // about our app token or about the one asked about: Meta is asked
                    // about our app token, once a round, to tell which (a tenant's
                    // garbage token must not stop the round, nor our own refused app
                    // token flag every account).
                    (Failure::Credential | Failure::Configuration, reason) => {
                        match self.app_token_taken().await {
                            Ok(true) => {}
                            Ok(false) => return Err(Stop::Call(words)),
                            Err(outage) => return Err(Stop::Outage(outage)),
                        }
                        StateChange::TokenRejected {
                            reason: reason.flatten().unwrap_or(words),
                            token: Some(token.to_owned()),
                        }
                    }
                }
            }
        };
        let checked = self.record(&account, change).await?;
        // The same answer is Meta's word on an unconfirmed claim of the account's id.
        if let Ok(info) = &answer {
            match self.accounts.vouched_by(&account, info).await {
                Ok(true) => {
                    let caller = system_caller(&account.workspace_id, "ownership");
                    if let Some(key) = super::ownership::unconfirmed_key(&account) {
                        self.accounts.record_vouched(&caller, account, &key).await;
                    }
                }
                Ok(false) => {}
                Err(err) => {
                    let words = self.accounts.meta_words(&account, &err);
                    tracing::info!(account_id = %account.id, error = %words, "Meta could not vouch for the account's provider id now; asking again next round");
                }
            }
        }
        Ok(checked)
    }
}

impl TokenChecker {
    /// An Instagram Login token: Instagram either takes it or refuses it; what it
    /// learnt of the expiry (the exchange's and the refreshes' `expires_in`) stays.
    async fn check_instagram(&self, account: &Account, token: &str) -> Result<Checked, Stop> {
        // The credential checks' one read (`GET graph.instagram.com/{v}/me?fields=id`),
        // never sent to graph.facebook.com's debug_token, which cannot parse the token.
        let check = self
            .accounts
            .graph
            .check_token(Host::InstagramGraph, "me", token, None);
        let change = match check.await {
            Ok(()) => StateChange::TokenChecked {
                token: token.to_owned(),
                expires_at: account.provider_state.token_expires_at,
                data_access_expires_at: account.provider_state.data_access_expires_at,
                missing_scopes: Vec::new(),
                thresholds: self.thresholds.clone(),
            },
            Err(err) if err.failure() == Failure::Credential => StateChange::TokenRejected {
                reason: self.accounts.meta_words(account, &err),
                token: Some(token.to_owned()),
            },
            Err(err) => {
                let words = self.accounts.meta_words(account, &err);
                return Err(match err.failure() {
                    Failure::Outage => Stop::Outage(words),
                    _ => Stop::Config(words),
                });
            }
        };
        let checked = self.record(account, change).await?;
        let caller = system_caller(&account.workspace_id, "ownership");
        self.accounts
            .confirm_ownership(&caller, account.clone())
            .await;
        Ok(checked)
    }

    async fn record(&self, account: &Account, change: StateChange) -> Result<Checked, Stop> {
        let caller = system_caller(&account.workspace_id, "token-check");
        let stored = self
            .accounts
            .record_state(&caller, account.id, change)
            .await
            .map_err(Stop::Store)?;
        Ok(if stored.provider_state.reauthorization_required {
            Checked::Flagged
        } else {
            Checked::Fine
        })
    }
}

impl TokenChecker {
    /// Whether Meta takes our app token (debug_token of the app token itself), asked
    /// once a round; an outage is not an answer (it is asked again, and the round
    /// counts it as one).
    async fn app_token_taken(&self) -> Result<bool, String> {
        if let Some(known) = *crate::locks::lock(&self.app_token_taken) {
            return Ok(known);
        }
        let app_token = format!("{}|{}", self.app.id, self.app.secret.expose_secret());
        let taken = match self.accounts.graph.debug_token(&self.app, &app_token).await {
            Ok(info) => info.is_valid,
            Err(err) if err.failure() == Failure::Outage => {
                return Err(format!("asking Meta about the app token: {err}"));
            }
            Err(_) => false,
        };
        *crate::locks::lock(&self.app_token_taken) = Some(taken);
        Ok(taken)
    }
}

/// Whether debug_token's refusal is about the token asked about: a 4xx with Graph's
/// code 100 (a parameter, the input token, refused). `Some`, with the reason to record
/// when it is not Meta's own words: another Meta app's token cannot serve this app
/// (Meta says "The App_id in the input_token did not match the Viewing App", or asks for
/// "a user access token that is an owner or developer of the app"). Either is taken as
/// the token's only once Meta has said it takes our app token. Other refusals
/// (permissions, versions) are the call's, never an account's.
fn refusal_of_the_token(err: &MetaError) -> Option<Option<String>> {
    let MetaError::Graph(graph) = err else {
        return None;
    };
    let about_the_token = graph.http_status.is_client_error()
        && graph.http_status != reqwest::StatusCode::NOT_FOUND
        && graph.code == Some(100);
    if !about_the_token {
        return None;
    }
    let another_app = graph.message.contains("did not match the Viewing App")
        || graph.message.contains("owner or developer");
    Some(another_app.then(|| "the token belongs to another Meta app".to_owned()))
}

/// What one check found.
enum Checked {
    Fine,
    Flagged,
    NoToken,
}

/// Why one check did not record anything.
enum Stop {
    /// Meta is down or limiting (5xx, 429, rate-limit codes, no answer): these alone
    /// count toward ending a round.
    Outage(String),
    /// A fault of the call's configuration (a 404 of a wrong path, a refused address):
    /// logged, the account asked about again next round.
    Config(String),
    /// Meta refused the call's own credential: the app's token.
    Call(String),
    /// The answer could not be recorded.
    Store(Error),
}
