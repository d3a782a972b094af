//! Credential checks against a local fake of each provider's API (wiremock): the exact
//! request the provider receives, success, refusal with the provider's reason, outage.
//!
//! Recorded answers and where they come from: SendGrid `GET /v3/scopes` (`scopes`; 401
//! `errors[]`): SendGrid API reference, API Key Permissions. Twilio `GET
//! /2010-04-01/Accounts/{sid}.json` (`sid`, `status`): Twilio API reference, Accounts.
//! OpenAI `GET /v1/models` (`object: list`; 401 `invalid_api_key`): OpenAI API reference,
//! Models and error codes. Chatwoot `GET /api/v1/profile`: Chatwoot's API reference,
//! Profile. Meta `GET /{node}` (`id`) and 190 errors: Graph API, "Handling errors".

use patchbay_e2e::proto;
use patchbay_e2e::{Backend, TestApp, backend_tests, spawn_with_fake, test_meta, to_struct};
use patchbay_sdk::tonic::Code;
use serde_json::{Value, json};
use wiremock::matchers::{basic_auth, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    check_on_create_calls_the_provider_and_refusals_write_nothing,
    check_integration_reports_each_outcome,
    meta_checks_read_one_graph_node_with_the_token
);

async fn app_with_fake(backend: Backend) -> (TestApp, MockServer) {
    spawn_with_fake(backend, test_meta()).await
}

fn create(provider: &str, config: Value, check: bool) -> proto::CreateIntegrationRequest {
    proto::CreateIntegrationRequest {
        provider: provider.into(),
        name: provider.into(),
        config: Some(to_struct(config)),
        check,
        ..Default::default()
    }
}

async fn check_on_create_calls_the_provider_and_refusals_write_nothing(backend: Backend) {
    let (app, fake) = app_with_fake(backend).await;
    Mock::given(method("GET"))
        .and(path("/v3/scopes"))
        .and(header("authorization", "Bearer SG.good-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"scopes": ["mail.send"]})))
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/scopes"))
        .and(header("authorization", "Bearer SG.revoked-key"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"errors": [{"field": null, "message": "authorization required"}]}),
        ))
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts/AC123.json"))
        .and(basic_auth("AC123", "twilio-token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"sid": "AC123", "status": "active"})),
        )
        .expect(1)
        .mount(&fake)
        .await;

    let mut integrations = app.admin().integrations();
    let made = integrations
        .create_integration(create(
            "sendgrid",
            json!({"api_key": "SG.good-key", "from_email": "a@acme.example"}),
            true,
        ))
        .await
        .expect("accepted credentials")
        .into_inner();
    assert!(made.integration.is_some());

    let refused = integrations
        .create_integration(create(
            "sendgrid",
            json!({"api_key": "SG.revoked-key", "from_email": "a@acme.example"}),
            true,
        ))
        .await
        .expect_err("refused credentials");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("authorization required"),
        "{refused:?}"
    );
    assert!(!refused.message().contains("SG.revoked-key"));

    integrations
        .create_integration(create(
            "twilio_sms",
            json!({"account_sid": "AC123", "auth_token": "twilio-token", "from_number": "+15551234567"}),
            true,
        ))
        .await
        .expect("twilio accepted");
    // Without `check`, nothing is called.
    integrations
        .create_integration(create(
            "sendgrid",
            json!({"api_key": "SG.unchecked", "from_email": "a@acme.example"}),
            false,
        ))
        .await
        .expect("unchecked");

    let listed = integrations
        .list_integrations(proto::ListIntegrationsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed.integrations.len(),
        3,
        "the refused integration was not written"
    );
    fake.verify().await;
}

async fn check_integration_reports_each_outcome(backend: Backend) {
    let (app, fake) = app_with_fake(backend).await;
    let mut integrations = app.admin().integrations();
    let ai = integrations
        .create_integration(create("openai", json!({"api_key": "sk-test-0001"}), false))
        .await
        .expect("create")
        .into_inner()
        .integration
        .expect("integration");
    let chatwoot = integrations
        .create_integration(create(
            "chatwoot",
            json!({"accountId": 1, "chatwootURL": fake.uri(), "chatwootAccessToken": "cw-token-0001"}),
            false,
        ))
        .await
        .expect("create")
        .into_inner()
        .integration
        .expect("integration");
    let smtp = integrations
        .create_integration(create(
            "smtp",
            json!({"host": "mail.example", "from_email": "a@acme.example"}),
            false,
        ))
        .await
        .expect("create")
        .into_inner()
        .integration
        .expect("integration");
    let check = |id: &str| proto::CheckIntegrationRequest { id: id.to_owned() };

    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("authorization", "Bearer sk-test-0001"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": []})),
        )
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    let passed = integrations
        .check_integration(check(&ai.id))
        .await
        .expect("check")
        .into_inner();
    assert!(passed.checked);

    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided: sk-test-0001.", "type": "invalid_request_error", "code": "invalid_api_key"}
        })))
        .up_to_n_times(1)
        .mount(&fake)
        .await;
    let refused = integrations
        .check_integration(check(&ai.id))
        .await
        .expect_err("revoked");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("Incorrect API key provided"),
        "{refused:?}"
    );
    assert!(
        !refused.message().contains("sk-test-0001"),
        "the key is scrubbed: {refused:?}"
    );

    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .mount(&fake)
        .await;
    let outage = integrations
        .check_integration(check(&ai.id))
        .await
        .expect_err("outage");
    assert_eq!(outage.code(), Code::Unavailable);

    Mock::given(method("GET"))
        .and(path("/api/v1/profile"))
        .and(header("api_access_token", "cw-token-0001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1, "name": "Agent"})))
        .expect(1)
        .mount(&fake)
        .await;
    assert!(
        integrations
            .check_integration(check(&chatwoot.id))
            .await
            .expect("chatwoot")
            .into_inner()
            .checked
    );

    let unsupported = integrations
        .check_integration(check(&smtp.id))
        .await
        .expect("smtp")
        .into_inner();
    assert!(!unsupported.checked);

    let denied = app
        .supervisor()
        .integrations()
        .check_integration(check(&ai.id))
        .await
        .expect_err("admin only");
    assert_eq!(denied.code(), Code::PermissionDenied);
    fake.verify().await;

    // Every check that ran is audited with its outcome; the refused role's is not.
    let outcomes = |id: String| {
        let app = &app;
        async move {
            check_events(app, &id)
                .await
                .into_iter()
                .map(|e| e.outcome)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(outcomes(ai.id).await, ["passed", "refused", "unavailable"]);
    assert_eq!(outcomes(chatwoot.id.clone()).await, ["passed"]);
    assert_eq!(outcomes(smtp.id).await, ["unsupported"]);
    let sent = check_events(&app, &chatwoot.id).await;
    assert_eq!(
        sent[0].changed_fields,
        ["config.chatwootAccessToken"],
        "what went out"
    );
}

/// The CHECK_CREDENTIALS events of one integration (`""`: of refused creates), oldest
/// first.
pub async fn check_events(app: &TestApp, record_id: &str) -> Vec<proto::AuditEvent> {
    app.admin()
        .audit()
        .list_audit_events(proto::ListAuditEventsRequest {
            record_kind: proto::RecordKind::Integration.into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("audit events")
        .into_inner()
        .events
        .into_iter()
        .filter(|e| {
            e.action == i32::from(proto::AuditAction::CheckCredentials) && e.record_id == record_id
        })
        .collect()
}

/// WhatsApp Cloud, Messenger and Instagram are checked through the Graph client: one
/// read of one node with the token, the tenant's id kept inside its path segment.
async fn meta_checks_read_one_graph_node_with_the_token(backend: Backend) {
    let (app, fake) = app_with_fake(backend).await;
    Mock::given(method("GET"))
        .and(path("/v25.0/1555"))
        .and(header("authorization", "Bearer EAAG-good"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1555"})))
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/me"))
        .and(header("authorization", "Bearer EAAP-revoked"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: EAAP-revoked has been invalidated",
            "type": "OAuthException", "code": 190}})))
        .expect(1)
        .mount(&fake)
        .await;
    let mut integrations = app.admin().integrations();
    let cloud = |phone_number_id: &str| {
        create(
            "whatsapp_cloud",
            json!({"phone_number_id": phone_number_id, "waba_id": "2666", "access_token": "EAAG-good"}),
            true,
        )
    };
    integrations
        .create_integration(cloud("1555"))
        .await
        .expect("Meta took the token");
    let refused = integrations
        .create_integration(create(
            "messenger",
            json!({"page_id": "1001", "page_access_token": "EAAP-revoked"}),
            true,
        ))
        .await
        .expect_err("Meta refused the token");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("validating access token"),
        "{refused:?}"
    );
    assert!(!refused.message().contains("EAAP-revoked"), "{refused:?}");

    // A hostile id stays one segment: it cannot turn the read into another node's.
    integrations
        .create_integration(cloud("../me/accounts?x=1"))
        .await
        .expect_err("no such node");
    let paths: Vec<String> = fake
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|request| request.url.path().to_owned())
        .collect();
    assert!(
        paths.contains(&"/v25.0/..%2Fme%2Faccounts%3Fx=1".to_owned()),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|path| path.ends_with("/me/accounts")),
        "{paths:?}"
    );
}
