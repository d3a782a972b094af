//! The outbound guard through the API: a tenant admin cannot make Patchbay call
//! loopback or a private network (by the URL's literal form when it is stored, by the
//! resolved addresses when it is called), and cannot re-point a stored integration at a
//! host of their own to receive its stored secret. Every check is audited.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use patchbay::outbound::{AddressPolicy, OutboundSettings};
use patchbay_e2e::proto;
use patchbay_e2e::{
    Backend, TestApp, TestOptions, backend_tests, expect_code, to_struct, violated_fields,
};
use patchbay_sdk::tonic::Code;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::checks::check_events;

backend_tests!(
    tenant_urls_the_guard_refuses_are_invalid_when_stored,
    a_name_resolving_to_loopback_is_refused_when_called,
    a_stored_secret_only_goes_where_its_sender_sent_it
);

const STORED_TOKEN: &str = "cw-stored-token-0001";

fn chatwoot(url: &str, token: Option<&str>, check: bool) -> proto::CreateIntegrationRequest {
    let mut config = json!({"accountId": 1, "chatwootURL": url});
    if let Some(token) = token {
        config["chatwootAccessToken"] = Value::String(token.to_owned());
    }
    proto::CreateIntegrationRequest {
        provider: "chatwoot".into(),
        name: "Chatwoot".into(),
        config: Some(to_struct(config)),
        check,
        ..Default::default()
    }
}

fn patch(id: &str, config: Value, check: bool) -> proto::UpdateIntegrationRequest {
    proto::UpdateIntegrationRequest {
        id: id.to_owned(),
        config: Some(to_struct(config)),
        check,
        ..Default::default()
    }
}

/// A server on the guard's defaults (public destinations only), resolving names with
/// `resolver`.
async fn guarded(
    backend: Backend,
    resolver: Option<Arc<dyn patchbay::outbound::NameResolver>>,
) -> TestApp {
    TestApp::spawn_with(
        backend,
        TestOptions {
            outbound: OutboundSettings {
                policy: AddressPolicy::PublicOnly,
                resolver,
            },
            ..Default::default()
        },
    )
    .await
}

async fn tenant_urls_the_guard_refuses_are_invalid_when_stored(backend: Backend) {
    let app = guarded(backend, None).await;
    let mut integrations = app.admin().integrations();
    for url in [
        "https://127.0.0.1:3000",
        "https://2130706433:3000",
        "https://0x7f000001",
        "https://localhost:3000",
        "https://169.254.169.254",
        "https://10.0.0.7",
        "https://[::1]:3000",
        "http://chat.acme.example",
    ] {
        let status = expect_code(
            integrations
                .create_integration(chatwoot(url, Some(STORED_TOKEN), false))
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["config.chatwootURL"], "{url}");
    }
    // A name is not looked up when stored: it is checked where it is called.
    let made = integrations
        .create_integration(chatwoot(
            "https://chat.acme.example",
            Some(STORED_TOKEN),
            false,
        ))
        .await
        .expect("a public name is stored")
        .into_inner()
        .integration
        .expect("integration");
    let status = expect_code(
        integrations
            .update_integration(patch(
                &made.id,
                json!({"chatwootURL": "https://localhost", "chatwootAccessToken": STORED_TOKEN}),
                false,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["config.chatwootURL"]);
    let status = expect_code(
        integrations
            .update_integration(patch(
                &made.id,
                json!({"n8nWebhook": "https://192.168.1.20/hook"}),
                false,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["config.n8nWebhook"]);
}

async fn a_name_resolving_to_loopback_is_refused_when_called(backend: Backend) {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .expect(0)
        .mount(&fake)
        .await;
    // The tenant's name resolves to where the fake listens: this machine.
    let resolver = |host: &str| -> io::Result<Vec<IpAddr>> {
        match host {
            "chatwoot.tenant.example" => Ok(vec!["127.0.0.1".parse().expect("ip")]),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "unknown name")),
        }
    };
    let app = guarded(backend, Some(Arc::new(resolver))).await;
    let url = format!("https://chatwoot.tenant.example:{}", fake.address().port());
    let mut integrations = app.admin().integrations();

    let refused = expect_code(
        integrations
            .create_integration(chatwoot(&url, Some(STORED_TOKEN), true))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        refused.message().contains("config.chatwootURL") && refused.message().contains("127.0.0.1"),
        "{refused:?}"
    );
    assert!(!refused.message().contains(STORED_TOKEN));
    // The refused create wrote nothing but its audit event, which names no record.
    let listed = integrations
        .list_integrations(proto::ListIntegrationsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.integrations.is_empty());
    let events = check_events(&app, "").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, "destination_refused");
    assert!(
        events[0].changed_fields.is_empty(),
        "no secret was sent: {:?}",
        events[0].changed_fields
    );
    assert_eq!(events[0].actor, "admin-user");

    // Stored without a check, then checked: refused the same way, and audited.
    let stored = integrations
        .create_integration(chatwoot(&url, Some(STORED_TOKEN), false))
        .await
        .expect("stored")
        .into_inner()
        .integration
        .expect("integration");
    let refused = expect_code(
        integrations
            .check_integration(proto::CheckIntegrationRequest {
                id: stored.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        refused.message().contains("config.chatwootURL"),
        "{refused:?}"
    );
    let events = check_events(&app, &stored.id).await;
    assert_eq!(
        events
            .iter()
            .map(|e| e.outcome.as_str())
            .collect::<Vec<_>>(),
        ["destination_refused"]
    );
    fake.verify().await;
}

async fn a_stored_secret_only_goes_where_its_sender_sent_it(backend: Backend) {
    let legit = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/profile"))
        .and(header("api_access_token", STORED_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .expect(2)
        .mount(&legit)
        .await;
    let evil = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&evil)
        .await;
    // The harness allows private destinations, so both fakes are reachable.
    let app = TestApp::spawn(backend).await;
    let mut integrations = app.admin().integrations();
    let made = integrations
        .create_integration(chatwoot(&legit.uri(), Some(STORED_TOKEN), true))
        .await
        .expect("created and checked")
        .into_inner()
        .integration
        .expect("integration");
    let masked = made
        .config
        .as_ref()
        .and_then(|c| c.fields.get("chatwootAccessToken"))
        .and_then(|v| match &v.kind {
            Some(prost_types::value::Kind::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
        .expect("masked token");
    assert!(masked.starts_with("********"));

    // Re-pointing the URL without the secret in clear: absent, masked, with or without a
    // check, the secret field is named and nothing is sent anywhere.
    for (config, check) in [
        (json!({"chatwootURL": evil.uri()}), false),
        (json!({"chatwootURL": evil.uri()}), true),
        (
            json!({"chatwootURL": evil.uri(), "chatwootAccessToken": masked}),
            false,
        ),
        (
            json!({"chatwootURL": evil.uri(), "chatwootAccessToken": masked}),
            true,
        ),
    ] {
        let status = expect_code(
            integrations
                .update_integration(patch(&made.id, config.clone(), check))
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            ["config.chatwootAccessToken"],
            "{config}"
        );
        assert!(
            status.message().contains("send the secret again"),
            "{status:?}"
        );
    }
    // The stored integration still points where its sender sent it.
    assert!(
        integrations
            .check_integration(proto::CheckIntegrationRequest {
                id: made.id.clone(),
            })
            .await
            .expect("checked at the original host")
            .into_inner()
            .checked
    );
    // A URL that carries no secret changes freely.
    integrations
        .update_integration(patch(
            &made.id,
            json!({"n8nWebhook": "https://n8n.acme.example/hook"}),
            false,
        ))
        .await
        .expect("n8nWebhook carries no secret");
    // With a secret of their own, the admin may move it: only that secret goes there.
    integrations
        .update_integration(patch(
            &made.id,
            json!({"chatwootURL": evil.uri(), "chatwootAccessToken": "cw-admins-own-token"}),
            true,
        ))
        .await
        .expect("moved with its own secret");
    let received = evil.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 1, "one check at the new host");
    assert_eq!(
        received[0]
            .headers
            .get("api_access_token")
            .and_then(|v| v.to_str().ok()),
        Some("cw-admins-own-token")
    );
    for request in &received {
        let seen = format!("{:?} {} {:?}", request.headers, request.url, request.body);
        assert!(
            !seen.contains(STORED_TOKEN),
            "the stored token never left: {seen}"
        );
    }
    let outcomes: Vec<_> = check_events(&app, &made.id)
        .await
        .into_iter()
        .map(|e| e.outcome)
        .collect();
    assert_eq!(outcomes, ["passed", "passed", "passed"]);
    legit.verify().await;
}
