//! The signatures providers put on the webhooks they send, checked in constant time.
//! Pure functions: the caller finds the key (the Meta app secret, the account's Twilio
//! auth token) and hands over the request exactly as it arrived.
//!
//! - Meta: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body with the app
//!   secret. The body must be the bytes Meta sent: Meta escapes non-ASCII characters
//!   (`\u00e9`) and slashes (`\/`), so a re-serialised body does not match.
//! - Twilio: `X-Twilio-Signature: <base64>`, HMAC-SHA1 with the auth token of the full
//!   URL Twilio requested (query string included) followed by every form parameter of
//!   the body, sorted by name, as name then value with no separator. A JSON body is
//!   signed through the URL instead: its `bodySHA256` query parameter must be the hex
//!   SHA-256 of the body.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const META_HEADER: &str = "x-hub-signature-256";
pub const TWILIO_HEADER: &str = "x-twilio-signature";

/// Why a signature did not verify. The texts name what was wrong, never a key or the
/// expected signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The header is not in the provider's format.
    Malformed,
    /// Well-formed, but not made with this key over this request.
    Wrong,
    /// Twilio JSON body: the body's SHA-256 is not the URL's `bodySHA256`.
    BodyHash,
}

impl Mismatch {
    pub fn describe(self) -> &'static str {
        match self {
            Mismatch::Malformed => "the signature header is not in the provider's format",
            Mismatch::Wrong => "the signature does not match the request",
            Mismatch::BodyHash => "the body does not match the URL's bodySHA256",
        }
    }
}

/// Checks Meta's `X-Hub-Signature-256` value against the raw body.
pub fn verify_meta(app_secret: &[u8], header: &str, raw_body: &[u8]) -> Result<(), Mismatch> {
    let hex = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(Mismatch::Malformed)?;
    let signature = decode_hex(hex).ok_or(Mismatch::Malformed)?;
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret).map_err(|_| Mismatch::Wrong)?;
    mac.update(raw_body);
    mac.verify_slice(&signature).map_err(|_| Mismatch::Wrong)
}

/// Checks Twilio's `X-Twilio-Signature` value against the URL and body.
/// `form_body` says whether the body is `application/x-www-form-urlencoded` (its
/// parameters are signed) or something else (JSON: signed through `bodySHA256`).
pub fn verify_twilio(
    auth_token: &[u8],
    header: &str,
    url: &str,
    raw_body: &[u8],
    form_body: bool,
) -> Result<(), Mismatch> {
    use base64::Engine;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| Mismatch::Malformed)?;
    let mut signed = Vec::with_capacity(url.len() + raw_body.len());
    if form_body {
        let mut params: Vec<(String, String)> = form_urlencoded::parse(raw_body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        // Byte order, as Twilio sorts (case-sensitive); values break ties of a
        // repeated name.
        params.sort();
        signed.extend_from_slice(url.as_bytes());
        for (name, value) in params {
            signed.extend_from_slice(name.as_bytes());
            signed.extend_from_slice(value.as_bytes());
        }
    } else {
        let hash = query_param(url, "bodySHA256").ok_or(Mismatch::BodyHash)?;
        let actual = Sha256::digest(raw_body);
        let expected = decode_hex(&hash).ok_or(Mismatch::BodyHash)?;
        if !bool::from(actual.as_slice().ct_eq(&expected)) {
            return Err(Mismatch::BodyHash);
        }
        signed.extend_from_slice(url.as_bytes());
    }
    // Twilio signs the URL as it requested it; proxies add or drop the default port,
    // so the other form is accepted too, as Twilio's own libraries do.
    for candidate in url_variants(url) {
        let mut message = candidate.into_bytes();
        message.extend_from_slice(&signed[url.len()..]);
        let mut mac =
            <Hmac<Sha1> as KeyInit>::new_from_slice(auth_token).map_err(|_| Mismatch::Wrong)?;
        mac.update(&message);
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err(Mismatch::Wrong)
}

/// Compares two secrets without leaking through timing where they differ.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    // Lengths may differ in time; tokens are fixed-length, and a length is no secret.
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The URL as given, then with the scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        let Some(rest) = url.strip_prefix(scheme) else {
            continue;
        };
        let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, tail) = rest.split_at(host_end);
        let other = match host.strip_suffix(port) {
            Some(bare) => format!("{scheme}{bare}{tail}"),
            None if !host.contains(':') => format!("{scheme}{host}{port}{tail}"),
            None => continue,
        };
        variants.push(other);
    }
    variants
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Twilio's documented example: auth token 12345.
    const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const TWILIO_BODY: &str = "Digits=1234&To=%2B18005551212&From=%2B12349013030&Caller=%2B12349013030&CallSid=CA1234567890ABCDE";
    const TWILIO_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    // A Messenger webhook as Meta sends it: non-ASCII escaped, slashes escaped.
    const META_BODY: &str = r#"{"object":"page","entry":[{"messaging":[{"message":{"text":"Ol\u00e1 \ud83d\ude00 \u00fcber \/path"}}]}]}"#;
    const META_SIGNATURE: &str =
        "sha256=175bd03124ccc4cf6ad822ad274d6a9813fb6fb91fdbabc2017f52c6f94e5a0e";

    #[test]
    fn meta_known_vector_verifies_over_the_raw_bytes() {
        assert_eq!(
            verify_meta(b"test-app-secret", META_SIGNATURE, META_BODY.as_bytes()),
            Ok(())
        );
        // The same JSON re-serialised with the characters unescaped is another body.
        let reserialised = r#"{"object":"page","entry":[{"messaging":[{"message":{"text":"Olá 😀 über /path"}}]}]}"#;
        assert_eq!(
            verify_meta(b"test-app-secret", META_SIGNATURE, reserialised.as_bytes()),
            Err(Mismatch::Wrong)
        );
    }

    #[test]
    fn meta_tampering_and_wrong_keys_fail() {
        let tampered = META_BODY.replace("path", "bath");
        assert_eq!(
            verify_meta(b"test-app-secret", META_SIGNATURE, tampered.as_bytes()),
            Err(Mismatch::Wrong)
        );
        assert_eq!(
            verify_meta(b"other-secret", META_SIGNATURE, META_BODY.as_bytes()),
            Err(Mismatch::Wrong)
        );
        for malformed in ["", "sha1=abcd", "sha256=zz", "sha256=abc"] {
            assert_eq!(
                verify_meta(b"test-app-secret", malformed, META_BODY.as_bytes()),
                Err(Mismatch::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn twilio_known_vector_verifies_with_sorted_parameters_and_query_string() {
        assert_eq!(
            verify_twilio(
                b"12345",
                TWILIO_SIGNATURE,
                TWILIO_URL,
                TWILIO_BODY.as_bytes(),
                true
            ),
            Ok(())
        );
        // Twilio requested the URL without a port; a proxy that reports :443 still matches.
        let with_port = TWILIO_URL.replace("mycompany.com", "mycompany.com:443");
        assert_eq!(
            verify_twilio(
                b"12345",
                TWILIO_SIGNATURE,
                &with_port,
                TWILIO_BODY.as_bytes(),
                true
            ),
            Ok(())
        );
    }

    #[test]
    fn twilio_tampering_fails() {
        let other_url = TWILIO_URL.replace("foo=1", "foo=2");
        assert_eq!(
            verify_twilio(
                b"12345",
                TWILIO_SIGNATURE,
                &other_url,
                TWILIO_BODY.as_bytes(),
                true
            ),
            Err(Mismatch::Wrong)
        );
        let without_query = "https://mycompany.com/myapp.php";
        assert_eq!(
            verify_twilio(
                b"12345",
                TWILIO_SIGNATURE,
                without_query,
                TWILIO_BODY.as_bytes(),
                true
            ),
            Err(Mismatch::Wrong)
        );
        let other_body = TWILIO_BODY.replace("Digits=1234", "Digits=1235");
        assert_eq!(
            verify_twilio(
                b"12345",
                TWILIO_SIGNATURE,
                TWILIO_URL,
                other_body.as_bytes(),
                true
            ),
            Err(Mismatch::Wrong)
        );
        assert_eq!(
            verify_twilio(
                b"54321",
                TWILIO_SIGNATURE,
                TWILIO_URL,
                TWILIO_BODY.as_bytes(),
                true
            ),
            Err(Mismatch::Wrong)
        );
        assert_eq!(
            verify_twilio(
                b"12345",
                "not base64!",
                TWILIO_URL,
                TWILIO_BODY.as_bytes(),
                true
            ),
            Err(Mismatch::Malformed)
        );
    }

    #[test]
    fn twilio_json_body_is_signed_through_its_hash() {
        use base64::Engine;
        let body = br#"{"event":"delivered"}"#;
        let hash: String = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let url = format!("https://hooks.example.test/twilio?bodySHA256={hash}");
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(b"token").expect("key");
        mac.update(url.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(
            verify_twilio(b"token", &signature, &url, body, false),
            Ok(())
        );
        assert_eq!(
            verify_twilio(b"token", &signature, &url, br#"{"event":"failed"}"#, false),
            Err(Mismatch::BodyHash)
        );
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
