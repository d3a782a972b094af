//! WatchAccountEvents: what happened to the caller's accounts, from the `account_events`
//! log. A watch follows its workspace's tail (`events::tail`: one reader of the log per
//! workspace and replica, shared by every stream); one resumed from an older revision
//! first replays the kept events after it from the log itself. Each event shows the
//! account as it is now, as the caller may see it.

use std::time::Duration;

use super::{AccountView, Accounts};
use crate::domain::account::asked_division;
use crate::domain::account::events::AccountEvent;
use crate::domain::defaults::DefaultsFilter;
use crate::domain::ids::now;
use crate::domain::{Account, Caller, Channel, Error};
use crate::store::Store;
use crate::views::events::tail::{Subscription, TailEvent};

/// Events read from the log at a time.
const EVENTS_PER_READ: u64 = 100;

/// An open watch: the last event it passed on, and its place at the tail.
pub struct EventsWatch {
    pub last: i64,
    /// Events after `tail.start` arrive in its queue; those up to it are read from the
    /// log ([`Accounts::next_events`]).
    pub tail: Subscription,
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
        // The tail first, then the window: an event recorded in between is in both.
        let tail = self.tails.subscribe(caller.workspace_id()).await?;
        let last = match after_revision {
            None => tail.start,
            Some(after) => {
                let (latest, oldest) = self
                    .store
                    .events()
                    .account_event_window(caller.workspace_id())
                    .await?;
                check_resumable(after, latest.max(tail.start), oldest)?;
                after
            }
        };
        Ok(EventsWatch {
            last,
            tail,
            filter: DefaultsFilter {
                channels,
                division_id,
            },
        })
    }

    /// The next events of a watch resumed from before its tail's start, read from the
    /// log, each with the account as the caller may see it; moves the watch past what it
    /// read. Empty once the watch has caught up with the tail.
    pub async fn next_events(
        &self,
        caller: &Caller,
        watch: &mut EventsWatch,
    ) -> Result<Vec<(AccountEvent, AccountView)>, Error> {
        if watch.last >= watch.tail.start {
            return Ok(Vec::new());
        }
        let events = self
            .store
            .events()
            .account_events_after(caller.workspace_id(), watch.last, EVENTS_PER_READ)
            .await?;
        if events.is_empty() {
            // Numbers have no gaps, and the tail stood further on: they were dropped.
            return Err(Error::FailedPrecondition(format!(
                "the events after revision {} are no longer kept; watch again from now",
                watch.last
            )));
        }
        let mut shown = Vec::new();
        for event in events {
            // Only the events this watch shows cost a read of their account.
            if !self.passes(caller, watch, &event)? {
                continue;
            }
            let account = match self
                .store
                .events()
                .account_of_event(caller.workspace_id(), event.account_id)
                .await
            {
                Ok(account) => account.map(std::sync::Arc::new),
                Err(err @ Error::Unavailable(_)) => return Err(err),
                Err(err) => {
                    tracing::error!(account_id = %event.account_id, revision = event.revision, error = %err, "account event skipped: its account cannot be read");
                    None
                }
            };
            if let Some(seen) = self.presented(caller, event, account.as_deref()) {
                shown.push(seen);
            }
        }
        Ok(shown)
    }

    /// One event the tail handed on, as the watch's caller may see it (`None`: not
    /// theirs to see, or already passed on); moves the watch past it.
    pub fn shown(
        &self,
        caller: &Caller,
        watch: &mut EventsWatch,
        tailed: &TailEvent,
    ) -> Result<Option<(AccountEvent, AccountView)>, Error> {
        if !self.passes(caller, watch, &tailed.event)? {
            return Ok(None);
        }
        Ok(self.presented(caller, tailed.event.clone(), tailed.account.as_deref()))
    }

    /// Moves the watch past `event`, and whether the watch shows it: one of its channels,
    /// in a division the caller sees. An event already passed on is not shown again.
    fn passes(
        &self,
        caller: &Caller,
        watch: &mut EventsWatch,
        event: &AccountEvent,
    ) -> Result<bool, Error> {
        if event.revision <= watch.last {
            return Ok(false);
        }
        // Numbers have no gaps: one means events were dropped under the watch.
        if event.revision != watch.last + 1 {
            return Err(Error::FailedPrecondition(format!(
                "the events after revision {} are no longer kept; watch again from now",
                watch.last
            )));
        }
        watch.last = event.revision;
        let division = event.division_id.as_deref();
        Ok(caller.can_see(division) && watch.filter.covers(event.channel, division))
    }

    /// The event with its account as the caller may see it; `None` when the account
    /// is gone, cannot be read, or is now in a division the caller does not see.
    fn presented(
        &self,
        caller: &Caller,
        event: AccountEvent,
        account: Option<&Account>,
    ) -> Option<(AccountEvent, AccountView)> {
        let account = account?;
        if !caller.can_see(account.division_id.as_deref()) {
            return None;
        }
        Some((event, self.view(caller, account.clone())))
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
        match store.events().purge_account_events(before).await {
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
