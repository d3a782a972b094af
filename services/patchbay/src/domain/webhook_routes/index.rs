//! The in-memory routing index: account routes and provider-id claims, for every
//! account a webhook can be for. Pure data; `routes` keeps it current.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::RouteEntry;
use crate::domain::channel::Channel;

/// Who owns a provider id.
#[derive(Debug)]
pub enum Owner {
    One(Arc<RouteEntry>),
    Nobody,
    /// Two or more claims and none confirmed (or, which the database forbids, more
    /// than one confirmed): routed nowhere until one is.
    Contested,
}

#[derive(Default)]
pub struct RouteIndex {
    /// By webhook route (its 128 bits).
    routes: HashMap<u128, Arc<RouteEntry>>,
    /// Each indexed account's route, to replace its entry.
    by_account: HashMap<Uuid, u128>,
    /// Routes of the accounts claiming each provider id.
    claims: HashMap<(Channel, u128), Vec<u128>>,
}

impl RouteIndex {
    pub fn from_entries(entries: impl IntoIterator<Item = RouteEntry>) -> RouteIndex {
        let mut index = RouteIndex::default();
        for entry in entries {
            index.put(entry.account_id, Some(entry));
        }
        index
    }

    /// Sets what the index holds for `account_id`: its entry, or nothing (deleted, or
    /// no longer routable).
    pub fn put(&mut self, account_id: Uuid, entry: Option<RouteEntry>) {
        if let Some(route) = self.by_account.remove(&account_id) {
            if let Some(old) = self.routes.remove(&route) {
                self.unclaim(&old);
            }
        }
        let Some(entry) = entry else {
            return;
        };
        let route = entry.route.as_u128();
        // A route is unique (the database says so); should a stale entry hold it,
        // the newer write wins.
        if let Some(stale) = self.routes.remove(&route) {
            self.by_account.remove(&stale.account_id);
            self.unclaim(&stale);
        }
        if let Some(id) = entry.provider_id {
            self.claims
                .entry((entry.channel, id))
                .or_default()
                .push(route);
        }
        self.by_account.insert(account_id, route);
        self.routes.insert(route, Arc::new(entry));
    }

    fn unclaim(&mut self, entry: &RouteEntry) {
        let Some(id) = entry.provider_id else {
            return;
        };
        let key = (entry.channel, id);
        if let Some(claimants) = self.claims.get_mut(&key) {
            claimants.retain(|route| *route != entry.route.as_u128());
            if claimants.is_empty() {
                self.claims.remove(&key);
            }
        }
    }

    /// The account a webhook URL's route names.
    pub fn by_route(&self, route: Uuid) -> Option<&Arc<RouteEntry>> {
        self.routes.get(&route.as_u128())
    }

    /// The owner of a provider id: the one confirmed claim, else the sole claim.
    pub fn owner(&self, channel: Channel, id: u128) -> Owner {
        let Some(claimants) = self.claims.get(&(channel, id)) else {
            return Owner::Nobody;
        };
        let entries = claimants.iter().filter_map(|route| self.routes.get(route));
        let mut confirmed = entries.clone().filter(|entry| entry.claim_confirmed);
        match (confirmed.next(), confirmed.next()) {
            (Some(owner), None) => return Owner::One(owner.clone()),
            (Some(_), Some(_)) => return Owner::Contested,
            (None, _) => {}
        }
        let mut all = entries;
        match (all.next(), all.next()) {
            (Some(owner), None) => Owner::One(owner.clone()),
            (None, _) => Owner::Nobody,
            (Some(_), Some(_)) => Owner::Contested,
        }
    }

    /// How many accounts the index holds.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}
