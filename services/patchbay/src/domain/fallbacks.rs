//! Ordered fallbacks per scope: the accounts GetDefaultAccount serves, in order, when
//! the scope's default cannot send. The rules of a list (what SetFallbackAccounts
//! takes) and of its members (who leaves it when an account changes). Pure: the store
//! applies them under the scope's lock.
//!
//! A scope is a workspace's channel, workspace-wide (`None`) or of one division. An
//! account is in a scope when a caller of that scope sees it as its own: a division's
//! scope holds the division's accounts and the workspace-wide ones; the workspace's
//! scope holds the workspace-wide ones.

use uuid::Uuid;

use super::account::Account;
use super::channel::Channel;
use super::error::{Error, FieldViolation, RecordKind, Violations};

/// Most accounts one list holds.
pub const MAX_FALLBACKS: usize = 10;

/// Most lists one account may be in: each write of what it shows tells the watchers
/// of every list it is in, so the lists it is in bound what one write costs.
pub const MAX_LISTS_PER_ACCOUNT: usize = 32;
/// Most lists of one channel in a workspace (its scope and its divisions'): what a
/// watch's snapshot reads.
pub const MAX_LISTS_PER_CHANNEL: usize = 1000;

/// Whether a list may be stored beside the others: `lists_elsewhere` lists of the
/// channel in the workspace's other scopes, and `listed_elsewhere[i]` of them holding
/// the list's `i`-th account. Clearing a list always may.
pub fn check_room(
    channel: Channel,
    lists_elsewhere: usize,
    listed_elsewhere: &[usize],
) -> Result<(), Error> {
    if listed_elsewhere.is_empty() {
        return Ok(());
    }
    if lists_elsewhere >= MAX_LISTS_PER_CHANNEL {
        return Err(Error::FailedPrecondition(format!(
            "the workspace has {lists_elsewhere} fallback lists of channel {channel}, the most it may: clear one first"
        )));
    }
    let mut violations = Violations::default();
    for (index, listed) in listed_elsewhere.iter().enumerate() {
        if *listed >= MAX_LISTS_PER_ACCOUNT {
            violations.add(
                field(index),
                format!(
                    "is a fallback in {listed} other scopes, the most one account may be ({MAX_LISTS_PER_ACCOUNT})"
                ),
            );
        }
    }
    violations.into_result()
}

/// The field a list's ids are named by.
const FIELD: &str = "account_ids";

fn field(index: usize) -> String {
    format!("{FIELD}[{index}]")
}

/// A list as asked: at most [`MAX_FALLBACKS`] ids, each an id, none twice. Every bad
/// entry is recorded in `violations` by its name (`account_ids[i]`); the ids returned
/// are the list only when none was.
pub fn parse_list(ids: &[String], violations: &mut Violations) -> Vec<Uuid> {
    let mut parsed: Vec<Uuid> = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        if index == MAX_FALLBACKS {
            violations.add(
                field(index),
                format!("a scope has at most {MAX_FALLBACKS} fallbacks"),
            );
            break;
        }
        match Uuid::parse_str(id) {
            Err(_) => violations.add(field(index), "is not an account id"),
            Ok(id) => match parsed.iter().position(|seen| *seen == id) {
                Some(first) => {
                    violations.add(field(index), format!("repeats {}", field(first)));
                }
                None => parsed.push(id),
            },
        }
    }
    parsed
}

/// Whether `account` is in the scope (`division`: `None` for the workspace's).
pub fn in_scope(account: &Account, division: Option<&str>) -> bool {
    match (division, account.division_id.as_deref()) {
        (_, None) => true,
        (Some(scope), Some(own)) => scope == own,
        (None, Some(_)) => false,
    }
}

/// Whether the account at `index` of a list may be one of the scope's fallbacks. One
/// the scope cannot see (another workspace's, another division's, a deleted one) is
/// NOT_FOUND, as a missing one is.
pub fn check_member(
    index: usize,
    id: Uuid,
    account: Option<&Account>,
    channel: Channel,
    division: Option<&str>,
) -> Result<(), Error> {
    let Some(account) = account.filter(|account| in_scope(account, division)) else {
        return Err(Error::not_found(RecordKind::Account, id));
    };
    let refuse = |why: String| Err(FieldViolation::new(field(index), why).into());
    if account.channel != channel {
        return refuse(format!(
            "is a {} account, not of channel {channel}",
            account.channel
        ));
    }
    if !account.is_active {
        return refuse("is inactive".to_owned());
    }
    if account.is_default && account.division_id.as_deref() == division {
        return refuse("is the scope's default: a fallback is another account".to_owned());
    }
    Ok(())
}

/// An account is its own reference: `served` takes lists of accounts and of shared
/// ones alike.
impl AsRef<Account> for Account {
    fn as_ref(&self) -> &Account {
        self
    }
}

/// Which account a scope sends from at `at`: `None` for its `default`, or the index of
/// the one of `fallbacks` to serve instead. The SDK's decision
/// (`patchbay_sdk::health::serving`), the same code a client runs on its copy; a
/// fallback that is the default itself, or whose provider id another account took
/// (ownership LOST), is never served in its place.
pub fn served(
    default: &Account,
    fallbacks: &[impl AsRef<Account>],
    at: chrono::DateTime<chrono::Utc>,
) -> Option<usize> {
    use patchbay_sdk::health::{NEVER_SERVED, may_stand_in, serving};
    serving(
        reasons_of(default),
        fallbacks.iter().map(|fallback| {
            let fallback = fallback.as_ref();
            let lost = fallback.provider_state.ownership == super::account::Ownership::Lost;
            let stands_in = may_stand_in(fallback.id == default.id, lost);
            let mut reasons = reasons_of(fallback);
            reasons.extend((!stands_in).then_some(NEVER_SERVED));
            reasons
        }),
        at.timestamp(),
    )
}

/// Whether `default` would be stepped over at `at` for a fallback that can send: what
/// makes its scope's fallbacks worth reading.
pub fn would_step_over(default: &Account, at: chrono::DateTime<chrono::Utc>) -> bool {
    patchbay_sdk::health::serving(reasons_of(default), [Vec::new()], at.timestamp()).is_some()
}

/// The default's reason codes a fallback stands in for at `at`: those still holding
/// that make it UNAVAILABLE.
pub fn fallback_reason(default: &Account, at: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    default
        .provider_state
        .health
        .reasons
        .iter()
        .filter(|reason| {
            reason.until.is_none_or(|until| at < until)
                && reason.class.state() == patchbay_sdk::health::State::Unavailable
        })
        .map(|reason| reason.code.clone())
        .collect()
}

fn reasons_of(account: &Account) -> Vec<patchbay_sdk::health::Reason> {
    account
        .provider_state
        .health
        .reasons
        .iter()
        .map(|reason| patchbay_sdk::health::Reason {
            class: reason.class,
            until: reason.until.map(|until| until.timestamp()),
        })
        .collect()
}

/// The earliest end after `at` of a reason of these accounts: when what they make of
/// a scope's answer may change with no write.
pub fn next_until<'a>(
    accounts: impl IntoIterator<Item = &'a Account>,
    at: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    accounts
        .into_iter()
        .flat_map(|account| account.provider_state.health.reasons.iter())
        .filter_map(|reason| reason.until)
        .filter(|until| *until > at)
        .min()
}

/// Whether an account stays in the list of scope `division` after a write left it as
/// `after` (`None`: deleted): still active, in the scope, and not its default.
pub fn stays(after: Option<&Account>, division: Option<&str>) -> bool {
    after.is_some_and(|account| {
        account.is_active
            && in_scope(account, division)
            && !(account.is_default && account.division_id.as_deref() == division)
    })
}

#[cfg(test)]
#[path = "fallbacks_tests.rs"]
mod tests;
