//! Who owns a provider id (a WhatsApp phone number id, a Messenger page id, an
//! Instagram account id) across workspaces: only Meta's word makes an owner.
//!
//! - **Confirming an id nobody owns** (`vouched`): Meta vouched for the account's
//!   token for its id, through debug_token's `profile_id` or `granular_scopes`
//!   `target_ids`, the WABA's number list, or Instagram's `/me`. It never takes an id
//!   another account owns, and never ends LOST.
//! - **Taking an id** (`taken`): a flow in which Meta itself named the id for the
//!   token: the OAuth connect of a page or Instagram account, or the number callback
//!   Meta accepted with the account's token in the WhatsApp set-up. The newer
//!   confirmation wins; the former owner becomes LOST (`lost`).
//! - Nothing else ends an ownership: a token Meta flags, a failed check or a failed
//!   set-up leave it; a new provider id starts unconfirmed.

use super::Account;
use super::provider_id;

/// An account's standing for its provider id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ownership {
    /// A claim Meta has not vouched for: it routes nothing on the app-level callback.
    #[default]
    Unconfirmed,
    /// Meta vouched for the account's token for its id: its webhooks are the
    /// account's, in whichever workspace.
    Confirmed,
    /// Another account took the id through a flow Meta vouches for.
    Lost,
}

impl Ownership {
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::Unconfirmed => "unconfirmed",
            Ownership::Confirmed => "confirmed",
            Ownership::Lost => "lost",
        }
    }

    pub fn parse(name: &str) -> Option<Ownership> {
        [
            Ownership::Unconfirmed,
            Ownership::Confirmed,
            Ownership::Lost,
        ]
        .into_iter()
        .find(|ownership| ownership.as_str() == name)
    }
}

/// What Meta was asked about an account: its provider id, and for a WhatsApp number
/// its WABA too (`<id>@<waba>`, WABA-level entries go by it). A vouching or a taking
/// holds only while the account still names both.
pub fn claim_key(account: &Account) -> Option<String> {
    let id = provider_id(account.channel, &account.config)?;
    Some(match account.channel {
        super::Channel::Whatsapp => format!(
            "{id}@{}",
            super::whatsapp::text(&account.config, super::whatsapp::WABA_ID)
        ),
        _ => id.to_owned(),
    })
}

fn names_claim(account: &Account, key: &str) -> bool {
    claim_key(account).as_deref() == Some(key)
}

/// What Meta's word (`vouched_for`, the [`claim_key`] it vouched for) makes of
/// `account`'s ownership when it confirms an id nobody owns: CONFIRMED from
/// UNCONFIRMED, when the account still names that id (and WABA). A LOST account stays
/// LOST.
pub fn vouched(account: &Account, vouched_for: &str) -> Ownership {
    let current = account.provider_state.ownership;
    if current == Ownership::Unconfirmed && names_claim(account, vouched_for) {
        Ownership::Confirmed
    } else {
        current
    }
}

/// What a flow that takes an id makes of the taker's ownership: CONFIRMED, when the
/// account still names that [`claim_key`] (it may have been given another meanwhile).
pub fn taken(account: &Account, taken: &str) -> Ownership {
    if names_claim(account, taken) {
        Ownership::Confirmed
    } else {
        account.provider_state.ownership
    }
}

/// What another account's taking of `taken_id` makes of `account`'s ownership: LOST,
/// when it was the confirmed owner of that id.
pub fn lost(account: &Account, taken_id: &str) -> Ownership {
    let current = account.provider_state.ownership;
    if current == Ownership::Confirmed && names(account, taken_id) {
        Ownership::Lost
    } else {
        current
    }
}

fn names(account: &Account, id: &str) -> bool {
    provider_id(account.channel, &account.config) == Some(id)
}

/// Whether a granular scope's `target_ids` name `id`: an answer without target ids
/// (Meta omits them when a scope is not limited to chosen assets) vouches for nothing.
pub fn targets_name(target_ids: Option<&[String]>, id: &str) -> bool {
    target_ids.is_some_and(|ids| ids.iter().any(|target| target == id))
}

/// What debug_token's answer about an account's token says of its provider id.
#[derive(Debug, PartialEq, Eq)]
pub enum DebugTokenWord {
    /// Meta names the id for the token.
    Vouches,
    /// Meta names the number's WABA under `whatsapp_business_messaging`: the number
    /// is vouched for once `GET /{waba-id}/phone_numbers`, read with the token, lists
    /// it.
    IfWabaLists,
    /// Meta names neither.
    Silent,
}

/// debug_token's word on `account`'s id, from its `profile_id` and the target ids of
/// its granular scopes (`targets(scope)`):
/// - Messenger: `profile_id` (the page a page token acts for), or `pages_messaging`'s
///   targets, names the page;
/// - Instagram (a Facebook Login page token): `instagram_manage_messages`' or
///   `instagram_basic`'s targets name the Instagram account;
/// - WhatsApp: `whatsapp_business_messaging`'s targets name the account's WABA.
pub fn debug_token_word<'a>(
    account: &Account,
    profile_id: Option<&str>,
    targets: impl Fn(&str) -> Option<&'a [String]>,
) -> DebugTokenWord {
    use super::Channel;
    let Some(id) = provider_id(account.channel, &account.config) else {
        return DebugTokenWord::Silent;
    };
    let named = match account.channel {
        Channel::Messenger => {
            profile_id == Some(id) || targets_name(targets("pages_messaging"), id)
        }
        Channel::Instagram => ["instagram_manage_messages", "instagram_basic"]
            .into_iter()
            .any(|scope| targets_name(targets(scope), id)),
        Channel::Whatsapp => {
            let waba = super::whatsapp::text(&account.config, super::whatsapp::WABA_ID);
            if !waba.is_empty() && targets_name(targets("whatsapp_business_messaging"), waba) {
                return DebugTokenWord::IfWabaLists;
            }
            false
        }
        _ => false,
    };
    if named {
        DebugTokenWord::Vouches
    } else {
        DebugTokenWord::Silent
    }
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod tests;
