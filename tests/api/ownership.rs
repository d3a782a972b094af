//! Webhooks reach their owner, and only their owner (#27): a provider id is owned by
//! the account Meta vouched for; claims Meta has not vouched for are accepted and route
//! nothing on the app-level callback; ownership outlasts a flagged token; WABA-level
//! entries go to the WABA's owning workspace; the upgrade unconfirms pages and the
//! start-up pass asks Meta again.
//!
//! Meta here is the stand-in of `patchbay_e2e::meta_fake` (debug_token answers as a
//! recorded page token's and Meta's Embedded Signup example, number access as Graph's
//! code 100 subcode 33). The WABA-level bodies are Meta's own examples, each cited.

use std::time::Duration;

use patchbay_e2e::proto::{self, Channel, Ownership};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, TestOptions, all_providers_at, app_callback_url,
    backend_tests, create, get_account, new_account, new_whatsapp, routed, spawn_with_fake_meta,
    test_meta, update,
};
use serde_json::json;

backend_tests!(
    a_page_meta_vouches_for_is_confirmed_and_other_claims_route_nothing,
    a_parked_number_never_receives_the_owners_webhooks,
    each_waba_level_field_routes_to_the_right_accounts,
    the_upgrade_unconfirms_pages_and_the_start_up_pass_confirms_them_again
);

fn other_admin(app: &TestApp) -> patchbay_sdk::Client {
    app.client("admin", OTHER_WORKSPACE, None)
}

fn page(id: &str, token: &str) -> proto::CreateAccountRequest {
    new_account(
        Channel::Messenger,
        &format!("p{id}"),
        json!({"page_id": id, "page_access_token": token}),
    )
}

fn ownership(account: &proto::Account) -> Ownership {
    Ownership::try_from(account.ownership).expect("a known ownership")
}

/// A Messenger message as Meta sends it to the app's callback (Messenger Platform,
/// Webhook events: `entry[].id` the page id).
fn page_body(page: &str) -> serde_json::Value {
    json!({"object": "page", "entry": [{"id": page, "time": 1_765_000_000, "messaging": [
        {"sender": {"id": "6310000000000001"}, "recipient": {"id": page},
         "timestamp": 1_765_000_000_000_u64, "message": {"mid": "m_1", "text": "hello"}}]}]})
}

/// A WhatsApp message as Meta sends it (Cloud API, Webhooks: messages).
fn message_body(number: &str) -> serde_json::Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "900000001", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
         "metadata": {"display_phone_number": "15550100", "phone_number_id": number},
         "messages": [{"from": "5511999999999", "id": "wamid.1", "timestamp": "1765000000",
                       "type": "text", "text": {"body": "Ol\u{e1}"}}]}}]}]})
}

async fn a_page_meta_vouches_for_is_confirmed_and_other_claims_route_nothing(backend: Backend) {
    let (app, fake, _meta) = spawn_with_fake_meta(backend, test_meta(), None).await;
    fake.grant_page_token("EAAP-owner", "200");
    fake.grant_page_token("EAAP-page-201", "201");
    fake.grant_page_token("EAAP-also-200", "200");
    let owner = create(&app.admin(), page("200", "EAAP-owner")).await;
    assert_eq!(ownership(&owner), Ownership::Confirmed);
    let (to, _) = routed(&app, &app_callback_url(), &page_body("200")).await;
    assert_eq!(to, vec![(0, owner.id.clone())]);

    // Another workspace names the page with a token Meta vouches for another page:
    // accepted, UNCONFIRMED, and the owner keeps its webhooks.
    let contester = create(&other_admin(&app), page("200", "EAAP-page-201")).await;
    assert_eq!(ownership(&contester), Ownership::Unconfirmed);
    // A token Meta does vouch for the page is debug_token's word alone: it never takes
    // an id another account owns.
    let contester = update(
        &other_admin(&app),
        proto::UpdateAccountRequest {
            id: contester.id.clone(),
            config: Some(patchbay_e2e::to_struct(
                json!({"page_access_token": "EAAP-also-200"}),
            )),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ownership(&contester), Ownership::Unconfirmed);
    let (to, _) = routed(&app, &app_callback_url(), &page_body("200")).await;
    assert_eq!(to, vec![(0, owner.id.clone())]);
    // Not even on its own URL: a page has no callback override, and an app-signed
    // body there routes as on the app's callback, to the owner.
    let (to, _) = routed(&app, &contester.webhook_url, &page_body("200")).await;
    assert_eq!(to, vec![(0, owner.id.clone())]);
    // A page nobody confirmed routes nowhere, even when claimed once, on the app's
    // callback and on its account's own URL alike.
    let unvouched = create(&app.admin(), page("202", "EAAP-unknown")).await;
    assert_eq!(ownership(&unvouched), Ownership::Unconfirmed);
    for url in [app_callback_url(), unvouched.webhook_url.clone()] {
        let (to, unrouted) = routed(&app, &url, &page_body("202")).await;
        assert!(to.is_empty());
        assert_eq!(
            unrouted,
            ["no account's claim of page id 202 is confirmed by Meta"]
        );
    }
    // An account without a provider id has no ownership to speak of.
    let email = create(
        &app.admin(),
        new_account(Channel::Email, "support@acme.test", json!({})),
    )
    .await;
    assert_eq!(ownership(&email), Ownership::Unspecified);
}

async fn a_parked_number_never_receives_the_owners_webhooks(backend: Backend) {
    let (app, fake, _meta) = spawn_with_fake_meta(backend, test_meta(), None).await;
    fake.add_number("7001", "900000001", None);
    fake.restrict_number("7001", "EAAG-owner", "+1 555-070-0001");
    // Parked first, without a token; then a Cloud account whose token has no access.
    let parked = create(
        &other_admin(&app),
        new_account(
            Channel::Whatsapp,
            "wa-7001",
            json!({"phone_number_id": "7001"}),
        ),
    )
    .await;
    assert_eq!(ownership(&parked), Ownership::Unconfirmed);
    let owner = create(&app.admin(), new_whatsapp("7001", "EAAG-owner")).await;
    assert_eq!(ownership(&owner), Ownership::Confirmed);
    assert_eq!(owner.display_phone_number, "+1 555-070-0001");
    let squatter = create(
        &app.client("admin", "initech", None),
        new_whatsapp("7001", "EAAG-squatter"),
    )
    .await;
    assert_eq!(ownership(&squatter), Ownership::Unconfirmed);
    assert!(
        squatter.setup_error.contains("missing permissions"),
        "{}",
        squatter.setup_error
    );
    let (to, _) = routed(&app, &app_callback_url(), &message_body("7001")).await;
    assert_eq!(to, vec![(0, owner.id.clone())]);

    // Meta invalidates the owner's token: flagged, and still the owner.
    fake.revoke("EAAG-owner");
    let health = app
        .admin()
        .accounts()
        .get_whats_app_health(proto::GetWhatsAppHealthRequest {
            id: owner.id.clone(),
        })
        .await
        .expect("health")
        .into_inner();
    assert!(!health.healthy);
    let flagged = get_account(&app.admin(), &owner.id).await;
    assert!(flagged.reauthorization_required);
    assert_eq!(ownership(&flagged), Ownership::Confirmed);
    let (to, _) = routed(&app, &app_callback_url(), &message_body("7001")).await;
    assert_eq!(to, vec![(0, owner.id.clone())]);

    // The owner deletes: the number is nobody's, not the parked claim's.
    app.admin()
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: owner.id.clone(),
            ..Default::default()
        })
        .await
        .expect("deleted");
    let (to, unrouted) = routed(&app, &app_callback_url(), &message_body("7001")).await;
    assert!(to.is_empty(), "{to:?}");
    assert_eq!(
        unrouted,
        ["no account's claim of phone number id 7001 is confirmed by Meta"]
    );
}

/// Meta's examples of the WABA-level fields, on WABA 900000001: each sent to the
/// app-level callback with `entry.id` the WABA and no `metadata.phone_number_id`.
async fn each_waba_level_field_routes_to_the_right_accounts(backend: Backend) {
    let (app, fake, _meta) = spawn_with_fake_meta(backend, test_meta(), None).await;
    for (number, token, shown) in [
        ("7101", "EAAG-7101", "+1 555-078-3881"),
        ("7102", "EAAG-7102", "+1 555-078-3882"),
    ] {
        fake.add_number(number, "900000001", None);
        fake.restrict_number(number, token, shown);
    }
    let first = create(&app.admin(), new_whatsapp("7101", "EAAG-7101")).await;
    let second = create(&app.admin(), new_whatsapp("7102", "EAAG-7102")).await;
    assert_eq!(ownership(&first), Ownership::Confirmed);
    assert_eq!(ownership(&second), Ownership::Confirmed);
    // Another workspace names the WABA, with a number it does not own: nothing of the
    // WABA's reaches it.
    let outsider = create(
        &other_admin(&app),
        new_account(
            Channel::Whatsapp,
            "wa-7103",
            json!({"phone_number_id": "7103", "waba_id": "900000001"}),
        ),
    )
    .await;
    let both = {
        let mut both = vec![(0, first.id.clone()), (0, second.id.clone())];
        both.sort();
        both
    };
    let entry = |field: &str, value: serde_json::Value| {
        json!({"entry": [{"id": "900000001", "time": 1_739_321_024,
            "changes": [{"value": value, "field": field}]}], "object": "whatsapp_business_account"})
    };
    let cases = [
        // Webhooks reference, phone_number_quality_update; FLAGGED as "Managing
        // Webhooks" (solution providers) shows it.
        (
            entry(
                "phone_number_quality_update",
                json!({"display_phone_number": "15550783881", "event": "FLAGGED", "current_limit": "TIER_10K"}),
            ),
            vec![(0, first.id.clone())],
        ),
        // Webhooks reference, phone_number_name_update.
        (
            entry(
                "phone_number_name_update",
                json!({"display_phone_number": "15550783882", "decision": "APPROVED",
                    "requested_verified_name": "Lucky Shrub", "rejection_reason": null}),
            ),
            vec![(0, second.id.clone())],
        ),
        // "Managing Webhooks": account_update naming the number (`phone_number`).
        (
            entry(
                "account_update",
                json!({"phone_number": "15550783882", "event": "VERIFIED_ACCOUNT"}),
            ),
            vec![(0, second.id.clone())],
        ),
        // Webhooks reference, account_update, "Account restriction": the whole WABA.
        (
            entry(
                "account_update",
                json!({"event": "ACCOUNT_RESTRICTION", "restriction_info": [
                    {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1_641_330_498},
                    {"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION", "expiration": 1_641_330_498}]}),
            ),
            both.clone(),
        ),
        // Webhooks reference, message_template_status_update: every account.
        (
            entry(
                "message_template_status_update",
                json!({"event": "APPROVED", "message_template_id": 1_689_556_908_129_832_u64,
                    "message_template_name": "order_confirmation",
                    "message_template_language": "en-US", "reason": "NONE",
                    "message_template_category": "UTILITY"}),
            ),
            both.clone(),
        ),
        // Webhooks reference, business_capability_update.
        (
            entry(
                "business_capability_update",
                json!({"max_daily_conversations_per_business": 2000, "max_phone_numbers_per_waba": 25}),
            ),
            both.clone(),
        ),
    ];
    for (body, expected) in cases {
        let (to, unrouted) = routed(&app, &app_callback_url(), &body).await;
        assert_eq!(to, expected, "{body}: {unrouted:?}");
        assert!(!to.iter().any(|(_, id)| *id == outsider.id));
    }
    // A partner event names the WABA in waba_info, its entry id the partner's business
    // portfolio ("Managing Webhooks", PARTNER_ADDED).
    let partner = json!({"entry": [{"id": "2949482758682047", "time": 1_739_321_024,
        "changes": [{"value": {"event": "PARTNER_ADDED", "waba_info": {
            "waba_id": "900000001", "owner_business_id": "2949482758682047"}},
        "field": "account_update"}]}], "object": "whatsapp_business_account"});
    assert_eq!(routed(&app, &app_callback_url(), &partner).await.0, both);
}

async fn the_upgrade_unconfirms_pages_and_the_start_up_pass_confirms_them_again(backend: Backend) {
    use sea_orm::ConnectionTrait;
    use sea_orm_migration::MigratorTrait;
    let (app, fake, meta) = spawn_with_fake_meta(backend, test_meta(), None).await;
    fake.grant_page_token("EAAP-300", "300");
    fake.add_number("7201", "900000001", None);
    let page = create(&app.admin(), page("300", "EAAP-300")).await;
    let number = create(&app.admin(), new_whatsapp("7201", "EAAG-7201")).await;
    assert_eq!(ownership(&page), Ownership::Confirmed);
    assert_eq!(ownership(&number), Ownership::Confirmed);

    // As an upgrade from the version before: down past 000021, then up.
    let db = app.database().await;
    let from_ownership = patchbay_migrations::Migrator::migrations()
        .iter()
        .rev()
        .take_while(|m| m.name() != "m20261206_000021_account_ownership")
        .count() as u32
        + 1;
    patchbay_migrations::Migrator::down(&db, Some(from_ownership))
        .await
        .expect("down");
    patchbay_migrations::Migrator::up(&db, None)
        .await
        .expect("up");
    let stored = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT account_key, ownership FROM accounts ORDER BY account_key",
        ))
        .await
        .expect("rows");
    let stored: Vec<(String, String)> = stored
        .iter()
        .map(|row| {
            (
                row.try_get("", "account_key").expect("key"),
                row.try_get("", "ownership").expect("ownership"),
            )
        })
        .collect();
    assert_eq!(
        stored,
        [
            ("p300".to_owned(), "unconfirmed".to_owned()),
            ("wa-7201".to_owned(), "confirmed".to_owned())
        ]
    );
    // The start-up pass of this server, begun less than a minute ago, would keep a
    // start this soon from running another: as a start a minute later finds it.
    db.execute_unprepared("DELETE FROM task_leases WHERE name = 'ownership_confirmations'")
        .await
        .expect("lease cleared");
    drop(db);

    // The next start asks Meta about every unconfirmed account.
    let url = app.database_url.clone();
    let _data = app.stop().await;
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            database_url: Some(url),
            provider_urls: all_providers_at(&meta.uri()),
            ..TestOptions::default()
        },
    )
    .await;
    // Confirmed by the pass, and routed: the write commits before this replica's
    // index takes it, so both are waited for.
    let confirmed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let read = get_account(&app.admin(), &page.id).await;
            let (to, _) = routed(&app, &app_callback_url(), &page_body("300")).await;
            if ownership(&read) == Ownership::Confirmed && to == vec![(0, page.id.clone())] {
                return read;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the start-up pass confirms the page, and it routes");
    assert_eq!(confirmed.revision, page.revision + 1);
}
