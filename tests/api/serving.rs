//! GetDefaultAccount serves around trouble (#30, item 4): a default that cannot send
//! for a SETUP (or CREDENTIALS, PROVIDER) reason is stepped over for the first usable
//! fallback, and served again as soon as it can send; `no_fallback` asks for it alone;
//! a default Meta restricted is served as itself, with its health.
//!
//! Meta is the stand-in of `patchbay_e2e::meta_fake`: a number with a two-step PIN
//! fails its set-up (Graph error 133005, as Meta documents it), and the restriction is
//! Meta's account_update reference example, sent now with an expiration ahead.

use patchbay_e2e::proto::{self, Channel, HealthState};
use patchbay_e2e::{
    Backend, app_callback_url, backend_tests, create, new_whatsapp, routed, spawn_with_fake_meta,
    test_meta, to_struct, update, whatsapp_fallbacks, whatsapp_served,
};
use serde_json::json;

backend_tests!(
    a_default_that_cannot_send_is_stepped_over_but_never_around_meta_s_hand,
    a_default_meta_keeps_failing_is_stepped_over_until_it_answers_twice
);

fn account_id(answer: &proto::GetDefaultAccountResponse) -> &str {
    answer
        .account
        .as_ref()
        .map_or("", |account| account.id.as_str())
}

async fn a_default_that_cannot_send_is_stepped_over_but_never_around_meta_s_hand(backend: Backend) {
    let (app, fake, _meta) = spawn_with_fake_meta(backend, test_meta(), None).await;
    let admin = app.admin();
    // The default: a number with a two-step PIN, registered elsewhere: its set-up fails.
    fake.add_number("2101", "900000001", Some("246810"));
    fake.set_status("2101", "DISCONNECTED");
    let default = create(&admin, new_whatsapp("2101", "EAAG-2101")).await;
    admin
        .set_default_account(&default.id)
        .await
        .expect("default");
    // The fallback: a number of another WABA, set up.
    fake.add_number("2102", "900000002", None);
    let fallback = create(
        &admin,
        proto::CreateAccountRequest {
            channel: Channel::Whatsapp.into(),
            display_name: "Fallback".into(),
            config: Some(to_struct(json!({"phone_number_id": "2102",
                "waba_id": "900000002", "access_token": "EAAG-2102"}))),
            ..Default::default()
        },
    )
    .await;
    whatsapp_fallbacks(&admin, &[&fallback]).await;

    // The default cannot send (SETUP): the fallback is served, saying why.
    let service = app.service();
    let answer = whatsapp_served(&service, false).await;
    assert_eq!(account_id(&answer), fallback.id);
    assert!(answer.served_by_fallback);
    assert_eq!(answer.fallback_reason, ["setup_failed"]);
    // Asked for the default alone: the default, with its health.
    let alone = whatsapp_served(&service, true).await;
    assert_eq!(account_id(&alone), default.id);
    assert!(!alone.served_by_fallback);
    let health = alone.account.and_then(|a| a.health).expect("health");
    assert_eq!(health.state, i32::from(HealthState::Unavailable));

    // The admin gives the PIN: the set-up completes, and the default is served again
    // at once (the write drops the cached answer on its way).
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: default.id.clone(),
            config: Some(to_struct(json!({"pin": "246810"}))),
            ..Default::default()
        },
    )
    .await;
    let answer = whatsapp_served(&service, false).await;
    assert_eq!(account_id(&answer), default.id);
    assert!(!answer.served_by_fallback);
    assert!(answer.fallback_reason.is_empty());

    // Meta restricts the default's WABA (account_update, "Account restriction"): the
    // default is UNAVAILABLE, and still served as itself, with its health. The fallback,
    // of another WABA, could send: it is not served around Meta's hand.
    let until = chrono::Utc::now().timestamp() + 86_400;
    let restriction = json!({"object": "whatsapp_business_account", "entry": [{
        "id": "900000001", "time": chrono::Utc::now().timestamp(), "changes": [{
        "field": "account_update", "value": {"event": "ACCOUNT_RESTRICTION",
        "restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
        "expiration": until}]}}]}]});
    let (to, _) = routed(&app, &app_callback_url(), &restriction).await;
    assert_eq!(to, [(0, default.id.clone())]);
    let answer = whatsapp_served(&service, false).await;
    assert_eq!(account_id(&answer), default.id);
    assert!(!answer.served_by_fallback);
    let health = answer.account.and_then(|a| a.health).expect("health");
    assert_eq!(health.state, i32::from(HealthState::Unavailable));
    assert!(
        health
            .reasons
            .iter()
            .any(|r| r.code == "account_restricted")
    );
}

/// Meta failing for the default, call after call (3 outages of GetWhatsAppHealth's
/// reads): PROVIDER, stepped over; two answers in a row lift it (hysteresis).
async fn a_default_meta_keeps_failing_is_stepped_over_until_it_answers_twice(backend: Backend) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let (app, fake, meta) = spawn_with_fake_meta(backend, test_meta(), None).await;
    let admin = app.admin();
    fake.add_number("2201", "900000001", None);
    fake.add_number("2202", "900000001", None);
    let default = create(&admin, new_whatsapp("2201", "EAAG-2201")).await;
    let fallback = create(&admin, new_whatsapp("2202", "EAAG-2202")).await;
    admin
        .set_default_account(&default.id)
        .await
        .expect("default");
    whatsapp_fallbacks(&admin, &[&fallback]).await;
    // Meta answers 503 to every read of the default's number, for three health calls
    // (each tries three times, as the retry policy does).
    Mock::given(method("GET"))
        .and(path(patchbay_e2e::graph_path("2201")))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .with_priority(1)
        .up_to_n_times(9)
        .mount(&meta)
        .await;
    let check = || async {
        admin
            .accounts()
            .get_whats_app_health(proto::GetWhatsAppHealthRequest {
                id: default.id.clone(),
            })
            .await
    };
    let service = app.service();
    for call in 1..=3 {
        let outage = check().await.expect_err("Meta is down");
        assert_eq!(outage.code(), patchbay_sdk::tonic::Code::Unavailable);
        let answer = whatsapp_served(&service, false).await;
        assert_eq!(
            account_id(&answer) == fallback.id,
            call == 3,
            "stepped over only after the third outage in a row"
        );
    }
    let answer = whatsapp_served(&service, false).await;
    assert_eq!(answer.fallback_reason, ["provider_failing"]);
    // Meta answers again: once is not enough, twice lifts it.
    assert!(check().await.is_ok());
    assert_eq!(
        account_id(&whatsapp_served(&service, false).await),
        fallback.id
    );
    assert!(check().await.is_ok());
    assert_eq!(
        account_id(&whatsapp_served(&service, false).await),
        default.id
    );
}
