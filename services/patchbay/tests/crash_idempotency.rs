//! Idempotency keys are exactly-once across a crash: a real `patchbay serve` is killed
//! with SIGKILL under concurrent idempotent creates and restarted on the same database;
//! every key then answers (no ABORTED "still running"), with exactly one record per key
//! and, for a call that had answered before the crash, the record it answered with.
//! On SQLite and on PostgreSQL (`PATCHBAY_TEST_POSTGRES_URL`, set by scripts/test).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patchbay_sdk::Client;
use patchbay_sdk::proto::{Channel, CreateAccountRequest};
use patchbay_sdk::tonic::Request;

mod common;
use common::{BIN, explicit_keys};

const KEYS: usize = 300;
const CLIENTS: usize = 16;

fn start(data_dir: &Path, database_url: Option<&str>) -> (Child, String) {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PATCHBAY_DATA_DIR", data_dir)
        .envs(explicit_keys(data_dir))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(url) = database_url {
        command.env("PATCHBAY_DATABASE_URL", url);
    }
    let mut child = command.spawn().expect("spawn patchbay serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("patchbay listening") {
            let log: serde_json::Value = serde_json::from_str(&line).expect("json log line");
            let address = log["fields"]["address"]
                .as_str()
                .expect("address")
                .to_owned();
            std::thread::spawn(move || for _ in lines {});
            return (child, format!("http://{address}"));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("patchbay serve did not start");
}

fn admin_token(data_dir: &Path) -> String {
    let output = Command::new(BIN)
        .env("PATCHBAY_DATA_DIR", data_dir)
        .envs(explicit_keys(data_dir))
        .args([
            "token",
            "--role",
            "admin",
            "--workspace",
            "acme",
            "--ttl",
            "1h",
        ])
        .output()
        .expect("token");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

async fn create(client: &Client, i: usize) -> Result<String, patchbay_sdk::tonic::Status> {
    let mut request = Request::new(CreateAccountRequest {
        channel: Channel::Sms.into(),
        account_key: format!("crash-{i}"),
        display_name: format!("Crash {i}"),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "idempotency-key",
        format!("key-{i}").parse().expect("header"),
    );
    client
        .accounts()
        .create_account(request)
        .await
        .map(|r| r.into_inner().account.map(|a| a.id).unwrap_or_default())
}

async fn crash_under_idempotent_creates(database_url: Option<String>) {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let token = admin_token(data_dir.path());
    let (mut server, endpoint) = start(data_dir.path(), database_url.as_deref());

    // Answers that arrived before the crash, by key.
    let answered: Arc<Mutex<BTreeMap<usize, String>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let client = Client::connect(endpoint.clone(), &token)
            .await
            .expect("connect");
        let (answered, next, done) = (answered.clone(), next.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= KEYS {
                    return;
                }
                if let Ok(id) = create(&client, i).await {
                    answered.lock().expect("answers").insert(i, id);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < KEYS / 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("SIGKILL");
    let _ = server.wait();
    for worker in workers {
        worker.await.expect("worker");
    }
    let before_crash = answered.lock().expect("answers").clone();
    assert!(
        !before_crash.is_empty() && before_crash.len() < KEYS,
        "the crash came half way: {} answered",
        before_crash.len()
    );

    let (mut server, endpoint) = start(data_dir.path(), database_url.as_deref());
    let client = Client::connect(endpoint, &token)
        .await
        .expect("connect again");
    let mut replayed = BTreeMap::new();
    for i in 0..KEYS {
        let id = create(&client, i).await.unwrap_or_else(|status| {
            panic!("key-{i} does not answer after the restart: {status:?}")
        });
        replayed.insert(i, id);
    }
    for (i, id) in &before_crash {
        assert_eq!(
            &replayed[i], id,
            "key-{i} answers with the record it answered before"
        );
    }
    let accounts = client.list_all_accounts(None).await.expect("list");
    assert_eq!(accounts.len(), KEYS, "exactly one record per key");
    for account in &accounts {
        let i: usize = account
            .account_key
            .strip_prefix("crash-")
            .and_then(|n| n.parse().ok())
            .expect("a crash account");
        assert_eq!(replayed[&i], account.id, "key-{i} names its one record");
    }
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keys_are_exactly_once_across_a_crash() {
    crash_under_idempotent_creates(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_keys_are_exactly_once_across_a_crash() {
    use sea_orm::ConnectionTrait;
    let server = std::env::var("PATCHBAY_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("PATCHBAY_TEST_POSTGRES_URL is not set: run ./scripts/test, which starts PostgreSQL")
    });
    let server = server.trim_end_matches('/').to_owned();
    let admin = sea_orm::Database::connect(format!("{server}/postgres"))
        .await
        .expect("connect to the test PostgreSQL server");
    let name = format!("patchbay_crash_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let _ = admin.close().await;
    crash_under_idempotent_creates(Some(format!("{server}/{name}"))).await;
}
