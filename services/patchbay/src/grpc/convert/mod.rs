//! The one conversion layer between the wire and the domain, a file per record
//! (`account`, `integration`, `channel_settings`, `audit`, `meta`) and the values they
//! share here (channels, timestamps, pages) and in `documents` (`Struct` ↔ JSON).
//! Conversions from the wire report every bad field by its name in the request.

pub mod account;
pub mod audit;
pub mod channel_settings;
pub mod documents;
pub mod health;
pub mod integration;
pub mod meta;
pub mod writes;

pub use documents::{
    document_from_struct, json_from_proto_value, optional_document, proto_value_from_json,
    struct_from_document,
};

use chrono::{DateTime, Utc};
use patchbay_sdk::proto;
use prost_types::Timestamp;

use crate::domain::{Channel, FieldViolation};

/// A request's timestamp field as a time, when it is one.
pub fn time_from_proto(value: Timestamp, field: &str) -> Result<DateTime<Utc>, FieldViolation> {
    u32::try_from(value.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(value.seconds, nanos))
        .ok_or_else(|| FieldViolation::new(field, "is not a valid timestamp"))
}

pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn channel_to_proto(channel: Channel) -> proto::Channel {
    match channel {
        Channel::Whatsapp => proto::Channel::Whatsapp,
        Channel::Instagram => proto::Channel::Instagram,
        Channel::Messenger => proto::Channel::Messenger,
        Channel::Email => proto::Channel::Email,
        Channel::Sms => proto::Channel::Sms,
        Channel::Chat => proto::Channel::Chat,
        Channel::Push => proto::Channel::Push,
        Channel::InApp => proto::Channel::InApp,
    }
}

/// A channel the request must name.
pub fn required_channel(value: i32, field: &str) -> Result<Channel, FieldViolation> {
    optional_channel(value, field)?.ok_or_else(|| FieldViolation::new(field, "is required"))
}

/// A channel filter: `CHANNEL_UNSPECIFIED` means none.
pub fn optional_channel(value: i32, field: &str) -> Result<Option<Channel>, FieldViolation> {
    let channel = proto::Channel::try_from(value)
        .map_err(|_| FieldViolation::new(field, format!("{value} is not a known channel")))?;
    Ok(match channel {
        proto::Channel::Unspecified => None,
        proto::Channel::Whatsapp => Some(Channel::Whatsapp),
        proto::Channel::Instagram => Some(Channel::Instagram),
        proto::Channel::Messenger => Some(Channel::Messenger),
        proto::Channel::Email => Some(Channel::Email),
        proto::Channel::Sms => Some(Channel::Sms),
        proto::Channel::Chat => Some(Channel::Chat),
        proto::Channel::Push => Some(Channel::Push),
        proto::Channel::InApp => Some(Channel::InApp),
    })
}

/// The most bytes of items in one list answer: well under the 4 MiB a client accepts
/// by default (500 accounts of 64 KiB configs would be 32 MiB).
pub const MAX_PAGE_BYTES: usize = 3 * 1024 * 1024;

/// A page cut to fit one message: the items that fit [`MAX_PAGE_BYTES`] (at least one),
/// and, when some were cut, the token of the page that starts after the last kept.
pub fn fit_page<T: prost::Message>(
    mut items: Vec<T>,
    next_page_token: String,
    id_of: impl Fn(&T) -> &str,
) -> (Vec<T>, String) {
    let mut size = 0;
    let mut keep = items.len();
    for (i, item) in items.iter().enumerate() {
        size += item.encoded_len() + 8;
        if i > 0 && size > MAX_PAGE_BYTES {
            keep = i;
            break;
        }
    }
    if keep == items.len() {
        return (items, next_page_token);
    }
    items.truncate(keep);
    let token = items
        .last()
        .and_then(|item| uuid::Uuid::parse_str(id_of(item)).ok())
        .map(crate::domain::pages::encode_page_token)
        .unwrap_or(next_page_token);
    (items, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_channel_numbers_are_named() {
        assert!(required_channel(0, "channel").is_err());
        assert!(required_channel(99, "channel").is_err());
        assert_eq!(required_channel(1, "channel"), Ok(Channel::Whatsapp));
    }
}

#[cfg(test)]
#[path = "serving_tests.rs"]
mod serving_tests;
