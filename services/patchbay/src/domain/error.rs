//! The one error type of the domain. The gRPC adapter turns it into a status with an
//! exhaustive match (`grpc::status`), so a new variant cannot slip through unmapped.

use std::fmt;

/// A request field that failed validation, named by its path in the request
/// (`config.phone_number_id`, `page_token`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// The kinds of record Patchbay stores, as named in errors and (later) audit events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Account,
    ChannelSettings,
    Integration,
    Provider,
}

impl RecordKind {
    pub const ALL: [RecordKind; 4] = [
        RecordKind::Account,
        RecordKind::ChannelSettings,
        RecordKind::Integration,
        RecordKind::Provider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Account => "account",
            RecordKind::ChannelSettings => "channel_settings",
            RecordKind::Integration => "integration",
            RecordKind::Provider => "provider",
        }
    }

    pub fn parse(name: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more request fields are invalid; every bad field is listed.
    #[error("invalid request: {}", join_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The record does not exist for this caller (another workspace's record included).
    #[error("{} {id} not found", .kind.as_str())]
    NotFound { kind: RecordKind, id: String },
    /// A uniqueness rule would be broken.
    #[error("{message}")]
    AlreadyExists {
        kind: RecordKind,
        field: &'static str,
        message: String,
    },
    /// The record is not in a state that allows the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// `expected_revision` did not match, or a concurrent change won.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// The database (or a provider) cannot be reached right now; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A stored secret does not decrypt in its place: moved from another record or field,
    /// or altered. The message names the record and field, never the value.
    #[error("{0}")]
    DataLoss(String),
    /// A stored secret cannot be opened with the configured keys (its key id is named).
    #[error("{0}")]
    SecretUnavailable(String),
    /// Another call with the same idempotency key committed first: this call's writes
    /// were rolled back, and it answers with the first call's result instead.
    #[error("another request with this idempotency key finished first; retry to get its answer")]
    IdempotencyKeyTaken,
    /// A bug or an unexpected database answer. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

fn join_violations(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn not_found(kind: RecordKind, id: impl fmt::Display) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

impl IntoIterator for Violations {
    type Item = FieldViolation;
    type IntoIter = std::vec::IntoIter<FieldViolation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A single bad field is an INVALID_ARGUMENT of its own: `validate_x(..)?`.
impl From<FieldViolation> for Error {
    fn from(violation: FieldViolation) -> Self {
        Error::InvalidArgument(vec![violation])
    }
}

/// A conversion that cannot fail (a request taken as it is) fails as nothing else does.
impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// A value whose check [`Violations`] recorded: it comes out through
/// [`Violations::finish`], with every other field's.
#[derive(Debug)]
pub struct Checked<T>(Option<T>);

/// Collects every violation of a request before failing, so that the caller learns
/// about all bad fields at once.
#[derive(Clone, Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    pub fn extend(&mut self, violations: impl IntoIterator<Item = FieldViolation>) {
        self.0.extend(violations);
    }

    /// Records the violation of a result and returns its value, if any.
    pub fn check<T>(&mut self, result: Result<T, FieldViolation>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violation) => {
                self.0.push(violation);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records the violation of a result in its turn, and holds its value for
    /// [`finish`](Self::finish).
    pub fn checked<T>(&mut self, result: Result<T, FieldViolation>) -> Checked<T> {
        Checked(self.check(result))
    }

    /// The value checked, once nothing recorded is a violation; else
    /// `InvalidArgument` with every violation. The value comes out of the check itself:
    /// there is nothing to re-check after it.
    pub fn finish<T>(self, checked: Checked<T>) -> Result<T, Error> {
        match checked.0 {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(self.into_invalid()),
        }
    }

    /// `InvalidArgument` with every violation recorded: for a path on which one was.
    pub fn into_invalid(self) -> Error {
        Error::InvalidArgument(self.0)
    }

    /// `Ok(())` when nothing was recorded, else `InvalidArgument` with every violation.
    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}
