//! Account health (#30): every account has its health from the start, and the webhooks
//! RouteWebhook verifies change it in the same call, with a HEALTH_CHANGED event beside
//! the health before; an unchanged reading writes nothing.
//!
//! Meta here is the stand-in of `patchbay_e2e::meta_fake`; the webhook bodies are
//! Meta's own examples from its webhook reference, each cited, with the times moved so
//! that a restriction's expiration lies ahead.

use std::time::Duration;

use patchbay_e2e::proto::{self, AccountEventKind, HealthReasonClass, HealthState};
use patchbay_e2e::{
    Backend, TestApp, app_callback_url, backend_tests, create, get_account, latest_revision,
    new_whatsapp, routed, spawn_with_fake_meta, test_meta,
};
use patchbay_sdk::tonic::Streaming;
use serde_json::json;

backend_tests!(
    meta_s_webhooks_change_health_once_with_an_event,
    a_body_signed_with_an_account_s_own_secret_records_no_health
);

/// A WABA-level entry of WABA 900000001, as Meta's reference examples have it, sent
/// now (a word from before the account was made is of the id's previous holder).
fn entry(field: &str, value: serde_json::Value) -> serde_json::Value {
    json!({"entry": [{"id": "900000001", "time": chrono::Utc::now().timestamp(),
        "changes": [{"value": value, "field": field}]}], "object": "whatsapp_business_account"})
}

async fn watch_after(app: &TestApp, after: i64) -> Streaming<proto::AccountEvent> {
    app.admin()
        .accounts()
        .watch_account_events(proto::WatchAccountEventsRequest {
            after_revision: Some(after),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner()
}

async fn next(stream: &mut Streaming<proto::AccountEvent>) -> proto::AccountEvent {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an event in time")
        .expect("a healthy stream")
        .expect("an open stream")
}

fn health(account: &proto::Account) -> proto::AccountHealth {
    account
        .health
        .clone()
        .expect("every account has its health")
}

fn codes(health: &proto::AccountHealth) -> Vec<&str> {
    health.reasons.iter().map(|r| r.code.as_str()).collect()
}

async fn meta_s_webhooks_change_health_once_with_an_event(backend: Backend) {
    let (app, fake, _meta) = spawn_with_fake_meta(backend, test_meta(), None).await;
    for (number, token, shown) in [
        ("7301", "EAAG-7301", "+1 555-078-3881"),
        ("7302", "EAAG-7302", "+1 555-078-3882"),
    ] {
        fake.add_number(number, "900000001", None);
        fake.restrict_number(number, token, shown);
    }
    let first = create(&app.admin(), new_whatsapp("7301", "EAAG-7301")).await;
    let second = create(&app.admin(), new_whatsapp("7302", "EAAG-7302")).await;
    assert_eq!(health(&first).state, i32::from(HealthState::Healthy));
    let before = latest_revision(&app).await;
    let mut events = watch_after(&app, before).await;

    // Webhooks reference, phone_number_quality_update; FLAGGED as Meta's "Managing
    // Webhooks" (solution providers) shows it.
    let flagged = entry(
        "phone_number_quality_update",
        json!({"display_phone_number": "15550783881", "event": "FLAGGED", "current_limit": "TIER_10K"}),
    );
    let (to, _) = routed(&app, &app_callback_url(), &flagged).await;
    assert_eq!(
        to,
        [(0, first.id.clone())],
        "the gateway's answer as before"
    );
    let event = next(&mut events).await;
    assert_eq!(event.kind, i32::from(AccountEventKind::HealthChanged));
    let account = event.account.expect("the account");
    assert_eq!(account.id, first.id);
    let now = health(&account);
    assert_eq!(now.state, i32::from(HealthState::Degraded));
    assert_eq!(codes(&now), ["quality_flagged"]);
    assert_eq!(now.reasons[0].class, i32::from(HealthReasonClass::Quality));
    assert!(now.checked_at.is_some());
    let previous = event.previous_health.expect("the health before");
    assert_eq!(previous.state, i32::from(HealthState::Healthy));
    assert!(previous.reasons.is_empty());

    // The same word again: nothing written (no revision, no event).
    let at = latest_revision(&app).await;
    routed(&app, &app_callback_url(), &flagged).await;
    assert_eq!(
        latest_revision(&app).await,
        at,
        "an unchanged reading writes nothing"
    );

    // Webhooks reference, account_update, "Account restriction": the whole WABA, until
    // the latest expiration (moved a day ahead).
    let until = chrono::Utc::now().timestamp() + 86_400;
    let restriction = entry(
        "account_update",
        json!({"event": "ACCOUNT_RESTRICTION", "restriction_info": [
            {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": until - 60},
            {"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION", "expiration": until}]}),
    );
    let (to, _) = routed(&app, &app_callback_url(), &restriction).await;
    assert_eq!(to.len(), 2, "both numbers of the WABA");
    let mut changed = Vec::new();
    for _ in 0..2 {
        let event = next(&mut events).await;
        assert_eq!(event.kind, i32::from(AccountEventKind::HealthChanged));
        changed.push(event.account.expect("account").id);
    }
    changed.sort();
    let mut both = vec![first.id.clone(), second.id.clone()];
    both.sort();
    assert_eq!(changed, both);
    for account in [&first, &second] {
        let stored = health(&get_account(&app.admin(), &account.id).await);
        assert_eq!(
            stored.state,
            i32::from(HealthState::Unavailable),
            "{stored:?}"
        );
        let restricted = stored
            .reasons
            .iter()
            .find(|r| r.code == "account_restricted")
            .expect("the restriction");
        assert_eq!(restricted.class, i32::from(HealthReasonClass::Enforcement));
        assert_eq!(restricted.until.as_ref().map(|t| t.seconds), Some(until));
        assert!(
            restricted
                .detail
                .contains("RESTRICTED_BIZ_INITIATED_MESSAGING")
        );
    }

    // UNFLAGGED lifts the flag; the restriction stays.
    let unflagged = entry(
        "phone_number_quality_update",
        json!({"display_phone_number": "15550783881", "event": "UNFLAGGED", "current_limit": "TIER_10K"}),
    );
    routed(&app, &app_callback_url(), &unflagged).await;
    let event = next(&mut events).await;
    assert_eq!(event.kind, i32::from(AccountEventKind::HealthChanged));
    let now = health(&event.account.expect("account"));
    assert_eq!(codes(&now), ["account_restricted"]);
    assert_eq!(now.state, i32::from(HealthState::Unavailable));
}

/// An account's own app secret is its tenant's: a body it signs (here a forged
/// "reinstated" and a forged block, as a tenant could write them) is routed to that
/// account as before, and says nothing of its health.
async fn a_body_signed_with_an_account_s_own_secret_records_no_health(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = create(
        &app.admin(),
        patchbay_e2e::new_account(
            proto::Channel::Messenger,
            "p700",
            json!({"page_id": "700", "page_access_token": "EAAP-700", "app_secret": "tenant-secret"}),
        ),
    )
    .await;
    let before = latest_revision(&app).await;
    // Meta's messaging_policy_enforcement event, as the Messenger Platform documents it.
    let forged = json!({"object": "page", "entry": [{"id": "700",
        "time": chrono::Utc::now().timestamp(), "messaging": [{"recipient": {"id": "700"},
        "timestamp": 1_765_000_000_000_u64,
        "policy_enforcement": {"action": "block", "reason": "forged"}}]}]});
    let (to, _) = routed_with(&app, &page.webhook_url, "tenant-secret", &forged).await;
    assert_eq!(to, [(0, page.id.clone())], "routed to its own account");
    assert_eq!(latest_revision(&app).await, before, "nothing written");
    let now = get_account(&app.admin(), &page.id).await;
    assert_eq!(health(&now).state, i32::from(HealthState::Healthy));
}

/// As `routed`, signed with `secret`.
async fn routed_with(
    app: &TestApp,
    url: &str,
    secret: &str,
    body: &serde_json::Value,
) -> (Vec<(i32, String)>, Vec<String>) {
    let answer = app
        .gateway()
        .webhooks()
        .route_webhook(patchbay_e2e::meta_post(
            url,
            secret,
            body.to_string().as_bytes(),
        ))
        .await
        .expect("verified")
        .into_inner();
    let to = answer
        .deliveries
        .into_iter()
        .map(|d| (d.entry_index, d.account_id))
        .collect();
    (to, answer.unrouted.into_iter().map(|u| u.reason).collect())
}
