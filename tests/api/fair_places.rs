//! Places for calls in flight are taken once the request message has arrived, and shared
//! fairly (#28). A caller that sends headers and stalls its body holds no place and is
//! answered DEADLINE_EXCEEDED after the read timeout; a tenant alone may use every
//! place; a nearly full server refuses the workspace over its fair part first.
//!
//! The stalled callers are what a hostile tenant runs, not a fake of anything: raw
//! HTTP/1.1 requests in gRPC-Web's framing (headers, a `content-length`, then nothing),
//! and h2 streams opened without END_STREAM whose DATA never comes.

use std::time::{Duration, Instant};

use patchbay::config::ServerSettings;
use patchbay_e2e::proto;
use patchbay_e2e::{Backend, OTHER_WORKSPACE, TestApp, TestOptions, WORKSPACE, token};
use patchbay_sdk::tonic::Code;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STALLED_PER_WORKSPACE: usize = 128;
const THIRD_WORKSPACE: &str = "initech";

async fn app_with_read_timeout(server: ServerSettings, slow_provider: Option<&str>) -> TestApp {
    TestApp::spawn_with(
        Backend::Sqlite,
        TestOptions {
            server: ServerSettings {
                request_read_timeout: Duration::from_secs(1),
                ..server
            },
            provider_urls: slow_provider
                .map(patchbay_e2e::all_providers_at)
                .unwrap_or_default(),
            ..Default::default()
        },
    )
    .await
}

/// A gRPC-Web call over HTTP/1.1 whose headers promise a body that never comes. Answers
/// with the `grpc-status` of the response's head (a trailers-only answer) and how long it
/// took, once the server answers.
async fn stalled_grpc_web(
    app: &TestApp,
    workspace: &str,
) -> tokio::task::JoinHandle<(String, Duration)> {
    let mut tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /patchbay.v1.AccountService/ListAccounts HTTP/1.1\r\nhost: {}\r\n\
         content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
         authorization: Bearer {}\r\ncontent-length: 5\r\n\r\n",
        app.addr,
        token("service", workspace, None)
    );
    tcp.write_all(head.as_bytes()).await.expect("headers sent");
    let sent = Instant::now();
    tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buffer = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        let status = answer
            .lines()
            .find_map(|line| line.strip_prefix("grpc-status:"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| format!("no grpc-status in {answer:?}"));
        (status, sent.elapsed())
    })
}

/// How a stalled HTTP/2 call stalls.
#[derive(Clone, Copy)]
enum Stall {
    /// Headers, then nothing.
    Headers,
    /// Headers and the whole message, but never the end of the stream (tonic waits for
    /// it before a unary handler runs).
    NoEndOfStream,
}

/// An HTTP/2 connection of the h2 crate's own client.
async fn h2_client(app: &TestApp) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    client
}

/// ListAccounts' headers, bearing `authorization`.
fn list_accounts(app: &TestApp, authorization: &str) -> http::Request<()> {
    http::Request::post(format!(
        "http://{}/patchbay.v1.AccountService/ListAccounts",
        app.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("authorization", authorization)
    .body(())
    .expect("request")
}

/// `count` HTTP/2 streams on one connection that stall as `stall` says (the request
/// body's sender is kept until the answer). Each answers its `grpc-status` and wait.
async fn stalled_http2(
    app: &TestApp,
    workspace: &str,
    count: usize,
    stall: Stall,
) -> Vec<tokio::task::JoinHandle<(String, Duration)>> {
    let mut client = h2_client(app).await;
    let authorization = format!("Bearer {}", token("service", workspace, None));
    let mut calls = Vec::new();
    for _ in 0..count {
        let request = list_accounts(app, &authorization);
        client = client.ready().await.expect("a stream may be opened");
        let (response, mut body) = client.send_request(request, false).expect("headers sent");
        if let Stall::NoEndOfStream = stall {
            // An empty ListAccountsRequest: the 5-byte prefix of a zero-length message.
            body.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), false)
                .expect("message sent");
        }
        let sent = Instant::now();
        calls.push(tokio::spawn(async move {
            let _never_ended = body;
            let response = response.await.expect("answered");
            let head = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let status = match head {
                Some(status) => status,
                None => {
                    let mut body = response.into_body();
                    while body.data().await.is_some() {}
                    body.trailers()
                        .await
                        .ok()
                        .flatten()
                        .and_then(|t| t.get("grpc-status")?.to_str().ok().map(str::to_owned))
                        .unwrap_or_else(|| "no grpc-status".to_owned())
                }
            };
            (status, sent.elapsed())
        }));
    }
    calls
}

/// What a third workspace and the gateway see while two workspaces stall 128 calls each.
async fn others_are_served(app: &TestApp) {
    app.client("service", THIRD_WORKSPACE, None)
        .list_all_accounts(None)
        .await
        .expect("a third workspace is served");
    let handshake = app
        .gateway()
        .route_webhook(
            "GET",
            &format!(
                "{}/webhooks/meta?hub.mode=subscribe&hub.verify_token={}&hub.challenge=7",
                patchbay_e2e::PUBLIC_BASE_URL,
                patchbay_e2e::META_WEBHOOK_VERIFY_TOKEN
            ),
            std::iter::empty::<(String, String)>(),
            Vec::new(),
        )
        .await
        .expect("the gateway is served");
    assert_eq!(handshake.challenge, "7");
}

/// A third workspace and the gateway are served while the stalled calls wait, and the
/// stalled calls end DEADLINE_EXCEEDED after the read timeout.
async fn others_are_served_while_they_stall(
    app: &TestApp,
    stalled: Vec<tokio::task::JoinHandle<(String, Duration)>>,
) {
    let last_sent = Instant::now();
    others_are_served(app).await;
    let served_after = last_sent.elapsed();
    all_deadline_exceeded(stalled).await;
    assert!(
        served_after < Duration::from_secs(1),
        "served while the last stalled call still waited: {served_after:?}"
    );
}

async fn all_deadline_exceeded(calls: Vec<tokio::task::JoinHandle<(String, Duration)>>) {
    for call in calls {
        let (status, waited) = call.await.expect("task");
        // 4 is DEADLINE_EXCEEDED.
        assert_eq!(status, "4", "a stalled call ends DEADLINE_EXCEEDED");
        assert!(
            waited >= Duration::from_millis(900),
            "answered after the read timeout, not refused at once: {waited:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_grpc_web_calls_hold_no_place() {
    let app = app_with_read_timeout(ServerSettings::default(), None).await;
    let mut stalled = Vec::new();
    for workspace in [WORKSPACE, OTHER_WORKSPACE] {
        for _ in 0..STALLED_PER_WORKSPACE {
            stalled.push(stalled_grpc_web(&app, workspace).await);
        }
    }
    others_are_served_while_they_stall(&app, stalled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_http2_calls_hold_no_place() {
    let app = app_with_read_timeout(ServerSettings::default(), None).await;
    // Half of each workspace's calls send nothing after their headers, half send their
    // message but never end the stream.
    let half = STALLED_PER_WORKSPACE / 2;
    let mut stalled = Vec::new();
    for workspace in [WORKSPACE, OTHER_WORKSPACE] {
        stalled.extend(stalled_http2(&app, workspace, half, Stall::Headers).await);
        stalled.extend(stalled_http2(&app, workspace, half, Stall::NoEndOfStream).await);
    }
    others_are_served_while_they_stall(&app, stalled).await;
}

/// A caller without a valid token is not waited for: refused UNAUTHENTICATED at once,
/// its body unread (an internet caller cannot hold the read budget or a stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_without_a_valid_token_is_refused_without_waiting() {
    let app = app_with_read_timeout(ServerSettings::default(), None).await;
    let mut client = h2_client(&app).await;
    let request = list_accounts(&app, "Bearer not-a-token");
    let (response, _body) = client.send_request(request, false).expect("headers sent");
    let started = Instant::now();
    let response = response.await.expect("answered");
    assert_eq!(
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()),
        Some("16"),
        "UNAUTHENTICATED"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "at once, not after the read timeout: {:?}",
        started.elapsed()
    );
}

/// A careless client sends a unary call two messages: INVALID_ARGUMENT, at once, and
/// the call runs nothing (tonic would have read and dropped the second).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_request_message_is_invalid_argument() {
    let app = app_with_read_timeout(ServerSettings::default(), None).await;
    let mut client = h2_client(&app).await;
    let authorization = format!("Bearer {}", token("service", WORKSPACE, None));
    let request = list_accounts(&app, &authorization);
    let (response, mut body) = client.send_request(request, false).expect("headers sent");
    // Two empty ListAccountsRequests, then the end of the stream.
    body.send_data(
        bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        true,
    )
    .expect("messages sent");
    let response = response.await.expect("answered");
    assert_eq!(
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()),
        Some("3"),
        "INVALID_ARGUMENT"
    );
    let message = response
        .headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        // grpc-message is percent-encoded (gRPC over HTTP/2); the text has only spaces to decode.
        .replace("%20", " ");
    assert!(message.contains("one request message"), "{message}");
}

/// A credential check against a provider that answers after `SLOW`: a call holding its
/// place that long.
const SLOW: Duration = Duration::from_secs(4);

fn slow_check(client: patchbay_sdk::Client, n: usize) -> tokio::task::JoinHandle<Result<(), Code>> {
    tokio::spawn(async move {
        client
            .integrations()
            .create_integration(proto::CreateIntegrationRequest {
                provider: "openai".into(),
                name: format!("AI {n}"),
                config: Some(patchbay_e2e::to_struct(json!({"api_key": "sk-slow"}))),
                check: true,
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|s| s.code())
    })
}

/// Waits until the slow provider has been asked `count` times in all: that many calls
/// hold their places.
async fn checks_reached(slow: &wiremock::MockServer, count: usize) {
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        while slow.received_requests().await.map_or(0, |r| r.len()) < count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{count} slow checks under way");
}

async fn refused(client: &patchbay_sdk::Client) -> String {
    let status = client
        .accounts()
        .list_accounts(proto::ListAccountsRequest::default())
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    status.message().to_owned()
}

/// Twenty places. A alone takes all twenty; then, with A at 18 and B at 1 (19 of 20, over
/// 90%), A is refused for holding over its fair part (10) while B is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_alone_uses_every_place_and_a_full_server_is_shared_fairly() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(SLOW))
        .mount(&slow)
        .await;
    let server = ServerSettings {
        max_concurrent_requests: 20,
        max_concurrent_requests_per_workspace: 20,
        ..ServerSettings::default()
    };
    let app = app_with_read_timeout(server, Some(&slow.uri())).await;
    let a = app.client("admin", WORKSPACE, None);
    let b = app.client("admin", OTHER_WORKSPACE, None);

    let every: Vec<_> = (0..20).map(|n| slow_check(a.clone(), n)).collect();
    checks_reached(&slow, 20).await;
    let message = refused(&a).await;
    assert!(message.contains("the server is at its limit"), "{message}");
    for call in every {
        assert_eq!(
            call.await.expect("task"),
            Ok(()),
            "each of A's twenty calls ran"
        );
    }

    let mine: Vec<_> = (20..38).map(|n| slow_check(a.clone(), n)).collect();
    checks_reached(&slow, 38).await;
    let theirs = slow_check(b.clone(), 100);
    checks_reached(&slow, 39).await;
    let message = refused(&a).await;
    assert!(message.contains("fair part"), "{message}");
    b.list_all_accounts(None)
        .await
        .expect("B, under its fair part, takes the last place");
    for call in mine.into_iter().chain([theirs]) {
        assert_eq!(call.await.expect("task"), Ok(()));
    }
}
