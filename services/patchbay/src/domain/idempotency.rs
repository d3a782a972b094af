//! What an idempotency key is, as the domain carries it. A key belongs to one caller —
//! (workspace, `sub`, role, division) — and stands for one request (its method and
//! encoded body). The grpc layer claims nothing up front: it hands the key to the call
//! in its [`Caller`](super::Caller), every audit event of the call carries it, and the
//! store records the key in the transaction of the call's first write. So the key and
//! the mutation commit together or not at all: a crash, a deadline or a cancel before
//! the commit leaves the key free at once, and after it a replay finds the key.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::caller::Caller;
use super::error::Error;

/// How long a key stands for its first call.
pub const TTL_HOURS: i64 = 24;
/// The longest key: printable ASCII, 1 to this many characters.
pub const MAX_KEY_LEN: usize = 255;

/// One call's use of an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub workspace_id: String,
    /// Who the key belongs to (a digest of `sub`, role and division).
    pub caller_scope: String,
    pub key: String,
    pub method: String,
    /// The fingerprint of the request: its method and its encoded body.
    pub request_hash: String,
    /// This call, so that its second write finds its own key rather than another's.
    pub call_id: Uuid,
    /// When the key's first call began (for a resumed call, the first one's start).
    pub created_at: DateTime<Utc>,
    /// This call resumes one that was cut off: what the first did since `created_at`
    /// is done.
    pub resumed: bool,
    pub expires_at: DateTime<Utc>,
}

impl IdempotencyClaim {
    /// A new call's claim of `key` for the request `body` of `method`.
    pub fn new(
        caller: &Caller,
        key: String,
        method: &str,
        body: &[u8],
        call_id: Uuid,
        started: DateTime<Utc>,
    ) -> Self {
        Self {
            workspace_id: caller.workspace_id().to_owned(),
            caller_scope: caller_scope(caller),
            key,
            method: method.to_owned(),
            request_hash: request_hash(method, body),
            call_id,
            created_at: started,
            expires_at: started + chrono::Duration::hours(TTL_HOURS),
            resumed: false,
        }
    }
}

/// What a key already stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub method: String,
    pub request_hash: String,
    /// The call that holds the key, and when it began.
    pub call_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The record the call wrote: a replay reads it again.
    pub record: Option<RecordRef>,
    /// The encoded answer of a call that wrote no record, opened.
    pub answer: Option<Vec<u8>>,
}

/// How a key that already ran answers again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replay {
    /// From the record it wrote, read again as the caller may see it now, by a caller
    /// holding the first call's claim (writes of a resumed call hold the same key).
    Record(RecordRef, IdempotencyClaim),
    /// With the answer it kept.
    Answer(Vec<u8>),
}

/// The header value as a key: `None` when there is none; INVALID_ARGUMENT naming the
/// header when it is empty, too long or not printable ASCII.
pub fn parse_key(header: &str, value: Option<&[u8]>) -> Result<Option<String>, Error> {
    let Some(value) = value else {
        return Ok(None);
    };
    match std::str::from_utf8(value) {
        Ok(key)
            if !key.is_empty()
                && key.len() <= MAX_KEY_LEN
                && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_owned()))
        }
        _ => Err(Error::invalid(
            header,
            format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
        )),
    }
}

/// The same key with another request is FAILED_PRECONDITION.
fn same_request(claim: &IdempotencyClaim, found: &KeyRecord) -> Result<(), Error> {
    if found.method != claim.method || found.request_hash != claim.request_hash {
        return Err(Error::FailedPrecondition(format!(
            "idempotency-key {:?} was used with a different request",
            claim.key
        )));
    }
    Ok(())
}

/// How `claim`'s call answers, its key having run already as `found`.
pub fn replay(claim: &IdempotencyClaim, found: KeyRecord) -> Result<Replay, Error> {
    same_request(claim, &found)?;
    match (found.record, found.answer) {
        (Some(record), _) => Ok(Replay::Record(
            record,
            IdempotencyClaim {
                call_id: found.call_id,
                ..claim.clone()
            },
        )),
        (None, Some(answer)) => Ok(Replay::Answer(answer)),
        (None, None) => Err(Error::Internal(format!(
            "idempotency key {:?} has neither a record nor an answer",
            claim.key
        ))),
    }
}

/// For a call that writes several records with provider calls in between: its kept
/// final answer (`Ok(Err(answer))`), or the claim under which a call cut off before
/// its answer was kept runs again, as that call (`Ok(Ok(claim))`).
pub fn resume(
    claim: IdempotencyClaim,
    found: KeyRecord,
) -> Result<Result<IdempotencyClaim, Vec<u8>>, Error> {
    same_request(&claim, &found)?;
    if let Some(answer) = found.answer {
        return Ok(Err(answer));
    }
    Ok(Ok(IdempotencyClaim {
        call_id: found.call_id,
        created_at: found.created_at,
        resumed: true,
        ..claim
    }))
}

/// The record a key's call wrote first, by which a replay reads its answer again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef {
    pub kind: String,
    pub id: String,
}

/// The scope of a caller's keys: another `sub`, role or division is another caller,
/// whose key with the same name is a different key.
pub fn caller_scope(caller: &Caller) -> String {
    let mut hasher = Sha256::new();
    for part in [
        caller.subject.as_str(),
        caller.role.as_str(),
        caller.division_id().unwrap_or(""),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}

/// The fingerprint of a call: its method and its encoded request.
pub fn request_hash(method: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::caller::Role;

    fn caller(subject: &str, role: Role, division: Option<&str>) -> Caller {
        Caller {
            subject: subject.into(),
            role,
            scope: crate::domain::caller::Scope::Workspace {
                id: "acme".into(),
                division: division.map(str::to_owned),
            },
            request_id: String::new(),
            idempotency: None,
            place: None,
        }
    }

    #[test]
    fn the_same_sub_in_another_division_or_role_is_another_caller() {
        let support = caller_scope(&caller("dev", Role::Admin, Some("support")));
        assert_eq!(support.len(), 64);
        assert_eq!(
            support,
            caller_scope(&caller("dev", Role::Admin, Some("support")))
        );
        assert_ne!(
            support,
            caller_scope(&caller("dev", Role::Admin, Some("sales")))
        );
        assert_ne!(support, caller_scope(&caller("dev", Role::Admin, None)));
        assert_ne!(
            support,
            caller_scope(&caller("dev", Role::Service, Some("support")))
        );
        assert_ne!(
            support,
            caller_scope(&caller("dev2", Role::Admin, Some("support")))
        );
        // Lengths are part of the digest: parts cannot shift into each other.
        assert_ne!(
            caller_scope(&caller("ab", Role::Admin, Some("c"))),
            caller_scope(&caller("a", Role::Admin, Some("bc")))
        );
    }

    #[test]
    fn the_hash_depends_on_method_and_body() {
        let a = request_hash("CreateAccount", b"x");
        assert_eq!(a.len(), 64);
        assert_eq!(a, request_hash("CreateAccount", b"x"));
        assert_ne!(a, request_hash("CreateAccount", b"y"));
        assert_ne!(a, request_hash("UpdateAccount", b"x"));
    }

    fn claim() -> IdempotencyClaim {
        let started = crate::domain::testing::at(0);
        IdempotencyClaim::new(
            &caller("dev", Role::Admin, None),
            "k-1".into(),
            "CreateAccount",
            b"body",
            Uuid::from_u128(1),
            started,
        )
    }

    fn found(record: Option<RecordRef>, answer: Option<Vec<u8>>) -> KeyRecord {
        let claim = claim();
        KeyRecord {
            method: claim.method,
            request_hash: claim.request_hash,
            call_id: Uuid::from_u128(2),
            created_at: crate::domain::testing::at(-60),
            record,
            answer,
        }
    }

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert_eq!(parse_key("idempotency-key", None).ok(), Some(None));
        assert_eq!(
            parse_key("idempotency-key", Some(b"k-1"))
                .ok()
                .flatten()
                .as_deref(),
            Some("k-1")
        );
        for bad in [&b""[..], b"a b", b"\xff", &[b'k'; MAX_KEY_LEN + 1]] {
            assert!(
                matches!(parse_key("idempotency-key", Some(bad)), Err(Error::InvalidArgument(v)) if v[0].field == "idempotency-key"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_claim_lasts_a_day_from_its_start() {
        let claim = claim();
        assert_eq!(
            claim.expires_at - claim.created_at,
            chrono::Duration::hours(TTL_HOURS)
        );
        assert!(!claim.resumed);
        assert_eq!(claim.request_hash, request_hash("CreateAccount", b"body"));
    }

    #[test]
    fn a_replay_reads_the_record_as_the_first_call_or_its_kept_answer() {
        let record = RecordRef {
            kind: "account".into(),
            id: "a1".into(),
        };
        match replay(&claim(), found(Some(record.clone()), None)) {
            Ok(Replay::Record(named, first)) => {
                assert_eq!(named, record);
                assert_eq!(first.call_id, Uuid::from_u128(2));
            }
            other => panic!("expected a record replay, got {other:?}"),
        }
        assert_eq!(
            replay(&claim(), found(None, Some(b"answer".to_vec()))).ok(),
            Some(Replay::Answer(b"answer".to_vec()))
        );
        assert!(matches!(
            replay(&claim(), found(None, None)),
            Err(Error::Internal(_))
        ));
    }

    #[test]
    fn the_same_key_with_another_request_is_refused() {
        let mut other = found(None, Some(Vec::new()));
        other.request_hash = request_hash("CreateAccount", b"other body");
        assert!(matches!(
            replay(&claim(), other.clone()),
            Err(Error::FailedPrecondition(_))
        ));
        assert!(matches!(
            resume(claim(), other),
            Err(Error::FailedPrecondition(_))
        ));
    }

    #[test]
    fn a_call_cut_off_before_its_answer_resumes_as_that_call() {
        let resumed = resume(claim(), found(None, None)).expect("same request");
        let Ok(resumed) = resumed else {
            panic!("expected to resume");
        };
        assert!(resumed.resumed);
        assert_eq!(resumed.call_id, Uuid::from_u128(2));
        assert_eq!(resumed.created_at, crate::domain::testing::at(-60));
        assert_eq!(
            resume(claim(), found(None, Some(b"kept".to_vec()))).ok(),
            Some(Err(b"kept".to_vec()))
        );
    }
}
