//! The in-memory routing index: account routes and provider-id claims, for every
//! account a webhook can be for. Pure data; `WebhookRoutes` (this view, `mod.rs`) keeps
//! it current, and the routing rules (`domain::webhook_routes`) ask it through the
//! `Routes` trait.
//!
//! It holds every routable account of the installation (a million is a size it is
//! built for), so an entry is kept small: one slot per account in a vector, the three
//! lookups (by route, by account id, by provider id) are tables of slot numbers, the
//! workspace and division ids are interned, and an account's key and secrets share one
//! allocation, zeroed when the slot goes. About 150 bytes an account in all
//! (`a_slot_stays_small` keeps the slot's part in check).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use uuid::Uuid;

use super::names::{Names, len_u32};
use crate::domain::channel::Channel;
use crate::domain::webhook_routes::{
    MAX_WABA_DELIVERIES, Owner, Recipient, RouteEntry, Routes, WabaRoute,
};

/// The WhatsApp accounts that name one WABA, by workspace; and how many of each
/// workspace's are confirmed owners of their number (the WABA's owner is the workspace
/// with any).
#[derive(Default)]
struct Waba {
    members: HashMap<u32, HashSet<u32>>,
    confirmed: HashMap<u32, u32>,
}

/// No slot, no name.
const NONE: u32 = u32::MAX;

struct Slot {
    account_id: Uuid,
    route: Uuid,
    /// The provider id's 128 bits (`has_provider_id` says whether there is one).
    provider_id: [u8; 16],
    workspace: u32,
    division: u32,
    /// The next claimant of the same provider id, or NONE.
    next_claim: u32,
    channel: Channel,
    has_provider_id: bool,
    claim_confirmed: bool,
    /// `texts` is the account key, then the app secret, then the auth token, then the
    /// Twilio SharedKey.
    key_len: u32,
    app_secret_len: u32,
    auth_token_len: u32,
    texts: SecretBox<[u8]>,
}

impl Slot {
    fn provider_id(&self) -> Option<u128> {
        self.has_provider_id
            .then(|| u128::from_le_bytes(self.provider_id))
    }

    fn texts(&self) -> [&str; 4] {
        let texts = self.texts.expose_secret();
        let (key, rest) = texts.split_at(self.key_len as usize);
        let (app_secret, rest) = rest.split_at(self.app_secret_len as usize);
        let (auth_token, shared_key) = rest.split_at(self.auth_token_len as usize);
        // Written from four strings cut at their own lengths: always UTF-8.
        let text = |bytes| std::str::from_utf8(bytes).unwrap_or_default();
        [key, app_secret, auth_token, shared_key].map(text)
    }
}

#[derive(Default)]
pub struct RouteIndex {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_route: HashTable<u32>,
    by_account: HashTable<u32>,
    /// One entry per claimed (channel, provider id): its first claimant's slot, the
    /// others chained through `Slot::next_claim`.
    claims: HashTable<u32>,
    /// WhatsApp accounts by the WABA they name (keyed with the random hasher, as WABA
    /// ids are chosen by tenants), and each such slot's WABA and displayed number.
    wabas: HashMap<u128, Waba>,
    waba_of: HashMap<u32, (u128, Option<u64>)>,
    names: Names,
    /// Keyed: provider ids are chosen by tenants.
    hasher: RandomState,
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
        if let Some(at) = self.find_account(account_id) {
            self.remove(at);
        }
        let Some(entry) = entry else {
            return;
        };
        // A route is unique (the database says so); should a stale entry hold it,
        // the newer write wins.
        if let Some(stale) = self.find_route(entry.route) {
            self.remove(stale);
        }
        debug_assert_eq!(
            account_id, entry.account_id,
            "an entry is put for its own account"
        );
        let claim = entry.provider_id.map(|id| (entry.channel, id));
        let waba = entry.waba_id.map(|waba| (waba, entry.display_number));
        let Some(at) = self.store(entry) else {
            return;
        };
        let Self {
            slots,
            by_route,
            by_account,
            hasher,
            ..
        } = self;
        let Some(slot) = slots[at as usize].as_ref() else {
            return;
        };
        by_route.insert_unique(hasher.hash_one(slot.route), at, |at| {
            hash_of(hasher, slots, *at, |slot| slot.route)
        });
        by_account.insert_unique(hasher.hash_one(slot.account_id), at, |at| {
            hash_of(hasher, slots, *at, |slot| slot.account_id)
        });
        let (workspace, confirmed) = (slot.workspace, slot.claim_confirmed);
        if let Some(key) = claim {
            self.claim(at, key);
        }
        if let Some((waba, display)) = waba {
            self.waba_of.insert(at, (waba, display));
            let members = self.wabas.entry(waba).or_default();
            members.members.entry(workspace).or_default().insert(at);
            if confirmed {
                *members.confirmed.entry(workspace).or_default() += 1;
            }
        }
    }

    /// The account a webhook URL's route names, with its secrets.
    pub fn by_route(&self, route: Uuid) -> Option<RouteEntry> {
        let at = self.find_route(route)?;
        self.slot(at).map(|slot| self.entry(at, slot))
    }

    /// The owner of a provider id: the one claim Meta confirmed. Claims Meta has not
    /// confirmed make no owner, however few.
    pub fn owner(&self, channel: Channel, id: u128) -> Owner {
        let Some(first) = self.find_claim(channel, id) else {
            return Owner::Nobody;
        };
        let claimants = std::iter::successors(self.slot(first), |slot| self.slot(slot.next_claim));
        let mut confirmed = claimants.filter(|slot| slot.claim_confirmed);
        match (confirmed.next(), confirmed.next()) {
            (Some(owner), None) => Owner::One(self.recipient(owner)),
            _ => Owner::Unconfirmed,
        }
    }

    /// Where an entry of WABA `waba` goes: to the owning workspace's account whose
    /// displayed number is `display`, when the entry names one; otherwise to each of
    /// that workspace's accounts of the WABA (at most [`MAX_WABA_DELIVERIES`]; past it,
    /// none, said so). Only
    /// the owner's accounts are read, however many other workspaces name the WABA.
    pub fn waba_route(&self, waba: u128, display: Option<u64>) -> WabaRoute {
        let Some(members) = self.wabas.get(&waba) else {
            return WabaRoute::NoOwner;
        };
        let mut owners = members.confirmed.iter().filter(|(_, count)| **count > 0);
        let owner = match (owners.next(), owners.next()) {
            (Some((workspace, _)), None) => *workspace,
            (None, _) => return WabaRoute::NoOwner,
            (Some(_), Some(_)) => return WabaRoute::Contested,
        };
        let accounts = members.members.get(&owner).into_iter().flatten();
        let mut recipients: Vec<Recipient> = accounts
            .filter(|at| {
                display.is_none() || self.waba_of.get(at).and_then(|(_, shown)| *shown) == display
            })
            .filter_map(|at| self.slot(*at).map(|slot| self.recipient(slot)))
            .take(MAX_WABA_DELIVERIES + 1)
            .collect();
        if recipients.is_empty() {
            return WabaRoute::NoSuchNumber;
        }
        if recipients.len() > MAX_WABA_DELIVERIES {
            return WabaRoute::TooMany;
        }
        recipients.sort_unstable_by_key(|recipient| recipient.account_id);
        WabaRoute::Accounts(recipients)
    }

    /// How many accounts the index holds.
    pub fn len(&self) -> usize {
        self.by_account.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_account.is_empty()
    }

    fn slot(&self, at: u32) -> Option<&Slot> {
        self.slots.get(at as usize)?.as_ref()
    }

    fn find_route(&self, route: Uuid) -> Option<u32> {
        let hash = self.hasher.hash_one(route);
        let found = self.by_route.find(hash, |at| {
            self.slot(*at).is_some_and(|slot| slot.route == route)
        });
        found.copied()
    }

    fn find_account(&self, account_id: Uuid) -> Option<u32> {
        let hash = self.hasher.hash_one(account_id);
        let found = self.by_account.find(hash, |at| {
            self.slot(*at)
                .is_some_and(|slot| slot.account_id == account_id)
        });
        found.copied()
    }

    fn find_claim(&self, channel: Channel, id: u128) -> Option<u32> {
        let hash = self.hasher.hash_one((channel, id));
        let found = self.claims.find(hash, |at| {
            self.slot(*at)
                .is_some_and(|slot| slot.channel == channel && slot.provider_id() == Some(id))
        });
        found.copied()
    }

    /// Puts `entry` in a free slot (or a new one) and returns its number. Its tables
    /// are the caller's to fill. `None` past four billion slots (numbers end at NONE).
    fn store(&mut self, entry: RouteEntry) -> Option<u32> {
        if self.free.is_empty() && self.slots.len() >= NONE as usize {
            return None;
        }
        let secret = |text: &Option<SecretString>| -> usize {
            text.as_ref().map_or(0, |text| text.expose_secret().len())
        };
        let secrets = [&entry.app_secret, &entry.auth_token, &entry.shared_key];
        let mut texts = Vec::with_capacity(
            entry.account_key.len() + secrets.iter().map(|s| secret(s)).sum::<usize>(),
        );
        texts.extend_from_slice(entry.account_key.as_bytes());
        for text in secrets.into_iter().flatten() {
            texts.extend_from_slice(text.expose_secret().as_bytes());
        }
        let slot = Slot {
            account_id: entry.account_id,
            route: entry.route,
            provider_id: entry.provider_id.unwrap_or_default().to_le_bytes(),
            has_provider_id: entry.provider_id.is_some(),
            workspace: self.names.intern(&entry.workspace_id),
            division: entry
                .division_id
                .as_deref()
                .map_or(NONE, |division| self.names.intern(division)),
            next_claim: NONE,
            channel: entry.channel,
            claim_confirmed: entry.claim_confirmed,
            key_len: len_u32(entry.account_key.len()),
            app_secret_len: len_u32(secret(&entry.app_secret)),
            auth_token_len: len_u32(secret(&entry.auth_token)),
            texts: SecretBox::new(texts.into_boxed_slice()),
        };
        if let Some(at) = self.free.pop() {
            self.slots[at as usize] = Some(slot);
            return Some(at);
        }
        // Grown by a quarter, not doubled: at a million accounts a doubling would
        // reserve another hundred megabytes it may never use.
        if self.slots.len() == self.slots.capacity() {
            self.slots.reserve_exact((self.slots.len() / 4).max(64));
        }
        self.slots.push(Some(slot));
        Some(len_u32(self.slots.len() - 1))
    }

    /// Adds slot `at` to the claimants of its provider id.
    fn claim(&mut self, at: u32, (channel, id): (Channel, u128)) {
        match self.find_claim(channel, id) {
            Some(first) => {
                let next = self.slot(first).map_or(NONE, |slot| slot.next_claim);
                if let Some(Some(slot)) = self.slots.get_mut(at as usize) {
                    slot.next_claim = next;
                }
                if let Some(Some(slot)) = self.slots.get_mut(first as usize) {
                    slot.next_claim = at;
                }
            }
            None => {
                let hash = self.hasher.hash_one((channel, id));
                let Self {
                    slots,
                    claims,
                    hasher,
                    ..
                } = self;
                claims.insert_unique(hash, at, |at| {
                    hash_of(hasher, slots, *at, |slot| {
                        (slot.channel, slot.provider_id().unwrap_or_default())
                    })
                });
            }
        }
    }

    /// Takes slot `at` out of every table and frees it.
    fn remove(&mut self, at: u32) {
        let Some(slot) = self.slots.get_mut(at as usize).and_then(Option::take) else {
            return;
        };
        let is_at = |found: &u32| *found == at;
        if let Ok(entry) = self
            .by_route
            .find_entry(self.hasher.hash_one(slot.route), is_at)
        {
            entry.remove();
        }
        if let Ok(entry) = self
            .by_account
            .find_entry(self.hasher.hash_one(slot.account_id), is_at)
        {
            entry.remove();
        }
        if let Some(id) = slot.provider_id() {
            self.unclaim(at, slot.next_claim, (slot.channel, id));
        }
        if let Some((waba, _)) = self.waba_of.remove(&at)
            && let Some(members) = self.wabas.get_mut(&waba)
        {
            if let Some(slots) = members.members.get_mut(&slot.workspace) {
                slots.remove(&at);
                if slots.is_empty() {
                    members.members.remove(&slot.workspace);
                }
            }
            if slot.claim_confirmed
                && let Some(count) = members.confirmed.get_mut(&slot.workspace)
            {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    members.confirmed.remove(&slot.workspace);
                }
            }
            if members.members.is_empty() {
                self.wabas.remove(&waba);
            }
        }
        self.names.release(slot.workspace);
        self.names.release(slot.division);
        self.free.push(at);
    }

    /// Takes slot `at` (already out of `slots`) out of its provider id's claimants.
    fn unclaim(&mut self, at: u32, next: u32, (channel, id): (Channel, u128)) {
        let hash = self.hasher.hash_one((channel, id));
        if let Ok(mut first) = self.claims.find_entry(hash, |found| *found == at) {
            if next == NONE {
                first.remove();
            } else {
                *first.get_mut() = next;
            }
            return;
        }
        // Not the first: unlink it from the chain that leads to it.
        let Some(mut before) = self.find_claim(channel, id) else {
            return;
        };
        while let Some(Some(slot)) = self.slots.get_mut(before as usize) {
            if slot.next_claim == at {
                slot.next_claim = next;
                return;
            }
            before = slot.next_claim;
        }
    }

    fn recipient(&self, slot: &Slot) -> Recipient {
        Recipient {
            account_id: slot.account_id,
            workspace_id: self.names.get(slot.workspace),
            division_id: (slot.division != NONE).then(|| self.names.get(slot.division)),
            channel: slot.channel,
            account_key: slot.texts()[0].into(),
        }
    }

    fn entry(&self, at: u32, slot: &Slot) -> RouteEntry {
        let [account_key, app_secret, auth_token, shared_key] = slot.texts();
        let secret = |text: &str| (!text.is_empty()).then(|| SecretString::from(text.to_owned()));
        RouteEntry {
            account_id: slot.account_id,
            route: slot.route,
            workspace_id: self.names.get(slot.workspace),
            division_id: (slot.division != NONE).then(|| self.names.get(slot.division)),
            channel: slot.channel,
            account_key: account_key.into(),
            provider_id: slot.provider_id(),
            claim_confirmed: slot.claim_confirmed,
            waba_id: self.waba_of.get(&at).map(|(waba, _)| *waba),
            display_number: self.waba_of.get(&at).and_then(|(_, shown)| *shown),
            app_secret: secret(app_secret),
            auth_token: secret(auth_token),
            shared_key: secret(shared_key),
        }
    }
}

fn hash_of<K: std::hash::Hash>(
    hasher: &RandomState,
    slots: &[Option<Slot>],
    at: u32,
    key: impl Fn(&Slot) -> K,
) -> u64 {
    slots[at as usize]
        .as_ref()
        .map_or(0, |slot| hasher.hash_one(key(slot)))
}

impl Routes for RouteIndex {
    fn owner(&self, channel: Channel, id: u128) -> Owner {
        RouteIndex::owner(self, channel, id)
    }

    fn waba_route(&self, waba: u128, display: Option<u64>) -> WabaRoute {
        RouteIndex::waba_route(self, waba, display)
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
