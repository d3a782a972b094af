//! Embedded Signup v4's three endings against the stand-in Meta
//! (`patchbay_e2e::meta_fake`): a number, only a WABA, and a WhatsApp Business app
//! number (coexistence), including a session that names only the WABA.

use patchbay_e2e::meta_fake::FakeMeta;
use patchbay_e2e::proto::{self, SetupState, WhatsappSignupEvent};
use patchbay_e2e::{
    Backend, META_APP_ID, META_APP_SECRET, TestApp, backend_tests, expect_code, graph_path,
    spawn_with_fake_meta, test_meta, to_struct, update,
};
use patchbay_sdk::tonic::Code;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    a_session_with_only_a_waba_awaits_its_number,
    a_business_app_number_is_never_registered_and_its_syncs_are_asked_for,
    a_business_app_session_without_a_number_takes_the_wabas_only_one,
    a_number_another_division_holds_costs_no_meta_call
);

const WABA: &str = "900000007";

async fn app_with(backend: Backend) -> (TestApp, FakeMeta, MockServer) {
    spawn_with_fake_meta(backend, test_meta(), None).await
}

/// Embedded Signup's code exchange: `GET /oauth/access_token?client_id&client_secret&code`
/// answers the business integration system user token (Embedded Signup, "Exchange the
/// token code for a business token").
async fn mount_code(meta: &MockServer, code: &str, token: &str) {
    Mock::given(method("GET"))
        .and(path(graph_path("oauth/access_token")))
        .and(query_param("client_id", META_APP_ID))
        .and(query_param("client_secret", META_APP_SECRET))
        .and(query_param("code", code))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": token, "token_type": "bearer"})),
        )
        .mount(meta)
        .await;
}

fn signup(
    code: &str,
    phone_number_id: &str,
    event: WhatsappSignupEvent,
) -> proto::CompleteWhatsAppSignupRequest {
    proto::CompleteWhatsAppSignupRequest {
        code: code.into(),
        waba_id: WABA.into(),
        phone_number_id: phone_number_id.into(),
        division_id: None,
        event: event.into(),
    }
}

fn state(account: &proto::Account) -> SetupState {
    SetupState::try_from(account.setup_state).expect("known state")
}

async fn a_session_with_only_a_waba_awaits_its_number(backend: Backend) {
    let (app, fake, meta) = app_with(backend).await;
    mount_code(&meta, "only-waba", "EAAG-only-waba").await;
    let admin = app.admin();
    // FINISH needs the number; FINISH_ONLY_WABA does not.
    let status = expect_code(
        admin
            .accounts()
            .complete_whats_app_signup(signup("only-waba", "", WhatsappSignupEvent::Finish))
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("phone_number_id"), "{status:?}");
    let answer = admin
        .accounts()
        .complete_whats_app_signup(signup("only-waba", "", WhatsappSignupEvent::FinishOnlyWaba))
        .await
        .expect("signup")
        .into_inner();
    let account = answer.account.expect("account");
    assert_eq!(account.account_key, format!("waba-{WABA}"));
    assert_eq!(state(&account), SetupState::AwaitingNumber);
    // The number arrives: the set-up runs, and the key becomes the number's.
    fake.add_number("7001", WABA, None);
    let numbered = update(
        &admin,
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            config: Some(to_struct(json!({"phone_number_id": "7001"}))),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        state(&numbered),
        SetupState::Done,
        "{}",
        numbered.setup_error
    );
    assert_eq!(numbered.account_key, "wa-7001");
    assert_eq!(numbered.webhook_url, account.webhook_url, "the route stays");
    assert_eq!(fake.webhook_target("7001"), account.webhook_url);
    // An unknown event is refused by name.
    let mut unknown = signup("only-waba", "", WhatsappSignupEvent::Finish);
    unknown.event = 42;
    let status = expect_code(
        admin.accounts().complete_whats_app_signup(unknown).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("event"), "{status:?}");
}

async fn a_business_app_number_is_never_registered_and_its_syncs_are_asked_for(backend: Backend) {
    let (app, fake, meta) = app_with(backend).await;
    mount_code(&meta, "coexist", "EAAG-coexist").await;
    fake.add_business_app_number("7101", WABA);
    let answer = app
        .admin()
        .accounts()
        .complete_whats_app_signup(signup(
            "coexist",
            "7101",
            WhatsappSignupEvent::FinishWhatsappBusinessAppOnboarding,
        ))
        .await
        .expect("signup")
        .into_inner();
    let account = answer.account.expect("account");
    assert_eq!(state(&account), SetupState::Done, "{}", account.setup_error);
    let number = fake.number("7101");
    assert_eq!(number.register_calls, 0, "registering disconnects the app");
    assert!(!number.app_disconnected);
    assert_eq!(number.syncs, ["smb_app_state_sync", "history"]);
    assert_eq!(fake.webhook_target("7101"), account.webhook_url);
    let coexistence = account.coexistence.expect("coexistence");
    assert!(coexistence.contacts_sync_requested_at.is_some());
    assert!(coexistence.history_sync_requested_at.is_some());
    assert_eq!(coexistence.sync_error, "");

    // Another number whose first sync request fails at Meta (a 500): recorded, and
    // asked again by the next update, while Meta's 24 hours last.
    mount_code(&meta, "coexist-2", "EAAG-coexist-2").await;
    fake.add_business_app_number("7102", WABA);
    fake.fail_syncs("7102", 1);
    let second = app
        .admin()
        .accounts()
        .complete_whats_app_signup(signup(
            "coexist-2",
            "7102",
            WhatsappSignupEvent::FinishWhatsappBusinessAppOnboarding,
        ))
        .await
        .expect("signup")
        .into_inner()
        .account
        .expect("account");
    let pending = second.coexistence.clone().expect("coexistence");
    assert!(pending.contacts_sync_requested_at.is_none());
    assert!(pending.sync_error.contains("contacts sync"), "{pending:?}");
    let retried = update(
        &app.admin(),
        proto::UpdateAccountRequest {
            id: second.id.clone(),
            display_name: Some("Shop".into()),
            ..Default::default()
        },
    )
    .await;
    let done = retried.coexistence.expect("coexistence");
    assert!(done.contacts_sync_requested_at.is_some() && done.history_sync_requested_at.is_some());
    assert_eq!(done.sync_error, "");
    assert_eq!(fake.number("7102").syncs, ["smb_app_state_sync", "history"]);
}

async fn a_business_app_session_without_a_number_takes_the_wabas_only_one(backend: Backend) {
    let (app, fake, meta) = app_with(backend).await;
    mount_code(&meta, "one", "EAAG-one").await;
    fake.add_business_app_number("7201", WABA);
    let account = app
        .admin()
        .accounts()
        .complete_whats_app_signup(signup(
            "one",
            "",
            WhatsappSignupEvent::FinishWhatsappBusinessAppOnboarding,
        ))
        .await
        .expect("signup")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(account.account_key, "wa-7201");
    assert_eq!(state(&account), SetupState::Done, "{}", account.setup_error);
    // Two numbers: the caller must name one; both are listed.
    fake.add_business_app_number("7202", WABA);
    mount_code(&meta, "two", "EAAG-two").await;
    let status = expect_code(
        app.admin()
            .accounts()
            .complete_whats_app_signup(signup(
                "two",
                "",
                WhatsappSignupEvent::FinishWhatsappBusinessAppOnboarding,
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("7201") && status.message().contains("7202"),
        "{status:?}"
    );
}

/// Division walls (#28, item 3): a division admin signing up a number another division
/// holds is ALREADY_EXISTS before the code is exchanged, naming no account.
async fn a_number_another_division_holds_costs_no_meta_call(backend: Backend) {
    let (app, fake, meta) = app_with(backend).await;
    fake.add_number("7301", WABA, None);
    let support = app.client("admin", patchbay_e2e::WORKSPACE, Some("support"));
    let theirs = patchbay_e2e::create(
        &support,
        proto::CreateAccountRequest {
            division_id: Some("support".into()),
            ..patchbay_e2e::new_whatsapp("7301", "EAAG-support")
        },
    )
    .await;
    // The code is never exchanged.
    Mock::given(method("GET"))
        .and(path(graph_path("oauth/access_token")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "EAAG-sales", "token_type": "bearer"})),
        )
        .expect(0)
        .mount(&meta)
        .await;
    let sales = app.client("admin", patchbay_e2e::WORKSPACE, Some("sales"));
    let mut request = signup("sales-code", "7301", WhatsappSignupEvent::Finish);
    request.division_id = Some("sales".into());
    let status = expect_code(
        sales.accounts().complete_whats_app_signup(request).await,
        Code::AlreadyExists,
    );
    assert!(
        status.message().contains("connected in another division"),
        "{status:?}"
    );
    assert!(!status.message().contains(&theirs.id), "{status:?}");
    drop(app);
    meta.verify().await;
}
