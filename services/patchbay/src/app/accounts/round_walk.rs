//! One token round's walk through the accounts, shared by the checker and the
//! refresher: it resumes where the last round was cut short, keeps its lease and its
//! place as it goes (at each page, before each provider call at most once a minute),
//! takes each workspace's turns (`round_place`), and keeps where it ended.

use super::round_place::{RoundPlace, Turn, WorkspaceTurns};
use super::rounds::LeaseKeeper;
use crate::domain::{Account, Error};
use crate::store::Store;
use crate::store::accounts::ExpiryKey;

pub struct RoundWalk<'a> {
    store: &'a Store,
    name: &'a str,
    holder: &'a str,
    lease: LeaseKeeper<'a>,
    /// Whether workspaces that reached their cap are carried to the next rounds.
    carry: bool,
    /// The last account dealt with: the walk goes on after it.
    pub after: Option<ExpiryKey>,
    turns: WorkspaceTurns,
}

impl<'a> RoundWalk<'a> {
    /// Resumes where the round `name` was cut short (or begins at the start), at most
    /// `cap` accounts of a workspace.
    pub async fn begin(
        store: &'a Store,
        name: &'a str,
        holder: &'a str,
        cap: usize,
        carry: bool,
    ) -> Result<Self, Error> {
        let kept = store.leases().round_cursor(name).await?;
        let place = RoundPlace::read(kept.as_deref());
        let carried = if carry {
            place.capped
        } else {
            Default::default()
        };
        Ok(Self {
            store,
            name,
            holder,
            lease: LeaseKeeper::new(store, name, holder),
            carry,
            after: place.after,
            turns: WorkspaceTurns::new(cap, carried),
        })
    }

    /// Before each page: the lease renewed and the place kept, so that a replica that
    /// stops mid-round is resumed after the last account it dealt with.
    pub async fn page(&mut self) -> Result<(), Error> {
        self.lease.keep().await?;
        let kept = self.place(false);
        self.store
            .leases()
            .keep_round_cursor(self.name, self.holder, kept.text().as_deref())
            .await
    }

    /// Before a provider call: the lease renewed when a minute has passed.
    pub async fn keep_lease(&mut self) -> Result<(), Error> {
        self.lease.keep().await
    }

    /// What the round does with `account`; one it does not check is dealt with.
    pub fn turn(&mut self, account: &Account) -> Turn {
        let turn = self.turns.turn(account);
        if turn != Turn::Check {
            self.dealt(account);
        }
        turn
    }

    /// The walk goes on after `account`.
    pub fn dealt(&mut self, account: &Account) {
        self.after = Some(ExpiryKey::of(account));
    }

    /// Keeps where the round ended: nothing to resume after a whole round (only the
    /// workspaces carried over), the place after one cut short.
    pub async fn end(self, whole: bool) {
        let place = self.place(whole);
        if let Err(err) = self
            .store
            .leases()
            .keep_round_cursor(self.name, self.holder, place.text().as_deref())
            .await
        {
            tracing::warn!(round = self.name, error = %err, "cannot keep where the round stopped");
        }
    }

    fn place(&self, whole: bool) -> RoundPlace {
        let mut place = self.turns.place(self.after.clone(), whole);
        if !self.carry {
            place.capped.clear();
        }
        place
    }
}
