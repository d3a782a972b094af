//! Soak run: steady mixed load against a real `patchbay serve` on loopback for a bounded
//! time, then the error count (must be 0) and the trend of the server's RSS: the
//! least-squares slope over the last two thirds of the run, in MiB per minute, must
//! stay at or below `--max-slope`. Exits non-zero when either fails.
//!
//! The load touches a fixed set of records (20 SMS accounts, 8 Messenger pages, two
//! workspaces' worth of tokens), so nothing the server keeps should grow with the
//! number of calls: reads, writes, credentials, idempotent writes (keys replayed and
//! new), RouteWebhook on signed bodies, and default and event watchers connecting and
//! leaving.
//!
//! ```sh
//! ./scripts/soak            # release build, 10 minutes on SQLite and on PostgreSQL
//! ./scripts/soak --ci       # the CI run: 2 minutes on SQLite, at most 1 MiB/min
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use patchbay_bench::Server;
use patchbay_sdk::prost_types::{Struct, Value, value::Kind};
use patchbay_sdk::proto::{self, Channel};
use patchbay_sdk::{Client, Error};
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// How long to drive load.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Concurrent callers.
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// The patchbay binary to run.
    #[arg(long, default_value = "target/release/patchbay")]
    patchbay: PathBuf,
    /// Run on this PostgreSQL database instead of the embedded SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// The largest RSS slope over the last two thirds that passes, in MiB per minute.
    #[arg(long, default_value_t = 0.25)]
    max_slope: f64,
    /// Seconds of load before the first sample: the pool's connections, SQLite's page
    /// caches and the allocator's arenas fill up once, and that is not a trend.
    #[arg(long, default_value_t = 30)]
    warmup: u64,
    /// Seconds between RSS samples.
    #[arg(long, default_value_t = 5)]
    sample_every: u64,
}

const PAGES: usize = 8;

fn config(token: &str) -> Struct {
    let mut config = Struct::default();
    config.fields.insert(
        "access_token".into(),
        Value {
            kind: Some(Kind::StringValue(token.into())),
        },
    );
    config
}

/// Who calls, and what they call with.
struct Load {
    admin: Client,
    service: Client,
    gateway: Client,
    ids: Vec<String>,
    bodies: Vec<proto::RouteWebhookRequest>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let server = Server::start(&args.patchbay, args.database_url.as_deref())?;
    let client = |role: &str, workspace: &str| {
        let token = server.token(role, workspace);
        let endpoint = server.endpoint.clone();
        async move {
            Client::connect(endpoint, &token?)
                .await
                .map_err(|e| e.to_string())
        }
    };
    let admin = client("admin", "soak").await?;
    let mut ids = Vec::new();
    for i in 0..20 {
        let account = admin
            .create_account(proto::CreateAccountRequest {
                channel: Channel::Sms.into(),
                account_key: format!("soak-{i}"),
                config: Some(config("soak-token-0")),
                is_default: i == 0,
                ..Default::default()
            })
            .await?;
        ids.push(account.id);
    }
    patchbay_bench::seed_pages(&admin, PAGES).await?;
    let load = Arc::new(Load {
        service: client("service", "soak").await?,
        gateway: client("gateway", "").await?,
        admin,
        ids,
        bodies: patchbay_bench::signed_page_bodies(PAGES),
    });
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let calls = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));

    let mut workers = Vec::new();
    for worker in 0..args.workers {
        let (load, errors, calls, running) =
            (load.clone(), errors.clone(), calls.clone(), running.clone());
        workers.push(tokio::spawn(async move {
            let mut n: u64 = worker as u64;
            while running.load(Ordering::Relaxed) {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let result = one_call(&load, worker, n).await;
                calls.fetch_add(1, Ordering::Relaxed);
                if let Err(err) = result {
                    *errors.lock().await.entry(err.to_string()).or_default() += 1;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let started = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    println!("{:>6}  {:>10}  {:>10}", "second", "calls", "rss_kib");
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_secs(args.sample_every)).await;
        let rss = server.rss_kib().unwrap_or_default();
        let second = started.elapsed().as_secs_f64();
        samples.push((second, rss as f64 / 1024.0));
        println!(
            "{:>6.0}  {:>10}  {:>10}",
            second,
            calls.load(Ordering::Relaxed),
            rss
        );
    }
    running.store(false, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    server.stop();

    let errors = errors.lock().await;
    let error_count: u64 = errors.values().sum();
    let tail = &samples[samples.len() / 3..];
    let slope = slope_per_minute(tail);
    println!();
    println!("calls: {}", calls.load(Ordering::Relaxed));
    println!("errors: {error_count}");
    for (error, count) in errors.iter() {
        println!("  {count} × {error}");
    }
    let (first, last) = (
        samples.first().map_or(0.0, |s| s.1),
        samples.last().map_or(0.0, |s| s.1),
    );
    println!(
        "rss: {first:.1} MiB at the first sample, {last:.1} MiB at the last; slope over the last two thirds ({} samples): {slope:+.3} MiB/min (at most {:.2})",
        tail.len(),
        args.max_slope
    );
    if error_count > 0 || slope > args.max_slope || tail.len() < 3 {
        eprintln!("soak: FAILED");
        std::process::exit(1);
    }
    println!("soak: passed");
    Ok(())
}

/// The least-squares slope of (seconds, MiB) samples, in MiB per minute.
fn slope_per_minute(samples: &[(f64, f64)]) -> f64 {
    let count = samples.len() as f64;
    if count < 2.0 {
        return 0.0;
    }
    let mean_x = samples.iter().map(|s| s.0).sum::<f64>() / count;
    let mean_y = samples.iter().map(|s| s.1).sum::<f64>() / count;
    let covariance: f64 = samples
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let variance: f64 = samples.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if variance == 0.0 {
        return 0.0;
    }
    covariance / variance * 60.0
}

/// One call of the mix, chosen by `n`.
async fn one_call(load: &Load, worker: usize, n: u64) -> Result<(), Error> {
    let id = &load.ids[(n >> 33) as usize % load.ids.len()];
    let mut op = (n >> 40) % 25;
    // Watchers come and go about as often as 1 call in 70 (some 60 a second, all on
    // the one connection, each cancel with events possibly in flight: what the SDK's
    // endpoint remembers cancelled streams for, see `sdk/src/connect.rs`).
    if (20..=22).contains(&op) && !(n >> 50).is_multiple_of(8) {
        op = 0;
    }
    match op {
        0..=9 => load
            .service
            .default_account(Channel::Sms, None)
            .await
            .map(drop),
        10 => load
            .service
            .list_all_accounts(Some(Channel::Sms))
            .await
            .map(drop),
        11..=12 => load.service.get_account(id).await.map(drop),
        13..=14 => load
            .admin
            .accounts()
            .update_account(proto::UpdateAccountRequest {
                id: id.clone(),
                config: Some(config(&format!("soak-token-{n}"))),
                ..Default::default()
            })
            .await
            .map(drop)
            .map_err(Into::into),
        15 => load.admin.set_default_account(id).await.map(drop),
        16 => load.service.account_credentials(id).await.map(drop),
        17..=18 => {
            let body = &load.bodies[(n >> 20) as usize % load.bodies.len()];
            let routed = load
                .gateway
                .route_webhook(
                    &body.method,
                    &body.url,
                    body.headers.clone(),
                    body.raw_body.clone(),
                )
                .await?;
            match routed.deliveries.len() {
                1 => Ok(()),
                _ => Err(Error::from(patchbay_sdk::tonic::Status::internal(format!(
                    "a signed page body did not route: {routed:?}"
                )))),
            }
        }
        19 => {
            // Keys of a small set per worker: replays of the first answer, and new
            // keys as old ones fall out of the set.
            // A key always names the same request.
            let k = (n >> 24) % 256;
            let key = format!("soak-{worker}-{k}");
            let mut request = patchbay_sdk::tonic::Request::new(proto::UpdateAccountRequest {
                id: load.ids[k as usize % load.ids.len()].clone(),
                display_name: Some(format!("Soak {k}")),
                ..Default::default()
            });
            if let Ok(value) = key.parse() {
                request.metadata_mut().insert("idempotency-key", value);
            }
            match load.admin.accounts().update_account(request).await {
                // Two workers may race on one key; the loser is told to retry.
                Err(status) if status.code() == patchbay_sdk::tonic::Code::Aborted => Ok(()),
                other => other.map(drop).map_err(Into::into),
            }
        }
        20..=21 => {
            // A default watcher connects, reads its snapshot and leaves.
            let mut stream = load
                .service
                .accounts()
                .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
                .await?
                .into_inner();
            stream.message().await?;
            Ok(())
        }
        22 => {
            // An event watcher connects from now, waits a little and leaves.
            let mut stream = load
                .service
                .accounts()
                .watch_account_events(proto::WatchAccountEventsRequest::default())
                .await?
                .into_inner();
            let _ = tokio::time::timeout(Duration::from_millis(20), stream.message()).await;
            Ok(())
        }
        _ => load
            .service
            .default_account(Channel::Sms, None)
            .await
            .map(drop),
    }
}
