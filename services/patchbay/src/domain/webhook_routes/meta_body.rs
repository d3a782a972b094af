//! What a Meta webhook body's entries name, and whom they route to. Only the fields
//! routing reads are decoded (the rest is skipped, never kept): `object`, and per
//! entry its `id` and each change's `field`, `value.metadata.phone_number_id`, and
//! `value.display_phone_number` or `value.phone_number` (WABA-level entries). Arrays are read
//! up to a count and skipped past it, so that the work and memory of a body stay a
//! few times its size whatever its shape.

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use uuid::Uuid;

use super::wabas::route_waba;
use super::{Owner, Routes};
use super::{Recipient, RouteEntry, digits};
use crate::domain::channel::Channel;

/// Most entries one body may have: Meta batches at most 1,000 updates.
pub const MAX_ENTRIES: usize = 1000;
/// Most phone numbers one WhatsApp entry may name; more are reported unrouted.
const MAX_NUMBERS_PER_ENTRY: usize = 16;
/// Most deliveries one answer holds: an entry may name 16 numbers, and a WABA-level
/// one fans out to the WABA's accounts.
const MAX_DELIVERIES: usize = 4 * MAX_ENTRIES;
/// Most changes of one entry read (Meta sends one or a few).
const MAX_CHANGES_PER_ENTRY: usize = 64;

/// One entry: the ids it names, on the channel they belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaEntry {
    pub channel: Option<Channel>,
    /// Numeric ids (Meta's are): the WhatsApp phone number ids of the entry's changes,
    /// or the page / Instagram account id of the entry.
    pub ids: Vec<u128>,
    /// The entry names more numbers, or has more changes, than are read.
    pub cut: bool,
    /// A WhatsApp entry that names no phone number id: its WABA (the entry's `id`, or a
    /// partner event's `waba_info.waba_id`), to which it routes instead.
    pub waba: Option<u128>,
    /// The digits of the number a WABA-level entry is about (`display_phone_number`,
    /// or `account_update`'s `phone_number`), unless it is for every account of the
    /// WABA (`message_template_status_update`).
    pub display: Option<u64>,
}

/// The WABA-level field whose entries go to every account of the WABA, whatever
/// number they name.
const EVERY_ACCOUNT_FIELD: &str = "message_template_status_update";

/// A Meta webhook body, as far as routing reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaBody {
    pub object: String,
    pub entries: Vec<MetaEntry>,
}

#[derive(Deserialize)]
struct Body {
    object: String,
    #[serde(default)]
    entry: Capped<Entry, { MAX_ENTRIES + 1 }>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    id: Option<Id>,
    #[serde(default)]
    changes: Capped<ChangeItem, MAX_CHANGES_PER_ENTRY>,
}

/// The first `N` elements of an array; the rest are skipped (parsed, not kept), and
/// `more` says there were.
struct Capped<T, const N: usize> {
    items: Vec<T>,
    more: bool,
}

impl<T, const N: usize> Default for Capped<T, N> {
    fn default() -> Self {
        Capped {
            items: Vec::new(),
            more: false,
        }
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Capped<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CappedVisitor<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for CappedVisitor<T, N> {
            type Value = Capped<T, N>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut capped = Capped::default();
                while capped.items.len() < N {
                    match seq.next_element::<T>()? {
                        Some(item) => capped.items.push(item),
                        None => return Ok(capped),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    capped.more = true;
                }
                Ok(capped)
            }
        }
        deserializer.deserialize_seq(CappedVisitor::<T, N>(PhantomData))
    }
}

#[derive(Deserialize)]
struct ChangeItem {
    #[serde(default)]
    field: Option<Id>,
    #[serde(default)]
    value: Option<ChangeValue>,
}

#[derive(Deserialize)]
struct ChangeValue {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    display_phone_number: Option<Id>,
    #[serde(default)]
    phone_number: Option<Id>,
    #[serde(default)]
    waba_info: Option<WabaInfo>,
    /// `account_settings_update`: the number whose settings changed.
    #[serde(default)]
    phone_number_settings: Option<Metadata>,
    /// `account_alerts`: a PHONE_NUMBER alert's `entity_id` is the number's id.
    #[serde(default)]
    entity_type: Option<Id>,
    #[serde(default)]
    entity_id: Option<Id>,
}

impl ChangeValue {
    /// The phone number id a change names: `metadata.phone_number_id` (messages and
    /// their kin), `phone_number_settings.phone_number_id` (account_settings_update),
    /// or a PHONE_NUMBER alert's `entity_id` (account_alerts).
    fn phone_number_id(&self) -> Option<u128> {
        let named = [&self.metadata, &self.phone_number_settings]
            .into_iter()
            .find_map(|holder| holder.as_ref()?.phone_number_id.as_ref()?.value());
        named.or_else(|| {
            let alert = self.entity_type.as_ref()?.is("PHONE_NUMBER");
            alert.then(|| self.entity_id.as_ref()?.value()).flatten()
        })
    }
}

/// A partner event's WABA (`account_update` PARTNER_*): its entry's `id` is the
/// partner's business portfolio, not the WABA (Meta, "Managing Webhooks").
#[derive(Deserialize)]
struct WabaInfo {
    #[serde(default)]
    waba_id: Option<Id>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    phone_number_id: Option<Id>,
}

/// Meta sends ids as strings; a number is read too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(u64),
    Other(serde::de::IgnoredAny),
}

impl Id {
    fn value(&self) -> Option<u128> {
        match self {
            Id::Text(text) => text.parse().ok(),
            Id::Number(number) => Some(u128::from(*number)),
            Id::Other(_) => None,
        }
    }

    /// A phone number's digits, however it is written.
    fn digits(&self) -> Option<u64> {
        match self {
            Id::Text(text) => digits(text),
            Id::Number(number) => Some(*number),
            Id::Other(_) => None,
        }
    }

    fn is(&self, text: &str) -> bool {
        matches!(self, Id::Text(own) if own == text)
    }
}

impl MetaBody {
    /// Reads a (verified) body; `Err` says why it is not a Meta webhook body.
    pub fn parse(raw: &[u8]) -> Result<MetaBody, String> {
        let body: Body = serde_json::from_slice(raw)
            .map_err(|_| "is not a Meta webhook body (JSON with object and entry)".to_owned())?;
        if body.entry.more || body.entry.items.len() > MAX_ENTRIES {
            return Err(format!("has more than {MAX_ENTRIES} entries"));
        }
        let channel = match body.object.as_str() {
            "whatsapp_business_account" => Some(Channel::Whatsapp),
            "page" => Some(Channel::Messenger),
            "instagram" => Some(Channel::Instagram),
            _ => None,
        };
        let entries = body
            .entry
            .items
            .iter()
            .map(|entry| {
                let mut ids = Vec::new();
                let mut cut = false;
                if channel == Some(Channel::Whatsapp) {
                    cut = entry.changes.more;
                    let numbers = entry
                        .changes
                        .items
                        .iter()
                        .filter_map(|change| change.value.as_ref()?.phone_number_id());
                    for number in numbers {
                        if ids.contains(&number) {
                            continue;
                        }
                        if ids.len() == MAX_NUMBERS_PER_ENTRY {
                            cut = true;
                            break;
                        }
                        ids.push(number);
                    }
                } else if let Some(id) = entry.id.as_ref().and_then(Id::value) {
                    ids.push(id);
                }
                let (mut waba, mut display) = (None, None);
                if channel == Some(Channel::Whatsapp) && ids.is_empty() {
                    let named = entry.changes.items.iter().find_map(|change| {
                        change.value.as_ref()?.waba_info.as_ref()?.waba_id.as_ref()
                    });
                    waba = named.or(entry.id.as_ref()).and_then(Id::value);
                    let every_account = entry.changes.items.iter().any(|change| {
                        change
                            .field
                            .as_ref()
                            .is_some_and(|field| field.is(EVERY_ACCOUNT_FIELD))
                    });
                    if !every_account {
                        display = entry.changes.items.iter().find_map(|change| {
                            let value = change.value.as_ref()?;
                            value
                                .display_phone_number
                                .as_ref()
                                .or(value.phone_number.as_ref())?
                                .digits()
                        });
                    }
                }
                MetaEntry {
                    channel,
                    ids,
                    cut,
                    waba,
                    display,
                }
            })
            .collect();
        Ok(MetaBody {
            object: body.object,
            entries,
        })
    }
}

/// `(entry index, account)`: who each routed entry is for.
pub type Deliveries = Vec<(i32, Recipient)>;
/// `(entry index, why)`: the entries no account takes.
pub type Unrouted = Vec<(i32, String)>;

/// Whose secret verified a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedBy {
    /// The installation's Meta app: every entry routes by its ids.
    App,
    /// This account's own app secret: it speaks only for that account, so an entry
    /// routes only when that account owns the entry's id.
    Account(Uuid),
}

/// Where each entry goes: `(entry index, account)` deliveries, and `(entry index,
/// why)` for the entries no account takes. `url_account` is the account whose own URL
/// the body came to (`None`: the app-level callback): its own id routes to it unless
/// another account owns the id, confirmed by Meta.
pub fn route_meta_entries(
    index: &impl Routes,
    body: &MetaBody,
    signed_by: SignedBy,
    url_account: Option<&RouteEntry>,
) -> (Deliveries, Unrouted) {
    let mut deliveries: Deliveries = Vec::new();
    let mut unrouted = Vec::new();
    for (position, entry) in body.entries.iter().enumerate() {
        // At most MAX_ENTRIES: the index fits.
        let at = i32::try_from(position).unwrap_or(i32::MAX);
        let Some(channel) = entry.channel else {
            unrouted.push((at, format!("object {:?} is not routed", cut(&body.object))));
            continue;
        };
        if entry.cut {
            unrouted.push((
                at,
                format!(
                    "the entry has more changes or numbers than are read (at most {MAX_CHANGES_PER_ENTRY} changes, {MAX_NUMBERS_PER_ENTRY} numbers)"
                ),
            ));
        }
        if entry.ids.is_empty() {
            match entry.waba {
                Some(waba) => {
                    let to = route_waba(index, waba, entry.display, signed_by, url_account);
                    match to {
                        // One answer holds at most MAX_DELIVERIES: the rest is said.
                        Ok(accounts) if deliveries.len() + accounts.len() > MAX_DELIVERIES => {
                            unrouted.push((
                                at,
                                format!(
                                    "the body's entries are for more than {MAX_DELIVERIES} accounts"
                                ),
                            ));
                        }
                        Ok(accounts) => {
                            deliveries.extend(accounts.into_iter().map(|account| (at, account)));
                        }
                        Err(why) => unrouted.push((at, why)),
                    }
                }
                None if !entry.cut => {
                    unrouted.push((at, format!("the entry names no {}", id_name(channel))));
                }
                None => {}
            }
            continue;
        }
        for id in &entry.ids {
            let owner = index.owner(channel, *id);
            // The URL's own account, for its own id: Meta calls a number's URL only
            // when someone with access to the number set it there (a number's
            // callback override). Pages and Instagram accounts have no such override:
            // their app-signed bodies route as on the app's callback.
            let own_url = match signed_by {
                SignedBy::App => channel == Channel::Whatsapp,
                SignedBy::Account(_) => true,
            };
            if let Some(account) = url_account
                && own_url
                && account.channel == channel
                && account.provider_id == Some(*id)
            {
                // Its own secret speaks to itself: its own id is delivered to it,
                // whoever owns it, so that the answer tells nothing of who does.
                match owner {
                    Owner::One(owner)
                        if owner.account_id != account.account_id && signed_by == SignedBy::App =>
                    {
                        unrouted.push((
                            at,
                            format!("{} {id} is owned by another account", id_name(channel)),
                        ));
                    }
                    _ => deliveries.push((at, account.recipient())),
                }
                continue;
            }
            // An account's own secret speaks for that account only, and its answers
            // say nothing of who else holds an id.
            if let SignedBy::Account(_) = signed_by {
                unrouted.push((
                    at,
                    format!("{} {id} is not the signing account's", id_name(channel)),
                ));
                continue;
            }
            match owner {
                Owner::One(owner) => deliveries.push((at, owner)),
                Owner::Nobody => {
                    unrouted.push((at, format!("no account owns {} {id}", id_name(channel))));
                }
                Owner::Unconfirmed => unrouted.push((
                    at,
                    format!(
                        "no account's claim of {} {id} is confirmed by Meta",
                        id_name(channel)
                    ),
                )),
            }
        }
    }
    // Numbers' entries too: the deliveries past MAX_DELIVERIES are said unrouted.
    if deliveries.len() > MAX_DELIVERIES {
        let mut cut: Vec<i32> = deliveries
            .drain(MAX_DELIVERIES..)
            .map(|(at, _)| at)
            .collect();
        cut.dedup();
        unrouted.extend(cut.into_iter().map(|at| {
            (
                at,
                format!("the body's entries are for more than {MAX_DELIVERIES} accounts"),
            )
        }));
    }
    (deliveries, unrouted)
}

fn id_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Whatsapp => "phone number id",
        Channel::Messenger => "page id",
        _ => "Instagram account id",
    }
}

/// An object name as it may be echoed: short.
fn cut(object: &str) -> String {
    object.chars().take(64).collect()
}
