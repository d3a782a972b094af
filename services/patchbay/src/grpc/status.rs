//! Every gRPC status Patchbay sends is made here: the one mapping from domain errors
//! (the match is exhaustive on purpose: a new error variant must choose its code here),
//! and the edge's own refusals, which come before any operation runs (no token, no
//! share left, the server shutting down). `.ci/check-layers` fails the build when a
//! `Status` is built anywhere else.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::{Error, FieldViolation};

/// A request without a valid token (the interceptor, a watch whose token expired).
pub fn unauthenticated(message: &'static str) -> Status {
    Status::unauthenticated(message)
}

/// A method no role may call, or a role that may not call it.
pub fn permission_denied(message: &'static str) -> Status {
    Status::permission_denied(message)
}

/// The server, or the caller's workspace, is at one of its limits: retry with backoff.
pub fn resource_exhausted(message: &'static str) -> Status {
    Status::resource_exhausted(message)
}

/// A call that waited longer than its deadline for its turn.
pub fn deadline_exceeded(message: impl Into<String>) -> Status {
    Status::deadline_exceeded(within(message.into(), MAX_MESSAGE_BYTES))
}

/// A stream ended under the watcher: it may start again (fell behind, resynchronise).
pub fn aborted(message: impl Into<String>) -> Status {
    Status::aborted(within(message.into(), MAX_MESSAGE_BYTES))
}

/// A watch of account events that fell further behind than its queue: ABORTED, with
/// the revision to resume after in the `patchbay-after-revision` trailer (the header a
/// watch starts with), so that a client watching through a filter resumes past the
/// events it was not shown.
pub fn fell_behind(after_revision: i64, queue: usize) -> Status {
    let mut status = Status::aborted(format!(
        "this watch fell more than {queue} events behind; watch again after revision {after_revision}"
    ));
    if let Ok(value) = after_revision.to_string().parse() {
        status
            .metadata_mut()
            .insert("patchbay-after-revision", value);
    }
    status
}

/// A call of a method that takes one request message sent more (INVALID_ARGUMENT).
pub fn more_than_one_message() -> Status {
    FieldViolation::new(
        "request",
        "this method takes one request message; more were sent",
    )
    .into()
}

/// The server cannot serve the call now (shutting down, a feed gone): reconnect.
pub fn unavailable(message: &'static str) -> Status {
    Status::unavailable(message)
}

/// A request compressed with an encoding no service accepts (`encoding` is the
/// caller's header, cut to fit).
pub fn unimplemented_encoding(encoding: &str) -> Status {
    let encoding: String = encoding.chars().take(64).collect();
    Status::unimplemented(format!(
        "the request is compressed with {encoding:?}, which this server does not accept; \
         it accepts identity, gzip and zstd"
    ))
}

/// A single bad field of a request.
impl From<FieldViolation> for Status {
    fn from(violation: FieldViolation) -> Status {
        Error::from(violation).into()
    }
}

/// The status in a response's headers with `google.rpc.RequestInfo` added to its
/// details (beside any already there), as headers to put in their place; `None` when
/// the response carries no error.
pub fn with_request_info(headers: &http::HeaderMap, request_id: &str) -> Option<http::HeaderMap> {
    let status = Status::from_header_map(headers)?;
    if status.code() == Code::Ok {
        return None;
    }
    let mut details = status.get_error_details();
    details.set_request_info(request_id, "");
    let annotated = Status::with_error_details(status.code(), status.message(), details);
    Some(
        annotated
            .into_http::<tonic::body::Body>()
            .into_parts()
            .0
            .headers,
    )
}

/// The canonical name of a gRPC code (`FAILED_PRECONDITION`), as per-item results
/// carry it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The longest `grpc-message`: with the details below, an error fits the header limits
/// of every common client (grpc-core refuses metadata past 8 KiB, and above 64 KiB
/// HTTP/2 tears the whole connection down).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The most bytes of field violations in the details (before base64).
pub const MAX_VIOLATION_BYTES: usize = 3 * 1024;

/// `text` cut to at most `max` bytes as sent (grpc-message percent-encodes every byte
/// that is not printable ASCII into three), on a character boundary, marked when cut.
fn within(text: String, max: usize) -> String {
    let cost = |c: char| {
        if c.is_ascii_graphic() || c == ' ' {
            1
        } else {
            3 * c.len_utf8()
        }
    };
    if text.chars().map(cost).sum::<usize>() <= max {
        return text;
    }
    let budget = max.saturating_sub(8);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        used += cost(c);
        if used > budget {
            break;
        }
        end = i + c.len_utf8();
    }
    format!("{} …", &text[..end])
}

/// The violations that fit the budget, the last one saying how many were left out.
fn budgeted(violations: Vec<FieldViolation>) -> Vec<FieldViolation> {
    let total = violations.len();
    let mut kept = Vec::new();
    let mut used = 0;
    for violation in violations {
        let field = within(violation.field, 256);
        let description = within(violation.description, 512);
        // Each entry costs its strings and a few bytes of framing.
        let cost = field.len() + description.len() + 8;
        if used + cost > MAX_VIOLATION_BYTES - 128 {
            break;
        }
        used += cost;
        kept.push(FieldViolation { field, description });
    }
    let left_out = total - kept.len();
    if left_out > 0 {
        kept.push(FieldViolation::new(
            "",
            format!("and {left_out} more violations, left out to keep the error small"),
        ));
    }
    kept
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let message = within(err.to_string(), MAX_MESSAGE_BYTES);
        match err {
            Error::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for violation in budgeted(violations) {
                    details.add_bad_request_violation(violation.field, violation.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            // Ids and messages come from requests: cut, like every text of a status.
            Error::NotFound { kind, id } => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_resource_info(kind.as_str(), within(id, 256), "", "not found"),
            ),
            Error::AlreadyExists {
                kind,
                field,
                message: _,
            } => {
                let mut details =
                    ErrorDetails::with_resource_info(kind.as_str(), "", "", message.clone());
                details.add_bad_request_violation(field, "is already taken");
                Status::with_error_details(Code::AlreadyExists, message, details)
            }
            Error::FailedPrecondition(_) => Status::failed_precondition(message),
            Error::IdempotencyKeyTaken | Error::Aborted(_) => Status::aborted(message),
            Error::PermissionDenied(_) => Status::permission_denied(message),
            Error::Unauthenticated(_) => Status::unauthenticated(message),
            Error::Unavailable(_) => Status::unavailable(message),
            Error::DataLoss(_) => {
                tracing::error!(error = %message, "stored secret does not decrypt");
                Status::data_loss(message)
            }
            Error::SecretUnavailable(_) => {
                tracing::error!(error = %message, "stored secret cannot be opened");
                Status::internal(message)
            }
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Status::internal(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_violations_fit_the_budget_and_say_what_was_left_out() {
        let violations = (0..1000)
            .map(|i| {
                FieldViolation::new(
                    format!("channels[{i}]"),
                    "is not a channel (such as CHANNEL_WHATSAPP)",
                )
            })
            .collect();
        let status = Status::from(Error::InvalidArgument(violations));
        assert!(
            status.message().len() <= MAX_MESSAGE_BYTES,
            "{}",
            status.message().len()
        );
        assert!(
            status.details().len() <= 4 * 1024,
            "{}",
            status.details().len()
        );
        let bad = status.get_details_bad_request().expect("bad request");
        let last = bad.field_violations.last().expect("violations");
        assert!(last.description.contains("more violations"), "{last:?}");
        assert!(bad.field_violations.len() > 20);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let cut = within("é".repeat(2000), MAX_MESSAGE_BYTES);
        // As sent, each of é's two bytes is percent-encoded into three.
        assert!(cut.len() * 3 <= MAX_MESSAGE_BYTES + 12, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn a_huge_id_in_not_found_is_cut() {
        let status = Status::from(Error::NotFound {
            kind: crate::domain::RecordKind::Provider,
            id: "x".repeat(4 * 1024 * 1024),
        });
        assert!(status.details().len() < 2048, "{}", status.details().len());
        assert!(status.message().len() <= MAX_MESSAGE_BYTES);
    }
}
