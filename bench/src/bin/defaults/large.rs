//! The large run: `--large-accounts` accounts over `--large-workspaces` workspaces,
//! seeded in bulk through the store (as `patchbay serve` would have written them, sealed
//! with the server's keys), then a server started on them: its start-up (the webhook
//! routing index is loaded whole), its peak memory, and GetDefaultAccount on a cold
//! cache — every call asks a scope no call asked before, so each one reads the database.
//!
//! The mix is what an installation of a messaging platform holds: every channel in
//! turn, so half the accounts (WhatsApp, Messenger, Instagram, SMS with a Twilio auth
//! token) are in the routing index with their secrets; a quarter workspace-wide, the
//! rest over ten divisions; a default per channel workspace-wide and in division d1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay::domain::{Account, Channel as Kind, ProviderState};
use patchbay::grpc::convert::channel_to_proto;
use patchbay::sealing::KeyRing;
use patchbay::store::{DatabaseSettings, Store};
use patchbay_bench::Server;
use patchbay_sdk::BearerToken;
use patchbay_sdk::proto;
use patchbay_sdk::proto::account_service_client::AccountServiceClient;
use patchbay_sdk::tonic::transport::Endpoint;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use super::{BoxError, Latency};

/// Workspaces whose scopes each cold measurement asks (80 scopes each: 8 channels,
/// workspace-wide and 9 divisions; the divisions but d1 have no default of their own, so
/// those calls are one read of the database and the fallback from the cache).
const SAMPLED_WORKSPACES: usize = 256;
/// Callers at once during the cold run.
const COLD_CONCURRENCY: usize = 8;
const DIVISIONS: usize = 10;
/// Accounts written per batch while seeding.
const SEED_BATCH: usize = 5_000;

pub struct LargeReport {
    pub backend: &'static str,
    pub accounts: usize,
    pub peak_rss_kib: u64,
    pub cold: Latency,
    pub cold_calls: usize,
    /// Calls refused RESOURCE_EXHAUSTED during the cold runs.
    pub shed: f64,
}

pub async fn run(
    backend: &'static str,
    binary: &std::path::Path,
    database_url: Option<&str>,
    accounts: usize,
    workspaces: usize,
    earlier_database: Option<&str>,
) -> Result<LargeReport, BoxError> {
    println!("\n== {backend}: {accounts} accounts over {workspaces} workspaces ==");
    let data_dir = Arc::new(tempfile::tempdir()?);
    let url = match database_url {
        Some(url) => url.to_owned(),
        None => format!(
            "sqlite://{}?mode=rwc",
            data_dir.path().join("patchbay.db").display()
        ),
    };
    let ring_file = patchbay_bench::explicit_keys(binary, data_dir.path())?
        .into_iter()
        .find(|(name, _)| *name == "PATCHBAY_ENCRYPTION_KEYS_FILE")
        .map(|(_, path)| path)
        .ok_or("no key ring")?;
    let ring = KeyRing::from_json(&std::fs::read_to_string(ring_file)?)?;
    let settings = DatabaseSettings {
        url: url.clone(),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
    };
    let store = Store::connect(&settings, ring).await?;
    store.migrate().await?;
    let started = Instant::now();
    let per_workspace = accounts.div_ceil(workspaces.max(1));
    let mut batch = Vec::with_capacity(SEED_BATCH);
    for n in 0..accounts {
        batch.push(account(n, per_workspace));
        if batch.len() == SEED_BATCH || n + 1 == accounts {
            store.accounts().seed_accounts(&batch).await?;
            batch.clear();
        }
        if (n + 1) % 200_000 == 0 {
            println!("  … {} accounts", n + 1);
        }
    }
    store.close().await;
    println!(
        "seeded {accounts} accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if database_url.is_some() {
        settle_postgres(&url, earlier_database).await?;
    }

    let started = Instant::now();
    let server = Server::start_on(binary, &url, data_dir)?;
    println!(
        "server listening in {:.1} s, RSS {:.1} MiB",
        started.elapsed().as_secs_f64(),
        server.rss_kib().unwrap_or_default() as f64 / 1024.0
    );
    // A replica on PostgreSQL listens before its routing index is loaded (it waits
    // 10 s at most), and the first scrape starts the sealed-records census (a scan of
    // every sealed table): the cold measurement starts once both are done, and
    // measures GetDefaultAccount, not them.
    for series in [
        "patchbay_webhook_routes",
        "patchbay_sealed_records_off_active_key",
    ] {
        let deadline = Instant::now() + Duration::from_secs(600);
        while server.metric(series).await?.is_empty() {
            if Instant::now() > deadline {
                return Err(format!("{series} not reported after 10 minutes").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!(
        "routing index loaded and census counted in {:.1} s, RSS {:.1} MiB",
        started.elapsed().as_secs_f64(),
        server.rss_kib().unwrap_or_default() as f64 / 1024.0
    );
    // One caller at a time: the latency of a read that misses the cache. Then
    // COLD_CONCURRENCY callers, on other workspaces: what a burst after a restart sees
    // (on these two cores the load generator shares the machine with the server).
    let (cold, cold_calls) = cold_defaults(&server, workspaces, per_workspace, 0, 1).await?;
    println!(
        "cold-cache GetDefaultAccount, {cold_calls} calls one at a time: p50 {:.2} ms p99 {:.2} ms",
        cold.p50_ms, cold.p99_ms
    );
    let (burst, burst_calls) =
        cold_defaults(&server, workspaces, per_workspace, 1, COLD_CONCURRENCY).await?;
    println!(
        "cold-cache GetDefaultAccount, {burst_calls} calls at concurrency {COLD_CONCURRENCY}: p50 {:.2} ms p99 {:.2} ms",
        burst.p50_ms, burst.p99_ms
    );
    let shed = server.shed_calls().await?;
    let peak_rss_kib = server.peak_rss_kib().unwrap_or_default();
    println!(
        "server peak RSS: {:.1} MiB (now {:.1} MiB)",
        peak_rss_kib as f64 / 1024.0,
        server.rss_kib().unwrap_or_default() as f64 / 1024.0
    );
    server.stop();
    Ok(LargeReport {
        backend,
        accounts,
        peak_rss_kib,
        cold,
        cold_calls,
        shed,
    })
}

fn workspace(w: usize) -> String {
    format!("large-{w:05}")
}

/// Account `n`: the `n % per_workspace`-th of its workspace.
fn account(n: usize, per_workspace: usize) -> Account {
    let (w, i) = (n / per_workspace, n % per_workspace);
    let channel = Kind::ALL[i % Kind::ALL.len()];
    // The first eight: the workspace-wide defaults; the next eight: division d1's.
    let division = match i {
        0..8 => None,
        8..16 => Some("d1".to_owned()),
        _ if i % 4 == 0 => None,
        _ => Some(format!("d{}", i % DIVISIONS)),
    };
    let now = chrono::Utc::now();
    Account {
        id: uuid::Uuid::new_v4(),
        workspace_id: workspace(w),
        channel,
        account_key: format!("{}-{n}", channel.as_str()),
        display_name: format!("Account {n}"),
        is_active: true,
        is_default: i < 16,
        division_id: division,
        config: config(channel, n),
        verify_token: format!("verify-{n:016x}-{:08x}", n.wrapping_mul(2_654_435_761)),
        webhook_route: uuid::Uuid::new_v4(),
        revision: 1,
        created_at: now,
        updated_at: now,
        provider_state: ProviderState::default(),
    }
}

/// A config of the channel's provider, with its secrets (sealed by the store).
fn config(channel: Kind, n: usize) -> Map<String, Value> {
    let secret = |prefix: &str| {
        format!(
            "{prefix}{:040x}",
            (n as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    };
    let value = match channel {
        Kind::Whatsapp => json!({
            "phone_number_id": format!("{}", 100_000_000_000_000u64 + n as u64),
            "waba_id": format!("{}", 300_000_000_000_000u64 + n as u64 / 4),
            "access_token": secret("EAAG"),
        }),
        Kind::Messenger => json!({
            "page_id": format!("{}", 200_000_000_000_000u64 + n as u64),
            "page_access_token": secret("EAAP"),
        }),
        Kind::Instagram => json!({
            "instagram_user_id": format!("{}", 17_841_400_000_000_000u64 + n as u64),
            "access_token": secret("IGQV"),
        }),
        Kind::Sms => json!({
            "account_sid": format!("AC{n:032x}"),
            "from_number": format!("+1555{:07}", n % 10_000_000),
            "auth_token": format!("{:032x}", (n as u128).wrapping_mul(0x2545_f491_4f6c_dd1d)),
        }),
        Kind::Email => {
            json!({"from_email": format!("support{n}@example.com"), "api_key": secret("SG.")})
        }
        _ => json!({"base_url": "https://chat.example.com", "api_key": secret("key-")}),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// After a bulk load, what PostgreSQL's manual asks for ("Populating a Database": run
/// ANALYZE afterwards) and what a long-lived table has anyway: statistics, a visibility
/// map and hint bits (VACUUM), and the load's dirty pages written out (CHECKPOINT).
/// Without it the cold run measures autovacuum and the checkpointer working through a
/// million fresh rows on the same two cores, not GetDefaultAccount.
/// `earlier`, the database of the runs before on the same server, is vacuumed first:
/// its dead rows from thousands of writes would have autovacuum working beside the
/// measurement.
async fn settle_postgres(url: &str, earlier: Option<&str>) -> Result<(), BoxError> {
    use sea_orm::ConnectionTrait;
    let started = Instant::now();
    if let Some(earlier) = earlier {
        let db = sea_orm::Database::connect(earlier).await?;
        db.execute_unprepared("VACUUM (ANALYZE)").await?;
        db.close().await?;
    }
    let db = sea_orm::Database::connect(url).await?;
    db.execute_unprepared("VACUUM (ANALYZE)").await?;
    if let Err(err) = db.execute_unprepared("CHECKPOINT").await {
        println!("  (CHECKPOINT refused: {err}; measuring without it)");
    }
    db.close().await?;
    println!(
        "VACUUM (ANALYZE) and CHECKPOINT after the load: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// GetDefaultAccount over scopes nobody asked yet, from `SAMPLED_WORKSPACES` workspaces
/// spread over the installation: each workspace-wide scope, then each division's.
async fn cold_defaults(
    server: &Server,
    workspaces: usize,
    per_workspace: usize,
    offset: usize,
    concurrency: usize,
) -> Result<(Latency, usize), BoxError> {
    let step = (workspaces / SAMPLED_WORKSPACES).max(2);
    let sampled: Vec<usize> = (offset..workspaces)
        .step_by(step)
        .take(SAMPLED_WORKSPACES)
        .collect();
    let mut scopes = Vec::new();
    for &w in &sampled {
        let token = Arc::new(BearerToken::new(&server.token("service", &workspace(w))?)?);
        let divisions =
            std::iter::once(String::new()).chain((1..DIVISIONS).map(|d| format!("d{d}")));
        for division in divisions {
            for channel in 0..Kind::ALL.len().min(per_workspace) {
                scopes.push((token.clone(), channel, division.clone()));
            }
        }
    }
    let calls = scopes.len();
    let scopes = Arc::new(Mutex::new(scopes.into_iter()));
    let channel = Endpoint::from_shared(server.endpoint.clone())?
        .connect()
        .await?;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (scopes, channel) = (scopes.clone(), channel.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some((token, index, division)) = scopes.lock().await.next() else {
                        return Ok::<_, BoxError>(latencies);
                    };
                    let mut client =
                        AccountServiceClient::with_interceptor(channel.clone(), (*token).clone());
                    let began = Instant::now();
                    let answer = client
                        .get_default_account(proto::GetDefaultAccountRequest {
                            channel: channel_to_proto(Kind::ALL[index]).into(),
                            division_id: division,
                            no_fallback: false,
                        })
                        .await?;
                    latencies.push(began.elapsed().as_micros() as u64);
                    if answer.into_inner().account.is_none() {
                        return Err("a default came back empty".into());
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(calls);
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok((Latency::of(all), calls))
}
