//! WABA-level entries (ones that name no phone number): where the routing index says
//! such an entry goes, and who may receive it.

use super::meta_body::SignedBy;
use super::{Recipient, RouteEntry, Routes};

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

/// Who a WABA-level entry is for. An account's own secret speaks only for that
/// account, and only for its own WABA.
pub(super) fn route_waba(
    index: &impl Routes,
    waba: u128,
    display: Option<u64>,
    signed_by: SignedBy,
    url_account: Option<&RouteEntry>,
) -> Result<Vec<Recipient>, String> {
    if let SignedBy::Account(_) = signed_by {
        return match url_account {
            Some(account) if account.waba_id == Some(waba) => Ok(vec![account.recipient()]),
            _ => Err(format!("WABA {waba} is not the signing account's")),
        };
    }
    match index.waba_route(waba, display) {
        WabaRoute::Accounts(accounts) => Ok(accounts),
        WabaRoute::NoOwner => Err(format!(
            "the entry names no phone number id, and no account owns a confirmed number of WABA {waba}"
        )),
        WabaRoute::Contested => Err(format!(
            "WABA {waba} has confirmed numbers in more than one workspace"
        )),
        WabaRoute::NoSuchNumber => Err(format!(
            "no account of WABA {waba} has the displayed number the entry names"
        )),
        WabaRoute::TooMany => Err(format!(
            "WABA {waba} has more than {} accounts in its workspace",
            MAX_WABA_DELIVERIES
        )),
    }
}
