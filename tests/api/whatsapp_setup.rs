//! The WhatsApp set-up against a stand-in Meta that enforces what Meta enforces
//! (`patchbay_e2e::meta_fake`): each number gets its own callback, which Meta resolves
//! before the WABA's; a number with two-step verification needs its PIN; a registered
//! number is not registered again; Meta's allowance of 10 registrations per number in
//! 72 hours is never exceeded; a WABA-level callback left by an earlier version goes once
//! every number has its own.

use patchbay_e2e::meta_fake::FakeMeta;
use patchbay_e2e::proto::{self, Channel, SetupState};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, backend_tests, create, get_account, new_whatsapp,
    spawn_with_fake_meta, test_meta, to_struct, update,
};
use serde_json::json;

backend_tests!(
    two_numbers_of_one_waba_each_get_their_own_callback,
    a_number_with_two_step_verification_needs_its_pin,
    a_number_already_on_the_cloud_api_is_not_registered_again,
    the_register_allowance_is_never_exceeded,
    a_waba_callback_goes_once_every_number_has_its_own,
    health_warns_while_the_graph_version_ends_within_ninety_days
);

const WABA: &str = "900000001";

/// The server, and the stand-in Meta it calls (its wiremock server, kept for the
/// test's life).
async fn app_with(backend: Backend) -> (TestApp, FakeMeta, wiremock::MockServer) {
    app_calling(backend, "v25.0", None).await
}

/// As [`app_with`], calling Graph API `version`, on `today` (the system's when `None`).
async fn app_calling(
    backend: Backend,
    version: &str,
    today: Option<chrono::NaiveDate>,
) -> (TestApp, FakeMeta, wiremock::MockServer) {
    let meta = patchbay::meta::MetaSettings {
        today,
        ..test_meta()
    };
    spawn_with_fake_meta(backend, meta, Some(version)).await
}

fn state(account: &proto::Account) -> SetupState {
    SetupState::try_from(account.setup_state).expect("known state")
}

fn number_of(
    waba_id: &str,
    phone_number_id: &str,
    pin: Option<&str>,
) -> proto::CreateAccountRequest {
    let mut config = json!({
        "phone_number_id": phone_number_id,
        "waba_id": waba_id,
        "access_token": format!("EAAG-token-{phone_number_id}"),
    });
    if let Some(pin) = pin {
        config["pin"] = json!(pin);
    }
    proto::CreateAccountRequest {
        channel: Channel::Whatsapp.into(),
        display_name: format!("WhatsApp {phone_number_id}"),
        config: Some(to_struct(config)),
        ..Default::default()
    }
}

async fn two_numbers_of_one_waba_each_get_their_own_callback(backend: Backend) {
    let (app, fake, _meta) = app_with(backend).await;
    fake.add_number("1001", WABA, None);
    fake.add_number("1002", WABA, None);
    let first = create(&app.admin(), new_whatsapp("1001", "EAAG-first")).await;
    let second = create(&app.admin(), new_whatsapp("1002", "EAAG-second")).await;
    for (account, id) in [(&first, "1001"), (&second, "1002")] {
        assert_eq!(state(account), SetupState::Done, "{}", account.setup_error);
        // Where Meta sends the number's webhooks, resolved as Meta resolves it.
        assert_eq!(fake.webhook_target(id), account.webhook_url, "number {id}");
        assert_eq!(account.display_phone_number, "+1 555-000-1111");
    }
    assert_ne!(first.webhook_url, second.webhook_url);
    // The app is subscribed to the WABA without a WABA-level callback.
    let waba = fake.waba(WABA);
    assert!(waba.subscribed);
    assert_eq!(waba.callback, None);
}

async fn a_number_with_two_step_verification_needs_its_pin(backend: Backend) {
    let (app, fake, _meta) = app_with(backend).await;
    // A number registered elsewhere before, or migrated from another provider: it has
    // a two-step PIN, and is not on the Cloud API here.
    fake.add_number("2001", WABA, Some("246810"));
    fake.set_status("2001", "DISCONNECTED");
    let account = create(&app.admin(), new_whatsapp("2001", "EAAG-two-step")).await;
    assert_eq!(state(&account), SetupState::Failed);
    assert!(
        account.setup_error.contains("config.pin") && account.setup_error.contains("133005"),
        "{}",
        account.setup_error
    );
    assert!(!account.reauthorization_required, "the token is fine");
    // Its health says so from the start (#30): the set-up's reason, UNAVAILABLE.
    let health = account.health.clone().expect("health from the start");
    assert_eq!(health.state, i32::from(proto::HealthState::Unavailable));
    let codes: Vec<_> = health.reasons.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["setup_failed"]);
    assert_eq!(
        health.reasons[0].class,
        i32::from(proto::HealthReasonClass::Setup)
    );
    assert!(health.reasons[0].detail.contains("133005"), "{health:?}");
    assert_ne!(fake.webhook_target("2001"), account.webhook_url);
    // The admin gives the number's PIN: the set-up runs again and completes.
    let fixed = update(
        &app.admin(),
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            config: Some(to_struct(json!({"pin": "246810"}))),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(state(&fixed), SetupState::Done, "{}", fixed.setup_error);
    let health = fixed.health.clone().expect("health");
    assert_eq!(
        health.state,
        i32::from(proto::HealthState::Healthy),
        "{health:?}"
    );
    assert!(health.reasons.is_empty());
    assert_eq!(fake.number("2001").status, "CONNECTED");
    assert_eq!(fake.webhook_target("2001"), fixed.webhook_url);
}

async fn a_number_already_on_the_cloud_api_is_not_registered_again(backend: Backend) {
    let (app, fake, _meta) = app_with(backend).await;
    fake.add_number("3001", WABA, Some("135790"));
    // No PIN given: Patchbay would generate one, which Meta would refuse (133005) had
    // the number been registered again.
    let account = create(&app.admin(), new_whatsapp("3001", "EAAG-connected")).await;
    assert_eq!(state(&account), SetupState::Done, "{}", account.setup_error);
    assert_eq!(fake.number("3001").register_calls, 0);
    assert_eq!(fake.webhook_target("3001"), account.webhook_url);
}

async fn the_register_allowance_is_never_exceeded(backend: Backend) {
    let (app, fake, _meta) = app_with(backend).await;
    fake.add_number("4001", WABA, Some("111111"));
    fake.set_status("4001", "DISCONNECTED");
    // A wrong PIN, then a careless client trying one PIN after another: each update
    // with another PIN retries the failed set-up.
    let account = create(&app.admin(), number_of(WABA, "4001", Some("999999"))).await;
    // An update that changes nothing Meta needs does not retry a refused PIN.
    let renamed = update(
        &app.admin(),
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            display_name: Some("Renamed".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(state(&renamed), SetupState::Failed);
    assert_eq!(fake.number("4001").register_calls, 1);
    let mut last = account.clone();
    for i in 0..14 {
        last = update(
            &app.admin(),
            proto::UpdateAccountRequest {
                id: account.id.clone(),
                config: Some(to_struct(json!({"pin": format!("{}", 200_000 + i)}))),
                ..Default::default()
            },
        )
        .await;
    }
    // Meta counts 10 in 72 hours: Patchbay made exactly those, and then waits.
    assert_eq!(fake.number("4001").register_calls, 10);
    assert_eq!(state(&last), SetupState::Failed);
    assert!(last.setup_retry_after.is_some(), "{last:?}");
    assert!(
        last.setup_error.contains("72 hours"),
        "{}",
        last.setup_error
    );
    // Another tenant naming the same number spends nothing either: Meta counts the
    // number, whoever asks.
    let other = create(
        &app.client("admin", OTHER_WORKSPACE, None),
        number_of(WABA, "4001", Some("111111")),
    )
    .await;
    assert_eq!(state(&other), SetupState::Failed);
    assert_eq!(fake.number("4001").register_calls, 10);
}

async fn a_waba_callback_goes_once_every_number_has_its_own(backend: Backend) {
    let (app, fake, _meta) = app_with(backend).await;
    let waba = "900000005";
    // An earlier version subscribed the WABA with its first account's URL.
    fake.set_waba_callback(waba, "https://hooks.example.test/webhooks/whatsapp/old");
    fake.add_number("5001", waba, None);
    fake.add_number("5002", waba, None);
    let first = create(&app.admin(), number_of(waba, "5001", None)).await;
    assert_eq!(state(&first), SetupState::Done, "{}", first.setup_error);
    assert_eq!(fake.webhook_target("5001"), first.webhook_url);
    // 5002 has no callback of its own yet: the WABA's still serves it.
    assert!(fake.waba(waba).callback.is_some());
    let second = create(&app.admin(), number_of(waba, "5002", None)).await;
    assert_eq!(state(&second), SetupState::Done, "{}", second.setup_error);
    assert_eq!(
        fake.waba(waba).callback,
        None,
        "every number has its own now"
    );
    assert_eq!(fake.webhook_target("5001"), first.webhook_url);
    assert_eq!(fake.webhook_target("5002"), second.webhook_url);
}

async fn health_warns_while_the_graph_version_ends_within_ninety_days(backend: Backend) {
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d);
    // Meta serves v21.0 until 2027-01-21 (Graph API · Versions): 46 days left.
    let (app, fake, _meta) = app_calling(backend, "v21.0", day(2026, 12, 6)).await;
    fake.add_number("6001", WABA, None);
    let account = create(&app.admin(), new_whatsapp("6001", "EAAG-six")).await;
    let health = app
        .admin()
        .accounts()
        .get_whats_app_health(proto::GetWhatsAppHealthRequest {
            id: account.id.clone(),
        })
        .await
        .expect("health")
        .into_inner();
    // A version near its end is a CONFIGURATION reason (#30): DEGRADED, not healthy.
    assert!(!health.healthy, "{:?}", health.reasons);
    assert!(health.reasons.is_empty(), "{:?}", health.reasons);
    assert_eq!(health.warnings.len(), 1, "{:?}", health.warnings);
    let recorded = get_account(&app.admin(), &account.id)
        .await
        .health
        .expect("health");
    assert_eq!(recorded.state, i32::from(proto::HealthState::Degraded));
    assert!(
        recorded
            .reasons
            .iter()
            .any(|r| r.code == "graph_version_ending"
                && r.class == i32::from(proto::HealthReasonClass::Configuration)),
        "{recorded:?}"
    );
    assert!(
        health.warnings[0].contains("v21.0") && health.warnings[0].contains("2027-01-21"),
        "{}",
        health.warnings[0]
    );
    // The messaging limit comes from whatsapp_business_manager_messaging_limit.
    assert_eq!(
        health.phone_number.expect("phone").messaging_limit_tier,
        "TIER_250"
    );
    // Months before, nothing to say.
    let (early, fake, _meta) = app_calling(backend, "v21.0", day(2026, 6, 1)).await;
    fake.add_number("6001", WABA, None);
    let account = create(&early.admin(), new_whatsapp("6001", "EAAG-six")).await;
    let health = early
        .admin()
        .accounts()
        .get_whats_app_health(proto::GetWhatsAppHealthRequest { id: account.id })
        .await
        .expect("health")
        .into_inner();
    assert!(health.warnings.is_empty(), "{:?}", health.warnings);
    assert!(health.healthy, "{:?}", health.reasons);
}
