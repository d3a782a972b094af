//! The one mapping from domain errors to gRPC statuses. The match is exhaustive on
//! purpose: a new error variant must choose its code here.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Error;

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let message = err.to_string();
        match err {
            Error::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for violation in violations {
                    details.add_bad_request_violation(violation.field, violation.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::NotFound { kind, id } => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_resource_info(kind.as_str(), id, "", "not found"),
            ),
            Error::AlreadyExists {
                kind,
                field,
                message,
            } => {
                let mut details =
                    ErrorDetails::with_resource_info(kind.as_str(), "", "", message.clone());
                details.add_bad_request_violation(field, "is already taken");
                Status::with_error_details(Code::AlreadyExists, message, details)
            }
            Error::FailedPrecondition(_) => Status::failed_precondition(message),
            Error::IdempotencyKeyTaken => {
                let mut status = Status::aborted(message);
                status.metadata_mut().insert(
                    super::idempotency::KEY_TAKEN_MARKER,
                    tonic::metadata::MetadataValue::from_static("1"),
                );
                status
            }
            Error::Aborted(_) => Status::aborted(message),
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
