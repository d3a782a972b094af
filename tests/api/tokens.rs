//! JWT hardening: RS256 and ES256 keys from PEM files and a JWKS file picked by `kid`,
//! the algorithm allowlist, and the exact code for each bad token.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use patchbay::auth::{JwtSettings, PublicKey};
use patchbay_e2e::proto;
use patchbay_e2e::{
    AUDIENCE, Backend, ISSUER, JWT_SECRET, TestApp, TestOptions, WORKSPACE, backend_tests,
};
use patchbay_sdk::tonic::Code;
use serde_json::{Value, json};

backend_tests!(
    tokens_are_checked_by_algorithm_key_and_claims,
    the_allowlist_refuses_other_algorithms,
    claims_follow_rfc_7519_and_division_claims_must_be_valid,
);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/jwt")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn claims() -> Value {
    json!({
        "sub": "gateway",
        "role": "service",
        "workspace_id": WORKSPACE,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 600,
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    if let Some(object) = claims.as_object_mut() {
        object.remove(key);
    }
    claims
}

fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&read("rsa-private.pem")).expect("rsa key"),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&read("ec-private.pem")).expect("ec key"),
        _ => EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    };
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn settings(algorithms: Vec<Algorithm>) -> JwtSettings {
    let mut public_keys = vec![
        PublicKey::from_pem(Some("rsa-pem".into()), &read("rsa-public.pem")).expect("rsa pem"),
        PublicKey::from_pem(Some("ec-pem".into()), &read("ec-public.pem")).expect("ec pem"),
    ];
    let jwks = std::fs::read_to_string(fixture("jwks.json")).expect("jwks");
    public_keys.extend(PublicKey::from_jwks(&jwks).expect("jwks keys"));
    JwtSettings {
        public_keys,
        algorithms,
        ..patchbay_e2e::jwt_settings()
    }
}

async fn code_of(app: &TestApp, token: &str) -> Code {
    match app
        .with_token(token)
        .accounts()
        .list_accounts(proto::ListAccountsRequest::default())
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn tokens_are_checked_by_algorithm_key_and_claims(backend: Backend) {
    let jwt = settings(vec![Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]);
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            jwt,
            ..Default::default()
        },
    )
    .await;

    let good = [
        (
            "RS256 from a PEM file",
            sign(Algorithm::RS256, Some("rsa-pem"), &claims()),
        ),
        (
            "RS256 from the JWKS",
            sign(Algorithm::RS256, Some("rsa-jwks"), &claims()),
        ),
        (
            "ES256 from a PEM file",
            sign(Algorithm::ES256, Some("ec-pem"), &claims()),
        ),
        (
            "ES256 from the JWKS",
            sign(Algorithm::ES256, Some("ec-jwks"), &claims()),
        ),
        ("HS256", sign(Algorithm::HS256, None, &claims())),
    ];
    for (case, token) in good {
        assert_eq!(code_of(&app, &token).await, Code::Ok, "{case}");
    }

    let rsa_public_pem = String::from_utf8(read("rsa-public.pem")).expect("pem");
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(rsa_public_pem.as_bytes()),
    )
    .expect("sign");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let bad = [
        (
            "expired",
            sign(
                Algorithm::RS256,
                Some("rsa-pem"),
                &with(claims(), "exp", json!(now() - 3600)),
            ),
            Code::Unauthenticated,
        ),
        (
            "not yet valid",
            sign(
                Algorithm::RS256,
                Some("rsa-pem"),
                &with(claims(), "nbf", json!(now() + 3600)),
            ),
            Code::Unauthenticated,
        ),
        (
            "wrong issuer",
            sign(
                Algorithm::ES256,
                Some("ec-jwks"),
                &with(claims(), "iss", json!("evil")),
            ),
            Code::Unauthenticated,
        ),
        (
            "wrong audience",
            sign(
                Algorithm::ES256,
                Some("ec-jwks"),
                &with(claims(), "aud", json!("other")),
            ),
            Code::Unauthenticated,
        ),
        ("alg none", unsigned, Code::Unauthenticated),
        (
            "HS256 signed with the RSA public key",
            confused,
            Code::Unauthenticated,
        ),
        (
            "unknown kid",
            sign(Algorithm::RS256, Some("nope"), &claims()),
            Code::Unauthenticated,
        ),
        (
            "kid of another algorithm",
            sign(Algorithm::RS256, Some("ec-pem"), &claims()),
            Code::Unauthenticated,
        ),
        (
            "no kid among several RS256 keys",
            sign(Algorithm::RS256, None, &claims()),
            Code::Unauthenticated,
        ),
        (
            "no workspace_id",
            sign(
                Algorithm::RS256,
                Some("rsa-pem"),
                &without(claims(), "workspace_id"),
            ),
            Code::Unauthenticated,
        ),
        (
            "no sub",
            sign(Algorithm::RS256, Some("rsa-pem"), &without(claims(), "sub")),
            Code::Unauthenticated,
        ),
        (
            "no exp",
            sign(Algorithm::RS256, Some("rsa-pem"), &without(claims(), "exp")),
            Code::Unauthenticated,
        ),
        (
            "no role",
            sign(
                Algorithm::RS256,
                Some("rsa-pem"),
                &without(claims(), "role"),
            ),
            Code::Unauthenticated,
        ),
        (
            "unknown role",
            sign(
                Algorithm::RS256,
                Some("rsa-pem"),
                &with(claims(), "role", json!("root")),
            ),
            Code::PermissionDenied,
        ),
    ];
    for (case, token, code) in bad {
        assert_eq!(code_of(&app, &token).await, code, "{case}");
    }
}

async fn the_allowlist_refuses_other_algorithms(backend: Backend) {
    let jwt = settings(vec![Algorithm::ES256]);
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            jwt,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        code_of(&app, &sign(Algorithm::ES256, Some("ec-pem"), &claims())).await,
        Code::Ok
    );
    for token in [
        sign(Algorithm::HS256, None, &claims()),
        sign(Algorithm::RS256, Some("rsa-pem"), &claims()),
    ] {
        assert_eq!(code_of(&app, &token).await, Code::Unauthenticated);
    }
}

/// `aud` may be a string or an array (RFC 7519), `iat` is optional, a `division_id`
/// claim that is empty or no division id is refused (never read as workspace-wide), and
/// with a maximum lifetime a token must say when it was issued and live no longer.
async fn claims_follow_rfc_7519_and_division_claims_must_be_valid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let hs = |claims: &Value| sign(Algorithm::HS256, None, claims);
    let cases = [
        (
            "aud as an array",
            with(claims(), "aud", json!(["other", AUDIENCE])),
            Code::Ok,
        ),
        (
            "aud array without ours",
            with(claims(), "aud", json!(["other"])),
            Code::Unauthenticated,
        ),
        ("no iat", without(claims(), "iat"), Code::Ok),
        (
            "empty division",
            with(claims(), "division_id", json!("")),
            Code::Unauthenticated,
        ),
        (
            "malformed division",
            with(claims(), "division_id", json!("sales/../x")),
            Code::Unauthenticated,
        ),
        (
            "a division",
            with(claims(), "division_id", json!("sales")),
            Code::Ok,
        ),
        (
            "a NUL in sub",
            with(claims(), "sub", json!("ga\u{0}te")),
            Code::Unauthenticated,
        ),
        (
            "a NUL in the workspace",
            with(claims(), "workspace_id", json!("ac\u{0}me")),
            Code::Unauthenticated,
        ),
    ];
    for (case, claims, expected) in cases {
        assert_eq!(code_of(&app, &hs(&claims)).await, expected, "{case}");
    }

    let limited = TestApp::spawn_with(
        backend,
        TestOptions {
            jwt: JwtSettings {
                max_lifetime: Some(std::time::Duration::from_secs(3600)),
                ..patchbay_e2e::jwt_settings()
            },
            ..Default::default()
        },
    )
    .await;
    let long = with(
        with(claims(), "iat", json!(now())),
        "exp",
        json!(now() + 7200),
    );
    let cases = [
        ("within the lifetime", claims(), Code::Ok),
        ("longer than allowed", long, Code::Unauthenticated),
        (
            "no iat with a lifetime",
            without(claims(), "iat"),
            Code::Unauthenticated,
        ),
    ];
    for (case, claims, expected) in cases {
        assert_eq!(code_of(&limited, &hs(&claims)).await, expected, "{case}");
    }
}
