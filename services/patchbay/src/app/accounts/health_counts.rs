//! The health round's counts as every replica exports them. The replica that ran a
//! round keeps its counts in the store (the `account_health_counts` lease row's
//! cursor), and every replica reads them back each minute and sets its gauges, so that
//! each replica shows the last round's counts whichever replica ran it, and a count
//! that fell to zero reads zero everywhere: `max` across replicas is the last round's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::health_round::HealthTally;
use crate::domain::Channel;
use crate::domain::ids::now;
use crate::store::Store;
use patchbay_sdk::health::State;

/// The lease row the counts are kept with.
const COUNTS_LEASE: &str = "account_health_counts";
/// How often each replica reads the kept counts back.
const FOLLOW_EVERY: Duration = Duration::from_secs(60);

const STATES: [(State, &str); 3] = [
    (State::Healthy, "healthy"),
    (State::Degraded, "degraded"),
    (State::Unavailable, "unavailable"),
];

/// What the gauges show; `None` where no round has counted it yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// (channel, state, active accounts), from the last round that walked every
    /// account from the start.
    #[serde(default)]
    pub by_health: Option<Vec<(String, String, u64)>>,
    /// (channel, scopes a fallback serves), from the last census.
    #[serde(default)]
    pub on_fallback: Option<Vec<(String, u64)>>,
    /// When the accounts were last counted, and the scopes (Unix seconds): how old the
    /// gauges are, for an alert to tell.
    #[serde(default)]
    pub accounts_counted_at: Option<i64>,
    #[serde(default)]
    pub scopes_counted_at: Option<i64>,
}

impl Counts {
    /// A round's counts: every channel (and state), zeros too; the accounts' only from
    /// a whole round, the scopes' only when the census was taken.
    pub fn of(tally: &HealthTally, census_taken: bool) -> Counts {
        let by_health = tally.whole.then(|| {
            Channel::ALL
                .iter()
                .flat_map(|channel| {
                    STATES.iter().map(move |(state, name)| {
                        let count = tally.by_health.get(&(*channel, *state)).copied();
                        (
                            channel.as_str().to_owned(),
                            (*name).to_owned(),
                            count.unwrap_or(0),
                        )
                    })
                })
                .collect()
        });
        let on_fallback = census_taken.then(|| {
            Channel::ALL
                .iter()
                .map(|channel| {
                    let count = tally.on_fallback.get(channel).copied().unwrap_or(0);
                    (channel.as_str().to_owned(), count)
                })
                .collect()
        });
        let at = now().timestamp();
        Counts {
            accounts_counted_at: by_health.is_some().then_some(at),
            scopes_counted_at: on_fallback.is_some().then_some(at),
            by_health,
            on_fallback,
        }
    }

    /// These counts over those kept before: what this round did not count stays.
    fn over(self, kept: Counts) -> Counts {
        Counts {
            by_health: self.by_health.or(kept.by_health),
            on_fallback: self.on_fallback.or(kept.on_fallback),
            accounts_counted_at: self.accounts_counted_at.or(kept.accounts_counted_at),
            scopes_counted_at: self.scopes_counted_at.or(kept.scopes_counted_at),
        }
    }

    /// Sets this replica's gauges (no workspace label).
    fn publish(&self) {
        for (channel, state, count) in self.by_health.iter().flatten() {
            metrics::gauge!("patchbay_accounts_by_health", "channel" => channel.clone(), "state" => state.clone())
                .set(*count as f64);
        }
        for (channel, count) in self.on_fallback.iter().flatten() {
            metrics::gauge!("patchbay_scopes_on_fallback", "channel" => channel.clone())
                .set(*count as f64);
        }
        for (what, at) in [
            ("accounts", self.accounts_counted_at),
            ("scopes", self.scopes_counted_at),
        ] {
            if let Some(at) = at {
                metrics::gauge!("patchbay_account_health_counted_timestamp_seconds", "counts" => what)
                    .set(at as f64);
            }
        }
    }
}

/// The counts kept by the last round, if any can be read.
async fn read(store: &Store) -> Option<Counts> {
    let kept = store.leases().round_cursor(COUNTS_LEASE).await.ok()??;
    serde_json::from_str(&kept).ok()
}

/// Publishes a round's counts here and keeps them for the other replicas (written under
/// the counts' own lease, taken and given back at once).
pub async fn keep(store: &Store, holder: &str, counts: &Counts) {
    let kept = read(store).await.unwrap_or_default();
    let merged = counts.clone().over(kept);
    merged.publish();
    let Ok(text) = serde_json::to_string(&merged) else {
        return;
    };
    let leases = store.leases();
    let written = async {
        if leases
            .try_take_round(COUNTS_LEASE, holder, Duration::ZERO, now())
            .await?
        {
            leases
                .keep_round_cursor(COUNTS_LEASE, holder, Some(&text))
                .await?;
            leases.end_round(COUNTS_LEASE, holder, now()).await?;
        } else {
            tracing::warn!(
                "the health round's counts are not kept for the other replicas: another holds their lease"
            );
        }
        Ok::<(), crate::domain::Error>(())
    };
    if let Err(err) = written.await {
        tracing::warn!(error = %err, "cannot keep the health round's counts for the other replicas");
    }
}

/// Reads the kept counts back every minute and publishes them: until the process ends.
pub async fn follow(store: &Store) {
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        if let Some(counts) = read(store).await {
            counts.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_s_counts_cover_every_channel_and_keep_what_it_did_not_count() {
        let mut tally = HealthTally {
            whole: true,
            ..HealthTally::default()
        };
        tally.by_health.insert((Channel::Sms, State::Healthy), 2);
        let counts = Counts::of(&tally, false);
        let by_health = counts.by_health.clone().expect("a whole round counts");
        assert_eq!(by_health.len(), Channel::ALL.len() * 3);
        assert!(by_health.contains(&("sms".into(), "healthy".into(), 2)));
        assert!(by_health.contains(&("email".into(), "unavailable".into(), 0)));
        // No census this time: the last one's scopes stay.
        let kept = Counts {
            on_fallback: Some(vec![("whatsapp".into(), 1)]),
            scopes_counted_at: Some(1),
            ..Counts::default()
        };
        let merged = counts.over(kept.clone());
        assert_eq!(merged.on_fallback, kept.on_fallback);
        assert_eq!(merged.scopes_counted_at, Some(1));
        assert!(merged.accounts_counted_at.is_some());
        // A round cut short counts no accounts: the last whole round's stay.
        tally.whole = false;
        let partial = Counts::of(&tally, true).over(merged.clone());
        assert_eq!(partial.by_health, merged.by_health);
        assert_eq!(
            partial.on_fallback.map(|c| c.len()),
            Some(Channel::ALL.len())
        );
    }
}
