//! Pages of lists: a validated page request (size, and the token of where the last page
//! ended), and one page of results with the token of the next.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use super::error::{FieldViolation, Violations};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::Error;
    use crate::domain::ids::new_id;

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
