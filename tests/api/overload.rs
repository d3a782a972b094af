//! Overload protection: calls beyond the in-flight limit are refused at once, a call
//! past its deadline (the server's or the caller's) is DEADLINE_EXCEEDED, and the server
//! serves normally once the load is gone. Slow calls are made real by holding a lock on
//! the database from the test.

use std::time::{Duration, Instant};

use patchbay::config::ServerSettings;
use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{Backend, TestApp, TestOptions, backend_tests, create, new_account};
use patchbay_sdk::tonic::{Code, Request};
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde_json::json;

backend_tests!(
    calls_beyond_the_limit_are_shed_fast,
    deadlines_answer_deadline_exceeded,
    oversized_messages_are_refused,
    a_workspace_holding_its_share_leaves_the_others_theirs,
);

/// Blocks every write (and, on PostgreSQL, every read) of `accounts` until dropped.
async fn lock_accounts(
    app: &TestApp,
    backend: Backend,
) -> (sea_orm::DatabaseConnection, DatabaseTransaction) {
    let db = app.database().await;
    let txn = match backend {
        Backend::Sqlite => {
            let txn = db
                .begin_with_options(sea_orm::TransactionOptions {
                    sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Exclusive),
                    ..Default::default()
                })
                .await
                .expect("begin");
            txn.execute_unprepared("UPDATE accounts SET revision = revision")
                .await
                .expect("lock");
            txn
        }
        Backend::Postgres => {
            let txn = db.begin().await.expect("begin");
            txn.execute_unprepared("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
                .await
                .expect("lock");
            txn
        }
    };
    (db, txn)
}

fn slow_create(app: &TestApp, key: &str) -> tokio::task::JoinHandle<Result<(), Code>> {
    let admin = app.admin();
    let key = key.to_owned();
    tokio::spawn(async move {
        admin
            .accounts()
            .create_account(new_account(Channel::Sms, &key, json!({})))
            .await
            .map(|_| ())
            .map_err(|s| s.code())
    })
}

async fn calls_beyond_the_limit_are_shed_fast(backend: Backend) {
    let server = ServerSettings {
        max_concurrent_requests: 2,
        ..ServerSettings::default()
    };
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            server,
            ..Default::default()
        },
    )
    .await;
    create(&app.admin(), new_account(Channel::Sms, "warm", json!({}))).await;

    let (_db, lock) = lock_accounts(&app, backend).await;
    let slow = [slow_create(&app, "slow-1"), slow_create(&app, "slow-2")];
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let shed = app
        .admin()
        .accounts()
        .list_accounts(proto::ListAccountsRequest::default())
        .await
        .expect_err("over the limit");
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "shed at once, not queued: {:?}",
        started.elapsed()
    );
    // The webhook gateway runs on places of its own: tenants holding every place of
    // the server leave it its own (Meta's handshake on the app-level callback).
    let handshake = app
        .gateway()
        .route_webhook(
            "GET",
            &format!(
                "{}/webhooks/meta?hub.mode=subscribe&hub.verify_token={}&hub.challenge=42",
                patchbay_e2e::PUBLIC_BASE_URL,
                patchbay_e2e::META_WEBHOOK_VERIFY_TOKEN
            ),
            std::iter::empty::<(String, String)>(),
            Vec::new(),
        )
        .await
        .expect("the gateway's own places");
    assert_eq!(handshake.challenge, "42");
    // Probes still get an answer.
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel());
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health is exempt from the limit");

    lock.rollback().await.expect("release");
    for call in slow {
        assert_eq!(call.await.expect("task"), Ok(()), "the slow calls complete");
    }
    assert_eq!(
        app.admin()
            .list_all_accounts(None)
            .await
            .expect("normal again")
            .len(),
        3
    );
}

async fn deadlines_answer_deadline_exceeded(backend: Backend) {
    let server = ServerSettings {
        request_timeout: Duration::from_secs(1),
        ..ServerSettings::default()
    };
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            server,
            ..Default::default()
        },
    )
    .await;
    let (_db, lock) = lock_accounts(&app, backend).await;

    let started = Instant::now();
    let status = app
        .admin()
        .accounts()
        .create_account(new_account(Channel::Sms, "late", json!({})))
        .await
        .expect_err("server deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // The caller's shorter grpc-timeout wins. The client enforces the same deadline, so
    // either side may answer first: the server with DEADLINE_EXCEEDED, the client with
    // CANCELLED; either way the call ends at the caller's deadline, not the server's.
    let mut request = Request::new(new_account(Channel::Sms, "later", json!({})));
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let status = app
        .admin()
        .accounts()
        .create_account(request)
        .await
        .expect_err("caller deadline");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    lock.rollback().await.expect("release");
    // An abandoned call wrote nothing half-way: only what completed is there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let keys: Vec<_> = app
        .admin()
        .list_all_accounts(None)
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.account_key)
        .collect();
    assert!(keys.iter().all(|k| k == "late" || k == "later"), "{keys:?}");
    create(&app.admin(), new_account(Channel::Sms, "after", json!({}))).await;
}

async fn oversized_messages_are_refused(backend: Backend) {
    let server = ServerSettings {
        max_message_bytes: 16 * 1024,
        ..ServerSettings::default()
    };
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            server,
            ..Default::default()
        },
    )
    .await;
    let huge = json!({"blob": "x".repeat(64 * 1024)});
    let status = app
        .admin()
        .accounts()
        .create_account(new_account(Channel::Sms, "huge", huge))
        .await
        .expect_err("too large");
    // tonic refuses a message over the limit before decoding it.
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    // Every service has the same limit.
    let status = app
        .admin()
        .integrations()
        .create_integration(proto::CreateIntegrationRequest {
            provider: "openai".into(),
            name: "x".repeat(64 * 1024),
            ..Default::default()
        })
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        app.admin()
            .list_all_accounts(None)
            .await
            .expect("list")
            .is_empty()
    );
    create(&app.admin(), new_account(Channel::Sms, "small", json!({}))).await;
}

/// Workspace A holds its whole share of watch streams and of calls in flight (a slow
/// credential check): A's next ones are RESOURCE_EXHAUSTED at once, B's are served.
async fn a_workspace_holding_its_share_leaves_the_others_theirs(backend: Backend) {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&slow)
        .await;
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            server: ServerSettings {
                max_watch_streams_per_workspace: 2,
                max_concurrent_requests_per_workspace: 1,
                ..ServerSettings::default()
            },
            provider_urls: patchbay_e2e::all_providers_at(&slow.uri()),
            ..Default::default()
        },
    )
    .await;
    let a = app.client("service", patchbay_e2e::WORKSPACE, None);
    let b = app.client("service", patchbay_e2e::OTHER_WORKSPACE, None);
    let watch = |client: &patchbay_sdk::Client| {
        let mut accounts = client.accounts();
        async move {
            accounts
                .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
                .await
                .map(|r| r.into_inner())
        }
    };
    let _first = watch(&a).await.expect("A's first watch");
    let _second = watch(&a).await.expect("A's second watch");
    let refused = watch(&a).await.expect_err("A is at its share");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("share"), "{refused:?}");
    let _b_watch = watch(&b).await.expect("B still watches");

    // A's slow credential check holds A's one place among the calls in flight.
    let admin_a = app.admin();
    let check = tokio::spawn(async move {
        admin_a
            .integrations()
            .create_integration(proto::CreateIntegrationRequest {
                provider: "openai".into(),
                name: "AI".into(),
                config: Some(patchbay_e2e::to_struct(json!({"api_key": "sk-slow"}))),
                check: true,
                ..Default::default()
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let shed = app
        .admin()
        .accounts()
        .list_accounts(proto::ListAccountsRequest::default())
        .await
        .expect_err("A's share is taken");
    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once"
    );
    app.client("admin", patchbay_e2e::OTHER_WORKSPACE, None)
        .list_all_accounts(None)
        .await
        .expect("B is served meanwhile");
    check.await.expect("task").expect("the slow check passes");
    app.admin()
        .list_all_accounts(None)
        .await
        .expect("A is served again once its call is done");
}
