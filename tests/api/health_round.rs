//! The health round (#30, item 2): every interval, each WhatsApp Cloud number is read
//! from Meta as GetWhatsAppHealth reads it, and what it finds is recorded. A rating
//! of RED is QUALITY (DEGRADED, still served); a reading that changes nothing writes
//! nothing; three rounds in which Meta fails for the number are PROVIDER (stepped over
//! for the fallback), and two answers bring it back.
//!
//! Meta is the stand-in of `patchbay_e2e::meta_fake`, which answers the number's read
//! with the fields of Chatwoot's spec/services/whatsapp/health_service_spec.rb stub,
//! `quality_rating` as the Cloud API reference (WhatsApp Business Phone Number) lists
//! it; an outage is a 503 with a plain body, as a gateway in front of the Graph API
//! sends it.

use std::time::{Duration, Instant};

use patchbay::meta::MetaSettings;
use patchbay_e2e::proto::{self, HealthState};
use patchbay_e2e::{
    Backend, backend_tests, create, get_account, graph_path, new_whatsapp, spawn_with_fake_meta,
    test_meta, whatsapp_fallbacks, whatsapp_served,
};
use patchbay_sdk::Client;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

backend_tests!(the_health_round_reads_every_number_and_records_what_changed);

/// Waits (at most 15 s) until `holds` of the account.
async fn until(
    admin: &Client,
    id: &str,
    what: &str,
    holds: impl Fn(&proto::Account) -> bool,
) -> proto::Account {
    let started = Instant::now();
    loop {
        let account = get_account(admin, id).await;
        if holds(&account) {
            return account;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: {account:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn codes(account: &proto::Account) -> Vec<String> {
    account
        .health
        .as_ref()
        .map(|health| health.reasons.iter().map(|r| r.code.clone()).collect())
        .unwrap_or_default()
}

async fn the_health_round_reads_every_number_and_records_what_changed(backend: Backend) {
    let meta = MetaSettings {
        health_every: Some(Duration::from_secs(1)),
        ..test_meta()
    };
    let (app, fake, server) = spawn_with_fake_meta(backend, meta, None).await;
    let admin = app.admin();
    fake.add_number("2401", "900000001", None);
    fake.add_number("2402", "900000001", None);
    let default = create(&admin, new_whatsapp("2401", "EAAG-2401")).await;
    let fallback = create(&admin, new_whatsapp("2402", "EAAG-2402")).await;
    admin
        .set_default_account(&default.id)
        .await
        .expect("default");
    whatsapp_fallbacks(&admin, &[&fallback]).await;

    // Meta rates the default's number RED: a round records it, QUALITY, DEGRADED.
    fake.set_quality("2401", "RED");
    let rated = until(&admin, &default.id, "quality_red recorded", |a| {
        codes(a).contains(&"quality_red".to_owned())
    })
    .await;
    let health = rated.health.clone().expect("health");
    assert_eq!(health.state, i32::from(HealthState::Degraded));
    // A degraded default still sends: it is served as itself.
    let service = app.service();
    let answer = whatsapp_served(&service, false).await;
    assert_eq!(answer.account.map(|a| a.id), Some(default.id.clone()));
    assert!(!answer.served_by_fallback);
    // The rounds that read the same again (Meta was asked: more reads of the number)
    // write nothing.
    let reads = || async {
        let number = graph_path("2401");
        let received = server.received_requests().await.unwrap_or_default();
        received.iter().filter(|r| r.url.path() == number).count()
    };
    let before = reads().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        reads().await > before,
        "the rounds went on reading the number"
    );
    assert_eq!(
        get_account(&admin, &default.id).await.revision,
        rated.revision
    );

    // Meta fails for the number (every read a 503, retried three times) for three
    // rounds: PROVIDER, and the fallback is served.
    Mock::given(method("GET"))
        .and(path(graph_path("2401")))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .with_priority(1)
        .up_to_n_times(9)
        .mount(&server)
        .await;
    until(&admin, &default.id, "provider_failing recorded", |a| {
        codes(a).contains(&"provider_failing".to_owned())
    })
    .await;
    let answer = whatsapp_served(&service, false).await;
    assert_eq!(answer.account.map(|a| a.id), Some(fallback.id.clone()));
    assert_eq!(answer.fallback_reason, ["provider_failing"]);
    // Meta answers again: two rounds later the default is served again, still RED.
    let back = until(&admin, &default.id, "provider_failing lifted", |a| {
        !codes(a).contains(&"provider_failing".to_owned())
    })
    .await;
    assert!(codes(&back).contains(&"quality_red".to_owned()));
    let answer = whatsapp_served(&service, false).await;
    assert_eq!(answer.account.map(|a| a.id), Some(default.id.clone()));
}
