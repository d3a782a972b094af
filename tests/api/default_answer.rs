//! GetDefaultAccount's own path (`grpc/default_answer.rs`), which answers with bytes kept
//! per cached default in front of the generated server: the same answers as the rest of
//! the API, and what a careless client sends treated as on every other method.

use patchbay::config::ServerSettings;
use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, TestApp, TestOptions, WORKSPACE, backend_tests, create, new_account, new_whatsapp,
    token, update,
};
use prost::Message;
use serde_json::json;

backend_tests!(
    the_kept_answer_is_the_account_as_each_viewer_sees_it,
    what_a_careless_client_sends_is_refused_as_on_other_methods,
);

/// GetDefaultAccount answers with bytes kept per cached default (grpc/default_answer.rs):
/// they decode to the account as GetAccount shows it to the same caller (the verify
/// token for an admin only), and a change is answered anew.
async fn the_kept_answer_is_the_account_as_each_viewer_sees_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let service = app.service();
    let account = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_whatsapp("4242", "EAAG-kept")
        },
    )
    .await;
    for _ in 0..2 {
        let as_admin = admin
            .default_account(Channel::Whatsapp, None)
            .await
            .expect("admin's");
        assert_eq!(as_admin, admin.get_account(&account.id).await.expect("get"));
        assert!(
            !as_admin.verify_token.is_empty(),
            "an admin sees the verify token"
        );
        let as_service = service
            .default_account(Channel::Whatsapp, None)
            .await
            .expect("service's");
        assert_eq!(
            as_service,
            service.get_account(&account.id).await.expect("get")
        );
        assert_ne!(
            as_service.verify_token, as_admin.verify_token,
            "a service sees it masked"
        );
        assert!(!as_service.webhook_url.is_empty());
    }
    let renamed = update(
        &admin,
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            display_name: Some("Renamed".into()),
            expected_revision: Some(account.revision),
            ..Default::default()
        },
    )
    .await;
    let after = service
        .default_account(Channel::Whatsapp, None)
        .await
        .expect("after the change");
    assert_eq!(after.display_name, "Renamed");
    assert_eq!(after.revision, renamed.revision);
}

/// One gRPC-Web call over HTTP/1.1 (its trailers come in the body, or in the headers
/// of an answer that is trailers only): the answer's frames and its trailers,
/// lowercased.
async fn web_call(app: &TestApp, method: &str, message: &[u8]) -> (Vec<Vec<u8>>, String) {
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.len()).expect("length").to_be_bytes());
    body.extend_from_slice(message);
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/patchbay.v1.AccountService/{method}",
            app.addr
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header(
            "authorization",
            format!("Bearer {}", token("service", WORKSPACE, None)),
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    // A trailers-only answer (an error before any message) comes in the headers.
    let mut trailers: String = ["grpc-status", "grpc-message"]
        .iter()
        .filter_map(|name| {
            let value = response.headers().get(*name)?.to_str().ok()?;
            // grpc-message is percent-encoded; its spaces are enough to read it here.
            Some(format!("{name}:{}\r\n", value.replace("%20", " ")).to_ascii_lowercase())
        })
        .collect();
    let mut rest = &response.bytes().await.expect("body")[..];
    let mut data = Vec::new();
    while rest.len() >= 5 {
        let length = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let end = (5 + length).min(rest.len());
        if rest[0] & 0x80 == 0 {
            data.push(rest[5..end].to_vec());
        } else {
            trailers.push_str(&String::from_utf8_lossy(&rest[5..end]).to_ascii_lowercase());
        }
        rest = &rest[end..];
    }
    (data, trailers)
}

async fn what_a_careless_client_sends_is_refused_as_on_other_methods(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            server: ServerSettings {
                max_message_bytes: 16 * 1024,
                ..ServerSettings::default()
            },
            ..TestOptions::default()
        },
    )
    .await;
    // A message that is no protobuf (a length past its end): INVALID_ARGUMENT, as
    // GetAccount answers the same bytes.
    let broken = [0x12, 0x7f, b'x'];
    for method in ["GetDefaultAccount", "GetAccount"] {
        let (data, trailers) = web_call(&app, method, &broken).await;
        assert!(data.is_empty(), "{method}");
        assert!(trailers.contains("grpc-status:3"), "{method}: {trailers}");
        assert!(
            trailers.contains("could not be decoded"),
            "{method}: {trailers}"
        );
    }
    // Past the server's message limit: OUT_OF_RANGE before decoding, on both paths.
    let oversized = proto::GetDefaultAccountRequest {
        channel: Channel::Sms.into(),
        division_id: "d".repeat(20 * 1024),
        no_fallback: false,
    }
    .encode_to_vec();
    for method in ["GetDefaultAccount", "GetAccount"] {
        let (_, trailers) = web_call(&app, method, &oversized).await;
        assert!(trailers.contains("grpc-status:11"), "{method}: {trailers}");
        assert!(
            trailers.contains("the limit is: 16384"),
            "{method}: {trailers}"
        );
    }
    // No channel: the field is named.
    let (_, trailers) = web_call(
        &app,
        "GetDefaultAccount",
        &proto::GetDefaultAccountRequest::default().encode_to_vec(),
    )
    .await;
    assert!(trailers.contains("grpc-status:3"), "{trailers}");
    // A default whose answer is too large to keep (a config near its 64 KiB limit) is
    // answered whole, every time (on a server that takes such a config).
    let app = TestApp::spawn(backend).await;
    let big = create(
        &app.admin(),
        proto::CreateAccountRequest {
            is_default: true,
            ..new_account(Channel::Sms, "big", json!({"notes": "n".repeat(60 * 1024)}))
        },
    )
    .await;
    for _ in 0..2 {
        let request = proto::GetDefaultAccountRequest {
            channel: Channel::Sms.into(),
            division_id: String::new(),
            no_fallback: false,
        }
        .encode_to_vec();
        let (data, trailers) = web_call(&app, "GetDefaultAccount", &request).await;
        assert!(trailers.contains("grpc-status:0"), "{trailers}");
        let answer = proto::GetDefaultAccountResponse::decode(data[0].as_slice()).expect("answer");
        assert_eq!(
            answer.account.expect("account"),
            app.service().get_account(&big.id).await.expect("get")
        );
    }
}
