//! The `patchbay` binary as a new user meets it: the embedded default starts with no
//! setup, `patchbay token` prints a token that server accepts, bad settings are named.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use patchbay_sdk::Client;
use patchbay_sdk::proto::ListAccountsRequest;
use patchbay_sdk::tonic::Code;

mod common;
use common::{BIN, explicit_keys};

fn patchbay(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PATCHBAY_DATA_DIR", data_dir);
    command
}

fn token(data_dir: &Path, role: &str) -> String {
    let output = patchbay(data_dir)
        .args([
            "token",
            "--role",
            role,
            "--workspace",
            "acme",
            "--ttl",
            "10m",
        ])
        .output()
        .expect("run patchbay token");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the token on stdout: {stdout:?}"
    );
    let token = stdout.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    token
}

/// Starts `patchbay serve` on a random port and returns it with its address.
fn serve(data_dir: &Path) -> (Child, String) {
    let mut child = patchbay(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn patchbay serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("patchbay listening") {
            let log: serde_json::Value = serde_json::from_str(&line).expect("json log line");
            let address = log["fields"]["address"]
                .as_str()
                .expect("address field")
                .to_owned();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (child, format!("http://{address}"));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("patchbay serve did not report its address");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait().expect("wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_server_accepts_the_tokens_patchbay_token_prints() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    // `token` before the first `serve`: both generate or reuse the same dev secret.
    let admin = token(data_dir.path(), "admin");
    let (mut server, endpoint) = serve(data_dir.path());
    assert!(
        data_dir.path().join("patchbay.db").exists(),
        "the SQLite file is created"
    );

    let client = Client::connect(endpoint.clone(), &admin)
        .await
        .expect("connect");
    let listed = client
        .accounts()
        .list_accounts(ListAccountsRequest::default())
        .await
        .expect("the printed token is accepted");
    assert!(listed.into_inner().accounts.is_empty());

    let supervisor = Client::connect(endpoint.clone(), &token(data_dir.path(), "supervisor"))
        .await
        .expect("connect");
    supervisor
        .list_all_accounts(None)
        .await
        .expect("a token minted while serving works too");

    // A token signed with another data directory's secret is refused.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let stranger = Client::connect(endpoint, &token(elsewhere.path(), "admin"))
        .await
        .expect("connect");
    let status = stranger
        .accounts()
        .list_accounts(ListAccountsRequest::default())
        .await
        .expect_err("another secret");
    assert_eq!(status.code(), Code::Unauthenticated);

    // Graceful shutdown waits for open connections: close ours first.
    drop((client, supervisor, stranger));
    let exit = terminate(&mut server);
    assert!(exit.success(), "SIGTERM stops the server cleanly: {exit:?}");
}

#[test]
fn bad_settings_are_named_and_refused() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let output = patchbay(data_dir.path())
        .args(["serve", "--public-base-url", "ftp://nope"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PATCHBAY_PUBLIC_BASE_URL"), "{stderr}");

    // An operator base URL on a refused address is named at start, without a lookup.
    let output = patchbay(data_dir.path())
        .args(["serve", "--graph-base-url", "http://127.0.0.1:9"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PATCHBAY_GRAPH_BASE_URL") && stderr.contains("loopback"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-private-outbound"), "{stderr}");

    let output = patchbay(data_dir.path())
        .env("PATCHBAY_JWT_SECRET", "too-short")
        .args(["token", "--role", "admin", "--workspace", "acme"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PATCHBAY_JWT_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("too-short"),
        "the secret is not echoed: {stderr}"
    );
    assert!(output.stdout.is_empty());

    let output = patchbay(data_dir.path())
        .args(["token", "--role", "root", "--workspace", "acme"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--role"));

    // The gateway has no workspace: one given is refused, none mints a token.
    let output = patchbay(data_dir.path())
        .args(["token", "--role", "gateway", "--workspace", "acme"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--workspace"));
    assert!(output.stdout.is_empty());
    let output = patchbay(data_dir.path())
        .args(["token", "--role", "gateway"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .split('.')
            .count(),
        3
    );
    let output = patchbay(data_dir.path())
        .args(["token", "--role", "service"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--workspace"));
}

/// Keys fail closed: with a database URL and no keys, `serve` and `keys rotate` refuse to
/// start, naming the settings, and generate nothing; `keys generate` still works.
#[test]
fn servers_off_the_embedded_default_refuse_to_start_without_keys() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    for args in [&["serve"][..], &["keys", "rotate"][..]] {
        let output = patchbay(data_dir.path())
            .env(
                "PATCHBAY_DATABASE_URL",
                "postgres://patchbay@127.0.0.1:9/patchbay",
            )
            .args(args)
            .output()
            .expect("run");
        assert!(!output.status.success(), "{args:?} must refuse");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("PATCHBAY_ENCRYPTION_KEYS"),
            "{args:?}: {stderr}"
        );
        if args[0] == "serve" {
            assert!(stderr.contains("PATCHBAY_JWT_SECRET"), "{stderr}");
        }
    }
    let generated: Vec<_> = std::fs::read_dir(data_dir.path())
        .expect("data dir")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .collect();
    assert!(generated.is_empty(), "nothing generated: {generated:?}");

    let output = patchbay(data_dir.path())
        .env(
            "PATCHBAY_DATABASE_URL",
            "postgres://patchbay@127.0.0.1:9/patchbay",
        )
        .args(["keys", "generate"])
        .output()
        .expect("run");
    assert!(output.status.success(), "keys generate always works");
}

/// Plaintext stays on loopback: a non-loopback listen address without TLS refuses to
/// start, naming the settings, unless a mesh terminates TLS (--allow-plaintext).
#[test]
fn a_non_loopback_plaintext_listener_needs_the_flag() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let keys = explicit_keys(data_dir.path());
    let output = patchbay(data_dir.path())
        .envs(keys.clone())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .expect("run");
    assert!(!output.status.success(), "refused");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for setting in [
        "PATCHBAY_LISTEN",
        "PATCHBAY_TLS_CERT_FILE",
        "PATCHBAY_ALLOW_PLAINTEXT",
    ] {
        assert!(stderr.contains(setting), "{setting} in {stderr}");
    }

    let mut child = patchbay(data_dir.path())
        .envs(keys)
        .env("PATCHBAY_ALLOW_PLAINTEXT", "true")
        .args(["serve", "--listen", "0.0.0.0:0", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let listening = lines
        .map_while(Result::ok)
        .find(|line| line.contains("patchbay listening"));
    assert!(
        listening.as_deref().is_some_and(|l| l.contains("0.0.0.0:")),
        "started with the flag: {listening:?}"
    );
    assert!(terminate(&mut child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_generate_and_rotate_move_secrets_to_the_new_key() {
    use patchbay_sdk::proto::{Channel, CreateAccountRequest};

    let data_dir = tempfile::tempdir().expect("tempdir");
    let admin = token(data_dir.path(), "admin");
    let (mut server, endpoint) = serve(data_dir.path());
    let client = Client::connect(endpoint, &admin).await.expect("connect");
    let mut config = patchbay_sdk::prost_types::Struct::default();
    config.fields.insert(
        "api_key".into(),
        patchbay_sdk::prost_types::Value {
            kind: Some(patchbay_sdk::prost_types::value::Kind::StringValue(
                "k-123".into(),
            )),
        },
    );
    client
        .create_account(CreateAccountRequest {
            channel: Channel::Sms.into(),
            account_key: "line-1".into(),
            config: Some(config),
            ..Default::default()
        })
        .await
        .expect("create");
    drop(client);
    assert!(terminate(&mut server).success());

    // The dev key ring was generated on first start, owner-only.
    let ring_path = data_dir.path().join("encryption-keys.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ring_path)
            .expect("ring")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let output = patchbay(data_dir.path())
        .args(["keys", "generate"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let entry: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    let id = entry["id"].as_str().expect("id").to_owned();
    let key = entry["key"].as_str().expect("key").to_owned();

    let mut ring: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ring_path).expect("read")).expect("json");
    ring["keys"][&id] = serde_json::Value::String(key);
    ring["active"] = serde_json::Value::String(id.clone());
    std::fs::write(&ring_path, ring.to_string()).expect("write");

    let output = patchbay(data_dir.path())
        .args(["keys", "rotate", "--batch-size", "10"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&format!("rotated to key {id}")), "{stdout}");
    assert!(
        stdout.contains("1 rewritten, 2 secrets re-encrypted"),
        "{stdout}"
    );
    assert!(!stdout.contains("k-123"));

    let again = patchbay(data_dir.path())
        .args(["keys", "rotate"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 rewritten"));
}

/// SIGTERM during in-flight calls: they complete, new calls are refused, and the process
/// exits 0 within the drain timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_calls_finish_and_exits_cleanly() {
    use patchbay_sdk::proto::{Channel, CreateAccountRequest};
    use sea_orm::{ConnectionTrait, Database, TransactionTrait};

    let data_dir = tempfile::tempdir().expect("tempdir");
    let admin = token(data_dir.path(), "admin");
    let (mut server, endpoint) = serve(data_dir.path());
    let client = Client::connect(endpoint.clone(), &admin)
        .await
        .expect("connect");
    let create = |key: &str| CreateAccountRequest {
        channel: Channel::Sms.into(),
        account_key: key.into(),
        ..Default::default()
    };
    client
        .create_account(create("warm"))
        .await
        .expect("warm up");

    // A load balancer's health watch stays open across the shutdown.
    let channel = patchbay_sdk::tonic::transport::Endpoint::from_shared(endpoint.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut watch = tonic_health::pb::health_client::HealthClient::new(channel)
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("first status")
        .expect("a status");
    assert_eq!(
        first.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Hold the database so that the next calls stay in flight.
    let db = Database::connect(format!(
        "sqlite://{}?mode=rw",
        data_dir.path().join("patchbay.db").display()
    ))
    .await
    .expect("database");
    let lock = db
        .begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Exclusive),
            ..Default::default()
        })
        .await
        .expect("lock");
    lock.execute_unprepared("UPDATE accounts SET revision = revision")
        .await
        .expect("hold");
    let in_flight: Vec<_> = ["slow-1", "slow-2"]
        .into_iter()
        .map(|key| {
            let client = client.clone();
            let request = create(key);
            tokio::spawn(async move { client.create_account(request).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let terminated = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.rollback().await.expect("release");

    // The watcher learns NOT_SERVING, then its stream ends with a clear status.
    let mut statuses = Vec::new();
    let ended = loop {
        match watch.message().await {
            Ok(Some(update)) => statuses.push(update.status),
            Ok(None) => panic!("the watch ended without a status"),
            Err(status) => break status,
        }
    };
    assert!(
        statuses
            .contains(&(tonic_health::pb::health_check_response::ServingStatus::NotServing as i32)),
        "{statuses:?}"
    );
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("shutting down"), "{ended:?}");

    for call in in_flight {
        call.await
            .expect("task")
            .expect("an in-flight call completes during the drain");
    }
    drop(client);
    let refused = match Client::connect(endpoint, &admin).await {
        Err(_) => true,
        Ok(late) => late.list_all_accounts(None).await.is_err(),
    };
    assert!(refused, "a new call is refused once the server drains");
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = server.try_wait().expect("status") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit within the drain timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        terminated.elapsed() < Duration::from_secs(10),
        "the open watch did not hold the process for the drain timeout: {:?}",
        terminated.elapsed()
    );
}

/// Spans reach an OTLP collector, continuing the caller's W3C trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_with_the_callers_trace() {
    export_to_a_collector(false).await;
}

/// An https:// collector: the exporter speaks TLS, trusting the given CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_https_collector() {
    export_to_a_collector(true).await;
}

async fn export_to_a_collector(tls: bool) {
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;

    #[derive(Clone, Default)]
    struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

    #[patchbay_sdk::tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: patchbay_sdk::tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<
            patchbay_sdk::tonic::Response<ExportTraceServiceResponse>,
            patchbay_sdk::tonic::Status,
        > {
            if let Ok(mut received) = self.0.lock() {
                received.push(request.into_inner());
            }
            Ok(patchbay_sdk::tonic::Response::new(
                ExportTraceServiceResponse {
                    partial_success: None,
                },
            ))
        }
    }

    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let collector_addr = listener.local_addr().expect("address");
    let receiver = collector.clone();
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut builder = patchbay_sdk::tonic::transport::Server::builder();
    let mut scheme = "http";
    let mut exporter_env = Vec::new();
    if tls {
        let ca = test_ca();
        let (cert, key) = issue_server_certificate(&ca);
        let ca_file = data_dir.path().join("collector-ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        exporter_env.push((
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ca_file.display().to_string(),
        ));
        builder = builder
            .tls_config(
                patchbay_sdk::tonic::transport::ServerTlsConfig::new().identity(
                    patchbay_sdk::tonic::transport::Identity::from_pem(cert, key),
                ),
            )
            .expect("collector TLS");
        scheme = "https";
    }
    tokio::spawn(async move {
        let _ = builder
            .add_service(TraceServiceServer::new(receiver))
            .serve_with_incoming(patchbay_sdk::tonic::transport::server::TcpIncoming::from(
                listener,
            ))
            .await;
    });

    let admin = token(data_dir.path(), "admin");
    let mut child = patchbay(data_dir.path())
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{scheme}://{collector_addr}"),
        )
        .envs(exporter_env)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut endpoint = None;
    while let Some(Ok(line)) = lines.next() {
        if line.contains("patchbay listening") {
            let log: serde_json::Value = serde_json::from_str(&line).expect("json");
            endpoint = log["fields"]["address"]
                .as_str()
                .map(|a| format!("http://{a}"));
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let endpoint = endpoint.expect("server address");

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client = Client::connect(endpoint, &admin).await.expect("connect");
    let mut request = patchbay_sdk::tonic::Request::new(ListAccountsRequest::default());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .expect("header"),
    );
    client
        .accounts()
        .list_accounts(request)
        .await
        .expect("call");
    drop(client);
    // Shutting down flushes the batch of spans.
    assert!(terminate(&mut child).success());

    let spans: Vec<_> = collector
        .0
        .lock()
        .expect("received")
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter().cloned())
        .collect();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let call = spans
        .iter()
        .find(|s| s.name == "patchbay.v1.AccountService/ListAccounts")
        .unwrap_or_else(|| {
            panic!(
                "no span for the call among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        hex(&call.trace_id),
        TRACE_ID,
        "the caller's trace continues"
    );
    assert_eq!(hex(&call.parent_span_id), "00f067aa0ba902b7");
    let status = call
        .attributes
        .iter()
        .find(|a| a.key == "rpc.grpc.status_code")
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.clone());
    assert_eq!(status, Some(AnyValue::IntValue(0)));
}

/// A config file fills in what flags and PATCHBAY_* variables leave unset, and a bad key
/// is named.
#[test]
fn config_file_settings_yield_to_environment_and_flags() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let file = data_dir.path().join("patchbay.toml");
    std::fs::write(
        &file,
        "public-base-url = \"ftp://from-the-file\"\njwt-issuer = \"file-issuer\"\n",
    )
    .expect("write");
    // The file's bad public-base-url is used when nothing overrides it…
    let output = patchbay(data_dir.path())
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ftp://from-the-file"));

    // …and the environment overrides it: the token minted with the file's issuer is
    // accepted by a server whose base URL came from the environment.
    let (mut server, endpoint) = {
        let mut child = patchbay(data_dir.path())
            .env("PATCHBAY_CONFIG", &file)
            .env("PATCHBAY_PUBLIC_BASE_URL", "https://hooks.example.com")
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut endpoint = String::new();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("patchbay listening") {
                let log: serde_json::Value = serde_json::from_str(&line).expect("json");
                endpoint = format!(
                    "http://{}",
                    log["fields"]["address"].as_str().expect("address")
                );
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        (child, endpoint)
    };
    assert!(
        !endpoint.is_empty(),
        "the server started with the environment's URL"
    );
    let token = patchbay(data_dir.path())
        .env("PATCHBAY_CONFIG", &file)
        .args(["token", "--role", "admin", "--workspace", "acme"])
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let payload = token.split('.').nth(1).expect("payload");
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("claims");
    assert_eq!(claims["iss"], "file-issuer", "the file sets the issuer");
    assert!(terminate(&mut server).success());

    std::fs::write(&file, "listen-adress = \"127.0.0.1:1\"\n").expect("write");
    let output = patchbay(data_dir.path())
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"listen-adress\""));
}

fn test_ca() -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "collector CA");
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("key"))
        .expect("CA")
}

/// A certificate for 127.0.0.1 signed by `ca`, and its key, in PEM.
fn issue_server_certificate(
    ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
) -> (String, String) {
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("certificate");
    (cert.pem(), key.serialize_pem())
}
