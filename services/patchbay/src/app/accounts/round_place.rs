//! Where a token round stands, and which accounts it checks (#28). The checker and the
//! refresher walk the accounts nearest their token's expiry first (see
//! `store::ExpiryKey`), and keep their place with their lease: a round cut short (an
//! outage, a refused app token, a stop) resumes after the last account it dealt with.
//!
//! Each round checks at most `cap` accounts per workspace, so that one large tenant
//! cannot spend the round (nor the Meta app's rate limit) on its own tokens. A workspace
//! that reached its cap is carried over: the next rounds check its accounts after the
//! last one checked, until its accounts run out and it starts over, so each of its
//! accounts is reached in turn.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::domain::Account;
use crate::store::accounts::ExpiryKey;

/// A round's place, kept with its lease as JSON.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundPlace {
    /// The last account dealt with; `None`: the start.
    pub after: Option<ExpiryKey>,
    /// Workspaces carried over: the last of their accounts checked.
    #[serde(default)]
    pub capped: BTreeMap<String, ExpiryKey>,
}

impl RoundPlace {
    /// The place kept as `text`; one that cannot be read (an older form) is the start.
    pub fn read(text: Option<&str>) -> Self {
        text.and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }

    /// The text to keep; `None` when there is nothing to resume.
    pub fn text(&self) -> Option<String> {
        if *self == Self::default() {
            return None;
        }
        serde_json::to_string(self).ok()
    }
}

/// What a round does with one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    Check,
    /// Its workspace reached its cap this round: checked in a later one.
    Deferred,
    /// Checked in an earlier round of its workspace's turn.
    CheckedBefore,
}

/// The per-workspace caps of one round.
pub struct WorkspaceTurns {
    cap: usize,
    carried: BTreeMap<String, ExpiryKey>,
    /// Per workspace: accounts checked this round, and the last of them.
    checked: HashMap<String, (usize, ExpiryKey)>,
    reached: BTreeMap<String, ExpiryKey>,
}

impl WorkspaceTurns {
    pub fn new(cap: usize, carried: BTreeMap<String, ExpiryKey>) -> Self {
        Self {
            cap: cap.max(1),
            carried,
            checked: HashMap::new(),
            reached: BTreeMap::new(),
        }
    }

    pub fn turn(&mut self, account: &Account) -> Turn {
        let key = ExpiryKey::of(account);
        let workspace = account.workspace_id.as_str();
        if self.carried.get(workspace).is_some_and(|last| key <= *last) {
            return Turn::CheckedBefore;
        }
        match self.checked.get_mut(workspace) {
            Some((count, last)) if *count >= self.cap => {
                self.reached.insert(workspace.to_owned(), last.clone());
                Turn::Deferred
            }
            Some((count, last)) => {
                *count += 1;
                *last = key;
                Turn::Check
            }
            None => {
                self.checked.insert(workspace.to_owned(), (1, key));
                Turn::Check
            }
        }
    }

    /// The workspaces to carry over: after a whole round, those that reached their cap
    /// in it; while a round runs, or after it was cut short, those carried into it as
    /// well (kept at each page, so that a stop loses no workspace's turn).
    pub fn carried_over(&self, whole: bool) -> BTreeMap<String, ExpiryKey> {
        if whole {
            return self.reached.clone();
        }
        let mut carried = self.carried.clone();
        carried.extend(self.reached.iter().map(|(w, k)| (w.clone(), k.clone())));
        carried
    }

    /// The place to keep now, after `after`.
    pub fn place(&self, after: Option<ExpiryKey>, whole: bool) -> RoundPlace {
        RoundPlace {
            after: if whole { None } else { after },
            capped: self.carried_over(whole),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;

    fn account_in(workspace: &str) -> Account {
        let mut account = crate::domain::testing::account(Channel::Messenger, "page");
        account.id = uuid::Uuid::new_v4();
        account.workspace_id = workspace.to_owned();
        account
    }

    #[test]
    fn a_large_workspace_is_checked_in_turns_across_rounds() {
        // As a round reads them: in the order of their keys.
        let mut big: Vec<_> = (0..5).map(|_| account_in("big")).collect();
        big.sort_by_key(ExpiryKey::of);
        let small = account_in("small");
        let mut carried = BTreeMap::new();
        let mut checked = Vec::new();
        for _round in 0..3 {
            let mut turns = WorkspaceTurns::new(2, carried);
            let mut this_round = Vec::new();
            for account in big.iter().chain([&small]) {
                if turns.turn(account) == Turn::Check {
                    this_round.push(account.id);
                }
            }
            assert!(this_round.contains(&small.id), "the small one every round");
            assert!(
                this_round.len() <= 3,
                "two of big's at most: {this_round:?}"
            );
            checked.extend(this_round);
            carried = turns.carried_over(true);
        }
        for account in &big {
            assert!(checked.contains(&account.id), "each of big's in turn");
        }
    }

    /// A round cut short (or a replica stopping mid-round) keeps every workspace's turn:
    /// those carried into the round and those that reached their cap in it.
    #[test]
    fn a_place_kept_mid_round_keeps_every_turn() {
        let mut big: Vec<_> = (0..2).map(|_| account_in("big")).collect();
        big.sort_by_key(ExpiryKey::of);
        let carried_key = ExpiryKey::of(&account_in("carried"));
        let carried = BTreeMap::from([("carried".to_owned(), carried_key.clone())]);
        let mut turns = WorkspaceTurns::new(1, carried);
        assert_eq!(turns.turn(&big[0]), Turn::Check);
        assert_eq!(turns.turn(&big[1]), Turn::Deferred);
        let after = Some(ExpiryKey::of(&big[1]));
        let kept = turns.place(after.clone(), false);
        assert_eq!(kept.after, after);
        assert_eq!(kept.capped.get("carried"), Some(&carried_key));
        assert_eq!(kept.capped.get("big"), Some(&ExpiryKey::of(&big[0])));
        // A whole round carries only those that reached their cap in it.
        let whole = turns.place(after, true);
        assert_eq!(whole.after, None);
        assert_eq!(whole.capped.keys().collect::<Vec<_>>(), ["big"]);
    }

    #[test]
    fn a_place_reads_back_and_an_old_cursor_is_the_start() {
        let mut place = RoundPlace::default();
        assert_eq!(place.text(), None);
        place.after = Some(ExpiryKey::of(&account_in("w")));
        let text = place.text().expect("kept");
        assert_eq!(RoundPlace::read(Some(&text)), place);
        assert_eq!(
            RoundPlace::read(Some("0190c6f2-0000-7000-8000-000000000000")),
            RoundPlace::default()
        );
    }
}
