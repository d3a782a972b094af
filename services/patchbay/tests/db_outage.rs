//! The database goes away under a running `patchbay serve` and comes back: calls fail
//! fast with UNAVAILABLE, health reports NOT_SERVING, the service recovers by itself,
//! and nothing was half written.
//!
//! It runs a PostgreSQL cluster of its own (binaries from `PATCHBAY_TEST_PG_BINDIR`, set
//! by `scripts/test`), so that stopping it disturbs no other test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use patchbay_sdk::Client;
use patchbay_sdk::proto::{Channel, CreateAccountRequest, ListAccountsRequest};
use patchbay_sdk::tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

mod common;
use common::{BIN, explicit_keys};

struct Postgres {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Postgres {
    fn run(&self, tool: &str, args: &[&str]) -> bool {
        let program = self.bindir.join(tool);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn start(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        assert!(
            self.run(
                "pg_ctl",
                &[
                    "-D",
                    &self.data(),
                    "-l",
                    &log,
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    &options,
                    "start"
                ]
            ),
            "PostgreSQL starts"
        );
    }

    fn stop(&self) {
        assert!(
            self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]),
            "PostgreSQL stops"
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn own_postgres() -> Postgres {
    let bindir = std::env::var("PATCHBAY_TEST_PG_BINDIR").unwrap_or_else(|_| {
        panic!("PATCHBAY_TEST_PG_BINDIR is not set: run ./scripts/test, which sets it")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    if is_root() {
        assert!(
            Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .expect("chown")
                .success()
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let postgres = Postgres {
        bindir: PathBuf::from(bindir),
        dir,
        port,
    };
    assert!(
        postgres.run(
            "initdb",
            &[
                "-D",
                &postgres.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync"
            ]
        ),
        "initdb"
    );
    postgres.start();
    postgres
}

fn serve(data_dir: &Path, database_url: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PATCHBAY_DATA_DIR", data_dir)
        .env("PATCHBAY_DATABASE_URL", database_url)
        .envs(explicit_keys(data_dir))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--database-acquire-timeout-seconds",
            "2",
            "--health-check-interval-seconds",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    while let Some(Ok(line)) = lines.next() {
        if line.contains("patchbay listening") {
            let log: serde_json::Value = serde_json::from_str(&line).expect("json");
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

async fn health(endpoint: &str) -> Option<i32> {
    let channel = patchbay_sdk::tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

async fn eventually<F, Fut>(what: &str, within: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen within {within:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_survives_a_database_outage() {
    let postgres = own_postgres();
    let data_dir = tempfile::tempdir().expect("tempdir");
    let (mut server, endpoint) = serve(data_dir.path(), &postgres.url());
    let token_output = Command::new(BIN)
        .env("PATCHBAY_DATA_DIR", data_dir.path())
        .envs(explicit_keys(data_dir.path()))
        .args(["token", "--role", "admin", "--workspace", "acme"])
        .output()
        .expect("token");
    let admin = String::from_utf8(token_output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    let client = Client::connect(endpoint.clone(), &admin)
        .await
        .expect("connect")
        .with_retry_policy(patchbay_sdk::RetryPolicy {
            attempts: 1,
            ..Default::default()
        });
    let create = |key: &str| CreateAccountRequest {
        channel: Channel::Sms.into(),
        account_key: key.into(),
        ..Default::default()
    };
    client
        .create_account(create("before"))
        .await
        .expect("create while up");

    postgres.stop();
    let started = Instant::now();
    let status = client
        .accounts()
        .create_account(create("during"))
        .await
        .expect_err("the database is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "fails fast: {:?}",
        started.elapsed()
    );
    let status = client
        .accounts()
        .list_accounts(ListAccountsRequest::default())
        .await
        .expect_err("down");
    assert_eq!(status.code(), Code::Unavailable);
    eventually("health NOT_SERVING", Duration::from_secs(10), || async {
        health(&endpoint).await == Some(ServingStatus::NotServing as i32)
    })
    .await;

    postgres.start();
    eventually("calls succeed again", Duration::from_secs(20), || async {
        client
            .accounts()
            .list_accounts(ListAccountsRequest::default())
            .await
            .is_ok()
    })
    .await;
    eventually("health SERVING", Duration::from_secs(10), || async {
        health(&endpoint).await == Some(ServingStatus::Serving as i32)
    })
    .await;
    client
        .create_account(create("after"))
        .await
        .expect("create after recovery");

    let keys: Vec<_> = client
        .list_all_accounts(None)
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.account_key)
        .collect();
    assert_eq!(
        keys,
        ["before", "after"],
        "the failed create left nothing behind"
    );

    drop(client);
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}
