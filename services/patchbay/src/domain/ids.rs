//! Clocks, ids and random tokens: what a record is made with.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use super::error::{Error, FieldViolation};

/// Now, at the microsecond precision both databases store, so that what a write returns
/// equals what a later read returns.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Time-ordered ids: lists page by id and come out in creation order.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> Result<String, Error> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|err| Error::Internal(format!("no randomness available: {err}")))?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

/// `count` random decimal digits (rejection sampling: every digit equally likely).
pub fn random_digits(count: usize) -> Result<String, Error> {
    let mut digits = String::with_capacity(count);
    while digits.len() < count {
        let mut buffer = [0u8; 16];
        getrandom::fill(&mut buffer)
            .map_err(|err| Error::Internal(format!("no randomness available: {err}")))?;
        for byte in buffer.into_iter().filter(|b| *b < 250) {
            if digits.len() < count {
                digits.push(char::from(b'0' + byte % 10));
            }
        }
    }
    Ok(digits)
}

pub fn parse_id(value: &str, field: &str) -> Result<Uuid, FieldViolation> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    Uuid::parse_str(value).map_err(|_| FieldViolation::new(field, "must be a UUID"))
}
