//! WhatsApp Cloud against a fake Meta (wiremock speaking the Graph API's shapes): the
//! set-up CreateAccount runs, Embedded Signup, health, and how Meta's errors map.
//!
//! Recorded answers and where they come from:
//! - `{"success": true}` (register, subscribed_apps, the number's webhook_configuration):
//!   Cloud API reference, Registration; "Webhook overrides"; Chatwoot
//!   spec/services/whatsapp/facebook_api_client_spec.rb.
//! - Error bodies `{"error": {"message", "type": "OAuthException", "code",
//!   "error_subcode", "fbtrace_id"}}`, 190 for an expired session, 4 and 80007 for rate
//!   limits, 2 with `is_transient`: Graph API, "Handling errors".
//! - The number (`display_phone_number`, `verified_name`, `quality_rating`,
//!   `code_verification_status`, `name_status`, the messaging limit, `throughput.level`,
//!   `status`), the WABA (`account_review_status`) and `subscribed_apps`
//!   (`whatsapp_business_api_data`, `override_callback_uri`): Chatwoot
//!   spec/services/whatsapp/health_service_spec.rb; "Webhook overrides".
//! - The Embedded Signup code exchange (`access_token`, `token_type`): Embedded Signup,
//!   "Exchange the token code for a business token".

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, META_APP_ID, META_APP_SECRET, OTHER_WORKSPACE, TestApp, backend_tests, config_of,
    create, credential, expect_code, get_account, graph_path, new_whatsapp, spawn_with_fake,
    test_meta, to_struct, update, violated_fields,
};
use patchbay_sdk::tonic::Code;
use prost::Message;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    create_registers_the_number_and_subscribes_the_waba,
    a_meta_refusal_leaves_the_account_flagged_until_an_update_fixes_it,
    only_5xx_and_429_are_retried_and_never_a_code_exchange,
    signup_exchanges_the_code_and_a_second_signup_reauthorises,
    health_reports_each_part_and_a_rejected_token_marks_the_account,
    meta_calls_are_admin_only_and_stay_in_the_workspace,
    a_set_up_cut_off_by_the_deadline_stays_pending_until_an_update_completes_it,
    a_retried_set_up_goes_on_from_the_step_it_stopped_at
);

async fn app_with_meta(backend: Backend) -> (TestApp, MockServer) {
    spawn_with_fake(backend, test_meta()).await
}

fn graph(rest: &str) -> String {
    graph_path(rest)
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"success": true}))
}

fn graph_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {
        "message": message, "type": "OAuthException", "code": code,
        "error_subcode": 463, "fbtrace_id": "AxYz123"}}))
}

fn expired_token() -> ResponseTemplate {
    graph_error(
        401,
        190,
        "Error validating access token: Session has expired on Friday, 20-Nov-26.",
    )
}

/// Every request the fake received, as (method, path, body JSON).
/// The calls Meta received, but debug_token's: the ownership confirmations ask it
/// beside the set-up (the start-up pass may meet the account while it is being set
/// up), in an order no test here is about.
async fn received(meta: &MockServer) -> Vec<(String, String, Value)> {
    meta.received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !r.url.path().ends_with("/debug_token"))
        .map(|r| {
            let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            (r.method.to_string(), r.url.path().to_owned(), body)
        })
        .collect()
}

async fn create_registers_the_number_and_subscribes_the_waba(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    Mock::given(method("POST"))
        .and(path(graph("555001/register")))
        .and(header("authorization", "Bearer EAAG-business-token"))
        .respond_with(ok())
        .expect(1)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(graph("900000001/subscribed_apps")))
        .and(header("authorization", "Bearer EAAG-business-token"))
        .respond_with(ok())
        .expect(1)
        .mount(&meta)
        .await;

    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-business-token")).await;
    assert_eq!(account.account_key, "wa-555001");
    assert_eq!(account.setup_error, "");
    assert!(!account.reauthorization_required);
    assert_eq!(
        account.revision, 2,
        "saved PENDING, then the set-up that worked recorded DONE"
    );
    assert_eq!(account.setup_state, i32::from(proto::SetupState::Done));
    // The generated PIN is a secret: masked here, in clear only through credentials.
    assert!(
        config_of(&account)["pin"]
            .as_str()
            .is_some_and(|p| p.starts_with("****"))
    );

    let secrets = app
        .service()
        .account_credentials(&account.id)
        .await
        .expect("credentials");
    let pin = credential(&app, &account.id, "pin").await;
    assert!(
        pin.len() == 6 && pin.chars().all(|c| c.is_ascii_digit()),
        "{pin}"
    );
    let requests = received(&meta).await;
    let call = |verb: &str, rest: &str, body: Value| (verb.to_owned(), graph(rest), body);
    assert_eq!(
        requests,
        vec![
            call("GET", "555001", Value::Null),
            call(
                "POST",
                "555001/register",
                json!({"messaging_product": "whatsapp", "pin": pin}),
            ),
            call("GET", "900000001/subscribed_apps", Value::Null),
            call("POST", "900000001/subscribed_apps", Value::Null),
            call(
                "POST",
                "555001",
                json!({"webhook_configuration": {
                    "override_callback_uri": account.webhook_url,
                    "verify_token": secrets.verify_token,
                }}),
            ),
        ],
        "read the number, register it (not on the Cloud API yet), subscribe the app, \
         then the number's own callback with the account's URL and verify token"
    );

    // A PIN given by the caller is used as given; a malformed one is refused by name.
    let mut given = new_whatsapp("555002", "EAAG-business-token");
    given.config = Some(to_struct(
        json!({"phone_number_id": "555002", "waba_id": "900000001",
        "access_token": "EAAG-business-token", "pin": "12ab"}),
    ));
    let status = expect_code(
        app.admin().accounts().create_account(given).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["config.pin"]);
}

async fn a_meta_refusal_leaves_the_account_flagged_until_an_update_fixes_it(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    Mock::given(method("POST"))
        .and(path(graph("555001/register")))
        .and(header("authorization", "Bearer EAAG-expired"))
        .respond_with(expired_token())
        .expect(1)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(graph("900000001/subscribed_apps")))
        .and(header("authorization", "Bearer EAAG-expired"))
        .respond_with(ok())
        .expect(0)
        .mount(&meta)
        .await;

    // Chosen behaviour: the account is saved (Meta verifies the callback against it),
    // flagged with Meta's reason; nothing after the failed step is attempted.
    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-expired")).await;
    assert!(
        account.setup_error.contains("registering the phone number"),
        "{}",
        account.setup_error
    );
    assert!(
        account.setup_error.contains("Session has expired"),
        "{}",
        account.setup_error
    );
    assert!(
        account.setup_error.contains("190"),
        "{}",
        account.setup_error
    );
    assert!(!account.setup_error.contains("EAAG-expired"));
    assert!(account.reauthorization_required);
    let read = get_account(&app.admin(), &account.id).await;
    assert_eq!(read.setup_error, account.setup_error);
    assert!(read.reauthorization_required);
    // A merge patch cannot erase what Meta said.
    let renamed = update(
        &app.admin(),
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            display_name: Some("Renamed".into()),
            ..Default::default()
        },
    )
    .await;
    assert!(renamed.reauthorization_required);

    // A new token: the set-up runs again and clears both flags.
    Mock::given(method("POST"))
        .and(path(graph("555001/register")))
        .and(header("authorization", "Bearer EAAG-fresh"))
        .respond_with(ok())
        .expect(1)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(graph("900000001/subscribed_apps")))
        .and(header("authorization", "Bearer EAAG-fresh"))
        .respond_with(ok())
        .expect(1)
        .mount(&meta)
        .await;
    let fixed = update(
        &app.admin(),
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            config: Some(to_struct(json!({"access_token": "EAAG-fresh"}))),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(fixed.setup_error, "");
    assert!(!fixed.reauthorization_required);
}

async fn only_5xx_and_429_are_retried_and_never_a_code_exchange(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    // 503 on reading the number: three attempts (the policy's), then the account is
    // flagged.
    Mock::given(method("GET"))
        .and(path(graph("555001")))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .expect(3)
        .mount(&meta)
        .await;
    // 503 on register: never repeated, since Meta counts every registration request
    // against the number's 10 in 72 hours.
    Mock::given(method("POST"))
        .and(path(graph("555004/register")))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .expect(1)
        .mount(&meta)
        .await;
    // 429 on reading another number, then Meta answers: retried into success.
    Mock::given(method("GET"))
        .and(path(graph("555002")))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"error": {"message": "(#80007) Rate limit hit", "type": "OAuthException", "code": 80007}}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(graph("555002/register")))
        .respond_with(ok())
        .expect(1)
        .mount(&meta)
        .await;
    // A 400 is not retried.
    Mock::given(method("POST"))
        .and(path(graph("555003/register")))
        .respond_with(graph_error(400, 100, "(#100) Invalid parameter"))
        .expect(1)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(graph("900000001/subscribed_apps")))
        .respond_with(ok())
        .expect(1)
        .mount(&meta)
        .await;
    // A code exchange that meets a 500 is not repeated: the code may have been used.
    Mock::given(method("GET"))
        .and(path(graph("oauth/access_token")))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"error": {"message": "An unexpected error has occurred.", "type": "OAuthException", "code": 2, "is_transient": true}}),
        ))
        .expect(1)
        .mount(&meta)
        .await;

    let admin = app.admin();
    let down = create(&admin, new_whatsapp("555001", "EAAG-token")).await;
    assert!(down.setup_error.contains("503"), "{}", down.setup_error);
    assert!(!down.reauthorization_required);
    let register_down = create(&admin, new_whatsapp("555004", "EAAG-token")).await;
    assert!(
        register_down.setup_error.contains("503"),
        "{}",
        register_down.setup_error
    );
    let recovered = create(&admin, new_whatsapp("555002", "EAAG-token")).await;
    assert_eq!(recovered.setup_error, "");
    let refused = create(&admin, new_whatsapp("555003", "EAAG-token")).await;
    assert!(
        refused.setup_error.contains("Invalid parameter"),
        "{}",
        refused.setup_error
    );

    let status = expect_code(
        admin
            .accounts()
            .complete_whats_app_signup(signup("code-1", "555009"))
            .await,
        Code::Unavailable,
    );
    assert!(
        status.message().contains("unexpected error"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains(META_APP_SECRET));
}

fn signup(code: &str, phone_number_id: &str) -> proto::CompleteWhatsAppSignupRequest {
    proto::CompleteWhatsAppSignupRequest {
        code: code.into(),
        waba_id: "900000001".into(),
        phone_number_id: phone_number_id.into(),
        division_id: None,
        event: proto::WhatsappSignupEvent::Unspecified.into(),
    }
}

async fn mount_signup(meta: &MockServer, code: &str, token: &str) {
    Mock::given(method("GET"))
        .and(path(graph("oauth/access_token")))
        .and(query_param("client_id", META_APP_ID))
        .and(query_param("client_secret", META_APP_SECRET))
        .and(query_param("code", code))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": token, "token_type": "bearer"})),
        )
        .expect(1)
        .mount(meta)
        .await;
}

async fn signup_exchanges_the_code_and_a_second_signup_reauthorises(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    mount_signup(&meta, "first-code", "EAAG-first").await;
    mount_signup(&meta, "second-code", "EAAG-second").await;
    Mock::given(method("GET"))
        .and(path(graph("555010")))
        .and(query_param(
            "fields",
            "display_phone_number,verified_name,quality_rating,code_verification_status,name_status,whatsapp_business_manager_messaging_limit,throughput,status,platform_type,webhook_configuration",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "555010", "verified_name": "Acme Support", "display_phone_number": "+1 555-0100"}),
        ))
        .expect(2)
        .mount(&meta)
        .await;
    for token in ["EAAG-first", "EAAG-second"] {
        Mock::given(method("POST"))
            .and(path(graph("555010/register")))
            .and(header("authorization", format!("Bearer {token}").as_str()))
            .respond_with(ok())
            .expect(1)
            .mount(&meta)
            .await;
        Mock::given(method("POST"))
            .and(path(graph("900000001/subscribed_apps")))
            .and(header("authorization", format!("Bearer {token}").as_str()))
            .respond_with(ok())
            .expect(1)
            .mount(&meta)
            .await;
    }

    let admin = app.admin();
    let first = admin
        .accounts()
        .complete_whats_app_signup(signup("first-code", "555010"))
        .await
        .expect("signup")
        .into_inner();
    assert!(first.success);
    assert_eq!(first.account_key, "wa-555010");
    assert_eq!(first.display_name, "Acme Support");
    assert_eq!(
        (first.waba_id.as_str(), first.phone_number_id.as_str()),
        ("900000001", "555010")
    );
    let account = first.account.clone().expect("account");
    assert!(
        account.is_default,
        "the first account of its scope becomes the default"
    );
    let bytes = first.encode_to_vec();
    assert!(
        !contains(&bytes, b"EAAG-first"),
        "no Meta token in the response"
    );
    assert_eq!(
        credential(&app, &account.id, "access_token").await,
        "EAAG-first"
    );

    let second = admin
        .accounts()
        .complete_whats_app_signup(signup("second-code", "555010"))
        .await
        .expect("second signup")
        .into_inner();
    let again = second.account.expect("account");
    assert_eq!(again.id, account.id, "re-authorised, not duplicated");
    assert!(again.revision > account.revision);
    assert_eq!(
        credential(&app, &account.id, "access_token").await,
        "EAAG-second"
    );
    let listed = admin
        .list_all_accounts(Some(Channel::Whatsapp))
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);

    // A refused code is the caller's bad field.
    Mock::given(method("GET"))
        .and(path(graph("oauth/access_token")))
        .and(query_param("code", "used-code"))
        .respond_with(graph_error(
            400,
            100,
            "This authorization code has been used.",
        ))
        .expect(1)
        .mount(&meta)
        .await;
    let status = expect_code(
        admin
            .accounts()
            .complete_whats_app_signup(signup("used-code", "555010"))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["code"]);
    let status = expect_code(
        admin
            .accounts()
            .complete_whats_app_signup(proto::CompleteWhatsAppSignupRequest::default())
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        vec!["code", "waba_id", "phone_number_id"]
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn mount_health(meta: &MockServer, phone: Value, apps: Value) {
    Mock::given(method("GET"))
        .and(path(graph("555001")))
        .and(header("authorization", "Bearer EAAG-business-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(phone))
        .mount(meta)
        .await;
    Mock::given(method("GET"))
        .and(path(graph("900000001")))
        .and(query_param("fields", "id,name,account_review_status"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "900000001", "name": "Acme", "account_review_status": "APPROVED"}),
        ))
        .mount(meta)
        .await;
    Mock::given(method("GET"))
        .and(path(graph("900000001/subscribed_apps")))
        .respond_with(ResponseTemplate::new(200).set_body_json(apps))
        .mount(meta)
        .await;
}

async fn health_reports_each_part_and_a_rejected_token_marks_the_account(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    Mock::given(method("POST"))
        .respond_with(ok())
        .mount(&meta)
        .await;
    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-business-token")).await;
    let webhook = account.webhook_url.clone();
    let our_app = json!({"data": [{"whatsapp_business_api_data": {"id": META_APP_ID, "name": "Patchbay", "link": "https://example.test"}, "override_callback_uri": webhook}]});
    mount_health(
        &meta,
        json!({"id": "555001", "display_phone_number": "+1 555-0100", "verified_name": "Acme",
            "quality_rating": "GREEN", "code_verification_status": "VERIFIED", "name_status": "APPROVED",
            "whatsapp_business_manager_messaging_limit": "TIER_1K", "throughput": {"level": "STANDARD"}, "status": "CONNECTED"}),
        our_app,
    )
    .await;
    let health = |id: String| {
        let admin = app.admin();
        async move {
            admin
                .accounts()
                .get_whats_app_health(proto::GetWhatsAppHealthRequest { id })
                .await
        }
    };
    let report = health(account.id.clone())
        .await
        .expect("health")
        .into_inner();
    assert!(report.healthy, "{:?}", report.reasons);
    assert!(report.subscribed_ok);
    assert_eq!(
        (report.phone_number_id.as_str(), report.waba_id.as_str()),
        ("555001", "900000001")
    );
    let phone = report.phone_number.expect("phone");
    assert_eq!(phone.quality_rating, "GREEN");
    assert_eq!(phone.throughput_level, "STANDARD");
    assert_eq!(report.waba.expect("waba").account_review_status, "APPROVED");
    assert_eq!(report.subscribed_apps[0].app_id, META_APP_ID);

    // A number in trouble: each problem is a reason.
    meta.reset().await;
    mount_health(
        &meta,
        json!({"id": "555001", "quality_rating": "RED", "code_verification_status": "EXPIRED",
            "name_status": "APPROVED", "status": "FLAGGED"}),
        json!({"data": []}),
    )
    .await;
    let report = health(account.id.clone())
        .await
        .expect("health")
        .into_inner();
    assert!(!report.healthy);
    assert!(!report.subscribed_ok);
    // RED, FLAGGED, not subscribed; an EXPIRED code verification is no problem (Meta
    // answers it for numbers verified long ago).
    assert_eq!(report.reasons.len(), 3, "{:?}", report.reasons);
    assert!(
        !report.reasons.iter().any(|r| r.contains("verification")),
        "{:?}",
        report.reasons
    );

    // The token is rejected: not healthy, and the account says it needs a new token.
    meta.reset().await;
    Mock::given(method("GET"))
        .respond_with(expired_token())
        .mount(&meta)
        .await;
    let report = health(account.id.clone())
        .await
        .expect("health")
        .into_inner();
    assert!(!report.healthy);
    assert!(
        report.reasons.iter().any(|r| r.contains("190")),
        "{:?}",
        report.reasons
    );
    let flagged = get_account(&app.admin(), &account.id).await;
    assert!(flagged.reauthorization_required);

    // Meta down or limiting: no verdict, UNAVAILABLE.
    meta.reset().await;
    Mock::given(method("GET"))
        .respond_with(graph_error(
            400,
            4,
            "(#4) Application request limit reached",
        ))
        .mount(&meta)
        .await;
    expect_code(health(account.id.clone()).await, Code::Unavailable);

    // Not a Cloud API account.
    let twilio = create(
        &app.admin(),
        proto::CreateAccountRequest {
            channel: Channel::Whatsapp.into(),
            config: Some(to_struct(
                json!({"phone_number_id": "777", "account_sid": "AC1"}),
            )),
            ..Default::default()
        },
    )
    .await;
    expect_code(health(twilio.id).await, Code::FailedPrecondition);
}

async fn meta_calls_are_admin_only_and_stay_in_the_workspace(backend: Backend) {
    let (app, _meta) = app_with_meta(backend).await;
    Mock::given(method("POST"))
        .respond_with(ok())
        .mount(&_meta)
        .await;
    let account = create(&app.admin(), new_whatsapp("555001", "EAAG-business-token")).await;
    for client in [app.supervisor(), app.service()] {
        let mut accounts = client.accounts();
        expect_code(
            accounts
                .get_whats_app_health(proto::GetWhatsAppHealthRequest {
                    id: account.id.clone(),
                })
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            accounts
                .complete_whats_app_signup(signup("c", "555001"))
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            accounts
                .connect_instagram(proto::ConnectInstagramRequest {
                    code: "c".into(),
                    redirect_uri: "https://app.example/cb".into(),
                    division_id: None,
                })
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            accounts
                .connect_messenger(proto::ConnectMessengerRequest {
                    code: "c".into(),
                    redirect_uri: "https://app.example/cb".into(),
                })
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            accounts
                .subscribe_messenger_pages(proto::SubscribeMessengerPagesRequest {
                    user_token: "x".into(),
                    page_ids: vec!["1".into()],
                    division_id: None,
                })
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            accounts
                .set_messenger_persistent_menu(proto::SetMessengerPersistentMenuRequest {
                    account_id: account.id.clone(),
                    delete: true,
                    ..Default::default()
                })
                .await,
            Code::PermissionDenied,
        );
    }
    // Another workspace's admin does not find the account.
    let other = app.client("admin", OTHER_WORKSPACE, None);
    expect_code(
        other
            .accounts()
            .get_whats_app_health(proto::GetWhatsAppHealthRequest {
                id: account.id.clone(),
            })
            .await,
        Code::NotFound,
    );
}

/// Meta stalls past the call's deadline: the account was saved (PENDING) before the
/// set-up began, so it never reads as set up; the next update runs the set-up to the
/// end, and a replay of a cut-off create resumes it.
async fn a_set_up_cut_off_by_the_deadline_stays_pending_until_an_update_completes_it(
    backend: Backend,
) {
    let (app, meta) = app_with_meta(backend).await;
    for number in ["777001", "777002"] {
        Mock::given(method("POST"))
            .and(path(graph(&format!("{number}/register"))))
            .respond_with(ok().set_delay(std::time::Duration::from_secs(5)))
            .up_to_n_times(1)
            .mount(&meta)
            .await;
        Mock::given(method("POST"))
            .and(path(graph(&format!("{number}/register"))))
            .respond_with(ok())
            .mount(&meta)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(graph("900000001/subscribed_apps")))
        .respond_with(ok())
        .mount(&meta)
        .await;
    let keyed = |number: &str, timeout: Option<std::time::Duration>| {
        let mut request = patchbay_sdk::tonic::Request::new(new_whatsapp(number, "EAAG-slow"));
        request.metadata_mut().insert(
            "idempotency-key",
            format!("slow-{number}").parse().expect("header"),
        );
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        request
    };
    let admin = app.admin();
    for number in ["777001", "777002"] {
        let cut = admin
            .accounts()
            .create_account(keyed(number, Some(std::time::Duration::from_secs(1))))
            .await
            .expect_err("the deadline passes while Meta stalls");
        assert!(
            matches!(cut.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{cut:?}"
        );
    }
    let saved = admin
        .list_all_accounts(Some(Channel::Whatsapp))
        .await
        .expect("list");
    assert_eq!(saved.len(), 2, "saved before the set-up began");
    for account in &saved {
        assert_eq!(account.setup_state, i32::from(proto::SetupState::Pending));
        assert_eq!(account.setup_error, "");
    }

    // The next update runs a pending set-up again, to the end.
    let updated = update(
        &admin,
        proto::UpdateAccountRequest {
            id: saved[0].id.clone(),
            display_name: Some("Support".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(updated.setup_state, i32::from(proto::SetupState::Done));
    assert_eq!(updated.setup_error, "");

    // The key committed with the account: a replay answers with that account, its
    // set-up resumed, and creates nothing.
    let replayed = admin
        .accounts()
        .create_account(keyed("777002", None))
        .await
        .expect("replay")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(replayed.id, saved[1].id);
    assert_eq!(replayed.setup_state, i32::from(proto::SetupState::Done));
    assert_eq!(
        admin
            .list_all_accounts(Some(Channel::Whatsapp))
            .await
            .expect("list")
            .len(),
        2
    );
}

/// The set-up records each step: the number registered, then the subscription refused;
/// the retry subscribes without registering again.
async fn a_retried_set_up_goes_on_from_the_step_it_stopped_at(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    Mock::given(method("POST"))
        .and(path(graph("666001/register")))
        .respond_with(ok())
        .expect(1)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(graph("900000001/subscribed_apps")))
        .respond_with(graph_error(
            400,
            100,
            "(#100) Temporary subscription problem",
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(graph("900000001/subscribed_apps")))
        .respond_with(ok())
        .expect(1)
        .mount(&meta)
        .await;
    let account = create(&app.admin(), new_whatsapp("666001", "EAAG-steps")).await;
    assert_eq!(account.setup_state, i32::from(proto::SetupState::Failed));
    assert!(
        account.setup_error.contains("subscribing"),
        "{}",
        account.setup_error
    );
    let retried = update(
        &app.admin(),
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            display_name: Some("Retry".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(retried.setup_state, i32::from(proto::SetupState::Done));
    assert_eq!(retried.setup_error, "");
    // The mocks' expectations (one registration, two subscriptions) are checked as the
    // fake goes away.
    drop(app);
    meta.verify().await;
}
