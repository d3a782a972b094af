//! What the server keeps in memory, holder by holder. Each holder states its bound in
//! its module doc and registers here how to count its entries; a scrape of `/metrics`
//! reports them as `patchbay_memory_entries{holder}` (no workspace label). They are
//! counted when scraped, so the hot paths pay nothing for it.
//!
//! | holder              | where                        | bound                          |
//! |---------------------|------------------------------|--------------------------------|
//! | `verified_tokens`   | `views/verified_tokens.rs`   | `--token-cache-capacity`       |
//! | `default_cache`     | `views/defaults/cache.rs`    | `--default-cache-capacity`     |
//! | `kept_answers`      | `views/defaults/answers.rs`  | 32 MiB of encoded answers      |
//! | `known_channels`    | `store/accounts/channels.rs` | 65,536 ids                     |
//! | `default_feeds`     | `views/defaults/feeds.rs`    | watched workspaces             |
//! | `event_wakeups`     | `views/events/mod.rs`        | watched workspaces, 4,096 idle |

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::locks::lock;

type Counter = Box<dyn Fn() -> Option<usize> + Send>;

static HOLDERS: Mutex<Vec<(&'static str, Counter)>> = Mutex::new(Vec::new());

/// Counts `holder`'s entries with `count` for as long as it lives.
pub fn register<T: Send + Sync + 'static>(
    name: &'static str,
    holder: &Arc<T>,
    count: fn(&T) -> usize,
) {
    let weak = Arc::downgrade(holder);
    lock(&HOLDERS).push((
        name,
        Box::new(move || weak.upgrade().map(|holder| count(&holder))),
    ));
}

/// Counts a process-wide holder with `count`.
pub fn register_static(name: &'static str, count: fn() -> usize) {
    lock(&HOLDERS).push((name, Box::new(move || Some(count()))));
}

/// The entries of every live holder, summed by name (a test process runs several
/// servers); holders gone are forgotten.
pub fn entries() -> BTreeMap<&'static str, usize> {
    let mut holders = lock(&HOLDERS);
    let mut counted = BTreeMap::new();
    holders.retain(|(name, count)| match count() {
        Some(entries) => {
            *counted.entry(*name).or_default() += entries;
            true
        }
        None => false,
    });
    counted
}

/// A process-wide holder's name, and how to count its bytes.
type ByteCounter = (&'static str, fn() -> usize);

static BYTES: Mutex<Vec<ByteCounter>> = Mutex::new(Vec::new());

/// Reports a process-wide holder's bytes as `patchbay_memory_bytes{holder}` (once).
pub fn register_bytes_static(name: &'static str, bytes: fn() -> usize) {
    lock(&BYTES).push((name, bytes));
}

/// Sets `patchbay_memory_entries{holder}` (and `patchbay_memory_bytes{holder}` where a
/// holder counts its bytes) for every holder.
pub fn report() {
    for (holder, entries) in entries() {
        metrics::gauge!("patchbay_memory_entries", "holder" => holder).set(entries as f64);
    }
    for (holder, bytes) in lock(&BYTES).iter() {
        metrics::gauge!("patchbay_memory_bytes", "holder" => *holder).set(bytes() as f64);
    }
}
