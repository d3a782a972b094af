//! The server's places for calls in flight, taken by the authentication interceptor once
//! the request message has arrived (the overload layer waits for it first), and given
//! back when the call's [`Caller`](crate::domain::Caller) goes. Who gets one is the rule
//! in [`crate::domain::fair_share`]. RouteWebhook, the webhook gateway's one call, runs
//! on places of its own: tenants' calls cannot take them, and the gateway cannot take
//! theirs. A refusal is RESOURCE_EXHAUSTED at once, never a queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::fair_share::{self, Occupancy, Shed};
use crate::locks;

#[derive(Debug)]
pub struct CallPlaces {
    capacity: usize,
    workspace_cap: usize,
    held: Mutex<Held>,
    gateway: Arc<Semaphore>,
}

/// Places held now; a workspace holding none has no entry, so the map never outgrows
/// the server's places.
#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_workspace: HashMap<String, usize>,
}

impl CallPlaces {
    pub fn new(capacity: usize, workspace_cap: usize, gateway: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity,
            workspace_cap: workspace_cap.min(capacity),
            held: Mutex::new(Held::default()),
            gateway: Arc::new(Semaphore::new(gateway)),
        })
    }

    /// A place for a call of `workspace`, or why there is none.
    pub fn take(self: &Arc<Self>, workspace: &str) -> Result<Place, Shed> {
        let mut held = locks::lock(&self.held);
        let mine = held.by_workspace.get(workspace).copied().unwrap_or(0);
        fair_share::admit(Occupancy {
            capacity: self.capacity,
            workspace_cap: self.workspace_cap,
            held: held.total,
            held_by_workspace: mine,
            workspaces_holding: held.by_workspace.len(),
        })?;
        held.total += 1;
        match held.by_workspace.get_mut(workspace) {
            Some(count) => *count += 1,
            None => {
                held.by_workspace.insert(workspace.to_owned(), 1);
            }
        }
        Ok(Place {
            places: self.clone(),
            workspace: workspace.to_owned(),
        })
    }

    /// One of the gateway's places, or `None` when they are all held.
    pub fn take_gateway(&self) -> Option<OwnedSemaphorePermit> {
        self.gateway.clone().try_acquire_owned().ok()
    }

    fn give_back(&self, workspace: &str) {
        let mut held = locks::lock(&self.held);
        held.total = held.total.saturating_sub(1);
        if let Some(count) = held.by_workspace.get_mut(workspace) {
            *count -= 1;
            if *count == 0 {
                held.by_workspace.remove(workspace);
            }
        }
    }
}

/// A workspace's place, given back when dropped.
#[derive(Debug)]
pub struct Place {
    places: Arc<CallPlaces>,
    workspace: String,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.places.give_back(&self.workspace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_come_back_and_the_map_forgets_idle_workspaces() {
        let places = CallPlaces::new(20, 20, 1);
        let a: Vec<_> = (0..18).map(|_| places.take("a").expect("a")).collect();
        // 18 of 20 is 90%: a, holding 18 of a fair part of 20 (alone), is still served.
        let a19 = places.take("a").expect("a alone may use every place");
        // b arrives: the fair part is max(8, 20 / 1) for b's first, then 20 / 2 = 10.
        let b = places.take("b").expect("b holds nothing");
        assert_eq!(places.take("a").expect_err("refused"), Shed::Server);
        drop(a19);
        assert_eq!(
            places.take("a").expect_err("refused"),
            Shed::FairShare,
            "a holds 18, over its part of 10"
        );
        let b2 = places.take("b").expect("b is under its part");
        drop((a, b, b2));
        let held = locks::lock(&places.held);
        assert_eq!(held.total, 0);
        assert!(held.by_workspace.is_empty());
    }

    #[test]
    fn the_gateway_has_places_of_its_own() {
        let places = CallPlaces::new(1, 1, 1);
        let _tenant = places.take("a").expect("a");
        let gateway = places.take_gateway().expect("the gateway's own");
        assert!(places.take_gateway().is_none());
        drop(gateway);
        assert!(places.take_gateway().is_some());
    }
}
