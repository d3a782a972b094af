//! Small helpers shared by the domain operations: clocks, ids, random tokens, pages.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use super::error::{Error, FieldViolation, Violations};

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

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;
const PAGE_TOKEN_PREFIX: &str = "v1:";

/// A validated page request: how many, and after which id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u64,
    pub after: Option<Uuid>,
}

impl PageRequest {
    /// Page sizes above the maximum are lowered to it (AIP-158); negative ones and
    /// tokens this service did not issue are invalid.
    pub fn parse(page_size: i32, page_token: &str, violations: &mut Violations) -> PageRequest {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                violations.add("page_size", "must not be negative");
                DEFAULT_PAGE_SIZE
            }
            n => (n as u64).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            violations.check(decode_page_token(page_token))
        };
        PageRequest { size, after }
    }
}

pub fn encode_page_token(last_id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PAGE_TOKEN_PREFIX}{last_id}"))
}

fn decode_page_token(token: &str) -> Result<Uuid, FieldViolation> {
    let invalid = || FieldViolation::new("page_token", "is not a token this service issued");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let id = text.strip_prefix(PAGE_TOKEN_PREFIX).ok_or_else(invalid)?;
    Uuid::parse_str(id).map_err(|_| invalid())
}

/// One page of results.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

impl<T> Page<T> {
    /// A page from `items` fetched with a limit of one more than `size`: the extra item
    /// only tells that another page follows, and is dropped.
    pub fn from_overfetch(mut items: Vec<T>, size: u64, id_of: impl Fn(&T) -> Uuid) -> Page<T> {
        let next_page_token = if items.len() as u64 > size {
            items.truncate(size as usize);
            items
                .last()
                .map(|item| encode_page_token(id_of(item)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Page {
            items,
            next_page_token,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_page_token: self.next_page_token,
        }
    }
}

/// `text` with every secret of `secrets` (four characters or more) masked: providers
/// sometimes quote the credential they refused, and their words are passed on.
pub fn scrub<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut scrubbed = text.to_owned();
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.len() >= 4 {
            scrubbed = scrubbed.replace(secret, "********");
        }
    }
    scrubbed
}

/// Every string held under a secret-named key of `document`, at any depth.
pub fn secret_strings(document: &super::config_document::Document) -> Vec<String> {
    fn walk(value: &serde_json::Value, secret: bool, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(text) if secret => out.push(text.clone()),
            serde_json::Value::Object(object) => {
                for (key, value) in object {
                    walk(
                        value,
                        secret || super::config_document::is_secret_key(key),
                        out,
                    );
                }
            }
            serde_json::Value::Array(values) => {
                for value in values {
                    walk(value, secret, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, value) in document {
        walk(value, super::config_document::is_secret_key(key), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let id = new_id();
        let mut violations = Violations::new();
        let page = PageRequest::parse(10, &encode_page_token(id), &mut violations);
        assert_eq!(
            page,
            PageRequest {
                size: 10,
                after: Some(id)
            }
        );
        assert!(violations.is_empty());

        PageRequest::parse(-1, "garbage", &mut violations);
        let err = violations.into_result().expect_err("two violations");
        match err {
            Error::InvalidArgument(v) => {
                let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
                assert_eq!(fields, ["page_size", "page_token"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn oversized_pages_are_lowered_to_the_maximum() {
        let mut violations = Violations::new();
        assert_eq!(
            PageRequest::parse(10_000, "", &mut violations).size,
            MAX_PAGE_SIZE
        );
        assert!(violations.is_empty());
    }
}
