//! WebhookService: the Meta verification handshake and webhook signatures (Meta's
//! X-Hub-Signature-256, Twilio's X-Twilio-Signature) checked against stored secrets,
//! with known vectors.

use std::collections::HashMap;

use patchbay_e2e::proto::{self, Channel, WebhookSignatureScheme};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, backend_tests, create, expect_code, new_account,
    new_whatsapp, violated_fields,
};
use patchbay_sdk::tonic::Code;
use prost::Message;
use serde_json::json;

backend_tests!(
    the_handshake_echoes_the_challenge_only_for_the_right_token,
    meta_signatures_are_checked_over_the_raw_bytes,
    twilio_signatures_cover_the_url_and_sorted_parameters,
    webhook_checks_are_for_services_in_their_workspace,
    the_channel_wide_handshake_finds_any_account_through_the_index
);

/// Signed with the test Meta app secret (`test-meta-app-secret`), computed outside
/// Patchbay: Meta escapes non-ASCII characters and slashes in what it sends.
const META_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[{"text":{"body":"Ol\u00e1 \ud83d\ude00 \/menu"}}]}}]}]}"#;
const META_SIGNATURE: &str =
    "sha256=f6253a35633e0d5174e03f7166b9f987a1386345cd39ce51facea893998f44b0";

/// Twilio's documented example (auth token 12345).
const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const TWILIO_BODY: &str = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
const TWILIO_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

fn handshake(key: &str, mode: &str, token: &str) -> proto::VerifyWebhookSubscriptionRequest {
    proto::VerifyWebhookSubscriptionRequest {
        channel: Channel::Whatsapp.into(),
        account_key: key.into(),
        mode: mode.into(),
        verify_token: token.into(),
        challenge: "1158201444".into(),
    }
}

async fn verify_token(app: &TestApp, id: &str) -> String {
    app.service()
        .account_credentials(id)
        .await
        .expect("credentials")
        .verify_token
}

async fn the_handshake_echoes_the_challenge_only_for_the_right_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    let token = verify_token(&app, &account.id).await;
    let mut webhooks = app.service().webhooks();

    let answer = webhooks
        .verify_webhook_subscription(handshake("wa-555001", "subscribe", &token))
        .await
        .expect("verified")
        .into_inner();
    assert_eq!(answer.challenge, "1158201444");
    assert_eq!(answer.account_id, account.id);
    // An app-level webhook names no account: any account of the channel matches.
    let answer = webhooks
        .verify_webhook_subscription(handshake("", "subscribe", &token))
        .await
        .expect("verified")
        .into_inner();
    assert_eq!(answer.account_id, account.id);

    // One character off (never the same character: the token is random).
    let mut wrong = token.clone();
    let last = wrong.pop();
    wrong.push(if last == Some('x') { 'y' } else { 'x' });
    assert_ne!(wrong, token);
    for request in [
        handshake("wa-555001", "subscribe", &wrong),
        handshake("wa-555001", "unsubscribe", &token),
        handshake("wa-555001", "subscribe", ""),
        handshake("wa-999", "subscribe", &token),
    ] {
        let status = expect_code(
            webhooks.verify_webhook_subscription(request).await,
            Code::PermissionDenied,
        );
        assert!(!status.message().contains(&token));
    }
    let status = expect_code(
        webhooks
            .verify_webhook_subscription(proto::VerifyWebhookSubscriptionRequest::default())
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["channel"]);
}

fn signed(
    channel: Channel,
    key: &str,
    headers: &[(&str, &str)],
    body: &str,
    url: &str,
) -> proto::VerifyWebhookSignatureRequest {
    proto::VerifyWebhookSignatureRequest {
        channel: channel.into(),
        account_key: key.into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
        raw_body: body.as_bytes().to_vec(),
        url: url.into(),
    }
}

async fn meta_signatures_are_checked_over_the_raw_bytes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    let mut webhooks = app.service().webhooks();
    let check = |headers: Vec<(&'static str, &'static str)>, body: String| {
        signed(Channel::Whatsapp, "wa-555001", &headers, &body, "")
    };

    let answer = webhooks
        .verify_webhook_signature(check(
            vec![("X-Hub-Signature-256", META_SIGNATURE)],
            META_BODY.to_owned(),
        ))
        .await
        .expect("checked")
        .into_inner();
    assert!(answer.valid, "{}", answer.reason);
    assert_eq!(answer.scheme, i32::from(WebhookSignatureScheme::MetaSha256));

    let reserialised =
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(META_BODY).expect("json"))
            .expect("json");
    let tampered = META_BODY.replace("menu", "menus");
    for body in [reserialised, tampered] {
        let answer = webhooks
            .verify_webhook_signature(check(vec![("x-hub-signature-256", META_SIGNATURE)], body))
            .await
            .expect("checked")
            .into_inner();
        assert!(!answer.valid);
        assert_eq!(answer.reason, "the signature does not match the request");
    }
    let answer = webhooks
        .verify_webhook_signature(check(
            vec![("content-type", "application/json")],
            META_BODY.into(),
        ))
        .await
        .expect("checked")
        .into_inner();
    assert!(!answer.valid);
    assert_eq!(
        answer.scheme,
        i32::from(WebhookSignatureScheme::Unspecified)
    );
    assert!(
        !answer
            .encode_to_vec()
            .windows(20)
            .any(|w| w == b"test-meta-app-secret")
    );
}

async fn twilio_signatures_cover_the_url_and_sorted_parameters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create(
        &app.admin(),
        new_account(
            Channel::Sms,
            "twilio-main",
            json!({"account_sid": "AC123", "auth_token": "12345", "from": "+18005551212"}),
        ),
    )
    .await;
    let mut webhooks = app.service().webhooks();
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let check = |body: &str, url: &str| {
        signed(
            Channel::Sms,
            "twilio-main",
            &[("X-Twilio-Signature", TWILIO_SIGNATURE), form],
            body,
            url,
        )
    };
    // Parameters arrive in any order; Twilio signs them sorted.
    let shuffled = "To=%2B18005551212&Digits=1234&CallSid=CA1234567890ABCDE&From=%2B12349013030&Caller=%2B12349013030";
    for body in [TWILIO_BODY, shuffled] {
        let answer = webhooks
            .verify_webhook_signature(check(body, TWILIO_URL))
            .await
            .expect("checked")
            .into_inner();
        assert!(answer.valid, "{}", answer.reason);
        assert_eq!(answer.scheme, i32::from(WebhookSignatureScheme::TwilioSha1));
    }
    let tampered_body = TWILIO_BODY.replace("Digits=1234", "Digits=9999");
    let tampered_url = TWILIO_URL.replace("bar=2", "bar=3");
    for (body, url) in [
        (tampered_body.as_str(), TWILIO_URL),
        (TWILIO_BODY, tampered_url.as_str()),
        (TWILIO_BODY, "https://mycompany.com/myapp.php"),
    ] {
        let answer = webhooks
            .verify_webhook_signature(check(body, url))
            .await
            .expect("checked")
            .into_inner();
        assert!(!answer.valid, "{body} {url}");
    }
    let status = expect_code(
        webhooks
            .verify_webhook_signature(check(TWILIO_BODY, ""))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["url"]);
}

async fn webhook_checks_are_for_services_in_their_workspace(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    let token = verify_token(&app, &account.id).await;
    for client in [app.admin(), app.supervisor()] {
        expect_code(
            client
                .webhooks()
                .verify_webhook_subscription(handshake("wa-555001", "subscribe", &token))
                .await,
            Code::PermissionDenied,
        );
    }
    let other = app.client("service", OTHER_WORKSPACE, None);
    expect_code(
        other
            .webhooks()
            .verify_webhook_subscription(handshake("wa-555001", "subscribe", &token))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        other
            .webhooks()
            .verify_webhook_signature(signed(
                Channel::Whatsapp,
                "wa-555001",
                &[("X-Hub-Signature-256", META_SIGNATURE)],
                META_BODY,
                "",
            ))
            .await,
        Code::NotFound,
    );
}

/// A channel-wide handshake (no account key) finds its account through the verify-token
/// index, also the 10,001st of the channel (10,000 seeded through the store before it,
/// with lower ids, so that a scan of the first 10,000 would miss it).
async fn the_channel_wide_handshake_finds_any_account_through_the_index(backend: Backend) {
    const SEEDED: u128 = 10_000;
    let app = TestApp::spawn(backend).await;
    let now = chrono::Utc::now();
    let seeded: Vec<patchbay::domain::Account> = (1..=SEEDED)
        .map(|i| patchbay::domain::Account {
            id: uuid::Uuid::from_u128(i),
            workspace_id: patchbay_e2e::WORKSPACE.into(),
            channel: patchbay::domain::Channel::Whatsapp,
            account_key: format!("wa-seed-{i}"),
            display_name: format!("Seed {i}"),
            is_active: true,
            is_default: false,
            division_id: None,
            config: serde_json::Map::new(),
            verify_token: format!("seeded-verify-token-{i}"),
            webhook_route: uuid::Uuid::new_v4(),
            revision: 1,
            created_at: now,
            updated_at: now,
            provider_state: patchbay::domain::ProviderState::default(),
        })
        .collect();
    app.store()
        .await
        .accounts()
        .seed_accounts(&seeded)
        .await
        .expect("seeded");
    let account = create(&app.admin(), new_whatsapp("555999", "EAAG-token")).await;
    let token = verify_token(&app, &account.id).await;
    let answer = app
        .service()
        .webhooks()
        .verify_webhook_subscription(handshake("", "subscribe", &token))
        .await
        .expect("found among 10,001 accounts")
        .into_inner();
    assert_eq!(answer.challenge, "1158201444");
    assert_eq!(answer.account_id, account.id);
    // A seeded one is found the same way, and a wrong token is still refused.
    let seeded_answer = app
        .service()
        .webhooks()
        .verify_webhook_subscription(handshake("", "subscribe", "seeded-verify-token-42"))
        .await
        .expect("a seeded account")
        .into_inner();
    assert_eq!(
        seeded_answer.account_id,
        uuid::Uuid::from_u128(42).to_string()
    );
    expect_code(
        app.service()
            .webhooks()
            .verify_webhook_subscription(handshake("", "subscribe", "no-such-token"))
            .await,
        Code::PermissionDenied,
    );
}
