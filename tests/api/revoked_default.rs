//! A default whose token Meta revokes (#30, acceptance): the token checks record it
//! (CREDENTIALS), GetDefaultAccount and the SDK's `DefaultAccounts::sender` both step
//! over it for the first fallback that can send, and both serve it again within 2 s of
//! a new token being stored.
//!
//! Meta is the stand-in of `patchbay_e2e::meta_fake`: debug_token answers a revoked
//! token `is_valid: false` with error 190 (Graph API reference, Debug Token; Chatwoot's
//! spec/services/whatsapp/token_validation_service_spec.rb stubs the same shape), and a
//! granted one as Meta's Embedded Signup example shows it.

use std::time::{Duration, Instant};

use patchbay::meta::MetaSettings;
use patchbay_e2e::proto::{self, Channel, HealthState, watch_default_accounts_response::Event};
use patchbay_e2e::{
    Backend, backend_tests, create, new_whatsapp, spawn_with_fake_meta, test_meta, to_struct,
    update, whatsapp_fallbacks, whatsapp_served,
};
use patchbay_sdk::{Client, DefaultAccounts, WatchOptions};
use serde_json::json;

backend_tests!(a_revoked_default_is_stepped_over_locally_and_remotely_until_a_new_token);

const WABA: &str = "900000001";

fn id_of(answer: &proto::GetDefaultAccountResponse) -> (String, bool) {
    let id = answer
        .account
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_default();
    (id, answer.served_by_fallback)
}

fn sent_by(copy: &DefaultAccounts) -> (String, bool) {
    copy.sender(Channel::Whatsapp, None).map_or_else(
        || (String::new(), false),
        |sender| (sender.account.id.clone(), sender.served_by_fallback),
    )
}

/// Waits (at most `within`) until both the server and the copy serve `expected`;
/// returns how long it took, or panics with what each served last.
async fn until_both_serve(
    service: &Client,
    copy: &DefaultAccounts,
    expected: &(String, bool),
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let remote = id_of(&whatsapp_served(service, false).await);
        let local = sent_by(copy);
        if remote == *expected && local == *expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "expected {expected:?} within {within:?}; the server serves {remote:?}, the copy {local:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_revoked_default_is_stepped_over_locally_and_remotely_until_a_new_token(
    backend: Backend,
) {
    let meta = MetaSettings {
        check_every: Some(Duration::from_secs(1)),
        ..test_meta()
    };
    let (app, fake, _server) = spawn_with_fake_meta(backend, meta, None).await;
    let admin = app.admin();
    let mut accounts = Vec::new();
    for (number, token) in [
        ("2301", "EAAG-default"),
        ("2302", "EAAG-first"),
        ("2303", "EAAG-second"),
    ] {
        fake.add_number(number, WABA, None);
        fake.grant_waba_token(token, WABA);
        accounts.push(create(&admin, new_whatsapp(number, token)).await);
    }
    let [default, first, second] = <[proto::Account; 3]>::try_from(accounts).expect("three");
    admin
        .set_default_account(&default.id)
        .await
        .expect("default");
    whatsapp_fallbacks(&admin, &[&first, &second]).await;

    let service = app.service();
    let copy = service.watch_default_accounts(WatchOptions::default());
    copy.wait_synchronised(Duration::from_secs(10))
        .await
        .expect("the copy synchronises");
    let itself = (default.id.clone(), false);
    until_both_serve(&service, &copy, &itself, Duration::from_secs(10)).await;

    // Meta revokes the default's token and the first fallback's: the next check round
    // records both, and the second fallback is served, by the server and by the copy.
    fake.revoke("EAAG-default");
    fake.revoke("EAAG-first");
    let stand_in = (second.id.clone(), true);
    until_both_serve(&service, &copy, &stand_in, Duration::from_secs(15)).await;
    let answer = whatsapp_served(&service, false).await;
    assert_eq!(answer.fallback_reason, ["reauthorization_required"]);
    // `get` is still the default, with its health.
    let the_default = copy.get(Channel::Whatsapp, None).expect("the default");
    assert_eq!(the_default.id, default.id);
    let health = the_default.health.clone().expect("health");
    assert_eq!(health.state, i32::from(HealthState::Unavailable));
    // What the copy is made of: a watch's fallbacks carry their health, the first
    // unavailable too.
    let mut watch = service
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let snapshot = match watch.message().await.expect("healthy").expect("open").event {
        Some(Event::Snapshot(snapshot)) => snapshot,
        other => panic!("a snapshot first, got {other:?}"),
    };
    let list = &snapshot.fallbacks[0];
    let states: Vec<(String, i32)> = list
        .accounts
        .iter()
        .map(|a| (a.id.clone(), a.health.as_ref().map_or(0, |h| h.state)))
        .collect();
    assert_eq!(
        states,
        [
            (first.id.clone(), i32::from(HealthState::Unavailable)),
            (second.id.clone(), i32::from(HealthState::Healthy)),
        ]
    );

    // A new token is stored (and granted): the default is served again, by both,
    // within 2 s.
    fake.grant_waba_token("EAAG-renewed", WABA);
    let stored = Instant::now();
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: default.id.clone(),
            config: Some(to_struct(json!({"access_token": "EAAG-renewed"}))),
            ..Default::default()
        },
    )
    .await;
    let waited = until_both_serve(&service, &copy, &itself, Duration::from_secs(2)).await;
    assert!(stored.elapsed() < Duration::from_secs(2), "{waited:?}");
    let answer = whatsapp_served(&service, false).await;
    assert!(answer.fallback_reason.is_empty());
}
