//! Browsers on the main listener: a gRPC-Web call over HTTP/1.1 succeeds, and a CORS
//! preflight is answered for an allowed origin and not for another.

use patchbay::config::ServerSettings;
use patchbay_e2e::proto;
use patchbay_e2e::{Backend, TestApp, TestOptions, WORKSPACE, token};
use prost::Message;

const CONSOLE: &str = "https://console.example.test";

async fn app() -> TestApp {
    TestApp::spawn_with(
        Backend::Sqlite,
        TestOptions {
            server: ServerSettings {
                grpc_web_origins: vec![CONSOLE.to_owned()],
                ..ServerSettings::default()
            },
            ..TestOptions::default()
        },
    )
    .await
}

/// gRPC-Web's framing: a flag byte (0 data, 0x80 trailers) and a big-endian length.
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while body.len() >= 5 {
        let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let end = (5 + length).min(body.len());
        frames.push((body[0], body[5..end].to_vec()));
        body = &body[end..];
    }
    frames
}

#[tokio::test]
async fn a_grpc_web_call_over_http1_is_answered_with_framed_data_and_trailers() {
    let app = app().await;
    let http = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client");
    let response = http
        .post(format!(
            "http://{}/patchbay.v1.IntegrationService/ListProviders",
            app.addr
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", CONSOLE)
        .header(
            "authorization",
            format!("Bearer {}", token("service", WORKSPACE, None)),
        )
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(CONSOLE)
    );
    let body = response.bytes().await.expect("body");
    let frames = frames(&body);
    let (flag, message) = &frames[0];
    assert_eq!(*flag, 0);
    let providers = proto::ListProvidersResponse::decode(message.as_slice()).expect("message");
    assert!(
        providers
            .providers
            .iter()
            .any(|p| p.slug == "whatsapp_cloud")
    );
    let trailers = frames
        .iter()
        .find(|(flag, _)| *flag == 0x80)
        .map(|(_, text)| String::from_utf8_lossy(text).to_ascii_lowercase())
        .expect("a trailers frame");
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}

#[tokio::test]
async fn a_preflight_is_answered_for_an_allowed_origin_only() {
    let app = app().await;
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(
            reqwest::Method::OPTIONS,
            format!(
                "http://{}/patchbay.v1.AccountService/GetDefaultAccount",
                app.addr
            ),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization",
        )
        .send()
    };
    let allowed = preflight(CONSOLE).await.expect("preflight");
    assert!(allowed.status().is_success());
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some(CONSOLE)
    );
    assert!(
        header(&allowed, "access-control-allow-headers")
            .is_some_and(|h| h.contains("authorization") && h.contains("x-grpc-web"))
    );
    let other = preflight("https://evil.example.test")
        .await
        .expect("preflight");
    assert_eq!(header(&other, "access-control-allow-origin"), None);
}
