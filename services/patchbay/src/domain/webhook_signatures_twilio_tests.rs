//! Twilio's signatures, on twilio-python's own vectors: `tests/unit/test_request_validator.py`
//! of twilio/twilio-python (auth token `12345`), and, for SharedKey signatures, values
//! computed with twilio-python 9.13.0's `RequestValidator.compute_signature(uri, params,
//! algorithm)` (the release that added them; its sdist ships no tests).

use super::*;

const URI: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
/// test_request_validator.py's `params`, as the form body Twilio posts.
const PARAMS: &str = "CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";
/// test_request_validator.py's `expected`.
const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
const SHA1: TwilioAlgorithm = TwilioAlgorithm::HmacSha1;
const SHA256: TwilioAlgorithm = TwilioAlgorithm::HmacSha256;
/// The secret of the SharedKey vectors (computed with twilio-python 9.13.0).
const SHARED_KEY: &[u8] = b"sharedkey-secret-for-tests";

fn form(key: &[u8], algorithm: TwilioAlgorithm, signature: &str, url: &str, body: &str) -> bool {
    verify_twilio(key, algorithm, signature, url, body.as_bytes(), true).is_ok()
}

#[test]
fn the_documented_vector_verifies() {
    // test_compute_signature, test_validation.
    assert!(form(b"12345", SHA1, EXPECTED, URI, PARAMS));
    assert!(!form(b"54321", SHA1, EXPECTED, URI, PARAMS));
    assert!(!form(
        b"12345",
        SHA1,
        EXPECTED,
        &URI.replace("foo=1", "foo=2"),
        PARAMS
    ));
    assert!(!form(
        b"12345",
        SHA1,
        EXPECTED,
        URI,
        &PARAMS.replace("1234&", "1235&")
    ));
    assert!(!form(
        b"12345",
        SHA1,
        EXPECTED,
        "https://mycompany.com/myapp.php",
        PARAMS
    ));
    assert_eq!(
        verify_twilio(b"12345", SHA1, "not base64!", URI, PARAMS.as_bytes(), true),
        Err(Mismatch::Malformed)
    );
}

#[test]
fn each_name_once_each_distinct_value_once_both_sorted() {
    // test_compute_signature_duplicate_multi_dict / _query_dict: "Ensure keys are
    // sorted", "Ensure values are sorted", "Ensure duplicates are removed".
    let body = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
    assert!(form(
        b"12345",
        SHA1,
        "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        URI,
        body
    ));
    // The duplicate is what makes the vector: kept, it signs something else.
    let once = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
    assert!(form(
        b"12345",
        SHA1,
        "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        URI,
        once
    ));
}

#[test]
fn any_port_is_removed_and_the_default_one_added() {
    // test_validation_removes_port_on_https: signed without the port.
    let https_1234 = URI.replace(".com", ".com:1234");
    assert!(form(b"12345", SHA1, EXPECTED, &https_1234, PARAMS));
    // test_validation_removes_port_on_http: "hash of http uri with port 1234".
    let http_1234 = https_1234.replace("https", "http");
    assert!(form(
        b"12345",
        SHA1,
        "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        &http_1234,
        PARAMS
    ));
    // test_validation_adds_port_on_https: "hash of uri with port 443".
    assert!(form(
        b"12345",
        SHA1,
        "kvajT1Ptam85bY51eRf/AJRuM3w=",
        URI,
        PARAMS
    ));
    // test_validation_adds_port_on_http: "hash of uri with port 80".
    let http = URI.replace("https", "http");
    assert!(form(
        b"12345",
        SHA1,
        "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        &http,
        PARAMS
    ));
    // Another port is neither form of a URL without one.
    assert!(!form(
        b"12345",
        SHA1,
        "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        &http,
        PARAMS
    ));
}

#[test]
fn other_port_forms_keep_user_info_and_ipv6_hosts() {
    assert_eq!(
        other_port_form("https://user:pass@example.com:8443/x?y=1"),
        "https://user:pass@example.com/x?y=1"
    );
    assert_eq!(
        other_port_form("https://user:pass@example.com/x"),
        "https://user:pass@example.com:443/x"
    );
    assert_eq!(other_port_form("http://[::1]:8080/x"), "http://[::1]/x");
    assert_eq!(other_port_form("http://[::1]/x"), "http://[::1]:80/x");
    assert_eq!(
        other_port_form("https://example.com"),
        "https://example.com:443"
    );
}

#[test]
fn a_json_body_is_signed_through_its_hash() {
    // test_validation_of_body_succeeds.
    let body = r#"{"property": "value", "boolean": true}"#;
    let url = format!(
        "{URI}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    );
    let json = |key: &[u8], algorithm, signature: &str, body: &str| {
        verify_twilio(key, algorithm, signature, &url, body.as_bytes(), false)
    };
    assert_eq!(
        json(b"12345", SHA1, "a9nBmqA0ju/hNViExpshrM61xv4=", body),
        Ok(())
    );
    assert_eq!(
        json(b"12345", SHA1, "a9nBmqA0ju/hNViExpshrM61xv4=", "{}"),
        Err(Mismatch::BodyHash)
    );
    // The same with a SharedKey and HMAC_SHA256 (twilio-python 9.13.0).
    let sha256 = "e6vlsf8T+E3NpapXRy4neuTo19FD5Pb/PfdioEnCXBs=";
    assert_eq!(json(SHARED_KEY, SHA256, sha256, body), Ok(()));
}

#[test]
fn shared_key_signatures_verify_with_their_algorithm() {
    // compute_signature(URI, params, "HMAC_SHA256") and (…, "HMAC_SHA1") with the
    // SharedKey secret, twilio-python 9.13.0.
    let sha256 = "CdXNU6r2A9HA64Al6OqOsJAo6DBbdrUiF68bwk1cbbw=";
    let sha1 = "k+5TCrq5LghCdYi+yt7U7CxughQ=";
    assert!(form(SHARED_KEY, SHA256, sha256, URI, PARAMS));
    assert!(form(SHARED_KEY, SHA1, sha1, URI, PARAMS));
    assert!(
        !form(SHARED_KEY, SHA1, sha256, URI, PARAMS),
        "the algorithm is the header's"
    );
    assert!(
        !form(b"12345", SHA256, sha256, URI, PARAMS),
        "the key is the SharedKey"
    );
    // Ports and duplicates as with the auth token.
    let port = URI.replace(".com", ".com:8443");
    assert!(form(SHARED_KEY, SHA256, sha256, &port, PARAMS));
    let duplicates = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
    let signed = "wfqm6umwQCSSPSjPyfhcS+kqZU4CobT7kW2uh6N5wHM=";
    assert!(form(SHARED_KEY, SHA256, signed, URI, duplicates));
}

#[test]
fn the_settings_header_names_the_algorithm_as_twilio_python_reads_it() {
    // get_signature_algorithm of twilio-python 9.13.0, on these headers.
    let read = |header| twilio_algorithm(header);
    assert_eq!(
        read("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"),
        Ok(SHA256)
    );
    assert_eq!(read("algorithm = hmac_sha256 , key=x"), Ok(SHA256));
    assert_eq!(read("key=x,algorithm=HMAC_SHA1"), Ok(SHA1));
    assert_eq!(read("key=x"), Ok(SHA1));
    assert_eq!(read(""), Ok(SHA1));
    assert_eq!(read("key=x,algorithm="), Ok(SHA1));
    // The first named one counts; an unknown one is refused, its name cut.
    assert_eq!(
        read("algorithm=HMAC_MD5,algorithm=HMAC_SHA256"),
        Err("HMAC_MD5".to_owned())
    );
    let long = format!("algorithm={}\u{7}", "X".repeat(100));
    assert_eq!(read(&long), Err("X".repeat(32)));
}

#[test]
fn a_body_of_more_parameters_than_twilio_sends_is_refused_before_any_hmac() {
    // A careless or hostile caller's 1 MiB of distinct names: refused as malformed,
    // never sorted into memory beyond the limit.
    let body: String = (0..1_001)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        verify_twilio(b"12345", SHA1, EXPECTED, URI, body.as_bytes(), true),
        Err(Mismatch::Malformed)
    );
    let thousand: String = (0..1_000)
        .map(|i| format!("p{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        verify_twilio(b"12345", SHA1, EXPECTED, URI, thousand.as_bytes(), true),
        Err(Mismatch::Wrong),
        "a thousand are read (and do not verify this signature)"
    );
}
