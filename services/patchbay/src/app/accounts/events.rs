//! WatchAccountEvents: what happened to the caller's accounts, from the `account_events`
//! log. A watch resumed from a revision replays the kept events after it, then follows
//! new ones as they are recorded (woken by `events::AccountEventHub`, on every replica).
//! Each event shows the account as it is now, as the caller may see it.

use std::time::Duration;

use tokio::sync::watch;

use super::{AccountView, Accounts};
use crate::domain::account::asked_division;
use crate::domain::account::events::AccountEvent;
use crate::domain::defaults::DefaultsFilter;
use crate::domain::support::now;
use crate::domain::{Caller, Channel, Error};
use crate::store::Store;

/// Events read from the log at a time.
const EVENTS_PER_READ: u64 = 100;

/// An open watch: the last event it passed on, and its wake-ups.
pub struct EventsWatch {
    pub last: i64,
    pub wake: watch::Receiver<i64>,
    filter: DefaultsFilter,
}

impl Accounts {
    /// Opens a watch of the caller's account events after `after_revision` (`None`:
    /// from now). FAILED_PRECONDITION when the events after it are no longer kept.
    pub async fn watch_events(
        &self,
        caller: &Caller,
        channels: Vec<Channel>,
        division_id: Option<String>,
        after_revision: Option<i64>,
    ) -> Result<EventsWatch, Error> {
        let division_id = asked_division(caller, division_id)?;
        // Wake-ups first, then the window: an event recorded in between is read.
        let wake = self.events.subscribe(&caller.workspace_id);
        let (latest, oldest) = self
            .store
            .account_event_window(&caller.workspace_id)
            .await?;
        let last = match after_revision {
            None => latest,
            Some(after) => {
                check_resumable(after, latest, oldest)?;
                after
            }
        };
        Ok(EventsWatch {
            last,
            wake,
            filter: DefaultsFilter {
                channels,
                division_id,
            },
        })
    }

    /// The next events of the watch, each with the account as the caller may see it,
    /// and whether the log has more right now; moves the watch past what it read.
    pub async fn next_events(
        &self,
        caller: &Caller,
        watch: &mut EventsWatch,
    ) -> Result<(Vec<(AccountEvent, AccountView)>, bool), Error> {
        let events = self
            .store
            .account_events_after(&caller.workspace_id, watch.last, EVENTS_PER_READ)
            .await?;
        let more = events.len() as u64 == EVENTS_PER_READ;
        let mut shown = Vec::new();
        for event in events {
            // Numbers have no gaps: one means events were dropped under the watch.
            if event.revision != watch.last + 1 {
                return Err(Error::FailedPrecondition(format!(
                    "the events after revision {} are no longer kept; watch again from now",
                    watch.last
                )));
            }
            watch.last = event.revision;
            let division = event.division_id.as_deref();
            if !caller.can_see(division) || !watch.filter.covers(event.channel, division) {
                continue;
            }
            // One account that cannot be opened costs its events, not the watch.
            let account = match self
                .store
                .account_of_event(&caller.workspace_id, event.account_id)
                .await
            {
                Ok(Some(account)) => account,
                Ok(None) => continue,
                Err(err @ Error::Unavailable(_)) => return Err(err),
                Err(err) => {
                    tracing::error!(account_id = %event.account_id, revision = event.revision, error = %err, "account event skipped: its account cannot be read");
                    continue;
                }
            };
            // The account's division now may be one the caller does not see.
            if !caller.can_see(account.division_id.as_deref()) {
                continue;
            }
            shown.push((event, self.view(caller, account)));
        }
        Ok((shown, more))
    }
}

/// Whether a watch can resume after `after`: every event after it is still kept.
fn check_resumable(after: i64, latest: i64, oldest: Option<i64>) -> Result<(), Error> {
    if after < 0 {
        return Err(Error::InvalidArgument(vec![
            crate::domain::FieldViolation::new("after_revision", "must be 0 or more"),
        ]));
    }
    if after > latest {
        return Err(Error::FailedPrecondition(format!(
            "after_revision {after} is not a revision of this workspace's events (the latest is {latest})"
        )));
    }
    let kept_from = oldest.unwrap_or(latest + 1);
    if after + 1 < kept_from && after < latest {
        return Err(Error::FailedPrecondition(format!(
            "the events after revision {after} are no longer kept (the oldest kept is {kept_from}); watch again from now"
        )));
    }
    Ok(())
}

/// Drops the events older than `keep`, once an hour.
pub async fn retention_task(store: Store, keep: Duration) {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(30));
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        // A retention longer than dates go back keeps everything.
        let Some(before) = now().checked_sub_signed(keep) else {
            continue;
        };
        match store.purge_account_events(before).await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "old account events dropped"),
            Err(err) => tracing::warn!(error = %err, "cannot drop old account events"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_resumable;

    #[test]
    fn a_watch_resumes_only_where_every_later_event_is_kept() {
        // Events 1..=10 kept.
        for after in [0, 1, 9, 10] {
            assert!(check_resumable(after, 10, Some(1)).is_ok(), "{after}");
        }
        assert!(check_resumable(11, 10, Some(1)).is_err(), "from the future");
        assert!(matches!(
            check_resumable(-1, 10, Some(1)),
            Err(crate::domain::Error::InvalidArgument(_))
        ));
        // Events 1..=4 dropped.
        assert!(check_resumable(3, 10, Some(5)).is_err());
        assert!(check_resumable(4, 10, Some(5)).is_ok());
        // Every event dropped: only the latest revision resumes.
        assert!(check_resumable(10, 10, None).is_ok());
        assert!(check_resumable(9, 10, None).is_err());
        // A workspace without events.
        assert!(check_resumable(0, 0, None).is_ok());
    }
}
