//! One bad record never fails the others. A row whose secrets cannot be opened (its key
//! left the ring, a corrupted value) or that does not decode fails only its own read;
//! lists, watch snapshots, the token refresher and key rotation skip it, with an ERROR
//! log naming the record and a running count, so that one tenant's broken row cannot
//! take a workspace's lists or an installation's background rounds down with it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use crate::domain::{Error, RecordKind};

static SKIPPED: AtomicU64 = AtomicU64::new(0);

/// How many unreadable records reads have skipped since the process started.
pub fn unreadable_records_skipped() -> u64 {
    SKIPPED.load(Ordering::Relaxed)
}

/// Whether an error is about the record itself (it cannot be opened or decoded) rather
/// than about the database.
pub fn is_unreadable_record(err: &Error) -> bool {
    matches!(err, Error::DataLoss(_) | Error::SecretUnavailable(_))
}

/// Logs a skipped record and counts it.
pub(crate) fn report_unreadable(kind: RecordKind, id: Uuid, err: &Error) {
    let skipped_total = SKIPPED.fetch_add(1, Ordering::Relaxed) + 1;
    let detail = match err {
        Error::Internal(detail) => detail.as_str(),
        other => &other.to_string(),
    };
    tracing::error!(
        record_kind = kind.as_str(),
        record_id = %id,
        error = detail,
        skipped_total,
        "unreadable record skipped"
    );
}

/// The rows that decode, in order; the others are reported and left out.
pub(crate) fn keep_readable<M, T>(
    rows: Vec<M>,
    kind: RecordKind,
    id_of: impl Fn(&M) -> Uuid,
    decode: impl Fn(M) -> Result<T, Error>,
) -> Vec<T> {
    rows.into_iter()
        .filter_map(|row| {
            let id = id_of(&row);
            decode(row)
                .map_err(|err| report_unreadable(kind, id, &err))
                .ok()
        })
        .collect()
}

/// Up to `limit` readable rows in the order of `key_of` after `after` (ids, for lists):
/// `fetch(after, n)` reads the next `n` rows, and a batch that lost rows to skipping is
/// topped up from where it ended, so that a page is as full as the rows allow (callers
/// fetch one more than a page to tell whether another follows).
pub(crate) async fn read_page<M, T, K, F, Fut>(
    limit: u64,
    mut after: Option<K>,
    kind: RecordKind,
    mut fetch: F,
    (key_of, id_of): (impl Fn(&M) -> K, impl Fn(&M) -> Uuid),
    decode: impl Fn(M) -> Result<T, Error>,
) -> Result<Vec<T>, Error>
where
    F: FnMut(Option<K>, u64) -> Fut,
    Fut: Future<Output = Result<Vec<M>, Error>>,
{
    let mut items = Vec::new();
    loop {
        let want = limit.saturating_sub(items.len() as u64);
        if want == 0 {
            return Ok(items);
        }
        let rows = fetch(after.take(), want).await?;
        let full = rows.len() as u64 == want;
        after = rows.last().map(&key_of);
        items.extend(keep_readable(rows, kind, &id_of, &decode));
        if !full {
            return Ok(items);
        }
    }
}
