//! Every client hears the server: one Patchbay server on 127.0.0.1 (a random port,
//! SQLite) called by gRPC clients nobody on this project wrote, beside the SDK:
//!
//! - Python `grpcio` with `grpcio-status` and `grpcio-reflection` (`python/runner.py`);
//! - Node `@grpc/grpc-js` with `@grpc/proto-loader` (`node/runner.js`);
//! - `buf curl` (connect-go), schema from the server's reflection (`buf.rs`).
//!
//! Each is pinned and installed under `target/interop/` by `scripts/interop-clients`,
//! which `scripts/test` runs first; a missing client fails this suite. Every client
//! runs the same cases (`plan.rs`) in a workspace of its own, at the same time: every
//! RPC of the descriptor set once with success, the refusals (no token, a bad one, a
//! role that may not, field violations decoded by the client's own status-details
//! support), every error of the server streams, the workspace's watch share and a
//! cancel that frees its place, compressed requests, `x-request-id`; grpcio also
//! keeps an idle watch open on a channel that pings every second, and buf curl makes
//! a gRPC-Web call over HTTP/1.1. Last, with a watch open in every client, the
//! process gets SIGTERM — the server's own signal handler, as `patchbay serve`'s —
//! and each watch must end UNAVAILABLE.
//!
//! This test is its own binary: the SIGTERM it sends itself reaches only this server.

mod buf;
mod fixtures;
mod meta;
mod plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use patchbay::config::ServerSettings;
use patchbay_e2e::{Backend, TestApp, TestOptions, all_providers_at, proto};
use patchbay_sdk::tonic::Code;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::plan::{Call, Case, Expect};

pub use patchbay_e2e::META_APP_ID;
pub const REDIRECT: &str = "https://app.example.test/oauth/callback";
/// Watches each workspace may hold at once.
const WATCH_SHARE: usize = 2;

/// One line a client printed: a case's outcome, or that its last watch is open.
#[derive(Deserialize, Debug, Clone)]
pub struct Outcome {
    pub case: Option<String>,
    pub client: String,
    pub code: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub responses: Vec<String>,
    pub request_id: Option<String>,
    pub violations: Option<Vec<(String, String)>>,
    pub ready: Option<bool>,
    pub typed: Option<Value>,
}

#[derive(Serialize)]
struct Plan {
    target: String,
    proto_root: PathBuf,
    cases: Vec<Call>,
    watch_share: Value,
    keepalive: Option<Value>,
    typed: Value,
    #[serde(rename = "final")]
    last: Call,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_owned()
}

/// A client of the plan's installation, or a failure that says how to install it.
fn installed(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: the interop clients are installed by ./scripts/interop-clients \
         (./scripts/test runs it); this suite never skips a client",
        path.display()
    );
    path
}

fn descriptors() -> DescriptorPool {
    let mut pool = DescriptorPool::decode(patchbay_sdk::FILE_DESCRIPTOR_SET).expect("descriptors");
    pool.decode_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .expect("health descriptors");
    pool
}

fn watch(name: &str, token: &str) -> Call {
    Call {
        name: name.to_owned(),
        timeout_ms: 0,
        ..plan::call(
            "",
            "/patchbay.v1.AccountService/WatchDefaultAccounts",
            Some(token),
            &proto::WatchDefaultAccountsRequest::default(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_other_stacks_hear_every_answer() {
    let root = repository();
    let interop = root.join("target/interop");
    let python = installed(interop.join("venv/bin/python"));
    let node_modules = installed(interop.join("node/node_modules"));
    // The platform's own binary: `.bin/buf` is a Node shim, and killing it (a client
    // going away) would leave the real process and its streams running.
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        other => other,
    };
    let buf_binary = installed(node_modules.join(format!("@bufbuild/buf-linux-{arch}/bin/buf")));

    let meta = meta::stand_in().await;
    let options = TestOptions {
        provider_urls: all_providers_at(&meta.uri()),
        server: ServerSettings {
            max_watch_streams_per_workspace: WATCH_SHARE,
            ..ServerSettings::default()
        },
        ..TestOptions::default()
    };
    let app = TestApp::spawn_until(
        Backend::Sqlite,
        options,
        patchbay::startup::shutdown_signal(),
    )
    .await;
    let target = app.addr.to_string();

    let mut fixtures = BTreeMap::new();
    for tag in ["python", "node", "buf", "keepalive", "sdk"] {
        fixtures.insert(tag, fixtures::prepare(&app, tag).await);
    }
    let cases: BTreeMap<&str, Vec<Case>> = ["python", "node", "buf"]
        .into_iter()
        .map(|tag| {
            let mut cases = plan::cases(&fixtures[tag]);
            if tag == "buf" {
                // buf curl has no flag to compress a request.
                cases.retain(|case| !case.call.compress);
            } else {
                cases.push(plan::gzip_bomb(&fixtures[tag]));
            }
            (tag, cases)
        })
        .collect();

    let (outcomes, mut heard) = mpsc::unbounded_channel::<Outcome>();
    let dir = tempfile::tempdir().expect("plan dir");
    let mut runners = Vec::new();
    for (tag, program, script) in [
        (
            "python",
            python.clone(),
            root.join("tests/interop/python/runner.py"),
        ),
        (
            "node",
            PathBuf::from("node"),
            root.join("tests/interop/node/runner.js"),
        ),
    ] {
        let f = &fixtures[tag];
        let keeper = &fixtures["keepalive"];
        let plan = Plan {
            target: target.clone(),
            proto_root: root.join("proto"),
            cases: cases[tag].iter().map(|c| c.call.clone()).collect(),
            watch_share: json!(Call {
                name: "watch_share".into(),
                ..watch("", &f.service)
            })
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.insert("share".into(), json!(WATCH_SHARE));
                Value::Object(o)
            })
            .expect("object"),
            keepalive: (tag == "python").then(|| {
                json!({
                    "watch": watch("keepalive", &keeper.service),
                    "change": plan::call(
                        "change",
                        "/patchbay.v1.AccountService/SetDefaultAccount",
                        Some(&keeper.admin),
                        &proto::SetDefaultAccountRequest { id: keeper.other_email.clone(), expected_revision: None },
                    ),
                })
            }),
            typed: json!({"token": f.service}),
            last: watch("sigterm_ends_watch", &f.service),
        };
        let path = dir.path().join(format!("{tag}.json"));
        std::fs::write(&path, serde_json::to_vec(&plan).expect("plan")).expect("plan written");
        let mut child = tokio::process::Command::new(&program)
            .arg(&script)
            .arg(&path)
            .env("NODE_PATH", &node_modules)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("{} does not start: {err}", program.display()));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let outcomes = outcomes.clone();
        runners.push(tokio::spawn(async move {
            let mut ready = false;
            while let Ok(Some(line)) = lines.next_line().await {
                let outcome: Outcome = serde_json::from_str(&line)
                    .unwrap_or_else(|err| panic!("{tag} printed {line:?}: {err}"));
                ready |= outcome.ready == Some(true);
                let _ = outcomes.send(outcome);
            }
            if !ready {
                // A runner that ended early: say so, so that the others are not
                // waited for in vain; the check names what it did not report.
                let _ = outcomes.send(Outcome {
                    ready: Some(true),
                    client: format!("{tag} (ended early)"),
                    ..named_ok("")
                });
            }
            child.wait().await.expect("runner exits")
        }));
    }

    let buf = buf::Buf {
        binary: buf_binary,
        target: target.clone(),
        pool: descriptors(),
    };
    let buf_cases = cases["buf"].clone();
    let buf_fixture_service = fixtures["buf"].service.clone();
    let buf_outcomes = outcomes.clone();
    let buf_runner = tokio::spawn(async move {
        run_buf(&buf, &buf_cases, &buf_fixture_service, &buf_outcomes).await
    });
    drop(outcomes);

    // The SDK beside them: a compressed call, and a stream's error.
    sdk_cases(&app, &fixtures["sdk"]).await;

    // Everything each client reports, until each holds its last watch.
    let mut all = Vec::new();
    let mut ready = 0;
    while ready < 3 {
        let outcome = tokio::time::timeout(Duration::from_secs(120), heard.recv())
            .await
            .expect("the clients report within two minutes");
        let Some(outcome) = outcome else { break };
        if outcome.ready == Some(true) {
            ready += 1;
        } else {
            all.push(outcome);
        }
    }
    // SIGTERM, as an orchestrator stops `patchbay serve`.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    while let Some(outcome) = tokio::time::timeout(Duration::from_secs(60), heard.recv())
        .await
        .expect("the watches end within a minute")
    {
        all.push(outcome);
    }
    for runner in runners {
        let exit = runner.await.expect("runner task");
        assert!(exit.success(), "a client runner failed: {exit}");
    }
    buf_runner.await.expect("buf runner");

    let failures = check(&cases, &all, &fixtures);
    assert!(
        failures.is_empty(),
        "{} interop case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.stop().await;
}

/// The same cases through buf curl, then the watch share, a gRPC-Web call over
/// HTTP/1.1, and its last watch.
async fn run_buf(
    buf: &buf::Buf,
    cases: &[Case],
    service: &str,
    out: &mpsc::UnboundedSender<Outcome>,
) {
    for case in cases {
        let _ = out.send(buf.run(&case.call, "grpc").await);
    }
    let web = cases
        .iter()
        .find(|case| {
            case.call.method.ends_with("/GetDefaultAccount") && case.call.name.starts_with("ok")
        })
        .expect("a GetDefaultAccount case");
    let mut outcome = buf.run(&web.call, "grpcweb").await;
    outcome.case = Some("grpc_web_http1:GetDefaultAccount".into());
    let _ = out.send(outcome);

    let share = watch("watch_share", service);
    let mut held = Vec::new();
    // The watches of the cases above give their places back as the server notices
    // them gone: a place may take a moment to be free.
    let started = tokio::time::Instant::now();
    while held.len() < WATCH_SHARE {
        match buf.open(&share).await {
            Ok(child) => held.push(child),
            Err(_) if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(failed) => {
                let _ = out.send(Outcome {
                    case: Some("watch_share_filled".into()),
                    ..failed
                });
                return;
            }
        }
    }
    let _ = out.send(named_ok("watch_share_filled"));
    let beyond = match buf.open(&share).await {
        Ok(_) => named_ok("watch_beyond_share"),
        Err(refused) => Outcome {
            case: Some("watch_beyond_share".into()),
            ..refused
        },
    };
    let _ = out.send(beyond);
    // Killing the process is the client going away; its place comes back.
    let mut gone = held.pop().expect("a held watch");
    let _ = gone.kill().await;
    let started = tokio::time::Instant::now();
    let after = loop {
        match buf.open(&share).await {
            Ok(child) => {
                held.push(child);
                break named_ok("watch_after_cancel");
            }
            Err(refused) if started.elapsed() > Duration::from_secs(5) => {
                break Outcome {
                    case: Some("watch_after_cancel".into()),
                    ..refused
                };
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let _ = out.send(after);
    for mut child in held {
        let _ = child.kill().await;
    }

    let last = watch("sigterm_ends_watch", service);
    // The places of the watches just killed come back as the server notices.
    let started = tokio::time::Instant::now();
    let opened = loop {
        match buf.open(&last).await {
            Err(refused)
                if refused.code.as_deref() == Some("RESOURCE_EXHAUSTED")
                    && started.elapsed() < Duration::from_secs(5) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            opened => break opened,
        }
    };
    match opened {
        Ok(child) => {
            let _ = out.send(Outcome {
                ready: Some(true),
                ..named_ok("")
            });
            let _ = out.send(buf.ended(&last, child).await);
        }
        Err(failed) => {
            let _ = out.send(Outcome {
                ready: Some(true),
                ..named_ok("")
            });
            let _ = out.send(failed);
        }
    }
}

fn named_ok(name: &str) -> Outcome {
    Outcome {
        case: Some(name.to_owned()),
        client: buf::CLIENT.to_owned(),
        code: Some("OK".into()),
        message: String::new(),
        responses: Vec::new(),
        request_id: None,
        violations: None,
        ready: None,
        typed: None,
    }
}

/// The SDK, with compression on, and a stream's error through tonic.
async fn sdk_cases(app: &TestApp, f: &fixtures::Fixture) {
    let options =
        patchbay_sdk::ConnectOptions::new().compression(patchbay_sdk::CompressionEncoding::Gzip);
    let client =
        patchbay_sdk::Client::connect_with(format!("http://{}", app.addr), &f.service, &options)
            .await
            .expect("the SDK connects");
    let default = client
        .default_account(proto::Channel::Email, None)
        .await
        .expect("a compressed GetDefaultAccount");
    assert_eq!(default.id, f.default_email);
    let mut stream = client
        .accounts()
        .watch_account_events(proto::WatchAccountEventsRequest {
            after_revision: Some(1_000_000),
            ..Default::default()
        })
        .await;
    let status = match stream.as_mut() {
        Ok(stream) => stream.get_mut().message().await.expect_err("an error"),
        Err(status) => status.clone(),
    };
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
}

fn code_name(code: Code) -> String {
    format!("{code:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let lead = (i > 0 && c.is_uppercase()).then_some('_');
            lead.into_iter().chain(c.to_uppercase())
        })
        .collect()
}

/// What went wrong, one line a case and client; empty when everything held.
fn check(
    cases: &BTreeMap<&str, Vec<Case>>,
    outcomes: &[Outcome],
    fixtures: &BTreeMap<&str, fixtures::Fixture>,
) -> Vec<String> {
    let pool = descriptors();
    let mut failures = Vec::new();
    let client_of = |tag: &str| match tag {
        "python" => "python-grpcio",
        "node" => "node-grpc-js",
        _ => "buf-curl",
    };
    let find = |tag: &str, name: &str| {
        outcomes
            .iter()
            .find(|o| o.client.starts_with(client_of(tag)) && o.case.as_deref() == Some(name))
    };
    let expect = |failures: &mut Vec<String>,
                  tag: &str,
                  name: &str,
                  expect: &Expect,
                  request_id: bool,
                  method: Option<&str>| {
        let Some(got) = find(tag, name) else {
            failures.push(format!("{tag}: {name}: no outcome reported"));
            return;
        };
        let code = got.code.clone().unwrap_or_default();
        let seen = format!("{} {name}: {code} {:?}", got.client, got.message);
        match expect {
            Expect::Ok => {
                if code != "OK" {
                    failures.push(format!("{seen} (expected OK)"));
                } else if let Some(method) = method {
                    let output = method_output(&pool, method);
                    if got.responses.is_empty() {
                        failures.push(format!("{seen}: no answer"));
                    }
                    for answer in &got.responses {
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(answer)
                            .ok()
                            .and_then(|bytes| {
                                DynamicMessage::decode(output.clone(), bytes.as_slice()).ok()
                            });
                        if decoded.is_none() {
                            failures.push(format!("{seen}: an answer that does not decode"));
                        }
                    }
                }
            }
            Expect::Code(want) => {
                if code != code_name(*want) {
                    failures.push(format!("{seen} (expected {})", code_name(*want)));
                }
            }
            Expect::Violations(fields) => {
                let named: Vec<&str> = got
                    .violations
                    .iter()
                    .flatten()
                    .map(|(field, _)| field.as_str())
                    .collect();
                if code != "INVALID_ARGUMENT" || named != *fields {
                    failures.push(format!(
                        "{seen} {:?} (expected INVALID_ARGUMENT naming {fields:?})",
                        got.violations
                    ));
                }
            }
        }
        if request_id && got.request_id.as_deref().is_none_or(str::is_empty) {
            failures.push(format!("{seen}: no x-request-id in the answer's metadata"));
        }
    };
    // Every RPC of the descriptor set has its success case: a method added later
    // cannot slip past the other stacks.
    let patchbay = DescriptorPool::decode(patchbay_sdk::FILE_DESCRIPTOR_SET).expect("descriptors");
    for service in patchbay.services() {
        for method in service.methods() {
            let name = format!("ok:{}", method.name());
            for (tag, cases) in cases {
                if !cases.iter().any(|case| case.call.name == name) {
                    failures.push(format!("{tag}: no success case for {}", method.full_name()));
                }
            }
        }
    }
    for (tag, cases) in cases {
        for case in cases {
            expect(
                &mut failures,
                tag,
                &case.call.name,
                &case.expect,
                case.request_id,
                Some(&case.call.method),
            );
        }
        for (name, want) in [
            ("watch_share_filled", Expect::Ok),
            ("watch_beyond_share", Expect::Code(Code::ResourceExhausted)),
            ("watch_after_cancel", Expect::Ok),
            ("sigterm_ends_watch", Expect::Code(Code::Unavailable)),
        ] {
            expect(&mut failures, tag, name, &want, false, None);
        }
    }
    expect(
        &mut failures,
        "buf",
        "grpc_web_http1:GetDefaultAccount",
        &Expect::Ok,
        false,
        Some("/patchbay.v1.AccountService/GetDefaultAccount"),
    );
    expect(
        &mut failures,
        "python",
        "keepalive_idle_watch_hears_the_next_change",
        &Expect::Ok,
        false,
        None,
    );
    expect(
        &mut failures,
        "python",
        "typed_invalid_argument",
        &Expect::Violations(&["channel"]),
        false,
        None,
    );
    for tag in ["python", "node"] {
        expect(
            &mut failures,
            tag,
            "typed_get_default_account",
            &Expect::Ok,
            false,
            None,
        );
        let typed = find(tag, "typed_get_default_account").and_then(|o| o.typed.clone());
        let id = typed
            .as_ref()
            .and_then(|t| t["account"]["id"].as_str().map(str::to_owned));
        if id.as_deref() != Some(fixtures[tag].default_email.as_str()) {
            failures.push(format!(
                "{tag}: typed_get_default_account answered {typed:?}"
            ));
        }
    }
    // The fallbacks each stack set are on the wire of its own watch: the snapshot's
    // `fallbacks` (#30) as grpcio, grpc-js and buf curl received it.
    for tag in ["python", "node", "buf"] {
        let snapshot = find(tag, "ok:WatchDefaultAccounts")
            .and_then(|o| o.responses.first())
            .and_then(|answer| {
                base64::engine::general_purpose::STANDARD
                    .decode(answer)
                    .ok()
            })
            .and_then(|bytes| {
                <proto::WatchDefaultAccountsResponse as prost::Message>::decode(bytes.as_slice())
                    .ok()
            });
        let lists: Vec<(i32, Vec<String>)> = match snapshot.and_then(|s| s.event) {
            Some(proto::watch_default_accounts_response::Event::Snapshot(snapshot)) => snapshot
                .fallbacks
                .iter()
                .map(|list| {
                    (
                        list.channel,
                        list.accounts.iter().map(|a| a.id.clone()).collect(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        let want = vec![(
            i32::from(proto::Channel::Email),
            vec![fixtures[tag].other_email.clone()],
        )];
        if lists != want {
            failures.push(format!(
                "{tag}: the watch's snapshot carried fallbacks {lists:?}, not {want:?}"
            ));
        }
    }
    if let Some(kept) = find("python", "keepalive_idle_watch_hears_the_next_change")
        && kept.responses.len() != 2
    {
        failures.push(format!(
            "python keepalive: {} answers, not the snapshot and the change",
            kept.responses.len()
        ));
    }
    failures
}

fn method_output(pool: &DescriptorPool, path: &str) -> prost_reflect::MessageDescriptor {
    let (service, method) = path.trim_start_matches('/').split_once('/').expect("path");
    pool.get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == method))
        .map(|m| m.output())
        .unwrap_or_else(|| panic!("{path} is not in the descriptor set"))
}
