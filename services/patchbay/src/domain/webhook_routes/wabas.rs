//! What the routing index keeps of WABAs: who may receive a WABA-level entry (one that
//! names no phone number), and where such an entry goes.

use std::collections::{HashMap, HashSet};

use super::Recipient;

/// Where a WABA-level entry goes.
#[derive(Debug, PartialEq, Eq)]
pub enum WabaRoute {
    /// The owning workspace's accounts it is for, in account id order.
    Accounts(Vec<Recipient>),
    /// No workspace owns a confirmed number of the WABA.
    NoOwner,
    /// Confirmed numbers of the WABA are owned by more than one workspace.
    Contested,
    /// The owning workspace has no account of the WABA with that displayed number.
    NoSuchNumber,
    /// It would go to more than [`MAX_WABA_DELIVERIES`] accounts.
    TooMany,
}

/// Most accounts one WABA-level entry is delivered to.
pub const MAX_WABA_DELIVERIES: usize = 256;

/// The WhatsApp accounts that name one WABA, by workspace; and how many of each
/// workspace's are confirmed owners of their number (the WABA's owner is the workspace
/// with any).
#[derive(Default)]
pub(super) struct Waba {
    pub(super) members: HashMap<u32, HashSet<u32>>,
    pub(super) confirmed: HashMap<u32, u32>,
}
