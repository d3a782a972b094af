//! Instagram Login against a fake Meta: the code exchange with the Instagram app's own
//! id and secret (both answer shapes, Meta's `#_` stripped), the long-lived exchange,
//! the profile's `user_id`, the saved account, its webhook subscription, and the
//! background refresh. Recorded answers are those of Meta's "Instagram API with
//! Instagram Login" pages (Business Login, Get started, Webhooks).

use std::time::Duration;

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, GRAPH_VERSION, INSTAGRAM_APP_ID, INSTAGRAM_APP_SECRET, TestApp, TestOptions,
    all_providers_at, backend_tests, credential, expect_code, get_account, spawn_with_fake,
    test_meta, violated_fields,
};
use patchbay_sdk::tonic::Code;
use prost::Message;
use serde_json::{Value, json};
use wiremock::matchers::{body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    connect_takes_either_answer_shape_and_saves_the_account_once,
    a_refused_code_or_a_missing_app_writes_nothing,
    instagram_login_tokens_are_checked_at_instagram_never_with_debug_token,
    a_hand_made_account_is_subscribed_only_with_its_own_token,
    expiring_tokens_are_refreshed_and_refusals_flag_the_account
);

const REDIRECT: &str = "https://app.example.test/instagram/callback";

async fn app_with_meta(backend: Backend, refresh: Option<Duration>) -> (TestApp, MockServer) {
    let mut settings = test_meta();
    settings.refresh_every = refresh;
    spawn_with_fake(backend, settings).await
}

fn connect(code: &str) -> proto::ConnectInstagramRequest {
    proto::ConnectInstagramRequest {
        code: code.into(),
        redirect_uri: REDIRECT.into(),
        division_id: None,
    }
}

/// The whole Instagram Login dance for one code, answering the short-lived exchange in
/// `shape` and giving a long-lived token that expires in `expires_in` seconds.
async fn mount_login(meta: &MockServer, code: &str, shape: Value, long: &str, expires_in: i64) {
    // The Instagram app's id and secret: Meta refuses the Facebook app's here ("Invalid
    // platform app").
    let form = format!(
        "client_id={INSTAGRAM_APP_ID}&client_secret={INSTAGRAM_APP_SECRET}&grant_type=authorization_code&redirect_uri={}&code={code}",
        "https%3A%2F%2Fapp.example.test%2Finstagram%2Fcallback"
    );
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(form))
        .respond_with(ResponseTemplate::new(200).set_body_json(shape))
        .expect(1)
        .mount(meta)
        .await;
    Mock::given(method("GET"))
        .and(path("/access_token"))
        .and(query_param("grant_type", "ig_exchange_token"))
        .and(query_param("client_secret", INSTAGRAM_APP_SECRET))
        .and(query_param(
            "access_token",
            format!("IGQ-short-{code}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": long, "token_type": "bearer", "expires_in": expires_in}),
        ))
        .expect(1)
        .mount(meta)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/{GRAPH_VERSION}/me")))
        .and(query_param("fields", "user_id,username,name,account_type"))
        .and(header("authorization", format!("Bearer {long}").as_str()))
        // `id` is app-scoped; `user_id` is what webhooks name (Get started page).
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "app-scoped-1", "user_id": "17841400000000001", "username": "acme.shop",
            "name": "Acme", "account_type": "BUSINESS"})))
        // The profile, then the set-up's check that the token is this account's.
        .expect(2)
        .mount(meta)
        .await;
    // The subscription of the account's webhooks; `{"success": true}` as Meta answers
    // the Page edge of the same name.
    Mock::given(method("POST"))
        .and(path(format!(
            "/{GRAPH_VERSION}/17841400000000001/subscribed_apps"
        )))
        .and(query_param(
            "subscribed_fields",
            "messages,messaging_postbacks,messaging_seen,message_reactions",
        ))
        .and(header("authorization", format!("Bearer {long}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(meta)
        .await;
}

async fn connect_takes_either_answer_shape_and_saves_the_account_once(backend: Backend) {
    let (app, meta) = app_with_meta(backend, None).await;
    // The documented `data: [...]` shape, then the flat one Instagram also answers.
    mount_login(
        &meta,
        "code-a",
        json!({"data": [{"access_token": "IGQ-short-code-a", "user_id": "17841400000000001", "permissions": "instagram_business_basic"}]}),
        "IGQ-long-a",
        5_183_944,
    )
    .await;
    mount_login(
        &meta,
        "code-b",
        json!({"access_token": "IGQ-short-code-b", "user_id": 17841400000000001_u64, "permissions": ["instagram_business_basic"]}),
        "IGQ-long-b",
        5_183_944,
    )
    .await;

    let admin = app.admin();
    // Meta appends `#_` to the code in the redirect: "not part of the code itself".
    let first = admin
        .accounts()
        .connect_instagram(connect("code-a#_"))
        .await
        .expect("connect")
        .into_inner();
    assert!(first.success);
    assert_eq!(first.username, "acme.shop");
    assert!(
        !first
            .encode_to_vec()
            .windows(10)
            .any(|w| w == b"IGQ-long-a")
    );
    let account = first.account.expect("account");
    assert_eq!(account.channel, i32::from(Channel::Instagram));
    assert_eq!(account.account_key, "17841400000000001");
    assert_eq!(account.display_name, "acme.shop");
    assert_eq!(
        account.setup_state,
        i32::from(proto::SetupState::Done),
        "subscribed: {}",
        account.setup_error
    );
    assert_eq!(
        account.token_source,
        i32::from(proto::TokenSource::InstagramLogin)
    );
    let expires = account.token_expires_at.expect("expiry").seconds;
    let in_60_days = chrono::Utc::now().timestamp() + 5_183_944;
    assert!(
        (expires - in_60_days).abs() < 120,
        "{expires} vs {in_60_days}"
    );
    assert_eq!(
        credential(&app, &account.id, "access_token").await,
        "IGQ-long-a"
    );

    let second = admin
        .accounts()
        .connect_instagram(connect("code-b"))
        .await
        .expect("reconnect")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(
        second.id, account.id,
        "the same Instagram account is updated"
    );
    assert_eq!(
        credential(&app, &account.id, "access_token").await,
        "IGQ-long-b"
    );
    assert_eq!(
        admin
            .list_all_accounts(Some(Channel::Instagram))
            .await
            .expect("list")
            .len(),
        1
    );
}

async fn a_refused_code_or_a_missing_app_writes_nothing(backend: Backend) {
    let (app, meta) = app_with_meta(backend, None).await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error_type": "OAuthException", "code": 400,
            "error_message": "Matching code was not found or was already used"})))
        .expect(1)
        .mount(&meta)
        .await;
    let admin = app.admin();
    let status = expect_code(
        admin.accounts().connect_instagram(connect("used")).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["code"]);
    assert!(
        status.message().contains("already used"),
        "{}",
        status.message()
    );
    let status = expect_code(
        admin
            .accounts()
            .connect_instagram(proto::ConnectInstagramRequest {
                code: String::new(),
                redirect_uri: "not a url".into(),
                division_id: None,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["code", "redirect_uri"]);
    assert!(
        admin
            .list_all_accounts(None)
            .await
            .expect("list")
            .is_empty()
    );

    // Without the Instagram app the flow cannot start, the Meta app notwithstanding.
    let mut settings = test_meta();
    settings.instagram_app = None;
    let bare = TestApp::spawn_with(
        backend,
        TestOptions {
            provider_urls: all_providers_at(&meta.uri()),
            meta: settings,
            ..Default::default()
        },
    )
    .await;
    let status = expect_code(
        bare.admin()
            .accounts()
            .connect_instagram(connect("c"))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("PATCHBAY_INSTAGRAM_APP_ID")
            && status.message().contains("PATCHBAY_INSTAGRAM_APP_SECRET"),
        "{}",
        status.message()
    );
}

async fn expiring_tokens_are_refreshed_and_refusals_flag_the_account(backend: Backend) {
    let (app, meta) = app_with_meta(backend, Some(Duration::from_millis(100))).await;
    // A token that expires in 3 days, inside the 7-day window: refreshed.
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(query_param("grant_type", "ig_refresh_token"))
        .and(query_param("access_token", "IGQ-old"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "IGQ-refreshed", "token_type": "bearer", "expires_in": 5_183_944}),
        ))
        .expect(1)
        .mount(&meta)
        .await;
    mount_login(
        &meta,
        "soon",
        json!({"access_token": "IGQ-short-soon"}),
        "IGQ-old",
        3 * 86_400,
    )
    .await;
    let soon = app
        .admin()
        .accounts()
        .connect_instagram(connect("soon"))
        .await
        .expect("connect")
        .into_inner()
        .account
        .expect("account");
    let mut refreshed = false;
    for _ in 0..100 {
        if credential(&app, &soon.id, "access_token").await == "IGQ-refreshed" {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refreshed, "the token was refreshed");
    let account = get_account(&app.admin(), &soon.id).await;
    let expires = account.token_expires_at.expect("expiry").seconds;
    assert!(
        expires > chrono::Utc::now().timestamp() + 50 * 86_400,
        "a new 60-day expiry"
    );
    assert!(!account.reauthorization_required);

    // Time passes: the new token is due too, and Meta now refuses it (mounted first:
    // the refresher may look as soon as the expiry moves).
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(query_param("access_token", "IGQ-refreshed"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: The user has not authorized application.",
            "type": "OAuthException", "code": 190, "fbtrace_id": "Ab1"}})))
        .expect(1)
        .mount(&meta)
        .await;
    // (The refresh was two days ago: Meta refreshes only tokens at least a day old.)
    app.execute(
        "UPDATE accounts SET token_expires_at = $1, token_refreshed_at = $2 WHERE channel = 'instagram'",
        vec![
            (chrono::Utc::now() + chrono::Duration::days(1)).into(),
            (chrono::Utc::now() - chrono::Duration::days(2)).into(),
        ],
    )
    .await;
    let mut flagged = false;
    for _ in 0..100 {
        if get_account(&app.admin(), &soon.id)
            .await
            .reauthorization_required
        {
            flagged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(flagged, "a refused refresh marks the account");
    // Flagged accounts are not tried again (the mock expects exactly one call).
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn instagram_login_tokens_are_checked_at_instagram_never_with_debug_token(backend: Backend) {
    let mut settings = test_meta();
    settings.check_every = Some(Duration::from_millis(100));
    let (app, meta) = spawn_with_fake(backend, settings).await;
    mount_login(
        &meta,
        "checked",
        json!({"access_token": "IGQ-short-checked"}),
        "IGQ-revoked",
        5_183_944,
    )
    .await;
    // debug_token "cannot parse" Instagram Login tokens: it must never see one.
    Mock::given(method("GET"))
        .and(path(format!("/{GRAPH_VERSION}/debug_token")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException", "code": 190, "fbtrace_id": "AbC"}})))
        .expect(0)
        .mount(&meta)
        .await;
    // Instagram's own answer about the token: revoked (Graph API error 190).
    Mock::given(method("GET"))
        .and(path(format!("/{GRAPH_VERSION}/me")))
        .and(query_param("fields", "id"))
        .and(header("authorization", "Bearer IGQ-revoked"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: The session has been invalidated.",
            "type": "OAuthException", "code": 190, "error_subcode": 460, "fbtrace_id": "AbD"}})))
        .mount(&meta)
        .await;
    let account = app
        .admin()
        .accounts()
        .connect_instagram(connect("checked"))
        .await
        .expect("connect")
        .into_inner()
        .account
        .expect("account");
    let mut flagged = false;
    for _ in 0..100 {
        if get_account(&app.admin(), &account.id)
            .await
            .reauthorization_required
        {
            flagged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(flagged, "Instagram's refusal flags the account");
    let reason = get_account(&app.admin(), &account.id)
        .await
        .reauthorization_reason;
    assert!(reason.contains("190"), "{reason}");
}

/// A tenant naming another's Instagram id with its own token: nothing is subscribed or
/// confirmed, and the account says why.
async fn a_hand_made_account_is_subscribed_only_with_its_own_token(backend: Backend) {
    let (app, meta) = app_with_meta(backend, None).await;
    Mock::given(method("GET"))
        .and(path(format!("/{GRAPH_VERSION}/me")))
        .and(header("authorization", "Bearer IGAA-attacker"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "user_id": "17841400000000009", "username": "attacker"})))
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/{GRAPH_VERSION}/17841400000000002/subscribed_apps"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(0)
        .mount(&meta)
        .await;
    let account = patchbay_e2e::create(
        &app.admin(),
        patchbay_e2e::new_account(
            Channel::Instagram,
            "17841400000000002",
            json!({"instagram_user_id": "17841400000000002", "access_token": "IGAA-attacker"}),
        ),
    )
    .await;
    assert_eq!(account.setup_state, i32::from(proto::SetupState::Failed));
    assert!(
        account.setup_error.contains("17841400000000009"),
        "{}",
        account.setup_error
    );
    assert!(!account.setup_error.contains("IGAA-attacker"));
}
