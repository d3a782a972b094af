//! Soak run: mixed reads and writes against a real `patchbay serve` on loopback for a
//! bounded time, then the error count (must be 0) and the server's RSS over time (must
//! show no growth trend). Exits non-zero when either fails.
//!
//! ```sh
//! cargo build --release -p patchbay
//! cargo run --release -p patchbay-bench --bin soak -- --seconds 180
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use patchbay_bench::Server;
use patchbay_sdk::Client;
use patchbay_sdk::prost_types::{Struct, Value, value::Kind};
use patchbay_sdk::proto::{self, Channel};
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// How long to drive load.
    #[arg(long, default_value_t = 120)]
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
}

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let server = Server::start(&args.patchbay, args.database_url.as_deref())?;
    let admin = Client::connect(server.endpoint.clone(), &server.token("admin", "soak")?).await?;
    let service =
        Client::connect(server.endpoint.clone(), &server.token("service", "soak")?).await?;

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
    let ids = Arc::new(ids);
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let calls = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));

    let mut workers = Vec::new();
    for worker in 0..args.workers {
        let (admin, service, ids, errors, calls, running) = (
            admin.clone(),
            service.clone(),
            ids.clone(),
            errors.clone(),
            calls.clone(),
            running.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut n: u64 = worker as u64;
            while running.load(Ordering::Relaxed) {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let id = &ids[(n >> 33) as usize % ids.len()];
                let result = match (n >> 40) % 20 {
                    0..=11 => service
                        .default_account(Channel::Sms, None)
                        .await
                        .map(|_| ()),
                    12..=13 => service
                        .list_all_accounts(Some(Channel::Sms))
                        .await
                        .map(|_| ()),
                    14..=15 => service.get_account(id).await.map(|_| ()),
                    16..=17 => admin
                        .accounts()
                        .update_account(proto::UpdateAccountRequest {
                            id: id.clone(),
                            config: Some(config(&format!("soak-token-{n}"))),
                            ..Default::default()
                        })
                        .await
                        .map(|_| ())
                        .map_err(Into::into),
                    18 => admin.set_default_account(id).await.map(|_| ()),
                    _ => service.account_credentials(id).await.map(|_| ()),
                };
                calls.fetch_add(1, Ordering::Relaxed);
                if let Err(err) = result {
                    *errors.lock().await.entry(err.to_string()).or_default() += 1;
                }
            }
        }));
    }

    let started = Instant::now();
    let mut samples = Vec::new();
    println!("{:>6}  {:>10}  {:>10}", "second", "calls", "rss_kib");
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let rss = server.rss_kib().unwrap_or_default();
        samples.push(rss);
        println!(
            "{:>6}  {:>10}  {:>10}",
            started.elapsed().as_secs(),
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
    let third = (samples.len() / 3).max(1);
    let mean = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len().max(1) as f64;
    let early = mean(&samples[..third.min(samples.len())]);
    let late = mean(&samples[samples.len().saturating_sub(third)..]);
    let growth = if early > 0.0 {
        (late - early) / early * 100.0
    } else {
        0.0
    };
    println!();
    println!("calls: {}", calls.load(Ordering::Relaxed));
    println!("errors: {error_count}");
    for (error, count) in errors.iter() {
        println!("  {count} × {error}");
    }
    println!("rss: first third {early:.0} KiB, last third {late:.0} KiB, growth {growth:+.1}%");
    if error_count > 0 || growth > 20.0 {
        eprintln!("soak: FAILED");
        std::process::exit(1);
    }
    println!("soak: passed");
    Ok(())
}
