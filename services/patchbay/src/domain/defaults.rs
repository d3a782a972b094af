//! Default accounts as rules: the scope a default belongs to, which scopes a write
//! touches, and which defaults a watch covers. The fast path (`crate::views::defaults`) and the
//! change log (`store::default_changes`) act on these.

use std::collections::BTreeSet;

use super::account::Account;
use super::channel::Channel;

/// The scope of a default: a channel, in one division or workspace-wide (`None`).
pub type Scope = (Channel, Option<String>);

/// What a write changed of its workspace's scopes: whose default, and whose fallbacks
/// (a list replaced, an account leaving one, or what a listed account shows). Each is
/// one entry of the change log, and one message to the scope's watchers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeChanges {
    pub defaults: BTreeSet<Scope>,
    pub fallbacks: BTreeSet<Scope>,
}

impl ScopeChanges {
    pub fn of_defaults(defaults: BTreeSet<Scope>) -> Self {
        Self {
            defaults,
            fallbacks: BTreeSet::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.defaults.is_empty() && self.fallbacks.is_empty()
    }

    /// Each change as the log records it: the scope, and whether it is of its
    /// fallbacks. Defaults first, so that a watcher learns a scope's new default before
    /// its list without it.
    pub fn entries(&self) -> impl Iterator<Item = (&Scope, bool)> {
        let defaults = self.defaults.iter().map(|scope| (scope, false));
        defaults.chain(self.fallbacks.iter().map(|scope| (scope, true)))
    }
}

/// Which defaults a snapshot reads.
#[derive(Clone, Debug, Default)]
pub struct DefaultsFilter {
    /// Empty: every channel.
    pub channels: Vec<Channel>,
    /// `Some`: that division's defaults and the workspace-wide ones; `None`: every
    /// division's.
    pub division_id: Option<String>,
}

impl DefaultsFilter {
    pub fn covers(&self, channel: Channel, division_id: Option<&str>) -> bool {
        (self.channels.is_empty() || self.channels.contains(&channel))
            && match (&self.division_id, division_id) {
                (None, _) | (_, None) => true,
                (Some(wanted), Some(division)) => wanted == division,
            }
    }
}

/// Where a default is looked for, in order: the division asked for, then the
/// workspace-wide scope (`None`); only the latter when no division is asked for.
pub fn fallback_scopes(division: Option<&str>) -> impl Iterator<Item = Option<&str>> {
    division.map(Some).into_iter().chain([None])
}

/// The scopes whose default a write from `before` to `after` touches: the scope an
/// account leaves or loses the flag in, and the one it joins or gains it in. Any write to
/// a default account counts, so that watchers see its new name or config too.
pub fn touched_scopes(before: Option<&Account>, after: Option<&Account>) -> BTreeSet<Scope> {
    [before, after]
        .into_iter()
        .flatten()
        .filter(|account| account.is_default)
        .map(|account| (account.channel, account.division_id.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fallback_scopes;

    #[test]
    fn a_division_falls_back_to_the_workspace() {
        assert_eq!(
            fallback_scopes(Some("sales")).collect::<Vec<_>>(),
            [Some("sales"), None]
        );
        assert_eq!(fallback_scopes(None).collect::<Vec<_>>(), [None]);
    }
}
