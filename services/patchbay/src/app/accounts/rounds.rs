//! The loop every background round shares: a round now, then one every interval, each
//! run only by the replica that takes its lease (`store::leases`), which it gives back
//! when the round ends, whatever came of it.

use std::future::Future;
use std::time::Duration;

use crate::domain::ids::now;
use crate::store::Store;

/// Runs `round` every `every` under the lease `name`, as `holder`, until the process
/// ends.
pub async fn every_round<F, Fut>(store: &Store, name: &str, holder: &str, every: Duration, round: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match store
            .leases()
            .try_take_round(name, holder, every, now())
            .await
        {
            Ok(true) => {
                round().await;
                if let Err(err) = store.leases().end_round(name, holder, now()).await {
                    tracing::warn!(round = name, error = %err, "cannot give the round's lease back");
                }
            }
            Ok(false) => tracing::debug!(round = name, "another replica runs this round"),
            Err(err) => tracing::warn!(round = name, error = %err, "cannot take the round's lease"),
        }
    }
}

/// Runs `round` once, under the lease `name`, unless another replica holds it or began
/// it less than `guard` ago; then waits until the process ends (a task that ended
/// would be restarted by its supervisor).
pub async fn once_then_idle<F, Fut>(
    store: &Store,
    name: &str,
    holder: &str,
    guard: Duration,
    round: F,
) where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    match store
        .leases()
        .try_take_round(name, holder, guard, now())
        .await
    {
        Ok(true) => {
            round().await;
            if let Err(err) = store.leases().end_round(name, holder, now()).await {
                tracing::warn!(round = name, error = %err, "cannot give the round's lease back");
            }
        }
        Ok(false) => tracing::debug!(round = name, "another replica ran this round"),
        Err(err) => tracing::warn!(round = name, error = %err, "cannot take the round's lease"),
    }
    std::future::pending::<()>().await;
}

/// Keeps a round's lease while it runs: renewed at most once a minute (a lease holds for
/// ten), so that a page of slow provider calls cannot outlast it; a round whose lease
/// another replica took stops (ABORTED).
pub struct LeaseKeeper<'a> {
    store: &'a Store,
    name: &'a str,
    holder: &'a str,
    renewed: Option<tokio::time::Instant>,
}

impl<'a> LeaseKeeper<'a> {
    pub fn new(store: &'a Store, name: &'a str, holder: &'a str) -> Self {
        Self {
            store,
            name,
            holder,
            renewed: None,
        }
    }

    pub async fn keep(&mut self) -> Result<(), crate::domain::Error> {
        let due = self
            .renewed
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
        if due {
            self.store
                .leases()
                .renew_round(self.name, self.holder, now())
                .await?;
            self.renewed = Some(tokio::time::Instant::now());
        }
        Ok(())
    }
}
