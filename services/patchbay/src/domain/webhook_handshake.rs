//! Meta's subscription handshake (`hub.mode=subscribe`, `hub.verify_token`,
//! `hub.challenge`), as one rule for both places that answer it: a workspace's own
//! gateway (`VerifyWebhookSubscription`) and the installation's (`RouteWebhook`).

use super::error::{Error, FieldViolation};
use super::webhook_signatures::secrets_equal;

/// The longest challenge taken.
pub const MAX_CHALLENGE_CHARS: usize = 1024;

/// What the handshake must carry before any verify token is compared: a challenge
/// Meta could have sent (digits; nothing a gateway could echo as markup: letters,
/// digits, '-', '_' or '.', at most 1,024), named as `challenge_field`; and the
/// `subscribe` mode (PERMISSION_DENIED otherwise, as a failed verification).
pub fn asked(mode: &str, challenge: &str, challenge_field: &str) -> Result<(), Error> {
    let plain = challenge
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if challenge.is_empty() || challenge.len() > MAX_CHALLENGE_CHARS || !plain {
        return Err(Error::InvalidArgument(vec![FieldViolation::new(
            challenge_field,
            "hub.challenge is required: at most 1024 letters, digits, '-', '_' or '.'",
        )]));
    }
    if mode != "subscribe" {
        return Err(Error::PermissionDenied(
            "webhook verification failed: hub.mode is not subscribe".to_owned(),
        ));
    }
    Ok(())
}

/// Whether `given` is the verify token `expected`: never an empty one, compared in
/// constant time.
pub fn token_matches(expected: &str, given: &str) -> bool {
    !given.is_empty() && secrets_equal(expected, given)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_needs_a_plain_challenge_and_the_subscribe_mode() {
        assert!(asked("subscribe", "1158201444", "challenge").is_ok());
        for challenge in ["", "<script>", &"9".repeat(1025)] {
            assert!(
                matches!(asked("subscribe", challenge, "url"), Err(Error::InvalidArgument(v)) if v[0].field == "url"),
                "{challenge:?}"
            );
        }
        assert!(matches!(
            asked("unsubscribe", "1", "challenge"),
            Err(Error::PermissionDenied(_))
        ));
        assert!(token_matches("vt-123", "vt-123"));
        assert!(!token_matches("vt-123", "vt-124"));
        assert!(!token_matches("", ""), "an empty token never matches");
    }
}
