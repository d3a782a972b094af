//! The signatures providers put on the webhooks they send, checked in constant time.
//! Pure functions: the caller finds the key (the Meta app secret, the account's Twilio
//! auth token) and hands over the request exactly as it arrived.
//!
//! - Meta: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body with the app
//!   secret. The body must be the bytes Meta sent: Meta escapes non-ASCII characters
//!   (`\u00e9`) and slashes (`\/`), so a re-serialised body does not match.
//! - Twilio, exactly as twilio-python 9.13's `RequestValidator` checks it:
//!   `X-Twilio-Signature: <base64>`, an HMAC of the full URL Twilio requested (query
//!   string included) followed by the body's form parameters: each name once, sorted,
//!   and under it each distinct value, sorted, as name then value with no separator.
//!   The URL is tried with and without its port (any port is removed; 443 or 80 is
//!   added to a URL without one). A JSON body is signed through the URL instead: its
//!   `bodySHA256` query parameter must be the hex SHA-256 of the body. The HMAC is
//!   SHA-1 with the auth token, unless `X-Twilio-Webhooks-Signature-Settings:
//!   key=…,algorithm=…` is present: then the key is the account's SharedKey secret and
//!   the algorithm is the header's (`HMAC_SHA1` when it names none).

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const META_HEADER: &str = "x-hub-signature-256";
pub const TWILIO_HEADER: &str = "x-twilio-signature";
/// The most form parameters a Twilio body is read with (Twilio sends a few dozen).
const MAX_TWILIO_PARAMS: usize = 1_000;

/// Present on webhooks signed with a SharedKey: `key=<sharedKeyId>,algorithm=<name>`.
pub const TWILIO_SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";

/// The HMACs Twilio signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwilioAlgorithm {
    HmacSha1,
    HmacSha256,
}

/// The algorithm `X-Twilio-Webhooks-Signature-Settings` names, read as twilio-python
/// 9.13 reads it (`get_signature_algorithm`): the first `algorithm=` part with a value,
/// matched without regard to case; `HMAC_SHA1` when there is none. Anything else is
/// refused with its name, cut to 32 printable characters (it is the sender's text).
pub fn twilio_algorithm(settings: &str) -> Result<TwilioAlgorithm, String> {
    let named = settings.split(',').find_map(|part| {
        let (name, value) = part.split_once('=')?;
        (name.trim() == "algorithm" && !value.trim().is_empty()).then(|| value.trim())
    });
    match named {
        None => Ok(TwilioAlgorithm::HmacSha1),
        Some(name) if name.eq_ignore_ascii_case("HMAC_SHA1") => Ok(TwilioAlgorithm::HmacSha1),
        Some(name) if name.eq_ignore_ascii_case("HMAC_SHA256") => Ok(TwilioAlgorithm::HmacSha256),
        Some(name) => Err(name.chars().filter(|c| !c.is_control()).take(32).collect()),
    }
}

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

/// Checks Twilio's `X-Twilio-Signature` value against the URL and body, with `key`
/// (the auth token, or the SharedKey secret) and `algorithm`.
/// `form_body` says whether the body is `application/x-www-form-urlencoded` (its
/// parameters are signed) or something else (JSON: signed through `bodySHA256`).
pub fn verify_twilio(
    key: &[u8],
    algorithm: TwilioAlgorithm,
    header: &str,
    url: &str,
    raw_body: &[u8],
    form_body: bool,
) -> Result<(), Mismatch> {
    use base64::Engine;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| Mismatch::Malformed)?;
    let mut params = Vec::new();
    if form_body {
        // Each name once, and under it each distinct value, both sorted: twilio-python's
        // `sorted(set(params))` and `sorted(set(values))`, which is the order of the
        // (name, value) pairs sorted and deduplicated. Rust orders strings by their UTF-8
        // bytes, Python by code point: the same order. Twilio sends a few dozen
        // parameters; a body of thousands is no Twilio request.
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(raw_body)
            .take(MAX_TWILIO_PARAMS + 1)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        if pairs.len() > MAX_TWILIO_PARAMS {
            return Err(Mismatch::Malformed);
        }
        pairs.sort();
        pairs.dedup();
        for (name, value) in pairs {
            params.extend_from_slice(name.as_bytes());
            params.extend_from_slice(value.as_bytes());
        }
    } else {
        let hash = query_param(url, "bodySHA256").ok_or(Mismatch::BodyHash)?;
        let actual = Sha256::digest(raw_body);
        let expected = decode_hex(&hash).ok_or(Mismatch::BodyHash)?;
        if !bool::from(actual.as_slice().ct_eq(&expected)) {
            return Err(Mismatch::BodyHash);
        }
    }
    // Twilio signs the URL as it requested it, and proxies add or drop the port: both
    // forms are tried, as twilio-python does.
    let verifies = |candidate: &str| hmac_verifies(algorithm, key, candidate, &params, &signature);
    if verifies(url) || verifies(&other_port_form(url)) {
        return Ok(());
    }
    Err(Mismatch::Wrong)
}

/// Whether `signature` is the HMAC of `url` followed by `params` under `key`.
fn hmac_verifies(
    algorithm: TwilioAlgorithm,
    key: &[u8],
    url: &str,
    params: &[u8],
    signature: &[u8],
) -> bool {
    match algorithm {
        TwilioAlgorithm::HmacSha1 => <Hmac<Sha1> as KeyInit>::new_from_slice(key)
            .map(|mut mac| {
                mac.update(url.as_bytes());
                mac.update(params);
                mac.verify_slice(signature).is_ok()
            })
            .unwrap_or(false),
        TwilioAlgorithm::HmacSha256 => <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .map(|mut mac| {
                mac.update(url.as_bytes());
                mac.update(params);
                mac.verify_slice(signature).is_ok()
            })
            .unwrap_or(false),
    }
}

/// Compares two secrets without leaking through timing where they differ.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    // Lengths may differ in time; tokens are fixed-length, and a length is no secret.
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The URL's other form: without its port when it has one (any port, as
/// twilio-python's `remove_port`), else with the scheme's (443 for https, 80 for
/// anything else, as its `add_port`).
fn other_port_form(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // A port follows the host: after any user info, and after an IPv6 literal's `]`.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let (user_info, host) = authority.split_at(host_start);
    let port_colon = host.rfind(':').filter(|&colon| {
        let port = &host[colon + 1..];
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
    });

    match port_colon {
        Some(colon) => format!("{scheme}://{user_info}{}{tail}", &host[..colon]),
        None => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            format!("{scheme}://{authority}:{port}{tail}")
        }
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
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
    fn secrets_compare_by_value() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}

#[cfg(test)]
#[path = "webhook_signatures_twilio_tests.rs"]
mod twilio_tests;
