//! Shared pieces of the load tools: starting a real `patchbay serve` on a loopback port
//! with a fresh data directory, minting tokens with it, and reading its memory use.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// The Meta app secret the benchmark servers verify webhook signatures with.
pub const BENCH_META_APP_SECRET: &str = "bench-meta-app-secret";

/// A `patchbay serve` process of the tool's own.
pub struct Server {
    pub child: Child,
    pub endpoint: String,
    pub binary: PathBuf,
    /// Holds the keys (and the SQLite file); replicas share it.
    pub data_dir: Arc<tempfile::TempDir>,
    database_url: Option<String>,
    /// Its Prometheus listener (every benchmark server serves metrics: the targets are
    /// measured with them on).
    metrics_endpoint: Option<String>,
}

impl Server {
    /// Starts `binary serve` on 127.0.0.1 (a random port) with a fresh data directory;
    /// `database_url` switches from the embedded SQLite to PostgreSQL.
    pub fn start(binary: &Path, database_url: Option<&str>) -> Result<Server, String> {
        let data_dir = Arc::new(tempfile::tempdir().map_err(|e| e.to_string())?);
        Self::start_in(binary, database_url, data_dir)
    }

    /// Another server on the same database with the same keys and token secret: a
    /// second replica (PostgreSQL only; SQLite is single-replica).
    pub fn replica(&self) -> Result<Server, String> {
        Self::start_in(
            &self.binary,
            self.database_url.as_deref(),
            self.data_dir.clone(),
        )
    }

    /// A server on `database_url` (SQLite or PostgreSQL) with the keys of `data_dir`
    /// (see [`explicit_keys`]): one whose database was written before it started.
    pub fn start_on(
        binary: &Path,
        database_url: &str,
        data_dir: Arc<tempfile::TempDir>,
    ) -> Result<Server, String> {
        Self::start_in(binary, Some(database_url), data_dir)
    }

    fn start_in(
        binary: &Path,
        database_url: Option<&str>,
        data_dir: Arc<tempfile::TempDir>,
    ) -> Result<Server, String> {
        let mut command = Command::new(binary);
        command
            .env("PATCHBAY_DATA_DIR", data_dir.path())
            .envs(explicit_keys(binary, data_dir.path())?)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = database_url {
            command.env("PATCHBAY_DATABASE_URL", url);
        }
        // A Meta app, so that RouteWebhook checks the app-level signature, and a
        // stand-in Meta that vouches for the pages' tokens (they own their pages).
        command
            .env("PATCHBAY_META_APP_ID", "bench-meta-app")
            .env("PATCHBAY_META_APP_SECRET", BENCH_META_APP_SECRET)
            .env("PATCHBAY_GRAPH_BASE_URL", stand_in_meta()?)
            .env("PATCHBAY_ALLOW_PRIVATE_OUTBOUND", "true");
        // The address is logged at INFO; ask for that line only.
        command.env("PATCHBAY_LOG", "warn,patchbay::startup=info");
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut metrics_endpoint = None;
        while let Some(Ok(line)) = lines.next() {
            let address = || -> Result<String, String> {
                let log: serde_json::Value =
                    serde_json::from_str(&line).map_err(|e| e.to_string())?;
                Ok(log["fields"]["address"]
                    .as_str()
                    .ok_or("no address")?
                    .to_owned())
            };
            if line.contains("metrics listening") {
                metrics_endpoint = Some(format!("http://{}/metrics", address()?));
            }
            if line.contains("patchbay listening") {
                let address = address()?;
                std::thread::spawn(move || for _ in lines {});
                return Ok(Server {
                    child,
                    endpoint: format!("http://{address}"),
                    binary: binary.to_owned(),
                    data_dir,
                    database_url: database_url.map(str::to_owned),
                    metrics_endpoint,
                });
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err("patchbay serve exited before listening".to_owned())
    }

    /// A token minted with the server's development secret.
    pub fn token(&self, role: &str, workspace: &str) -> Result<String, String> {
        let output = Command::new(&self.binary)
            .env("PATCHBAY_DATA_DIR", self.data_dir.path())
            .envs(explicit_keys(&self.binary, self.data_dir.path())?)
            .args(["token", "--role", role, "--ttl", "1d"])
            // The gateway has no workspace.
            .args(if role == "gateway" {
                vec![]
            } else {
                vec!["--workspace", workspace]
            })
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Calls the server has refused RESOURCE_EXHAUSTED so far (its
    /// `patchbay_grpc_shed_total`, every reason): a measurement must shed none.
    pub async fn shed_calls(&self) -> Result<f64, String> {
        let shed: f64 = self
            .metric("patchbay_grpc_shed_total")
            .await?
            .into_iter()
            .sum();
        Ok(shed.max(0.0))
    }

    /// The values of the server's series named `series` (any labels), from one scrape
    /// of its `/metrics`.
    pub async fn metric(&self, series: &str) -> Result<Vec<f64>, String> {
        let endpoint = self
            .metrics_endpoint
            .as_deref()
            .ok_or("no metrics listener")?;
        let text = reqwest::get(endpoint)
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        Ok(text
            .lines()
            .filter(|line| {
                line.strip_prefix(series)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .collect())
    }

    /// The server's resident memory, in KiB (Linux `/proc`).
    pub fn rss_kib(&self) -> Option<u64> {
        self.proc_status_kib("VmRSS:")
    }

    /// The server's peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.proc_status_kib("VmHWM:")
    }

    /// CPU time the server has used so far (user + system).
    pub fn cpu_time(&self) -> Option<std::time::Duration> {
        process_cpu_time(&self.child.id().to_string())
    }

    fn proc_status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A server still running when its handle goes (a measurement failed and returned
/// early) is killed, so that a failed run leaves no process behind to skew the next.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Keys fail closed off the embedded default (a PostgreSQL server has no development
/// keys), so every server of the tools gets explicit ones: a key ring and an HS256
/// secret made by `patchbay keys generate`, written once into the data directory that
/// replicas share. Returns the variables that point `serve` and `token` at them.
pub fn explicit_keys(binary: &Path, dir: &Path) -> Result<Vec<(&'static str, PathBuf)>, String> {
    let ring = dir.join("explicit-keys.json");
    let secret = dir.join("explicit-jwt.secret");
    if !(ring.exists() && secret.exists()) {
        let generate = || -> Result<(String, String), String> {
            let output = Command::new(binary)
                .args(["keys", "generate"])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
            let entry: serde_json::Value =
                serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
            match (entry["id"].as_str(), entry["key"].as_str()) {
                (Some(id), Some(key)) => Ok((id.to_owned(), key.to_owned())),
                _ => Err("keys generate printed no key".to_owned()),
            }
        };
        let (id, key) = generate()?;
        let json = serde_json::json!({"active": id, "keys": {id: key}}).to_string();
        std::fs::write(&ring, json).map_err(|e| e.to_string())?;
        std::fs::write(&secret, generate()?.1).map_err(|e| e.to_string())?;
    }
    Ok(vec![
        ("PATCHBAY_ENCRYPTION_KEYS_FILE", ring),
        ("PATCHBAY_JWT_SECRET_FILE", secret),
    ])
}

/// CPU time the whole machine spent busy (every core: user, nice, system, irq and
/// softirq; not idle, I/O wait or time stolen by the hypervisor), from `/proc/stat`.
/// What is left after the server's and the load generator's own is everything else on
/// the machine: PostgreSQL, and the kernel's work for the loopback connections. (It
/// counts every core of the host: under a CPU quota it also counts what others run.)
pub fn machine_cpu_time() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| ticks.get(i)).sum();
    Some(std::time::Duration::from_millis(busy * 10))
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`
/// (`pid` may be `self`).
pub fn process_cpu_time(pid: &str) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Clock ticks; Linux reports them at 100 per second (USER_HZ).
    Some(std::time::Duration::from_millis((utime + stime) * 10))
}

/// The base URL of a stand-in Meta on loopback, started once per process: its
/// `debug_token` says a token `EAAP-bench-{n}` of [`seed_pages`] is page `n`'s page
/// token (`profile_id`, as a recorded page token's answer has it:
/// bk-rs/facebook-apis-rs, debug_token__page_access_token.json). Everything else is
/// Graph's "does not exist" error.
fn stand_in_meta() -> Result<String, String> {
    static BASE: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = sender.send(Err(err.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                    Ok(listener) => listener,
                    Err(err) => {
                        let _ = sender.send(Err(err.to_string()));
                        return;
                    }
                };
                let address = listener.local_addr().map_err(|e| e.to_string());
                let _ = sender.send(address.map(|a| format!("http://{a}")));
                let app = axum::Router::new().fallback(stand_in_answer);
                let _ = axum::serve(listener, app).await;
            });
        });
        receiver.recv().map_err(|e| e.to_string())?
    })
    .clone()
}

async fn stand_in_answer(
    uri: axum::http::Uri,
) -> (
    axum::http::StatusCode,
    [(axum::http::HeaderName, &'static str); 1],
    String,
) {
    use axum::http::{StatusCode, header::CONTENT_TYPE};
    let json = [(CONTENT_TYPE, "application/json")];
    let page = uri
        .path()
        .ends_with("/debug_token")
        .then(|| {
            uri.query()?
                .split('&')
                .find_map(|pair| pair.strip_prefix("input_token=EAAP-bench-"))?
                .parse::<usize>()
                .ok()
        })
        .flatten();
    match page {
        Some(n) => {
            let id = page_id(n);
            let body = serde_json::json!({"data": {"app_id": "bench-meta-app", "type": "PAGE",
                "is_valid": true, "expires_at": 0, "profile_id": id,
                "scopes": ["pages_messaging"],
                "granular_scopes": [{"scope": "pages_messaging", "target_ids": [id]}]}});
            (StatusCode::OK, json, body.to_string())
        }
        None => {
            let body = serde_json::json!({"error": {"message": "Unsupported get request.",
                "type": "GraphMethodException", "code": 100, "error_subcode": 33}});
            (StatusCode::BAD_REQUEST, json, body.to_string())
        }
    }
}

/// The Facebook Page id of the benchmark's page `n`.
fn page_id(n: usize) -> String {
    format!("{}", 900_000 + n)
}

/// `count` Messenger pages, `page-0`…, with their page tokens: what signed webhook
/// bodies route to.
pub async fn seed_pages(
    admin: &patchbay_sdk::Client,
    count: usize,
) -> Result<(), patchbay_sdk::Error> {
    use patchbay_sdk::prost_types::{Struct, Value, value::Kind};
    use patchbay_sdk::proto;
    let text = |s: String| Value {
        kind: Some(Kind::StringValue(s)),
    };
    let mut unconfirmed = 0;
    for page in 0..count {
        let created = admin
            .create_account(proto::CreateAccountRequest {
                channel: proto::Channel::Messenger.into(),
                account_key: format!("page-{page}"),
                display_name: format!("Page {page}"),
                config: Some(Struct {
                    fields: [
                        ("page_id".to_owned(), text(page_id(page))),
                        (
                            "page_access_token".to_owned(),
                            text(format!("EAAP-bench-{page:06}")),
                        ),
                    ]
                    .into(),
                }),
                ..Default::default()
            })
            .await?;
        if created.ownership != i32::from(proto::Ownership::Confirmed) {
            unconfirmed += 1;
        }
    }
    // An unconfirmed page routes nothing: RouteWebhook would measure refusals.
    if unconfirmed > 0 {
        eprintln!("MISS: {unconfirmed} of {count} pages are not confirmed by the stand-in Meta");
    }
    Ok(())
}

/// One signed app-level Meta body per page of [`seed_pages`], as Meta posts it
/// (X-Hub-Signature-256: HMAC-SHA256 of the raw body with the app secret).
pub fn signed_page_bodies(count: usize) -> Vec<patchbay_sdk::proto::RouteWebhookRequest> {
    use hmac::{KeyInit, Mac};
    (0..count)
        .map(|page| {
            let id = page_id(page);
            let body = format!(
                r#"{{"object":"page","entry":[{{"id":"{id}","time":1700000000,"messaging":[{{"sender":{{"id":"123"}},"recipient":{{"id":"{id}"}},"timestamp":1700000000,"message":{{"mid":"m_{page}","text":"hello"}}}}]}}]}}"#,
            );
            let mut mac =
                <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(BENCH_META_APP_SECRET.as_bytes())
                    .expect("any key length");
            mac.update(body.as_bytes());
            let signature: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            patchbay_sdk::proto::RouteWebhookRequest {
                method: "POST".into(),
                url: "http://localhost:8080/webhooks/meta".into(),
                headers: [
                    ("content-type".to_owned(), "application/json".to_owned()),
                    ("x-hub-signature-256".to_owned(), format!("sha256={signature}")),
                ]
                .into_iter()
                .collect(),
                raw_body: body.into_bytes(),
            }
        })
        .collect()
}
