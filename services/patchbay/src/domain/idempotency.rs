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
        caller.division_id.as_deref().unwrap_or(""),
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
            workspace_id: "acme".into(),
            division_id: division.map(str::to_owned),
            request_id: String::new(),
            idempotency: None,
            token_valid_until: None,
            held: None,
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
}
