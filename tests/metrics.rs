//! Prometheus metrics: a scrape after N calls shows that method's counter grown by N
//! with its code, and no label holds a workspace id or anything else a client chose.
//!
//! Its own test binary: the metrics recorder is process-wide, and other tests' calls
//! would move the counters.

use std::net::SocketAddr;

use patchbay::config::{LogFormat, ServerSettings};
use patchbay_e2e::proto;
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, TestOptions, WORKSPACE, create, key_ring, new_whatsapp,
};

/// The recorder is process-wide: one test at a time, so that none moves another's
/// counters.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The server's subscriber, with logging off: the pool's acquire waits reach the
/// metrics whatever the log filter says. Installed once per process.
fn telemetry() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        patchbay::telemetry::install(
            LogFormat::Pretty,
            tracing_subscriber::EnvFilter::new("off"),
            None,
        )
        .expect("telemetry");
    });
}

/// A server on SQLite with its metrics listener, and where that listens.
async fn app_with_metrics() -> (TestApp, SocketAddr) {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        TestOptions {
            server: ServerSettings {
                metrics_listen: Some("127.0.0.1:0".parse().expect("address")),
                ..ServerSettings::default()
            },
            ..TestOptions::default()
        },
    )
    .await;
    let addr = app.metrics_addr.expect("metrics listener");
    (app, addr)
}

async fn scrape(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text")
}

/// The value of the sample whose line starts with `name{labels}`, 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_each_call_by_method_and_code_and_names_no_workspace() {
    let _serial = ONE_AT_A_TIME.lock().await;
    telemetry();
    let (app, addr) = app_with_metrics().await;
    let not_found = r#"patchbay_grpc_requests_total{method="GetProvider",code="NOT_FOUND"}"#;
    let found = r#"patchbay_grpc_requests_total{method="ListProviders",code="OK"}"#;
    let before = scrape(addr).await;
    for client in [app.service(), app.client("service", OTHER_WORKSPACE, None)] {
        for _ in 0..3 {
            let missing = client
                .integrations()
                .get_provider(proto::GetProviderRequest {
                    slug: "no-such-provider".into(),
                })
                .await;
            assert!(missing.is_err());
        }
        client
            .integrations()
            .list_providers(proto::ListProvidersRequest::default())
            .await
            .expect("providers");
    }
    let after = scrape(addr).await;
    assert_eq!(
        sample(&after, not_found) - sample(&before, not_found),
        6.0,
        "{after}"
    );
    assert_eq!(sample(&after, found) - sample(&before, found), 2.0);
    assert!(after.contains("patchbay_grpc_request_duration_seconds_bucket"));
    assert!(after.contains("patchbay_db_pool_connections"));
    for client_value in [WORKSPACE, OTHER_WORKSPACE, "no-such-provider"] {
        assert!(
            !after.contains(client_value),
            "{client_value} is in a label"
        );
    }

    // What `keys rotate` has left to do: nothing while every record is under the
    // active key; one record after the ring's active key changes. (In this test: the
    // gauge is process-wide.)
    let account = create(&app.admin(), new_whatsapp("5550001", "EAAG-census")).await;
    // That write waited for a pooled connection (several times): each wait is in the
    // histogram.
    let waits = "patchbay_db_pool_acquire_duration_seconds_count";
    let written = scrape(addr).await;
    assert!(sample(&written, waits) > sample(&after, waits), "{written}");
    assert!(written.contains("patchbay_db_pool_acquire_duration_seconds_bucket{le=\"0.001\"}"));

    // The hot path's handles, kept per process: the token cache (the service sent one
    // token four times above) and GetDefaultAccount's read cache.
    let hits = "patchbay_token_cache_hits_total";
    assert!(
        sample(&after, hits) - sample(&before, hits) >= 3.0,
        "{after}"
    );
    app.admin()
        .accounts()
        .set_default_account(proto::SetDefaultAccountRequest {
            id: account.id.clone(),
            expected_revision: None,
        })
        .await
        .expect("default set");
    for _ in 0..3 {
        app.service()
            .accounts()
            .get_default_account(proto::GetDefaultAccountRequest {
                channel: proto::Channel::Whatsapp.into(),
                division_id: String::new(),
                no_fallback: false,
            })
            .await
            .expect("default");
    }
    let cached = scrape(addr).await;
    let hit = r#"patchbay_default_cache_lookups_total{outcome="hit"}"#;
    assert!(
        sample(&cached, hit) - sample(&written, hit) >= 2.0,
        "{cached}"
    );
    let default_calls = r#"patchbay_grpc_requests_total{method="GetDefaultAccount",code="OK"}"#;
    assert_eq!(
        sample(&cached, default_calls) - sample(&before, default_calls),
        3.0
    );
    assert_eq!(sample(&cached, "patchbay_grpc_in_flight"), 0.0);
    assert_eq!(census(addr, 0.0).await, 0.0);
    let database_url = app.database_url.clone();
    let _data_dir = app.stop().await;
    let rotated = TestApp::spawn_with(
        Backend::Sqlite,
        TestOptions {
            database_url: Some(database_url),
            keys: key_ring("t2", &["t1", "t2"]),
            server: ServerSettings {
                metrics_listen: Some("127.0.0.1:0".parse().expect("address")),
                ..ServerSettings::default()
            },
            ..TestOptions::default()
        },
    )
    .await;
    let addr = rotated.metrics_addr.expect("metrics listener");
    assert_eq!(census(addr, 1.0).await, 1.0);
}

/// `patchbay_sealed_records_off_active_key` once it reads `expected` (the first count
/// is taken after the first scrape), or what it reads after 10 s.
async fn census(addr: SocketAddr, expected: f64) -> f64 {
    let series = "patchbay_sealed_records_off_active_key";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = scrape(addr).await;
        let counted = text.lines().any(|line| line.starts_with(series));
        let value = sample(&text, series);
        if (counted && value == expected) || std::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Every in-memory holder is counted in `patchbay_memory_entries{holder}` (no workspace
/// label), and the kept GetDefaultAccount answers go with the cache entry they belong to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_what_each_in_memory_holder_keeps() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (app, addr) = app_with_metrics().await;
    let admin = app.admin();
    let account = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..patchbay_e2e::new_account(proto::Channel::Sms, "main", serde_json::json!({}))
        },
    )
    .await;
    let entries = |text: &str, holder: &str| {
        sample(
            text,
            &format!(r#"patchbay_memory_entries{{holder="{holder}"}}"#),
        )
    };
    let before = scrape(addr).await;
    for _ in 0..5 {
        app.service()
            .default_account(proto::Channel::Sms, None)
            .await
            .expect("default");
    }
    let read = scrape(addr).await;
    for holder in [
        "verified_tokens",
        "default_cache",
        "kept_answers",
        "known_channels",
        "default_feeds",
        "event_wakeups",
    ] {
        assert!(
            read.contains(&format!(r#"patchbay_memory_entries{{holder="{holder}"}}"#)),
            "{holder} is not counted:\n{read}"
        );
    }
    assert_eq!(
        entries(&read, "kept_answers") - entries(&before, "kept_answers"),
        1.0,
        "five calls, one kept answer"
    );
    assert!(entries(&read, "default_cache") >= 1.0);
    // A write changes the workspace's defaults: its cache entries and their answers go.
    admin
        .set_default_account(&account.id)
        .await
        .expect("set default");
    admin
        .accounts()
        .update_account(proto::UpdateAccountRequest {
            id: account.id.clone(),
            display_name: Some("Renamed".into()),
            ..Default::default()
        })
        .await
        .expect("renamed");
    let written = scrape(addr).await;
    assert_eq!(
        entries(&written, "kept_answers"),
        entries(&before, "kept_answers"),
        "{written}"
    );
    assert!(!written.contains(WORKSPACE), "no workspace in any label");
}

/// Pool acquires so far (`patchbay_db_pool_acquire_duration_seconds`, no labels).
fn acquires(text: &str) -> f64 {
    sample(text, "patchbay_db_pool_acquire_duration_seconds_count")
}

/// 200 WatchAccountEvents streams of one workspace share one reader of its events
/// (#29): a write's pool acquires stay within twice those with no watcher, plus two;
/// the idle streams make no queries (the whole server at most 20 acquires in 10 s); and
/// every stream receives every event, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_of_a_workspace_share_one_reader_of_its_events() {
    const STREAMS: usize = 200;
    const WRITES: usize = 20;
    let _serial = ONE_AT_A_TIME.lock().await;
    telemetry();
    let (app, addr) = app_with_metrics().await;
    let admin = app.admin();
    let account = create(
        &admin,
        patchbay_e2e::new_account(proto::Channel::Sms, "watched", serde_json::json!({})),
    )
    .await;
    let write = |n: usize| {
        let (admin, id) = (admin.clone(), account.id.clone());
        async move {
            patchbay_e2e::update(
                &admin,
                proto::UpdateAccountRequest {
                    id,
                    display_name: Some(format!("name {n}")),
                    ..Default::default()
                },
            )
            .await;
        }
    };
    // Warm: the first writes open what later ones reuse.
    for n in 0..3 {
        write(n).await;
    }
    let before = scrape(addr).await;
    for n in 0..WRITES {
        write(100 + n).await;
    }
    let unwatched = (acquires(&scrape(addr).await) - acquires(&before)) / WRITES as f64;

    let service = app.service();
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let stream = service
            .accounts()
            .watch_account_events(proto::WatchAccountEventsRequest::default())
            .await
            .expect("watch")
            .into_inner();
        streams.push(stream);
    }
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut revisions = Vec::new();
                while revisions.len() < WRITES {
                    let event =
                        tokio::time::timeout(std::time::Duration::from_secs(20), stream.message())
                            .await
                            .expect("an event within 20 s")
                            .expect("healthy stream")
                            .expect("open stream");
                    revisions.push(event.revision);
                }
                (revisions, stream)
            })
        })
        .collect();
    let before = scrape(addr).await;
    for n in 0..WRITES {
        write(200 + n).await;
    }
    let mut seen = Vec::new();
    for reader in readers {
        seen.push(reader.await.expect("reader"));
    }
    let watched = (acquires(&scrape(addr).await) - acquires(&before)) / WRITES as f64;
    assert!(
        watched <= 2.0 * unwatched + 2.0,
        "{watched} pool acquires per write with {STREAMS} watchers, {unwatched} without"
    );
    let first = seen[0].0.clone();
    assert_eq!(first.len(), WRITES);
    assert!(
        first.windows(2).all(|w| w[1] == w[0] + 1),
        "in order: {first:?}"
    );
    for (revisions, _) in &seen {
        assert_eq!(revisions, &first, "every stream, every event");
    }

    // The streams stay open and idle: the whole server's queries in 10 s.
    let idle_from = scrape(addr).await;
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    let idle = acquires(&scrape(addr).await) - acquires(&idle_from);
    assert!(
        idle <= 20.0,
        "{idle} pool acquires in 10 s of {STREAMS} idle streams"
    );
    drop(seen);
}

/// The health round counts every active account by channel and health state, and the
/// scopes a fallback serves, with no workspace label (#30, item 6). Meta is the
/// stand-in of `patchbay_e2e::meta_fake`: a number with a two-step PIN registered
/// elsewhere fails its set-up (Graph error 133005, as Meta documents it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_round_counts_accounts_by_health_and_scopes_on_a_fallback() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let meta = wiremock::MockServer::start().await;
    let fake = patchbay_e2e::fake_meta();
    fake.mount(&meta).await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        TestOptions {
            server: ServerSettings {
                metrics_listen: Some("127.0.0.1:0".parse().expect("address")),
                ..ServerSettings::default()
            },
            provider_urls: patchbay_e2e::all_providers_at(&meta.uri()),
            meta: patchbay::meta::MetaSettings {
                health_every: Some(std::time::Duration::from_secs(1)),
                ..patchbay_e2e::test_meta()
            },
            ..TestOptions::default()
        },
    )
    .await;
    let addr = app.metrics_addr.expect("metrics listener");
    let admin = app.admin();
    for key in ["one", "two"] {
        let sms = patchbay_e2e::new_account(proto::Channel::Sms, key, serde_json::json!({}));
        create(&admin, sms).await;
    }
    // The WhatsApp default cannot send (its set-up failed); its fallback can.
    fake.add_number("2501", "900000001", Some("135790"));
    fake.set_status("2501", "DISCONNECTED");
    fake.add_number("2502", "900000001", None);
    let default = create(&admin, new_whatsapp("2501", "EAAG-2501")).await;
    let fallback = create(&admin, new_whatsapp("2502", "EAAG-2502")).await;
    admin
        .set_default_account(&default.id)
        .await
        .expect("default");
    patchbay_e2e::whatsapp_fallbacks(&admin, &[&fallback]).await;

    let series = |channel: &str, state: &str| {
        format!(r#"patchbay_accounts_by_health{{channel="{channel}",state="{state}"}}"#)
    };
    let on_fallback = r#"patchbay_scopes_on_fallback{channel="whatsapp"}"#;
    let started = std::time::Instant::now();
    let text = loop {
        let text = scrape(addr).await;
        let counted = sample(&text, &series("sms", "healthy")) == 2.0
            && sample(&text, &series("whatsapp", "unavailable")) == 1.0
            && sample(&text, on_fallback) == 1.0;
        if counted {
            break text;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "not counted within 15 s:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let whatsapp_can_send = sample(&text, &series("whatsapp", "healthy"))
        + sample(&text, &series("whatsapp", "degraded"));
    assert_eq!(whatsapp_can_send, 1.0, "{text}");
    assert!(
        text.contains(&format!("{} 0", series("sms", "unavailable"))),
        "a zero is published, not left out:\n{text}"
    );
    assert!(
        text.contains(&series("email", "healthy")),
        "every channel and state is set, a zero too:\n{text}"
    );
    let ours: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("accounts_by_health") || line.contains("scopes_on_fallback"))
        .collect();
    assert!(
        ours.iter()
            .all(|line| !line.contains("workspace") && !line.contains(WORKSPACE)),
        "no workspace label: {ours:?}"
    );
}
