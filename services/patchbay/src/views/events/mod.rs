//! Who is told that a workspace has new account events. The events themselves are in
//! the database (`store::account_events`); this only wakes the workspace's tail
//! (`tail`), which then reads what came after the last event it read and hands it to
//! the workspace's watch streams. A write wakes it when it commits; on PostgreSQL the
//! replicas' listener (`defaults::listener`) wakes it for the other replicas' writes. A
//! wake-up lost (a listener reconnecting) costs at most the tail's poll interval, never
//! an event.

pub mod tail;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::locks;
use crate::store::account_events::EventsRecorded;

/// Above this many workspaces with an entry, those nobody watches are dropped. Bound:
/// the workspaces watched now, plus at most this many others (about 100 bytes each).
const TIDY_ABOVE: usize = 4096;

/// Cheap to clone; shared by the account operations, the watch streams and the
/// listener.
#[derive(Clone, Default)]
pub struct AccountEventHub {
    workspaces: Arc<Mutex<HashMap<String, watch::Sender<i64>>>>,
}

impl AccountEventHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts the workspaces with wake-ups in `patchbay_memory_entries`.
    pub fn count_in_memory_gauges(&self) {
        crate::memory::register("event_wakeups", &self.workspaces, |workspaces| {
            locks::lock(workspaces).len()
        });
    }

    /// The workspace's events reached `recorded.revision`: wake its streams.
    pub fn recorded(&self, recorded: &EventsRecorded) {
        let workspaces = locks::lock(&self.workspaces);
        if let Some(sender) = workspaces.get(&recorded.workspace_id) {
            sender.send_if_modified(|latest| {
                let newer = recorded.revision > *latest;
                if newer {
                    *latest = recorded.revision;
                }
                newer
            });
        }
    }

    /// Wakes every stream (the listener reconnected: it may have missed some).
    pub fn wake_all(&self) {
        for sender in locks::lock(&self.workspaces).values() {
            sender.send_modify(|_| {});
        }
    }

    /// Wake-ups for the workspace's new events from now on.
    pub fn subscribe(&self, workspace_id: &str) -> watch::Receiver<i64> {
        let mut workspaces = locks::lock(&self.workspaces);
        if workspaces.len() > TIDY_ABOVE {
            workspaces.retain(|_, sender| sender.receiver_count() > 0);
        }
        workspaces
            .entry(workspace_id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }
}
