//! Errors that always arrive, and no work out of proportion to a request: INVALID_ARGUMENT
//! stays within the header limits of every common client (grpc-core, behind grpcio and
//! grpc-go's defaults, refuses metadata past 8 KiB), and repeated fields are bounded
//! before their elements are looked at.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{Backend, TestApp, backend_tests, expect_code, to_struct, violated_fields};
use patchbay_sdk::tonic::{Code, Status};
use serde_json::{Map, Value};

backend_tests!(
    oversized_errors_are_budgeted_to_fit_any_client,
    repeated_channels_cost_what_distinct_ones_do,
    nul_bytes_are_a_named_field_never_internal
);

/// What the error costs in response headers: `grpc-message` plus the base64 of
/// `grpc-status-details-bin`. grpc-core's default soft limit is 8 KiB for all metadata.
fn header_bytes(status: &Status) -> usize {
    status.message().len() + status.details().len().div_ceil(3) * 4
}

async fn oversized_errors_are_budgeted_to_fit_any_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut config = Map::new();
    for i in 0..600 {
        config.insert(format!("unknownOption{i:04}"), Value::Bool(true));
    }
    config.insert("accountId".into(), Value::from(1));
    // A client that accepts at most 8 KiB of headers, as grpc-core (under grpcio and
    // the other C-core clients) does by default.
    let strict =
        patchbay_sdk::tonic::transport::Endpoint::from_shared(format!("http://{}", app.addr))
            .expect("endpoint")
            .http2_max_header_list_size(8 * 1024)
            .connect()
            .await
            .expect("connect");
    let strict_admin = patchbay_sdk::Client::from_channel(
        strict,
        &patchbay_e2e::token("admin", patchbay_e2e::WORKSPACE, None),
    )
    .expect("client");
    let status = expect_code(
        strict_admin
            .integrations()
            .create_integration(proto::CreateIntegrationRequest {
                provider: "chatwoot".into(),
                name: "Chatwoot".into(),
                config: Some(to_struct(Value::Object(config))),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().len() <= 1024, "{}", status.message().len());
    assert!(
        status.details().len() <= 4 * 1024,
        "{}",
        status.details().len()
    );
    assert!(
        header_bytes(&status) < 8 * 1024,
        "{}",
        header_bytes(&status)
    );
    let fields = violated_fields(&status);
    assert!(fields.len() > 10, "as many as fit: {}", fields.len());
    let bad = patchbay_sdk::tonic_types::StatusExt::get_details_bad_request(&status)
        .expect("bad request");
    let last = bad.field_violations.last().expect("a last violation");
    assert!(
        last.description.contains("more violations"),
        "the last one says how many were left out: {last:?}"
    );

    // A thousand distinct bad channels are one violation.
    let status = expect_code(
        app.service()
            .accounts()
            .watch_default_accounts(proto::WatchDefaultAccountsRequest {
                channels: (1000..2000).collect(),
                division_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["channels"]);
    assert!(header_bytes(&status) < 1024);
}

async fn repeated_channels_cost_what_distinct_ones_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut stream = app
        .service()
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest {
            channels: vec![i32::from(Channel::Sms); 100_000],
            division_id: String::new(),
        })
        .await
        .expect("a hundred thousand copies of one channel are one channel")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("healthy")
        .expect("a snapshot");
    assert!(matches!(
        first.event,
        Some(proto::watch_default_accounts_response::Event::Snapshot(_))
    ));
    // A bad value among good ones is named by its first position.
    let mut channels = vec![i32::from(Channel::Sms); 10];
    channels.push(99);
    let status = expect_code(
        app.service()
            .accounts()
            .watch_default_accounts(proto::WatchDefaultAccountsRequest {
                channels,
                division_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["channels[10]"]);
}

/// A NUL, which PostgreSQL refuses in text, is a named INVALID_ARGUMENT wherever a
/// client sends it (config values and keys, names) — never INTERNAL at the insert.
async fn nul_bytes_are_a_named_field_never_internal(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let config = serde_json::json!({"note": "a\u{0}b", "k\u{0}ey": "v", "deep": [{"x": "\u{0}"}]});
    let status = expect_code(
        app.admin()
            .accounts()
            .create_account(patchbay_e2e::new_account(Channel::Sms, "nul", config))
            .await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        ["config.deep[0].x", "config.k\u{0}ey", "config.note"]
    );
    let status = expect_code(
        app.admin()
            .accounts()
            .create_account(proto::CreateAccountRequest {
                display_name: "bad\u{0}name".into(),
                ..patchbay_e2e::new_account(Channel::Sms, "nul-2", serde_json::json!({}))
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["display_name"]);
    let status = expect_code(
        app.admin()
            .integrations()
            .create_integration(proto::CreateIntegrationRequest {
                provider: "openai".into(),
                name: "AI\u{0}".into(),
                config: Some(to_struct(serde_json::json!({"api_key": "sk-1"}))),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["name"]);
}
