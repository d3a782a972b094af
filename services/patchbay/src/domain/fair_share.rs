//! Who gets one of the server's places for a call, once its message has arrived.
//!
//! The server has `capacity` places. A workspace may hold at most its cap (all of them
//! unless configured lower), so that a tenant alone may use the whole server. Shares are
//! caps, not reservations: nothing is set aside for a workspace that is not calling.
//! When 90% or more of the places are held, a workspace already holding its fair part —
//! max(8, capacity ÷ the workspaces holding at least one place) — is refused first, so
//! the last places go to the workspaces holding less.

/// Why a call was refused a place; each is counted under its own `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// Every place of the server is held.
    Server,
    /// The workspace holds its configured cap.
    WorkspaceShare,
    /// The server is nearly full and the workspace holds its fair part or more.
    FairShare,
}

impl Shed {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Shed::Server => "server",
            Shed::WorkspaceShare => "workspace_share",
            Shed::FairShare => "fair_share",
        }
    }
}

/// The smallest fair part, however many workspaces hold places.
pub const FAIR_PART_FLOOR: usize = 8;

/// The places as they stand when a workspace asks for one more.
#[derive(Clone, Copy, Debug)]
pub struct Occupancy {
    /// The server's places.
    pub capacity: usize,
    /// How many one workspace may hold at most.
    pub workspace_cap: usize,
    /// Places held now, server-wide.
    pub held: usize,
    /// Places the asking workspace holds now.
    pub held_by_workspace: usize,
    /// Workspaces holding at least one place now (the asker included if it holds one).
    pub workspaces_holding: usize,
}

impl Occupancy {
    /// max(8, capacity ÷ the workspaces holding a place).
    pub fn fair_part(&self) -> usize {
        (self.capacity / self.workspaces_holding.max(1)).max(FAIR_PART_FLOOR)
    }

    /// Whether 90% or more of the places are held.
    pub fn nearly_full(&self) -> bool {
        self.held.saturating_mul(10) >= self.capacity.saturating_mul(9)
    }
}

/// Whether the asking workspace may take one more place.
pub fn admit(now: Occupancy) -> Result<(), Shed> {
    if now.held >= now.capacity {
        return Err(Shed::Server);
    }
    if now.held_by_workspace >= now.workspace_cap {
        return Err(Shed::WorkspaceShare);
    }
    if now.nearly_full() && now.held_by_workspace >= now.fair_part() {
        return Err(Shed::FairShare);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(held: usize, held_by_workspace: usize, workspaces_holding: usize) -> Occupancy {
        Occupancy {
            capacity: 256,
            workspace_cap: 256,
            held,
            held_by_workspace,
            workspaces_holding,
        }
    }

    #[test]
    fn a_workspace_alone_may_use_every_place() {
        for held in 0..256 {
            assert_eq!(
                admit(at(held, held, usize::from(held > 0))),
                Ok(()),
                "{held}"
            );
        }
        assert_eq!(admit(at(256, 256, 1)), Err(Shed::Server));
    }

    #[test]
    fn a_nearly_full_server_refuses_who_holds_its_fair_part() {
        // Two workspaces: the fair part is 128. At 231 of 256 (over 90%), the one
        // holding 200 is refused, the one holding 31 is served to the last place.
        assert_eq!(admit(at(231, 200, 2)), Err(Shed::FairShare));
        assert_eq!(admit(at(231, 31, 2)), Ok(()));
        assert_eq!(admit(at(255, 55, 2)), Ok(()));
        // Below 90% nobody is refused for holding more than its part.
        assert_eq!(admit(at(230, 200, 2)), Ok(()));
        // A newcomer holds nothing: always under its part while places remain.
        assert_eq!(admit(at(255, 0, 40)), Ok(()));
        // Many workspaces: the part never falls under 8.
        assert_eq!(at(240, 8, 100).fair_part(), 8);
        assert_eq!(admit(at(240, 7, 100)), Ok(()));
        assert_eq!(admit(at(240, 8, 100)), Err(Shed::FairShare));
    }

    #[test]
    fn a_configured_cap_holds_at_any_occupancy() {
        let now = Occupancy {
            workspace_cap: 4,
            ..at(4, 4, 1)
        };
        assert_eq!(admit(now), Err(Shed::WorkspaceShare));
    }

    proptest! {
        /// Whatever the occupancy: never more than the capacity, never more than the
        /// cap, and a workspace under its fair part is refused only when the server is full.
        #[test]
        fn admission_keeps_the_rules(
            capacity in 1usize..2048,
            cap_cut in 0usize..2048,
            held in 0usize..2048,
            mine in 0usize..2048,
            holding in 0usize..512,
        ) {
            let workspace_cap = capacity.saturating_sub(cap_cut % capacity);
            let held = held.min(capacity);
            let mine = mine.min(held).min(workspace_cap);
            let holding = holding.max(usize::from(held > 0)).min(held.max(1));
            let now = Occupancy { capacity, workspace_cap, held, held_by_workspace: mine, workspaces_holding: holding };
            match admit(now) {
                Ok(()) => {
                    prop_assert!(held < capacity && mine < workspace_cap);
                    prop_assert!(!now.nearly_full() || mine < now.fair_part());
                }
                Err(Shed::Server) => prop_assert!(held >= capacity),
                Err(Shed::WorkspaceShare) => prop_assert!(mine >= workspace_cap),
                Err(Shed::FairShare) => {
                    prop_assert!(now.nearly_full() && mine >= now.fair_part());
                    prop_assert!(held < capacity);
                }
            }
        }
    }
}
