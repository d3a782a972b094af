//! Watch-stream shares: each workspace may hold at most its share of the server's open
//! watch streams, so that one tenant's thousands of watches never shed another's.
//! Beyond its share a workspace gets RESOURCE_EXHAUSTED at once, never a queue. (Calls
//! in flight are shared by the fair rule instead: `places`.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::locks;

/// Above this many workspaces with an entry, idle entries are dropped.
const TIDY_ABOVE: usize = 4096;

#[derive(Debug)]
pub struct WorkspaceShares {
    share: usize,
    taken: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl WorkspaceShares {
    pub fn new(share: usize) -> Self {
        Self {
            share,
            taken: Mutex::new(HashMap::new()),
        }
    }

    /// A place in `workspace`'s share, or `None` when it is all taken.
    pub fn try_take(&self, workspace: &str) -> Option<OwnedSemaphorePermit> {
        // Taken under the lock, so that tidying cannot drop an entry between lookup and
        // acquisition (and give the workspace a second, fresh share).
        let mut taken = locks::lock(&self.taken);
        // The hot path: a workspace seen before, found without allocating its name.
        if let Some(share) = taken.get(workspace) {
            return share.clone().try_acquire_owned().ok();
        }
        if taken.len() > TIDY_ABOVE {
            let share = self.share;
            taken.retain(|_, s| s.available_permits() < share);
        }
        taken
            .entry(workspace.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.share)))
            .clone()
            .try_acquire_owned()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_holding_its_share_leaves_the_others_theirs() {
        let shares = WorkspaceShares::new(2);
        let a1 = shares.try_take("a").expect("first");
        let _a2 = shares.try_take("a").expect("second");
        assert!(shares.try_take("a").is_none(), "a's share is taken");
        assert!(shares.try_take("b").is_some(), "b still has its own");
        drop(a1);
        assert!(shares.try_take("a").is_some(), "a place came back");
    }
}
