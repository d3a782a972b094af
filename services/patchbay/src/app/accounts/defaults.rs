//! Default accounts: the one that sends for a scope (answered from the fast path in
//! `crate::views::defaults`), and watches of a caller's defaults.

use super::{AccountView, Accounts};
use crate::domain::account::asked_division;
use crate::domain::defaults::{DefaultsFilter, Scope, fallback_scopes};
use crate::domain::{Caller, Channel, Error, RecordKind};
use crate::views::defaults::{CachedDefault, Subscription, shareable};

/// What a watch starts from: the defaults it covers now, and its place in the feed of
/// changes that follow.
pub struct DefaultsWatch {
    pub snapshot: Vec<AccountView>,
    /// The covered scopes' fallbacks, in order, each scope with a list once.
    pub fallbacks: Vec<(Scope, Vec<AccountView>)>,
    pub subscription: Subscription,
    pub filter: DefaultsFilter,
}

impl Accounts {
    /// GetDefaultAccount's answer: the division's default when it has one, else the
    /// workspace-wide default; the cached record itself, masked (its
    /// secrets are never in the cache) and shared, the same until the scope's defaults
    /// change, with the answers the edge encoded for it kept beside it.
    pub async fn default_record(
        &self,
        caller: &Caller,
        channel: Channel,
        division_id: Option<String>,
    ) -> Result<CachedDefault, Error> {
        let division = asked_division(caller, division_id)?;
        let ws = caller.workspace_id();
        for scope in fallback_scopes(division.as_deref()) {
            if let Some(found) = self.defaults.scope_default(ws, channel, scope).await? {
                return Ok(found);
            }
        }
        Err(Error::NotFound {
            kind: RecordKind::Account,
            id: format!("default of channel {channel}"),
        })
    }

    /// Starts a watch of the caller's defaults: of `channels` (every channel when
    /// empty), of the division asked for and the workspace-wide scopes, or of every
    /// division the caller sees when none is asked for.
    pub async fn watch_defaults(
        &self,
        caller: &Caller,
        channels: Vec<Channel>,
        division_id: Option<String>,
    ) -> Result<DefaultsWatch, Error> {
        let division_id = asked_division(caller, division_id)?;
        let filter = DefaultsFilter {
            channels,
            division_id,
        };
        // Subscribe first, then read: whatever changes in between is in the snapshot
        // and comes again as a change, which a watcher applies twice harmlessly.
        let subscription = self.defaults.subscribe(caller.workspace_id()).await?;
        let snapshot = self
            .store
            .accounts()
            .list_default_accounts(caller.workspace_id(), &filter)
            .await?
            .into_iter()
            .map(|account| self.present(caller, shareable(account)))
            .collect();
        let fallbacks = self
            .store
            .fallbacks()
            .covered_fallbacks(caller.workspace_id(), &filter)
            .await?
            .into_iter()
            .map(|(scope, accounts)| {
                let shown = accounts
                    .into_iter()
                    .map(|account| self.present(caller, shareable(account)))
                    .collect();
                (scope, shown)
            })
            .collect();
        Ok(DefaultsWatch {
            snapshot,
            fallbacks,
            subscription,
            filter,
        })
    }
}
