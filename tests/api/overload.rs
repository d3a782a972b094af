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
