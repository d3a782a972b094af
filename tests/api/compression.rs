//! Compressed messages on the wire, read as the bytes a client receives: gzip and zstd
//! requests are taken, a small request that inflates past the message limit is
//! refused, an unknown encoding is named, answers over 1 KiB come back compressed
//! when the caller offers gzip — and an answer with secrets in clear never does.
//! (The interop suite sends gzip from grpcio and grpc-js; this is the server's side.)

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{Backend, TestApp, WORKSPACE, create, new_account, token};
use patchbay_sdk::CompressionEncoding;
use patchbay_sdk::tonic::Code;
use serde_json::json;

/// One gRPC call over HTTP/2 as any client sends it: an empty request message,
/// `grpc-accept-encoding: gzip`, and the caller's extra headers. Returns the answer's
/// headers and body.
async fn raw_call(
    app: &TestApp,
    method: &str,
    request: Vec<u8>,
    role: &str,
    extra: &[(&str, &str)],
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(request.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(&request);
    let mut call = http
        .post(format!("http://{}{method}", app.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-accept-encoding", "identity,deflate,gzip")
        .header(
            "authorization",
            format!("Bearer {}", token(role, WORKSPACE, None)),
        );
    for (name, value) in extra {
        call = call.header(*name, *value);
    }
    let response = call.body(framed).send().await.expect("sent");
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    (headers, body)
}

/// The compressed-flag byte of the first message of a body.
fn compressed_flag(body: &[u8]) -> u8 {
    *body.first().expect("a message in the answer")
}

fn encoded(message: &impl prost::Message) -> Vec<u8> {
    message.encode_to_vec()
}

#[tokio::test]
async fn answers_over_a_kilobyte_are_compressed_and_secrets_in_clear_never() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.admin();
    let signature = "Kind regards, the Acme support team. ".repeat(60);
    let large = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_account(
                Channel::Email,
                "large",
                json!({"signature": signature, "smtp_password": "hunter2-hunter2"}),
            )
        },
    )
    .await;
    let small = create(&admin, new_account(Channel::Sms, "small", json!({}))).await;

    let get = |id: &str| encoded(&proto::GetAccountRequest { id: id.to_owned() });
    let (headers, body) = raw_call(
        &app,
        "/patchbay.v1.AccountService/GetAccount",
        get(&large.id),
        "service",
        &[],
    )
    .await;
    assert_eq!(
        headers.get("grpc-encoding").map(|v| v.as_bytes()),
        Some(b"gzip".as_slice())
    );
    assert_eq!(compressed_flag(&body), 1, "a 2 KiB answer is compressed");

    let (_, body) = raw_call(
        &app,
        "/patchbay.v1.AccountService/GetAccount",
        get(&small.id),
        "service",
        &[],
    )
    .await;
    assert_eq!(compressed_flag(&body), 0, "a small answer is sent plain");

    // An admin sees the verify token in clear: never compressed beside the display
    // name another admin chose.
    let (_, body) = raw_call(
        &app,
        "/patchbay.v1.AccountService/GetAccount",
        get(&large.id),
        "admin",
        &[],
    )
    .await;
    assert_eq!(compressed_flag(&body), 0, "an admin's answer is sent plain");

    // The hand-built GetDefaultAccount path follows the same rule.
    let (_, body) = raw_call(
        &app,
        "/patchbay.v1.AccountService/GetDefaultAccount",
        encoded(&proto::GetDefaultAccountRequest {
            channel: Channel::Email.into(),
            division_id: String::new(),
            no_fallback: false,
        }),
        "service",
        &[],
    )
    .await;
    assert_eq!(compressed_flag(&body), 1, "the large default is compressed");

    let (headers, body) = raw_call(
        &app,
        "/patchbay.v1.AccountService/GetAccountCredentials",
        encoded(&proto::GetAccountCredentialsRequest {
            id: large.id.clone(),
        }),
        "service",
        &[],
    )
    .await;
    assert_eq!(
        compressed_flag(&body),
        0,
        "secrets in clear are never compressed"
    );
    assert!(headers.get("grpc-encoding").is_none());
    let message = String::from_utf8_lossy(&body);
    assert!(
        message.contains("hunter2-hunter2"),
        "the answer is the credentials"
    );

    // The SDK, compressing both ways, reads the same account.
    let plain = app
        .service()
        .get_account(&large.id)
        .await
        .expect("plain call");
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let client = app.service().with_compression(Some(encoding));
        let read = client
            .get_account(&large.id)
            .await
            .expect("compressed call");
        assert_eq!(read, plain, "{encoding:?}");
    }
}

#[tokio::test]
async fn a_small_request_that_inflates_past_the_message_limit_is_resource_exhausted() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app
        .admin()
        .with_compression(Some(CompressionEncoding::Gzip));
    // 6 MiB of one letter: a few KiB once compressed, past the 4 MiB limit inflated.
    let status = admin
        .accounts()
        .create_account(new_account(Channel::Email, &"a".repeat(6 << 20), json!({})))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("size limit"), "{status:?}");
    // Nothing was written, and the server serves on.
    let listed = app
        .service()
        .list_all_accounts(None)
        .await
        .expect("still serving");
    assert!(listed.is_empty());
}

#[tokio::test]
async fn health_and_reflection_take_small_messages_only() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let large = encoded(&tonic_health::pb::HealthCheckRequest {
        service: "a".repeat(20 * 1024),
    });
    let (headers, _) = raw_call(&app, "/grpc.health.v1.Health/Check", large, "service", &[]).await;
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok());
    assert_eq!(code, Some("11"), "OUT_OF_RANGE past 16 KiB: {headers:?}");
    let (headers, body) = raw_call(
        &app,
        "/grpc.health.v1.Health/Check",
        encoded(&tonic_health::pb::HealthCheckRequest::default()),
        "service",
        &[],
    )
    .await;
    assert_eq!(
        headers.get("grpc-status").map(|v| v.as_bytes()),
        None,
        "answered"
    );
    assert_eq!(
        compressed_flag(&body),
        0,
        "health answers are never compressed"
    );
}

#[tokio::test]
async fn an_unknown_encoding_is_unimplemented_and_names_those_accepted() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (headers, _) = raw_call(
        &app,
        "/patchbay.v1.AccountService/ListAccounts",
        Vec::new(),
        "service",
        &[("grpc-encoding", "snappy")],
    )
    .await;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("grpc-status"), "12", "UNIMPLEMENTED");
    let message = header("grpc-message");
    for named in ["snappy", "identity", "gzip", "zstd"] {
        assert!(message.contains(named), "{message}");
    }
    assert_eq!(header("grpc-accept-encoding"), "identity,gzip,zstd");

    // A careless or hostile caller's long header is cut, not echoed whole.
    let long = "x".repeat(4000);
    let (headers, _) = raw_call(
        &app,
        "/patchbay.v1.AccountService/ListAccounts",
        Vec::new(),
        "service",
        &[("grpc-encoding", long.as_str())],
    )
    .await;
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        headers.get("grpc-status").map(|v| v.as_bytes()),
        Some(b"12".as_slice())
    );
    assert!(message.len() < 400, "{} bytes", message.len());
}
