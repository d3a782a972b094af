//! Meta's errors, typed, and the gRPC status each one becomes.
//!
//! | Meta says                                   | Status              |
//! |---------------------------------------------|---------------------|
//! | error code 190 (token expired or invalid)   | FAILED_PRECONDITION; the account is marked `reauthorization_required` |
//! | HTTP 429, or codes 4, 17, 32, 341, 613, 80001-80014 (rate limits) | UNAVAILABLE |
//! | HTTP 5xx, codes 1 and 2, `is_transient`, or no answer / timeout | UNAVAILABLE |
//! | any other refusal (4xx)                     | FAILED_PRECONDITION with Meta's message |
//! | a code exchange refused (4xx)               | INVALID_ARGUMENT naming `code` |
//! | no Meta app configured                      | FAILED_PRECONDITION |
//! | the outbound guard refused the base URL's address | FAILED_PRECONDITION naming the setting |

use reqwest::StatusCode;
use serde_json::Value;

use crate::domain::{Error, FieldViolation};

const MAX_MESSAGE_CHARS: usize = 300;

/// Meta's error body: `{"error": {"message", "type", "code", "error_subcode",
/// "fbtrace_id"}}` from the Graph API, or `{"error_type", "code", "error_message"}` from
/// Instagram Login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphError {
    pub http_status: StatusCode,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub kind: Option<String>,
    pub message: String,
    pub fbtrace_id: Option<String>,
    /// Meta's own `is_transient`: the call may succeed if retried.
    pub transient: bool,
}

/// Error code 190: the access token expired, was revoked or is not valid.
pub const INVALID_TOKEN: i64 = 190;
/// Meta's answers about the credential itself: 190 (any subcode), 102 (session), and
/// 463/467 (expired, invalid) where they come as codes. Only these mean the account
/// must be connected again.
const CREDENTIAL_CODES: &[i64] = &[INVALID_TOKEN, 102, 463, 467];
/// Rate limits (Graph API, "Rate Limiting"), and 341, "Application limit reached"
/// (temporary downtime or throttling, per "Handling Errors").
const RATE_LIMIT_CODES: &[i64] = &[4, 17, 32, 341, 613];
/// 1 "API Unknown" and 2 "API Service": Meta's temporary faults ("wait and retry"), on
/// whatever HTTP status they come.
const TEMPORARY_CODES: &[i64] = &[1, 2];

impl GraphError {
    pub fn decode(http_status: StatusCode, body: &[u8]) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let graph = json.get("error").filter(|e| e.is_object());
        let field = |name: &str| match graph {
            Some(error) => error.get(name),
            None => json.get(name),
        };
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let message = text(field("message"))
            .or_else(|| text(json.get("error_message")))
            .unwrap_or_else(|| format!("HTTP {http_status}"));
        Self {
            http_status,
            code: field("code").and_then(Value::as_i64),
            subcode: field("error_subcode").and_then(Value::as_i64),
            kind: text(field("type")).or_else(|| text(json.get("error_type"))),
            message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
            fbtrace_id: text(field("fbtrace_id")),
            transient: field("is_transient").and_then(Value::as_bool) == Some(true),
        }
    }

    /// The token was refused: somebody must connect the account again. Only a 4xx
    /// (never a 404 of a wrong path, nor a 5xx) with a credential code says so.
    pub fn is_invalid_token(&self) -> bool {
        self.http_status.is_client_error()
            && self.http_status != StatusCode::NOT_FOUND
            && self
                .code
                .is_some_and(|code| CREDENTIAL_CODES.contains(&code))
    }

    pub fn is_rate_limit(&self) -> bool {
        self.http_status == StatusCode::TOO_MANY_REQUESTS
            || self.code.is_some_and(|code| {
                RATE_LIMIT_CODES.contains(&code) || (80001..=80014).contains(&code)
            })
    }

    /// Meta down, limiting, or saying the fault is temporary: a 5xx, a rate limit, codes
    /// 1 and 2, or `is_transient`.
    pub fn is_outage(&self) -> bool {
        self.http_status.is_server_error()
            || self.is_rate_limit()
            || self.transient
            || self
                .code
                .is_some_and(|code| TEMPORARY_CODES.contains(&code))
    }

    fn describe(&self) -> String {
        let mut text = self.message.clone();
        if let Some(code) = self.code {
            text.push_str(&format!(" (Meta error {code}"));
            if let Some(subcode) = self.subcode {
                text.push_str(&format!(", subcode {subcode}"));
            }
            if let Some(trace) = &self.fbtrace_id {
                text.push_str(&format!(", fbtrace_id {trace}"));
            }
            text.push(')');
        }
        text
    }
}

/// What a failed call to Meta means for the account behind it: the one classifier the
/// set-up, the token checks and the refresher share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Meta refused the credential (190, 102, 463, 467): the account needs a new token.
    Credential,
    /// Meta is down, limiting or not reached (5xx, 429, rate-limit codes, codes 1 and 2,
    /// `is_transient`, timeouts): try again later; nothing about the account is learnt.
    Outage,
    /// A fault of ours or of the configuration (a 404 of a wrong path or base URL, a
    /// refused address, no Meta app, any other refusal): logged, never the account's.
    Configuration,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// Meta answered with an error.
    #[error("{}", .0.describe())]
    Graph(GraphError),
    /// Meta did not answer (connection refused, timeout).
    #[error("Meta could not be reached: {0}")]
    Unreachable(String),
    /// The outbound guard refused the configured base URL's address; nothing was sent.
    #[error("Meta was not called: {0}")]
    Refused(String),
    /// Meta answered 2xx with something other than what its API documents.
    #[error("{0}")]
    Malformed(String),
    /// The call needs the Meta app's id and secret, and none is configured.
    #[error("no Meta app is configured (PATCHBAY_META_APP_ID / PATCHBAY_META_APP_SECRET)")]
    NoApp,
}

impl MetaError {
    pub fn is_invalid_token(&self) -> bool {
        self.failure() == Failure::Credential
    }

    /// What the failure means for the account (see [`Failure`]).
    pub fn failure(&self) -> Failure {
        match self {
            MetaError::Graph(err) if err.is_invalid_token() => Failure::Credential,
            MetaError::Graph(err) if err.is_outage() => Failure::Outage,
            MetaError::Graph(_) | MetaError::Refused(_) | MetaError::NoApp => {
                Failure::Configuration
            }
            MetaError::Unreachable(_) | MetaError::Malformed(_) => Failure::Outage,
        }
    }

    /// Worth asking again later (UNAVAILABLE): Meta is down, limiting, or not reached.
    pub fn is_transient(&self) -> bool {
        match self {
            MetaError::Graph(err) => !err.is_invalid_token() && err.is_outage(),
            MetaError::Unreachable(_) | MetaError::Malformed(_) => true,
            MetaError::NoApp | MetaError::Refused(_) => false,
        }
    }

    /// The error with the step it failed at named (`"registering the phone number"`).
    pub fn during(self, what: &str) -> MetaError {
        match self {
            MetaError::Graph(mut graph) => {
                graph.message = format!("{what}: {}", graph.message);
                MetaError::Graph(graph)
            }
            MetaError::Unreachable(reason) => MetaError::Unreachable(format!("{reason} ({what})")),
            MetaError::Malformed(reason) => MetaError::Malformed(format!("{reason} ({what})")),
            MetaError::Refused(reason) => MetaError::Refused(format!("{reason} ({what})")),
            MetaError::NoApp => MetaError::NoApp,
        }
    }

    /// The status for a call that failed while doing `what` ("registering the phone
    /// number"). Every message is Meta's own text and codes, never a token.
    pub fn into_error(self, what: &str) -> Error {
        match &self {
            MetaError::Graph(err) if err.is_invalid_token() => Error::FailedPrecondition(format!(
                "Meta rejected the access token while {what}: {self}; connect the account again or store a new token"
            )),
            MetaError::Graph(err) if err.is_rate_limit() => Error::Unavailable(format!(
                "Meta is rate limiting while {what}: {self}; retry later"
            )),
            MetaError::Graph(err) if err.http_status.is_server_error() => {
                Error::Unavailable(format!("Meta failed while {what}: {self}"))
            }
            MetaError::Graph(_) | MetaError::NoApp => {
                Error::FailedPrecondition(format!("Meta refused {what}: {self}"))
            }
            MetaError::Refused(_) => Error::FailedPrecondition(format!("{self} (while {what})")),
            MetaError::Unreachable(_) | MetaError::Malformed(_) => {
                Error::Unavailable(format!("{self} (while {what})"))
            }
        }
    }

    /// As [`into_error`](Self::into_error), but a refused OAuth code exchange is the
    /// caller's bad `field`.
    pub fn into_exchange_error(self, field: &str, what: &str) -> Error {
        match &self {
            MetaError::Graph(err)
                if err.http_status.is_client_error()
                    && !err.is_rate_limit()
                    && !err.is_invalid_token() =>
            {
                Error::InvalidArgument(vec![FieldViolation::new(
                    field,
                    format!("Meta refused it while {what}: {self}"),
                )])
            }
            _ => self.into_error(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_error_body_is_decoded() {
        let body = br#"{"error":{"message":"Error validating access token: Session has expired on Tuesday.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"AbCdEf"}}"#;
        let err = GraphError::decode(StatusCode::UNAUTHORIZED, body);
        assert!(err.is_invalid_token());
        assert_eq!(err.subcode, Some(463));
        assert_eq!(err.kind.as_deref(), Some("OAuthException"));
        assert_eq!(err.fbtrace_id.as_deref(), Some("AbCdEf"));
        assert!(matches!(
            MetaError::Graph(err).into_error("checking"),
            Error::FailedPrecondition(message) if message.contains("190") && message.contains("Session has expired")
        ));
    }

    /// Meta's temporary faults are outages on any status ("Handling Errors": codes 1 and
    /// 2 "wait and retry", 341 throttling; `is_transient` as Meta sends it).
    #[test]
    fn temporary_faults_are_outages_whatever_the_status() {
        for body in [
            &br#"{"error":{"message":"An unknown error occurred","type":"OAuthException","code":1}}"#[..],
            br#"{"error":{"message":"Service temporarily unavailable","type":"OAuthException","code":2}}"#,
            br#"{"error":{"message":"Application limit reached","code":341}}"#,
            br#"{"error":{"message":"Please retry","code":100,"is_transient":true}}"#,
        ] {
            let err = MetaError::Graph(GraphError::decode(StatusCode::BAD_REQUEST, body));
            assert_eq!(err.failure(), Failure::Outage, "{err}");
            assert!(err.is_transient());
        }
        // A credential refusal stays one, even marked transient.
        let body = br#"{"error":{"message":"expired","code":190,"is_transient":true}}"#;
        let err = MetaError::Graph(GraphError::decode(StatusCode::BAD_REQUEST, body));
        assert_eq!(err.failure(), Failure::Credential);
        let body = br#"{"error":{"message":"Invalid parameter","code":100}}"#;
        let err = MetaError::Graph(GraphError::decode(StatusCode::BAD_REQUEST, body));
        assert_eq!(err.failure(), Failure::Configuration);
    }

    #[test]
    fn instagram_login_error_body_is_decoded() {
        let body = br#"{"error_type": "OAuthException", "code": 400, "error_message": "Matching code was not found or was already used"}"#;
        let err = GraphError::decode(StatusCode::BAD_REQUEST, body);
        assert_eq!(
            err.message,
            "Matching code was not found or was already used"
        );
        assert_eq!(err.kind.as_deref(), Some("OAuthException"));
        assert!(matches!(
            MetaError::Graph(err).into_exchange_error("code", "exchanging the code"),
            Error::InvalidArgument(violations) if violations[0].field == "code"
        ));
    }

    #[test]
    fn rate_limits_and_outages_are_unavailable() {
        let limited = GraphError::decode(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4}}"#,
        );
        assert!(matches!(
            MetaError::Graph(limited).into_error("x"),
            Error::Unavailable(_)
        ));
        let down = GraphError::decode(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(down.message, "HTTP 502 Bad Gateway");
        assert!(matches!(
            MetaError::Graph(down).into_error("x"),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            MetaError::Unreachable("timed out".into()).into_error("x"),
            Error::Unavailable(_)
        ));
    }

    #[test]
    fn only_credential_answers_are_credential_failures() {
        let graph = |status: u16, body: &[u8]| {
            MetaError::Graph(GraphError::decode(
                StatusCode::from_u16(status).expect("status"),
                body,
            ))
        };
        for code in [190, 102, 463, 467] {
            let body = format!(r#"{{"error":{{"message":"m","code":{code}}}}}"#);
            assert_eq!(
                graph(400, body.as_bytes()).failure(),
                Failure::Credential,
                "{code}"
            );
        }
        let expired =
            br#"{"error":{"message":"Session has expired","code":190,"error_subcode":463}}"#;
        assert_eq!(graph(401, expired).failure(), Failure::Credential);
        // The same code behind a 5xx or a 404 (a proxy, a wrong base URL) flags nothing.
        assert_eq!(graph(500, expired).failure(), Failure::Outage);
        assert_eq!(graph(404, expired).failure(), Failure::Configuration);
        assert_eq!(
            graph(404, b"<html>Not Found</html>").failure(),
            Failure::Configuration
        );
        assert_eq!(graph(429, b"").failure(), Failure::Outage);
        assert_eq!(graph(503, b"").failure(), Failure::Outage);
        let limited = br#"{"error":{"message":"(#4) limit","code":4}}"#;
        assert_eq!(graph(400, limited).failure(), Failure::Outage);
        let invalid = br#"{"error":{"message":"(#100) Invalid parameter","code":100}}"#;
        assert_eq!(graph(400, invalid).failure(), Failure::Configuration);
        assert_eq!(
            MetaError::Unreachable("timed out".into()).failure(),
            Failure::Outage
        );
        assert_eq!(MetaError::NoApp.failure(), Failure::Configuration);
    }

    #[test]
    fn other_refusals_are_failed_preconditions() {
        let refused = GraphError::decode(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100}}"#,
        );
        assert!(matches!(
            MetaError::Graph(refused).into_error("registering"),
            Error::FailedPrecondition(message) if message.contains("Invalid parameter")
        ));
    }

    proptest::proptest! {
        /// Whatever Meta answers (any status, any bytes), decoding its error neither
        /// panics nor lets a message past its length cap.
        #[test]
        fn any_error_answer_decodes(status in 400u16..600, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let err = GraphError::decode(status, &body);
            proptest::prop_assert!(err.message.chars().count() <= MAX_MESSAGE_CHARS);
            let _ = MetaError::Graph(err).into_error("testing");
        }

        /// A token answer of any shape gives a token or a clear error, never a panic.
        #[test]
        fn any_token_answer_is_read_safely(token in proptest::option::of(".{0,64}"), expires in proptest::prelude::any::<i64>()) {
            let answer = serde_json::json!({"access_token": token, "expires_in": expires});
            let _ = crate::meta::graph::access_token_of(&answer);
        }
    }
}
