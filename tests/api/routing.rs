//! RouteWebhook: the installation's gateway hands over a provider's request as it
//! arrived and learns whose it is. Webhook URLs are unique across workspaces, Meta's
//! app-level body is split by its ids, a provider id has one owner, and nobody but
//! the gateway may route. Signatures are computed here as Meta and Twilio compute
//! them.

use std::collections::HashMap;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, META_APP_SECRET, META_WEBHOOK_VERIFY_TOKEN, OTHER_WORKSPACE, PUBLIC_BASE_URL, TestApp,
    TestOptions, WORKSPACE, backend_tests, create, expect_code, meta_signature, new_account,
    new_whatsapp, test_meta,
};
use patchbay_sdk::Client;
use patchbay_sdk::tonic::Code;
use serde_json::json;

backend_tests!(
    the_same_key_in_two_workspaces_gets_two_urls,
    a_signed_whatsapp_body_on_an_account_url_routes_to_that_account,
    one_app_level_body_gives_each_workspace_its_entries,
    business_app_echoes_route_by_their_number_like_messages,
    instagram_webhooks_are_verified_with_the_instagram_app_then_the_meta_app,
    tampered_and_unsigned_bodies_are_refused,
    the_handshake_on_an_account_url_and_on_the_app_url,
    a_signed_twilio_form_routes_and_a_tampered_one_is_refused,
    a_twilio_shared_key_signature_routes_with_its_algorithm,
    only_the_gateway_routes_and_it_does_nothing_else,
    a_confirmed_phone_number_id_keeps_its_webhooks,
    existing_accounts_get_a_route_in_the_migration
);

/// Twilio's scheme: the URL, then every parameter sorted by name, name and value.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine;
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(token.as_bytes()).expect("key");
    mac.update(signed.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={}", value.replace('+', "%2B")))
        .collect::<Vec<_>>()
        .join("&")
}

/// A WhatsApp Cloud body naming the phone number of each entry.
fn whatsapp_body(numbers: &[&str]) -> Vec<u8> {
    let entries: Vec<_> = numbers
        .iter()
        .map(|number| {
            json!({"id": "900000001", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550100", "phone_number_id": number},
                "messages": [{"from": "5511999999999", "type": "text", "text": {"body": "Ol\u{e1}"}}]}}]})
        })
        .collect();
    json!({"object": "whatsapp_business_account", "entry": entries})
        .to_string()
        .into_bytes()
}

fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> proto::RouteWebhookRequest {
    proto::RouteWebhookRequest {
        method: method.into(),
        url: url.into(),
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        raw_body: body.to_vec(),
    }
}

fn signed_post(url: &str, secret: &str, body: &[u8]) -> proto::RouteWebhookRequest {
    let signature = meta_signature(secret, body);
    request(
        "POST",
        url,
        &[
            ("Content-Type", "application/json"),
            ("X-Hub-Signature-256", &signature),
        ],
        body,
    )
}

async fn route(
    gateway: &Client,
    request: proto::RouteWebhookRequest,
) -> Result<proto::RouteWebhookResponse, patchbay_sdk::tonic::Status> {
    gateway
        .webhooks()
        .route_webhook(request)
        .await
        .map(|r| r.into_inner())
}

fn app_url() -> String {
    format!("{PUBLIC_BASE_URL}/webhooks/meta")
}

fn other_admin(app: &TestApp) -> Client {
    app.client("admin", OTHER_WORKSPACE, None)
}

async fn the_same_key_in_two_workspaces_gets_two_urls(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = |page_id: &str, secret: &str| {
        new_account(
            Channel::Messenger,
            "100200300",
            json!({"page_id": page_id, "page_access_token": "EAAP", "app_secret": secret}),
        )
    };
    let ours = create(&app.admin(), page("111", "ours-app-secret")).await;
    let theirs = create(&other_admin(&app), page("222", "theirs-app-secret")).await;
    assert_eq!(ours.account_key, theirs.account_key);
    assert_ne!(ours.webhook_url, theirs.webhook_url);
    for url in [&ours.webhook_url, &theirs.webhook_url] {
        assert!(url.starts_with(&format!("{PUBLIC_BASE_URL}/webhooks/messenger/")));
        assert!(!url.contains("100200300"), "{url}");
    }
    // A new key and name keep the URL.
    let renamed = patchbay_e2e::update(
        &app.admin(),
        proto::UpdateAccountRequest {
            id: ours.id.clone(),
            account_key: Some("renamed".into()),
            display_name: Some("Renamed".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(renamed.webhook_url, ours.webhook_url);

    // Each URL routes home, with its own account's secret.
    let body = json!({"object": "page", "entry": [{"id": "111", "time": 1, "messaging": []}]})
        .to_string()
        .into_bytes();
    let gateway = app.gateway();
    let answer = gateway
        .route_webhook(
            "POST",
            &ours.webhook_url,
            [(
                "x-hub-signature-256".to_owned(),
                meta_signature("ours-app-secret", &body),
            )],
            body.clone(),
        )
        .await
        .expect("routed");
    assert_eq!(answer.deliveries.len(), 1, "{answer:?}");
    let delivery = &answer.deliveries[0];
    assert_eq!(delivery.account_id, ours.id);
    assert_eq!(delivery.workspace_id, WORKSPACE);
    assert_eq!(delivery.account_key, "renamed");
    assert_eq!(delivery.channel, i32::from(Channel::Messenger));
    // The other workspace's secret speaks only for its account: page 111 is not it.
    let answer = route(
        &gateway,
        signed_post(&theirs.webhook_url, "theirs-app-secret", &body),
    )
    .await
    .expect("verified");
    assert!(answer.deliveries.is_empty(), "{answer:?}");
    assert_eq!(answer.unrouted.len(), 1);
    assert_eq!(answer.unrouted[0].entry_index, 0);
    // And it does not verify on our URL.
    expect_code(
        route(
            &gateway,
            signed_post(&ours.webhook_url, "theirs-app-secret", &body),
        )
        .await,
        Code::PermissionDenied,
    );
}

async fn a_signed_whatsapp_body_on_an_account_url_routes_to_that_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    let gateway = app.gateway();
    let body = whatsapp_body(&["555001"]);
    let answer = route(
        &gateway,
        signed_post(&account.webhook_url, META_APP_SECRET, &body),
    )
    .await
    .expect("routed");
    assert_eq!(
        answer.deliveries,
        vec![proto::WebhookDelivery {
            workspace_id: WORKSPACE.into(),
            account_id: account.id.clone(),
            division_id: None,
            channel: Channel::Whatsapp.into(),
            account_key: "wa-555001".into(),
            entry_index: 0,
        }]
    );
    assert!(answer.unrouted.is_empty() && answer.challenge.is_empty());
    // The gateway may be reached under another host name: only the path counts.
    let path = account
        .webhook_url
        .strip_prefix(PUBLIC_BASE_URL)
        .expect("under the base URL");
    let answer = route(
        &gateway,
        signed_post(
            &format!("http://10.0.0.7:8080{path}"),
            META_APP_SECRET,
            &body,
        ),
    )
    .await
    .expect("routed");
    assert_eq!(answer.deliveries.len(), 1);
    // A route nobody has, and a path that is no route, are NOT_FOUND.
    for url in [
        format!("{PUBLIC_BASE_URL}/webhooks/whatsapp/0123456789abcdef0123456789abcdef"),
        format!("{PUBLIC_BASE_URL}/webhooks/whatsapp/wa-555001"),
        account.webhook_url.replace("/whatsapp/", "/messenger/"),
    ] {
        let status = expect_code(
            route(&gateway, signed_post(&url, META_APP_SECRET, &body)).await,
            Code::NotFound,
        );
        assert!(!status.message().contains(WORKSPACE), "{status:?}");
    }
}

async fn one_app_level_body_gives_each_workspace_its_entries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ours = create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    let theirs = create(&other_admin(&app), new_whatsapp("555002", "EAAG-token-2")).await;
    let body = whatsapp_body(&["555002", "555001", "555999"]);
    let answer = app
        .gateway()
        .route_webhook(
            "POST",
            &app_url(),
            [(
                "X-Hub-Signature-256".to_owned(),
                meta_signature(META_APP_SECRET, &body),
            )],
            body,
        )
        .await
        .expect("routed");
    let delivered: Vec<_> = answer
        .deliveries
        .iter()
        .map(|d| {
            (
                d.entry_index,
                d.workspace_id.as_str(),
                d.account_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        delivered,
        vec![
            (0, OTHER_WORKSPACE, theirs.id.as_str()),
            (1, WORKSPACE, ours.id.as_str())
        ]
    );
    assert_eq!(answer.unrouted.len(), 1);
    assert_eq!(answer.unrouted[0].entry_index, 2);
    assert!(
        answer.unrouted[0].reason.contains("555999"),
        "{:?}",
        answer.unrouted
    );
}

async fn instagram_webhooks_are_verified_with_the_instagram_app_then_the_meta_app(
    backend: Backend,
) {
    use wiremock::matchers::{header, method, path};
    let (app, meta) = patchbay_e2e::spawn_with_fake(backend, test_meta()).await;
    // Instagram's word on the token: `user_id` is "the value of the id field received
    // in webhook notifications for this account" (Instagram Login, Get started), so a
    // hand-made account whose token it is owns that id.
    wiremock::Mock::given(method("GET"))
        .and(path(patchbay_e2e::graph_path("me")))
        .and(header("authorization", "Bearer IGAAT-token"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"user_id": "17841400000000001", "username": "acme.shop"})),
        )
        .mount(&meta)
        .await;
    // `{"success": true}`, as Meta answers the Page edge of the same name.
    wiremock::Mock::given(method("POST"))
        .and(path(patchbay_e2e::graph_path(
            "17841400000000001/subscribed_apps",
        )))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&meta)
        .await;
    let account = create(
        &app.admin(),
        new_account(
            Channel::Instagram,
            "17841400000000001",
            json!({"instagram_user_id": "17841400000000001", "access_token": "IGAAT-token"}),
        ),
    )
    .await;
    assert_eq!(account.ownership, i32::from(proto::Ownership::Confirmed));
    // A message as Instagram's webhooks send it (Instagram API with Instagram Login,
    // Webhooks: "messages" field, `entry[].id` the Instagram account's id).
    let body = json!({"object": "instagram", "entry": [{"id": "17841400000000001",
        "time": 1_765_000_000, "messaging": [{"sender": {"id": "6310000000000001"},
        "recipient": {"id": "17841400000000001"}, "timestamp": 1_765_000_000_000_u64,
        "message": {"mid": "aWdfZAG1faXRlbToxOklHTWVzc2FnZA", "text": "Ol\u{e1}"}}]}]})
    .to_string()
    .into_bytes();
    let gateway = app.gateway();
    for secret in [patchbay_e2e::INSTAGRAM_APP_SECRET, META_APP_SECRET] {
        let routed = route(&gateway, signed_post(&app_url(), secret, &body))
            .await
            .expect("routed");
        assert_eq!(routed.deliveries.len(), 1, "{routed:?}");
        assert_eq!(routed.deliveries[0].account_id, account.id);
    }
    let status = expect_code(
        route(
            &gateway,
            signed_post(&app_url(), "another-app-secret", &body),
        )
        .await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("webhook refused"), "{status:?}");
}

/// The coexistence fields (`smb_message_echoes`, `smb_app_state_sync`, `history`) come
/// with `metadata.phone_number_id` like messages, on the app-level callback and on the
/// account's URL alike. The body is the shape of Meta's "Onboard WhatsApp Business app
/// users" webhook examples (`smb_message_echoes`, `message_echoes` under `value`).
async fn business_app_echoes_route_by_their_number_like_messages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("555031", "EAAG-token")).await;
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "900000001",
        "changes": [{"field": "smb_message_echoes", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100", "phone_number_id": "555031"},
            "message_echoes": [{"from": "15550100", "to": "5511999999999",
                "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI", "timestamp": "1765000000",
                "type": "text", "text": {"body": "Sent from the app"}}]}}]}]})
    .to_string()
    .into_bytes();
    let gateway = app.gateway();
    for url in [app_url(), account.webhook_url.clone()] {
        let routed = route(&gateway, signed_post(&url, META_APP_SECRET, &body))
            .await
            .expect("routed");
        assert_eq!(routed.deliveries.len(), 1, "{url}: {routed:?}");
        assert_eq!(routed.deliveries[0].account_id, account.id);
    }
}

async fn tampered_and_unsigned_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    let gateway = app.gateway();
    let body = whatsapp_body(&["555001"]);
    for url in [account.webhook_url.clone(), app_url()] {
        let mut tampered = signed_post(&url, META_APP_SECRET, &body);
        tampered.raw_body = whatsapp_body(&["555002"]);
        let unsigned = request("POST", &url, &[("content-type", "application/json")], &body);
        let malformed = request("POST", &url, &[("X-Hub-Signature-256", "md5=00")], &body);
        let wrong_key = signed_post(&url, "another-app-secret", &body);
        for refused in [tampered, unsigned, malformed, wrong_key] {
            let status = expect_code(route(&gateway, refused).await, Code::PermissionDenied);
            assert!(status.message().contains("webhook refused"), "{status:?}");
        }
    }
    // Neither GET nor POST; a path instead of the URL; a body too large to be a webhook.
    expect_code(
        route(&gateway, request("PUT", &app_url(), &[], &body)).await,
        Code::InvalidArgument,
    );
    let status = expect_code(
        route(
            &gateway,
            signed_post("/webhooks/meta", META_APP_SECRET, &body),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(patchbay_e2e::violated_fields(&status), ["url"]);
    // A URL, headers or a body past their bounds, each named; a signed body that is
    // no Meta webhook.
    let long_url = format!("{}?pad={}", app_url(), "a".repeat(9000));
    let status = expect_code(
        route(&gateway, signed_post(&long_url, META_APP_SECRET, &body)).await,
        Code::InvalidArgument,
    );
    assert_eq!(patchbay_e2e::violated_fields(&status), ["url"]);
    let mut crowded = signed_post(&app_url(), META_APP_SECRET, &body);
    crowded
        .headers
        .extend((0..200).map(|i| (format!("x-pad-{i}"), "v".to_owned())));
    let status = expect_code(route(&gateway, crowded).await, Code::InvalidArgument);
    assert_eq!(patchbay_e2e::violated_fields(&status), ["headers"]);
    let status = expect_code(
        route(
            &gateway,
            signed_post(&app_url(), META_APP_SECRET, b"not json"),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(patchbay_e2e::violated_fields(&status), ["raw_body"]);
    let huge = vec![b' '; 1024 * 1024 + 1];
    let status = expect_code(
        route(&gateway, signed_post(&app_url(), META_APP_SECRET, &huge)).await,
        Code::InvalidArgument,
    );
    assert_eq!(patchbay_e2e::violated_fields(&status), ["raw_body"]);
}

async fn the_handshake_on_an_account_url_and_on_the_app_url(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    let verify_token = app
        .service()
        .account_credentials(&account.id)
        .await
        .expect("credentials")
        .verify_token;
    let gateway = app.gateway();
    let handshake = |url: &str, token: &str| {
        request(
            "GET",
            &format!("{url}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"),
            &[],
            b"",
        )
    };
    for (url, token) in [
        (account.webhook_url.clone(), verify_token.clone()),
        (app_url(), META_WEBHOOK_VERIFY_TOKEN.to_owned()),
    ] {
        let answer = route(&gateway, handshake(&url, &token))
            .await
            .expect("handshake");
        assert_eq!(answer.challenge, "1158201444");
        assert!(answer.deliveries.is_empty());
        for wrong in [format!("{token}x"), String::new()] {
            expect_code(
                route(&gateway, handshake(&url, &wrong)).await,
                Code::PermissionDenied,
            );
        }
    }
    // A challenge that is not plain text is not echoed.
    let markup = request(
        "GET",
        &format!(
            "{}?hub.mode=subscribe&hub.verify_token={verify_token}&hub.challenge=%3Cscript%3E",
            account.webhook_url
        ),
        &[],
        b"",
    );
    expect_code(route(&gateway, markup).await, Code::InvalidArgument);
    // One account's token does not open the app-level callback, nor the reverse.
    expect_code(
        route(&gateway, handshake(&app_url(), &verify_token)).await,
        Code::PermissionDenied,
    );
    expect_code(
        route(
            &gateway,
            handshake(&account.webhook_url, META_WEBHOOK_VERIFY_TOKEN),
        )
        .await,
        Code::PermissionDenied,
    );
    // Without an app-level verify token configured, that handshake cannot succeed.
    let bare = TestApp::spawn_with(
        backend,
        TestOptions {
            meta: patchbay::meta::MetaSettings {
                webhook_verify_token: None,
                ..test_meta()
            },
            ..TestOptions::default()
        },
    )
    .await;
    let status = expect_code(
        route(
            &bare.gateway(),
            handshake(&app_url(), META_WEBHOOK_VERIFY_TOKEN),
        )
        .await,
        Code::FailedPrecondition,
    );
    assert!(
        status
            .message()
            .contains("PATCHBAY_META_WEBHOOK_VERIFY_TOKEN")
    );
}

/// A Twilio SharedKey signature (twilio-python 9.13: the header names the algorithm,
/// the SharedKey secret is the key), through RouteWebhook and VerifyWebhookSignature.
async fn a_twilio_shared_key_signature_routes_with_its_algorithm(backend: Backend) {
    use base64::Engine;
    let app = TestApp::spawn(backend).await;
    let shared = "sharedkey-secret-for-tests";
    let account = create(
        &app.admin(),
        new_account(
            Channel::Sms,
            "+18005551213",
            json!({"account_sid": "AC0123456789abcdef0123456789abcdef",
                "auth_token": "twilio-auth-token-12345", "webhook_shared_key": shared}),
        ),
    )
    .await;
    let url = account.webhook_url.clone();
    // Duplicates are signed once (twilio-python's sorted(set(values))).
    let body = "To=%2B18005551213&Body=hi&Body=hi&From=%2B12349013030";
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(shared.as_bytes()).expect("key");
    mac.update(format!("{url}BodyhiFrom+12349013030To+18005551213").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let headers = |algorithm: &str| {
        [
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("X-Twilio-Signature", signature.clone()),
            (
                "X-Twilio-Webhooks-Signature-Settings",
                format!("key=webhooks_sharedkey_1,algorithm={algorithm}"),
            ),
        ]
    };
    let post = |algorithm: &str| {
        let headers = headers(algorithm);
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        request("POST", &url, &pairs, body.as_bytes())
    };
    let gateway = app.gateway();
    let routed = route(&gateway, post("hmac_sha256")).await.expect("routed");
    assert_eq!(routed.deliveries[0].account_id, account.id);
    // The same signature under another algorithm, or an unknown one, is refused.
    expect_code(
        route(&gateway, post("HMAC_SHA1")).await,
        Code::PermissionDenied,
    );
    let status = expect_code(
        route(&gateway, post("HMAC_MD5")).await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("HMAC_MD5"), "{status:?}");
    // VerifyWebhookSignature names the scheme.
    let headers: HashMap<String, String> = headers("HMAC_SHA256")
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    let verdict = app
        .service()
        .webhooks()
        .verify_webhook_signature(proto::VerifyWebhookSignatureRequest {
            channel: Channel::Sms.into(),
            account_key: account.account_key.clone(),
            headers,
            raw_body: body.as_bytes().to_vec(),
            url: url.clone(),
        })
        .await
        .expect("verified")
        .into_inner();
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(
        verdict.scheme,
        i32::from(proto::WebhookSignatureScheme::TwilioSha256)
    );
}

async fn a_signed_twilio_form_routes_and_a_tampered_one_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = "twilio-auth-token-12345";
    let account = create(
        &app.admin(),
        new_account(
            Channel::Sms,
            "+18005551212",
            json!({"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": token}),
        ),
    )
    .await;
    let gateway = app.gateway();
    let url = format!("{}?tenant=1", account.webhook_url);
    let params = [
        ("From", "+12349013030"),
        ("To", "+18005551212"),
        ("Body", "hello"),
        ("MessageSid", "SM1"),
    ];
    let signature = twilio_signature(token, &url, &params);
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Twilio-Signature", signature.as_str()),
    ];
    let answer = route(
        &gateway,
        request("POST", &url, &headers, form(&params).as_bytes()),
    )
    .await
    .expect("routed");
    assert_eq!(answer.deliveries.len(), 1);
    assert_eq!(answer.deliveries[0].account_id, account.id);
    assert_eq!(answer.deliveries[0].channel, i32::from(Channel::Sms));
    let mut tampered = params;
    tampered[2] = ("Body", "pay me");
    for refused in [
        request("POST", &url, &headers, form(&tampered).as_bytes()),
        // Twilio signs the URL: another query string is another request.
        request(
            "POST",
            &account.webhook_url,
            &headers,
            form(&params).as_bytes(),
        ),
        // A Meta signature does not fit an SMS account.
        signed_post(&url, META_APP_SECRET, form(&params).as_bytes()),
    ] {
        expect_code(route(&gateway, refused).await, Code::PermissionDenied);
    }
    // Twilio's signature on Meta's app-level URL names no account to check it with.
    expect_code(
        route(
            &gateway,
            request("POST", &app_url(), &headers, form(&params).as_bytes()),
        )
        .await,
        Code::PermissionDenied,
    );
}

async fn only_the_gateway_routes_and_it_does_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    let body = whatsapp_body(&["555001"]);
    for client in [app.service(), app.admin(), app.supervisor()] {
        expect_code(
            route(&client, signed_post(&app_url(), META_APP_SECRET, &body)).await,
            Code::PermissionDenied,
        );
    }
    let gateway = app.gateway();
    let denied = |result: Result<(), patchbay_sdk::tonic::Status>| {
        expect_code(result, Code::PermissionDenied);
    };
    denied(
        gateway
            .accounts()
            .get_default_account(proto::GetDefaultAccountRequest {
                channel: Channel::Whatsapp.into(),
                ..Default::default()
            })
            .await
            .map(drop),
    );
    denied(
        gateway
            .accounts()
            .get_account_credentials(proto::GetAccountCredentialsRequest {
                id: account.id.clone(),
            })
            .await
            .map(drop),
    );
    denied(
        gateway
            .accounts()
            .list_accounts(proto::ListAccountsRequest::default())
            .await
            .map(drop),
    );
    denied(
        gateway
            .accounts()
            .create_account(new_whatsapp("555002", "EAAG"))
            .await
            .map(drop),
    );
    denied(
        gateway
            .integrations()
            .list_providers(proto::ListProvidersRequest::default())
            .await
            .map(drop),
    );
    denied(
        gateway
            .webhooks()
            .verify_webhook_signature(proto::VerifyWebhookSignatureRequest {
                channel: Channel::Whatsapp.into(),
                account_key: "wa-555001".into(),
                headers: HashMap::new(),
                raw_body: body.clone(),
                url: app_url(),
            })
            .await
            .map(drop),
    );
}

async fn a_confirmed_phone_number_id_keeps_its_webhooks(backend: Backend) {
    let (app, fake, _meta) = patchbay_e2e::spawn_with_fake_meta(backend, test_meta(), None).await;
    fake.add_number("555001", "900000001", None);
    fake.restrict_number("555001", "EAAG-token", "+1 555-000-1001");
    // Set up at Meta: the number is ours.
    let ours = create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    // Another workspace's claim, with a token Meta refuses for the number, is accepted
    // and confirms nothing; its answer names neither our workspace nor our account.
    let squatter = create(&other_admin(&app), new_whatsapp("555001", "EAAG-squatter")).await;
    assert_eq!(squatter.ownership, i32::from(proto::Ownership::Unconfirmed));
    assert!(!squatter.setup_error.contains(WORKSPACE), "{squatter:?}");
    assert!(!squatter.setup_error.contains(&ours.id), "{squatter:?}");
    // Another spelling of the same number is no way around it: ids have one spelling.
    let status = expect_code(
        other_admin(&app)
            .accounts()
            .create_account(new_whatsapp("0555001", "EAAG-squatter"))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        patchbay_e2e::violated_fields(&status),
        ["config.phone_number_id"]
    );
    let body = whatsapp_body(&["555001"]);
    let owner = |app: &TestApp| {
        let gateway = app.gateway();
        let body = body.clone();
        async move {
            route(&gateway, signed_post(&app_url(), META_APP_SECRET, &body))
                .await
                .expect("routed")
        }
    };
    let answer = owner(&app).await;
    assert_eq!(answer.deliveries.len(), 1);
    assert_eq!(answer.deliveries[0].account_id, ours.id);

    // Once the owner is gone, a set-up Meta accepts with a token that has the number
    // makes it another workspace's, and it routes there.
    app.admin()
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: ours.id.clone(),
            ..Default::default()
        })
        .await
        .expect("deleted");
    assert!(owner(&app).await.deliveries.is_empty());
    let theirs = create(
        &app.client("admin", "initech", None),
        new_whatsapp("555001", "EAAG-token"),
    )
    .await;
    let answer = owner(&app).await;
    assert_eq!(answer.deliveries.len(), 1);
    assert_eq!(answer.deliveries[0].account_id, theirs.id);
    assert_eq!(answer.deliveries[0].workspace_id, "initech");
}

/// Accounts from before routes get one, distinct, and their provider ids.
async fn existing_accounts_get_a_route_in_the_migration(backend: Backend) {
    use sea_orm::ConnectionTrait;
    use sea_orm_migration::MigratorTrait;
    let app = TestApp::spawn(backend).await;
    create(&app.admin(), new_whatsapp("555001", "EAAG-token")).await;
    create(&other_admin(&app), new_whatsapp("555002", "EAAG-token")).await;
    create(
        &app.admin(),
        new_account(Channel::Email, "support@acme.test", json!({})),
    )
    .await;
    let db = app.database().await;
    let from_routes = patchbay_migrations::Migrator::migrations()
        .iter()
        .rev()
        .take_while(|m| m.name() != "m20261202_000017_account_webhook_routes")
        .count() as u32
        + 1;
    patchbay_migrations::Migrator::down(&db, Some(from_routes))
        .await
        .expect("down");
    patchbay_migrations::Migrator::up(&db, None)
        .await
        .expect("up");
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT webhook_route, provider_id, ownership FROM accounts ORDER BY account_key",
        ))
        .await
        .expect("rows");
    let read: Vec<(String, Option<String>, String)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get("", "webhook_route").expect("route"),
                row.try_get("", "provider_id").expect("provider id"),
                row.try_get("", "ownership").expect("ownership"),
            )
        })
        .collect();
    assert_eq!(read.len(), 3);
    for (route, _, _) in &read {
        assert!(
            route.len() == 32 && route.chars().all(|c| c.is_ascii_hexdigit()),
            "{route}"
        );
    }
    assert_ne!(read[0].0, read[1].0);
    assert_ne!(read[1].0, read[2].0);
    // support@…, wa-555001, wa-555002: the set-up confirmed both numbers.
    assert_eq!(read[0].1, None);
    assert_eq!(read[1].1.as_deref(), Some("555001"));
    assert_eq!(read[2].1.as_deref(), Some("555002"));
    assert_eq!(
        [read[0].2.as_str(), read[1].2.as_str(), read[2].2.as_str()],
        ["unconfirmed", "confirmed", "confirmed"]
    );
}

/// Two servers on one PostgreSQL database: an account made, then deleted, on one
/// routes, then stops routing, on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_replica_routes_the_new_way_on_the_other() {
    let one = TestApp::spawn(Backend::Postgres).await;
    let other = one.replica().await;
    let gateway = other.gateway();
    let body = whatsapp_body(&["555001"]);
    let delivered = || {
        let (gateway, body) = (gateway.clone(), body.clone());
        async move {
            gateway
                .route_webhook(
                    "POST",
                    &app_url(),
                    [(
                        "x-hub-signature-256".to_owned(),
                        meta_signature(META_APP_SECRET, &body),
                    )],
                    body,
                )
                .await
                .expect("routed")
                .deliveries
                .into_iter()
                .map(|d| d.account_id)
                .collect::<Vec<_>>()
        }
    };
    assert!(delivered().await.is_empty());
    let account = create(&one.admin(), new_whatsapp("555001", "EAAG-token")).await;
    let converge = |want: Vec<String>| {
        let delivered = &delivered;
        async move {
            tokio::time::timeout(Duration::from_secs(10), async {
                while delivered().await != want {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .is_ok()
        }
    };
    assert!(
        converge(vec![account.id.clone()]).await,
        "the other replica routes to the new account"
    );
    one.admin()
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: account.id.clone(),
            ..Default::default()
        })
        .await
        .expect("deleted");
    assert!(
        converge(Vec::new()).await,
        "the other replica stops routing to it"
    );
}
