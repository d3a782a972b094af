//! The GetDefaultAccount answers encoded for a cached default, kept beside its cache
//! entry: the edge encodes a default once per view (admins see the verify token, the
//! others do not) and sends those bytes on every call after. They live exactly as long
//! as the entry (and the calls still holding it): an invalidated default takes its
//! answers with it.
//!
//! Bounds: four answers per cached default (two views, each as served and as asked with
//! `no_fallback`); an answer over [`MAX_KEPT_BYTES`] is encoded
//! per call instead, and the answers of all entries together stay under
//! [`CAPACITY_BYTES`] (past it, new answers are encoded per call until old ones go).
//!
//! (Before #31 the answers were kept in a map of their own, keyed by the record's
//! address and holding a `Weak` of it: every superseded record's allocation stayed
//! pinned until the map filled up, some 20,000 of them, and RSS grew in steps.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, OnceLock};

use bytes::Bytes;

use crate::domain::Account;

/// A larger answer (a config near its 64 KiB limit) is encoded per call, not kept.
pub const MAX_KEPT_BYTES: usize = 16 * 1024;
/// What all kept answers may take together.
pub const CAPACITY_BYTES: usize = 32 * 1024 * 1024;

static KEPT_BYTES: AtomicUsize = AtomicUsize::new(0);
static KEPT_ANSWERS: AtomicUsize = AtomicUsize::new(0);
static COUNTED: Once = Once::new();

/// A cached default, the scope's fallbacks when the default cannot send (read with it:
/// none while it can), and the answers encoded for it.
#[derive(Clone)]
pub struct CachedDefault {
    pub account: Arc<Account>,
    pub fallbacks: Arc<[Arc<Account>]>,
    pub answers: Arc<KeptAnswers>,
    /// The earliest end of a reason of the default or its fallbacks: past it, the
    /// answer may be another with no write, so the entry is read again.
    pub valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl CachedDefault {
    pub fn new(account: Arc<Account>) -> Self {
        Self::with_fallbacks(account, Vec::new())
    }

    pub fn with_fallbacks(account: Arc<Account>, fallbacks: Vec<Arc<Account>>) -> Self {
        COUNTED.call_once(|| {
            crate::memory::register_static("kept_answers", || KEPT_ANSWERS.load(Ordering::Relaxed));
            crate::memory::register_bytes_static("kept_answers", kept_bytes);
        });
        let valid_until = crate::domain::fallbacks::next_until(
            std::iter::once(&*account).chain(fallbacks.iter().map(|fallback| &**fallback)),
            crate::domain::ids::now(),
        );
        Self {
            account,
            fallbacks: fallbacks.into(),
            answers: Arc::new(KeptAnswers::default()),
            valid_until,
        }
    }
}

/// The views of one default: the others' and the admins', each as served and as asked
/// with `no_fallback`.
#[derive(Default)]
pub struct KeptAnswers {
    views: [OnceLock<Bytes>; 4],
}

/// Which of a default's answers.
#[derive(Clone, Copy, Debug)]
pub struct View {
    /// The admins' (they see the verify token).
    pub admin: bool,
    /// The default alone, with no fallback served in its place.
    pub no_fallback: bool,
}

impl KeptAnswers {
    /// The answer of `view`, encoded with `encode` the first time and kept when it
    /// fits.
    pub fn get_or_encode(&self, view: View, encode: impl FnOnce() -> Vec<u8>) -> Bytes {
        let slot = &self.views[usize::from(view.admin) + 2 * usize::from(view.no_fallback)];
        if let Some(kept) = slot.get() {
            return kept.clone();
        }
        let bytes = Bytes::from(encode());
        if bytes.len() > MAX_KEPT_BYTES || !reserve(bytes.len()) {
            return bytes;
        }
        match slot.set(bytes.clone()) {
            Ok(()) => {
                KEPT_ANSWERS.fetch_add(1, Ordering::Relaxed);
                bytes
            }
            Err(_) => {
                // Another call kept the same answer first.
                KEPT_BYTES.fetch_sub(bytes.len(), Ordering::Relaxed);
                bytes
            }
        }
    }
}

/// Takes `len` bytes of the budget, if they fit.
fn reserve(len: usize) -> bool {
    KEPT_BYTES
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
            (kept + len <= CAPACITY_BYTES).then_some(kept + len)
        })
        .is_ok()
}

impl Drop for KeptAnswers {
    fn drop(&mut self) {
        for slot in &self.views {
            if let Some(bytes) = slot.get() {
                KEPT_BYTES.fetch_sub(bytes.len(), Ordering::Relaxed);
                KEPT_ANSWERS.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// The bytes all kept answers take now.
pub fn kept_bytes() -> usize {
    KEPT_BYTES.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OTHERS: View = View {
        admin: false,
        no_fallback: false,
    };

    /// One test: the budget is process-wide, and these steps must not overlap.
    #[test]
    fn answers_are_kept_once_per_view_go_with_their_entry_and_stay_in_budget() {
        let before = kept_bytes();
        let answers = KeptAnswers::default();
        let mut encoded = 0;
        for _ in 0..3 {
            for admin in [false, true] {
                let view = View {
                    admin,
                    no_fallback: false,
                };
                let bytes = answers.get_or_encode(view, || {
                    encoded += 1;
                    vec![u8::from(admin); 100]
                });
                assert_eq!(bytes[0], u8::from(admin));
            }
        }
        assert_eq!(encoded, 2, "each view encoded once");
        assert_eq!(kept_bytes(), before + 200);
        drop(answers);
        assert_eq!(kept_bytes(), before, "an entry's answers go with it");

        // Entries come and go as defaults change; what they keep comes and goes too.
        let mut live = std::collections::VecDeque::new();
        for i in 0..2_000 {
            let answers = KeptAnswers::default();
            let view = View {
                admin: i % 2 == 0,
                no_fallback: false,
            };
            answers.get_or_encode(view, || vec![0; MAX_KEPT_BYTES]);
            live.push_back(answers);
            if live.len() > 100 {
                live.pop_front();
            }
            assert!(kept_bytes() <= before + 100 * MAX_KEPT_BYTES);
        }
        drop(live);
        assert_eq!(kept_bytes(), before);

        // Past the budget, answers are encoded per call.
        let full: Vec<KeptAnswers> = (0..CAPACITY_BYTES / MAX_KEPT_BYTES + 10)
            .map(|_| {
                let answers = KeptAnswers::default();
                answers.get_or_encode(OTHERS, || vec![0; MAX_KEPT_BYTES]);
                answers
            })
            .collect();
        assert!(kept_bytes() <= CAPACITY_BYTES);
        assert!(full.last().is_some_and(|a| a.views[0].get().is_none()));
        drop(full);

        let oversized = KeptAnswers::default();
        let bytes = oversized.get_or_encode(OTHERS, || vec![0; MAX_KEPT_BYTES + 1]);
        assert_eq!(bytes.len(), MAX_KEPT_BYTES + 1, "answered, not kept");
        assert!(oversized.views[0].get().is_none());
        assert_eq!(kept_bytes(), before);
    }
}
