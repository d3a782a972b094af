//! The default-account benchmark. It starts real `patchbay serve` processes on loopback
//! (SQLite; PostgreSQL too with `--postgres-url`), stores `--accounts` accounts through
//! the API, and prints in one run:
//!
//! - unary GetDefaultAccount throughput and p50/p99 latency at concurrency 1, 16 and
//!   64, beside grpc.health.v1.Health/Check on the same server, and their ratio; and
//!   Health/Check carrying the same bearer token (which it ignores), which tells how
//!   much of the gap is the token on the wire before any of Patchbay's code runs; and
//!   GetDefaultAccount sent as grpcio sends it with gzip on (what compression costs);
//! - the SDK's `DefaultAccounts::get` time per lookup;
//! - SetDefaultAccount writes per second (with 8 writers: the CPU per write of the
//!   server, the load generator and the rest of the machine), and the time from a write to its event at a
//!   watcher (p50/p99) on one replica and, on PostgreSQL, across two;
//! - unary RouteWebhook throughput at concurrency 64 (Meta app-level bodies of one
//!   entry each, signed, over 64 Messenger pages), beside Health/Check, and their ratio;
//! - the server's peak RSS with the accounts stored;
//!
//! then each target of issue #6 with PASS or MISS (exit status 1 on a miss).
//!
//! ```sh
//! ./scripts/bench            # builds in release, runs SQLite and PostgreSQL
//! ```

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use patchbay_bench::{Server, machine_cpu_time, process_cpu_time};
use patchbay_sdk::prost_types::{Struct, Value, value::Kind};
use patchbay_sdk::proto::account_service_client::AccountServiceClient;
use patchbay_sdk::proto::webhook_service_client::WebhookServiceClient;
use patchbay_sdk::proto::{self, Channel, watch_default_accounts_response::Event};
use patchbay_sdk::tonic::transport::Endpoint;
use patchbay_sdk::{BearerToken, Client, CompressionEncoding, WatchOptions};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

mod large;

const WORKSPACE: &str = "bench";
const DIVISIONS: usize = 1000;
/// Messenger pages the RouteWebhook measurement's bodies name.
const PAGES: usize = 64;

#[derive(Parser)]
struct Args {
    /// The patchbay binary to run.
    #[arg(long, default_value = "target/release/patchbay")]
    patchbay: PathBuf,
    /// Also run on PostgreSQL, on this (empty) database, with two replicas.
    #[arg(long)]
    postgres_url: Option<String>,
    /// Accounts stored before measuring.
    #[arg(long, default_value_t = 100_000)]
    accounts: usize,
    /// Seconds of each call per unary measurement, and of the write measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrency levels of the unary measurements (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    levels: Vec<usize>,
    /// Accounts of the large run (seeded in bulk through the store; 0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    large_accounts: usize,
    /// Workspaces the large run's accounts are spread over.
    #[arg(long, default_value_t = 10_000)]
    large_workspaces: usize,
    /// Also run the large run on PostgreSQL, on this (empty) database.
    #[arg(long)]
    large_postgres_url: Option<String>,
    /// Writes timed from the write to its event at a watcher.
    #[arg(long, default_value_t = 300)]
    propagation_samples: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Default)]
struct Report {
    backend: &'static str,
    /// (concurrency, health, default)
    unary: Vec<(usize, Rate, Rate)>,
    lookup_ns: f64,
    /// `DefaultAccounts::sender`, per lookup.
    sender_ns: f64,
    writes_per_second: f64,
    /// SetDefaultAccount with WRITERS writers, each on a workspace of its own.
    parallel_writes_per_second: f64,
    /// (concurrency, Health/Check carrying the bearer token), measured beside `unary`'s
    /// Health/Check: what the token on the wire costs before any of our code.
    token_on_the_wire: Vec<(usize, Rate)>,
    /// The parallel write measurement, with where its CPU went.
    parallel_writes: Option<WriteRate>,
    propagation_one: Option<Latency>,
    propagation_two: Option<Latency>,
    peak_rss_kib: u64,
    /// Calls refused RESOURCE_EXHAUSTED by its servers during the run.
    shed: f64,
}

#[derive(Clone, Copy, Default)]
struct Rate {
    per_second: f64,
    latency: Latency,
    /// Server CPU time per call (user + system), in microseconds.
    server_cpu_us: f64,
    /// The load generator's own CPU time per call.
    client_cpu_us: f64,
}

#[derive(Clone, Copy, Default)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
}

impl Latency {
    fn of(mut micros: Vec<u64>) -> Latency {
        micros.sort_unstable();
        let at = |q: f64| {
            let index = ((micros.len() as f64 - 1.0) * q).round() as usize;
            micros.get(index).copied().unwrap_or_default() as f64 / 1000.0
        };
        Latency {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
        }
    }
}

// The load generator runs on one thread, leaving the server (which runs as it would in
// production, one worker per core) the rest of the machine.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    println!(
        "patchbay default-account benchmark: {} accounts, {} s per measurement, {} cores",
        args.accounts,
        args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut reports =
        vec![run("SQLite", Server::start(&args.patchbay, None)?, &args, false).await?];
    if let Some(url) = &args.postgres_url {
        let server = Server::start(&args.patchbay, Some(url))?;
        reports.push(run("PostgreSQL", server, &args, true).await?);
    } else {
        println!("\n(PostgreSQL and two replicas: pass --postgres-url, as ./scripts/bench does)");
    }
    let mut larges = Vec::new();
    if args.large_accounts > 0 {
        let postgres = args
            .large_postgres_url
            .as_deref()
            .map(|url| ("PostgreSQL", Some(url)));
        for (backend, url) in std::iter::once(("SQLite", None)).chain(postgres) {
            larges.push(
                large::run(
                    backend,
                    &args.patchbay,
                    url,
                    args.large_accounts,
                    args.large_workspaces,
                    url.and(args.postgres_url.as_deref()),
                )
                .await?,
            );
        }
    }
    let missed = print_targets(&reports, &larges, args.accounts);
    if missed > 0 {
        println!("\n{missed} target(s) missed");
        std::process::exit(1);
    }
    Ok(())
}

async fn run(
    backend: &'static str,
    server: Server,
    args: &Args,
    two_replicas: bool,
) -> Result<Report, BoxError> {
    println!("\n== {backend} ==");
    let admin =
        Client::connect(server.endpoint.clone(), &server.token("admin", WORKSPACE)?).await?;
    let service_token = server.token("service", WORKSPACE)?;
    let started = Instant::now();
    let created = seed(&admin, args.accounts).await?;
    seed_fallbacks(&admin, &created).await?;
    println!(
        "stored {} accounts in {:.1} s",
        args.accounts,
        started.elapsed().as_secs_f64()
    );
    let mut report = Report {
        backend,
        ..Report::default()
    };

    let duration = Duration::from_secs(args.seconds);
    println!(
        "unary calls: {} s each of Health/Check and GetDefaultAccount, alternating by the second",
        args.seconds
    );
    for &level in &args.levels {
        let rates = measure(
            &server,
            &service_token,
            level,
            args.seconds,
            &[
                Call::Health,
                Call::HealthWithToken,
                Call::Default,
                Call::DefaultGzip,
            ],
        )
        .await?;
        let [health, carrying, default, gzipped] = rates[..] else {
            return Err("a measurement returned another number of rates".into());
        };
        println!(
            "concurrency {level:>2}: Health/Check {:>6.0}/s p50 {:.2} ms p99 {:.2} ms (CPU/call: server {:.0} µs, client {:.0} µs) | GetDefaultAccount {:>6.0}/s p50 {:.2} ms p99 {:.2} ms (server {:.0} µs, client {:.0} µs) | ratio {:.0}%",
            health.per_second,
            health.latency.p50_ms,
            health.latency.p99_ms,
            health.server_cpu_us,
            health.client_cpu_us,
            default.per_second,
            default.latency.p50_ms,
            default.latency.p99_ms,
            default.server_cpu_us,
            default.client_cpu_us,
            100.0 * default.per_second / health.per_second.max(1.0),
        );
        println!(
            "    the bearer token alone: Health/Check carrying it {:>6.0}/s p99 {:.2} ms (server {:.0} µs, client {:.0} µs), {:.0}% of Health/Check; GetDefaultAccount is {:.0}% of that",
            carrying.per_second,
            carrying.latency.p99_ms,
            carrying.server_cpu_us,
            carrying.client_cpu_us,
            100.0 * carrying.per_second / health.per_second.max(1.0),
            100.0 * default.per_second / carrying.per_second.max(1.0),
        );
        println!(
            "    gzip as grpcio sends it (request compressed, gzip offered): GetDefaultAccount {:>6.0}/s p99 {:.2} ms (server {:.0} µs, client {:.0} µs), {:.0}% of plain GetDefaultAccount",
            gzipped.per_second,
            gzipped.latency.p99_ms,
            gzipped.server_cpu_us,
            gzipped.client_cpu_us,
            100.0 * gzipped.per_second / default.per_second.max(1.0),
        );
        report.unary.push((level, health, default));
        report.token_on_the_wire.push((level, carrying));
    }

    patchbay_bench::seed_pages(&admin, PAGES).await?;
    let gateway_token = server.token("gateway", "")?;
    let rates = measure(
        &server,
        &gateway_token,
        64,
        args.seconds,
        &[Call::Health, Call::Route],
    )
    .await?;
    let [health, route] = rates[..] else {
        return Err("a measurement returned another number of rates".into());
    };
    println!(
        "RouteWebhook at concurrency 64: Health/Check {:>6.0}/s | RouteWebhook {:>6.0}/s p50 {:.2} ms p99 {:.2} ms (server {:.0} µs, client {:.0} µs) | ratio {:.0}%",
        health.per_second,
        route.per_second,
        route.latency.p50_ms,
        route.latency.p99_ms,
        route.server_cpu_us,
        route.client_cpu_us,
        100.0 * route.per_second / health.per_second.max(1.0),
    );

    (report.lookup_ns, report.sender_ns) = sdk_lookup(&server.endpoint, &service_token).await?;
    println!(
        "SDK DefaultAccounts::get: {:.0} ns per lookup | DefaultAccounts::sender: {:.0} ns",
        report.lookup_ns, report.sender_ns
    );

    let (first, second) = write_scope(&admin).await?;
    report.writes_per_second = writes(&admin, &first, &second, duration).await?;
    println!(
        "SetDefaultAccount: {:.0} writes/s (one writer)",
        report.writes_per_second
    );
    let parallel = parallel_writes(&server, duration).await?;
    report.parallel_writes_per_second = parallel.per_second;
    println!(
        "SetDefaultAccount: {:.0} writes/s ({WRITERS} writers, each on a workspace of its own); CPU per write: server {:.0} µs, load generator {:.0} µs, the rest of the machine (PostgreSQL's processes if any, the kernel) {:.0} µs; machine busy {:.0}%",
        parallel.per_second,
        parallel.server_us,
        parallel.client_us,
        parallel.rest_us,
        parallel.busy_percent,
    );
    report.parallel_writes = Some(parallel);

    let one = propagation(
        &admin,
        &server.endpoint,
        &service_token,
        &first,
        &second,
        args.propagation_samples,
    )
    .await?;
    println!(
        "write → watcher event, one replica: p50 {:.2} ms p99 {:.2} ms",
        one.p50_ms, one.p99_ms
    );
    report.propagation_one = Some(one);
    if two_replicas {
        let replica = server.replica()?;
        let two = propagation(
            &admin,
            &replica.endpoint,
            &service_token,
            &first,
            &second,
            args.propagation_samples,
        )
        .await?;
        println!(
            "write → watcher event, across two replicas: p50 {:.2} ms p99 {:.2} ms",
            two.p50_ms, two.p99_ms
        );
        report.propagation_two = Some(two);
        report.shed += replica.shed_calls().await?;
        replica.stop();
    }

    report.shed += server.shed_calls().await?;
    report.peak_rss_kib = server.peak_rss_kib().unwrap_or_default();
    println!(
        "server peak RSS: {:.1} MiB (now {:.1} MiB)",
        report.peak_rss_kib as f64 / 1024.0,
        server.rss_kib().unwrap_or_default() as f64 / 1024.0
    );
    server.stop();
    Ok(report)
}

/// Stores `count` SMS accounts: one in ten workspace-wide, the rest spread over
/// `DIVISIONS` divisions, each with a secret; the first of each division is its default.
async fn seed(admin: &Client, count: usize) -> Result<Vec<(usize, String)>, BoxError> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let admin = admin.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut created = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok::<_, BoxError>(created);
                    }
                    let division = (!i.is_multiple_of(10)).then(|| format!("d{}", i % DIVISIONS));
                    let account = admin
                        .create_account(proto::CreateAccountRequest {
                            channel: Channel::Sms.into(),
                            account_key: format!("acct-{i}"),
                            display_name: format!("Account {i}"),
                            is_default: i < DIVISIONS,
                            division_id: division,
                            config: Some(config(&[
                                ("from_number", &format!("+1555{i:07}")),
                                ("auth_token", &format!("bench-secret-{i:012}")),
                            ])),
                            ..Default::default()
                        })
                        .await?;
                    created.push((i, account.id));
                    if (i + 1).is_multiple_of(20_000) {
                        println!("  … {} accounts", i + 1);
                    }
                }
            })
        })
        .collect();
    let mut created = Vec::with_capacity(count);
    for worker in workers {
        created.extend(worker.await??);
    }
    Ok(created)
}

/// Gives each division two fallbacks of its own accounts (`seed`'s), so that the SDK's
/// copy holds a list per scope as a deployment using them would. A server of a version
/// before fallbacks (a baseline) answers UNIMPLEMENTED: then none.
async fn seed_fallbacks(admin: &Client, created: &[(usize, String)]) -> Result<(), BoxError> {
    let mut lists: Vec<Vec<String>> = vec![Vec::new(); DIVISIONS];
    for (i, id) in created {
        let list = &mut lists[i % DIVISIONS];
        if *i >= DIVISIONS && !i.is_multiple_of(10) && list.len() < 2 {
            list.push(id.clone());
        }
    }
    for (division, ids) in lists.into_iter().enumerate() {
        if ids.is_empty() {
            continue;
        }
        let set = admin
            .accounts()
            .set_fallback_accounts(proto::SetFallbackAccountsRequest {
                channel: Channel::Sms.into(),
                division_id: format!("d{division}"),
                account_ids: ids,
            })
            .await;
        match set {
            Ok(_) => {}
            // A server before fallbacks knows no such method: its authorization opens it
            // to no role (or the router does not know it).
            Err(status)
                if status.code() == patchbay_sdk::tonic::Code::Unimplemented
                    || (status.code() == patchbay_sdk::tonic::Code::PermissionDenied
                        && status.message().contains("not open to any role")) =>
            {
                println!("  (this server has no fallbacks: none set)");
                return Ok(());
            }
            Err(status) => return Err(status.into()),
        }
    }
    Ok(())
}

/// Messenger accounts of pages 900000…, which the RouteWebhook bodies name.
fn config(fields: &[(&str, &str)]) -> Struct {
    Struct {
        fields: fields
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Value {
                        kind: Some(Kind::StringValue((*v).to_owned())),
                    },
                )
            })
            .collect(),
    }
}

#[derive(Clone, Copy)]
enum Call {
    Health,
    /// Health/Check with GetDefaultAccount's `authorization: Bearer …` header, which
    /// the health service ignores: h2 sends that header's value in full on every call
    /// (it never indexes `authorization`), and the server decodes it before routing.
    HealthWithToken,
    Default,
    /// GetDefaultAccount as grpcio sends it with `grpc.Compression.Gzip`: the request
    /// gzipped, gzip offered for the answer (which stays plain under 1 KiB).
    DefaultGzip,
    Route,
}

/// `level` callers over `level / 16` connections (at least one), alternating one-second
/// slices of each of `calls` (Health/Check first, as the yardstick) for `seconds` each,
/// after a warm-up of each, so that all see the same machine: on a shared 2-core box the
/// noise of a neighbour would otherwise land on one of them only. Every call must
/// succeed. Returns one rate per call, in order.
async fn measure(
    server: &Server,
    token: &str,
    level: usize,
    seconds: u64,
    calls: &[Call],
) -> Result<Vec<Rate>, BoxError> {
    let mut channels = Vec::new();
    for _ in 0..level.div_ceil(16) {
        channels.push(
            Endpoint::from_shared(server.endpoint.clone())?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    let slice = Duration::from_secs(1);
    let mut totals: Vec<Slices> = calls.iter().map(|_| Slices::default()).collect();
    for round in 0..=seconds {
        for (&call, total) in calls.iter().zip(&mut totals) {
            let client_before = process_cpu_time("self").unwrap_or_default();
            let (latencies, cpu) = run_slice(server, &channels, token, level, call, slice).await?;
            let client_cpu = process_cpu_time("self")
                .unwrap_or_default()
                .saturating_sub(client_before);
            // Round 0 warms up connections, caches and the allocator.
            if round > 0 {
                total.latencies.extend(latencies);
                total.cpu += cpu;
                total.client_cpu += client_cpu;
                total.time += slice;
            }
        }
    }
    Ok(totals.into_iter().map(Slices::rate).collect())
}

#[derive(Default)]
struct Slices {
    latencies: Vec<u64>,
    cpu: Duration,
    client_cpu: Duration,
    time: Duration,
}

impl Slices {
    fn rate(self) -> Rate {
        let calls = self.latencies.len();
        Rate {
            per_second: calls as f64 / self.time.as_secs_f64().max(f64::EPSILON),
            server_cpu_us: self.cpu.as_micros() as f64 / calls.max(1) as f64,
            client_cpu_us: self.client_cpu.as_micros() as f64 / calls.max(1) as f64,
            latency: Latency::of(self.latencies),
        }
    }
}

/// One slice: every caller calls back to back until the slice ends; returns each
/// call's latency (µs) and the server's CPU time over the slice.
async fn run_slice(
    server: &Server,
    channels: &[patchbay_sdk::tonic::transport::Channel],
    token: &str,
    level: usize,
    call: Call,
    duration: Duration,
) -> Result<(Vec<u64>, Duration), BoxError> {
    let routes = Arc::new(patchbay_bench::signed_page_bodies(PAGES));
    let cpu_before = server.cpu_time().unwrap_or_default();
    let end = Instant::now() + duration;
    let workers: Vec<_> = (0..level)
        .map(|worker| {
            let channel = channels[worker % channels.len()].clone();
            // Both calls through a generated client held by the worker, the same way.
            let bearer = BearerToken::new(token);
            let routes = routes.clone();
            tokio::spawn(async move {
                let bearer = bearer?;
                let mut accounts =
                    AccountServiceClient::with_interceptor(channel.clone(), bearer.clone());
                let mut gzipped = accounts
                    .clone()
                    .send_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Gzip);
                let mut webhooks =
                    WebhookServiceClient::with_interceptor(channel.clone(), bearer.clone());
                let mut health = HealthClient::new(channel.clone());
                let mut health_with_token = HealthClient::with_interceptor(channel, bearer);
                let mut latencies = Vec::new();
                let mut i = worker;
                loop {
                    let began = Instant::now();
                    if began >= end {
                        return Ok::<Vec<u64>, BoxError>(latencies);
                    }
                    match call {
                        Call::Health => {
                            health
                                .check(HealthCheckRequest {
                                    service: String::new(),
                                })
                                .await?;
                        }
                        Call::HealthWithToken => {
                            health_with_token
                                .check(HealthCheckRequest {
                                    service: String::new(),
                                })
                                .await?;
                        }
                        Call::Default => {
                            accounts
                                .get_default_account(proto::GetDefaultAccountRequest {
                                    channel: Channel::Sms.into(),
                                    division_id: format!("d{}", i % DIVISIONS),
                                    no_fallback: false,
                                })
                                .await?;
                        }
                        Call::DefaultGzip => {
                            gzipped
                                .get_default_account(proto::GetDefaultAccountRequest {
                                    channel: Channel::Sms.into(),
                                    division_id: format!("d{}", i % DIVISIONS),
                                    no_fallback: false,
                                })
                                .await?;
                        }
                        Call::Route => {
                            let routed = webhooks
                                .route_webhook(routes[i % routes.len()].clone())
                                .await?
                                .into_inner();
                            if routed.deliveries.len() != 1 {
                                return Err(format!("a page body did not route: {routed:?}").into());
                            }
                        }
                    }
                    i += 1;
                    latencies.push(began.elapsed().as_micros() as u64);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    let cpu = server
        .cpu_time()
        .unwrap_or_default()
        .saturating_sub(cpu_before);
    Ok((all, cpu))
}

/// Nanoseconds per `DefaultAccounts::get` and per `DefaultAccounts::sender` on the
/// divisions' defaults, each division with a fallback list (`seed`).
async fn sdk_lookup(endpoint: &str, token: &str) -> Result<(f64, f64), BoxError> {
    let client = Client::connect(endpoint.to_owned(), token).await?;
    let defaults = client.watch_default_accounts(WatchOptions::default());
    defaults.wait_synchronised(Duration::from_secs(30)).await?;
    let divisions: Vec<String> = (0..DIVISIONS).map(|d| format!("d{d}")).collect();
    let lookups = 5_000_000;
    let per_lookup = |found: usize, started: Instant| -> Result<f64, BoxError> {
        let elapsed = started.elapsed();
        if found != lookups {
            return Err(format!("only {found} of {lookups} lookups found a default").into());
        }
        Ok(elapsed.as_nanos() as f64 / lookups as f64)
    };
    let mut found = 0usize;
    let started = Instant::now();
    for i in 0..lookups {
        let division = &divisions[i % DIVISIONS];
        if black_box(defaults.get(Channel::Sms, Some(black_box(division)))).is_some() {
            found += 1;
        }
    }
    let get = per_lookup(found, started)?;
    let mut found = 0usize;
    let started = Instant::now();
    for i in 0..lookups {
        let division = &divisions[i % DIVISIONS];
        if black_box(defaults.sender(Channel::Sms, Some(black_box(division)))).is_some() {
            found += 1;
        }
    }
    Ok((get, per_lookup(found, started)?))
}

/// Two accounts of one scope of their own, which the write measurements flip between.
async fn write_scope(admin: &Client) -> Result<(String, String), BoxError> {
    let mut ids = Vec::new();
    for key in ["flip-a", "flip-b"] {
        let account = admin
            .create_account(proto::CreateAccountRequest {
                channel: Channel::Chat.into(),
                account_key: key.to_owned(),
                division_id: Some("flips".to_owned()),
                ..Default::default()
            })
            .await?;
        ids.push(account.id);
    }
    Ok((ids[0].clone(), ids[1].clone()))
}

/// Writers of the parallel write measurement.
const WRITERS: usize = 8;

/// What the parallel write measurement saw: writes per second, and where the CPU went
/// per write.
#[derive(Clone, Copy)]
struct WriteRate {
    per_second: f64,
    server_us: f64,
    client_us: f64,
    /// Everything else the machine did per write: on PostgreSQL, mostly its backends.
    rest_us: f64,
    /// How much of the machine's cores were busy over the measurement.
    busy_percent: f64,
}

/// WRITERS writers at once, each flipping the default of a scope in a workspace of its
/// own (the per-workspace share is not what is measured), for `duration`.
async fn parallel_writes(server: &Server, duration: Duration) -> Result<WriteRate, BoxError> {
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let admin = Client::connect(
            server.endpoint.clone(),
            &server.token("admin", &format!("bench-writer-{writer}"))?,
        )
        .await?;
        let (first, second) = write_scope(&admin).await?;
        writers.push((admin, first, second));
    }
    let server_before = server.cpu_time().unwrap_or_default();
    let client_before = process_cpu_time("self").unwrap_or_default();
    let machine_before = machine_cpu_time().unwrap_or_default();
    let started = Instant::now();
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|(admin, first, second)| {
            tokio::spawn(async move { writes_count(&admin, &first, &second, duration).await })
        })
        .collect();
    let mut total = 0u64;
    for task in tasks {
        total += task.await??;
    }
    let elapsed = started.elapsed();
    let per_write = |spent: Duration| spent.as_micros() as f64 / total.max(1) as f64;
    let server_cpu = server
        .cpu_time()
        .unwrap_or_default()
        .saturating_sub(server_before);
    let client_cpu = process_cpu_time("self")
        .unwrap_or_default()
        .saturating_sub(client_before);
    let machine_cpu = machine_cpu_time()
        .unwrap_or_default()
        .saturating_sub(machine_before);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok(WriteRate {
        per_second: total as f64 / elapsed.as_secs_f64(),
        server_us: per_write(server_cpu),
        client_us: per_write(client_cpu),
        rest_us: per_write(machine_cpu.saturating_sub(server_cpu + client_cpu)),
        busy_percent: 100.0 * machine_cpu.as_secs_f64() / (elapsed.as_secs_f64() * cores),
    })
}

async fn writes_count(
    admin: &Client,
    first: &str,
    second: &str,
    duration: Duration,
) -> Result<u64, BoxError> {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < duration {
        let id = if count.is_multiple_of(2) {
            first
        } else {
            second
        };
        admin.set_default_account(id).await?;
        count += 1;
    }
    Ok(count)
}

async fn writes(
    admin: &Client,
    first: &str,
    second: &str,
    duration: Duration,
) -> Result<f64, BoxError> {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < duration {
        let id = if count.is_multiple_of(2) {
            first
        } else {
            second
        };
        admin.set_default_account(id).await?;
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Writes on `admin`'s server, one at a time, each timed from the moment it is sent to
/// the moment a watcher on `watch_endpoint` receives its event.
async fn propagation(
    admin: &Client,
    watch_endpoint: &str,
    token: &str,
    first: &str,
    second: &str,
    samples: usize,
) -> Result<Latency, BoxError> {
    let watcher = Client::connect(watch_endpoint.to_owned(), token).await?;
    let mut stream = watcher
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest {
            channels: vec![Channel::Chat.into()],
            division_id: "flips".to_owned(),
        })
        .await?
        .into_inner();
    let current = match stream.message().await?.and_then(|m| m.event) {
        Some(Event::Snapshot(snapshot)) => snapshot.defaults.first().map(|a| a.id.clone()),
        _ => return Err("the watch did not start with a snapshot".into()),
    };
    let mut latencies = Vec::with_capacity(samples);
    let mut next_is_first = current.as_deref() != Some(first);
    for _ in 0..samples {
        let target = if next_is_first { first } else { second };
        next_is_first = !next_is_first;
        let sent = Instant::now();
        let write = admin.set_default_account(target);
        let heard = async {
            loop {
                let message = stream.message().await?.ok_or("the watch ended")?;
                if let Some(Event::Changed(changed)) = message.event
                    && changed.account.is_some_and(|a| a.id == target)
                {
                    return Ok::<Duration, BoxError>(sent.elapsed());
                }
            }
        };
        let (written, heard) =
            tokio::join!(write, tokio::time::timeout(Duration::from_secs(10), heard));
        written?;
        latencies.push(heard.map_err(|_| "no event within 10 s")??.as_micros() as u64);
    }
    Ok(Latency::of(latencies))
}

/// Health/Check carrying the bearer token, beside plain Health/Check.
fn carrying_note(health: &Rate, carrying: Rate) -> String {
    format!(
        "Health/Check carrying the bearer token alone: {:.0}% of Health/Check, server {:.1} µs",
        100.0 * carrying.per_second / health.per_second.max(1.0),
        carrying.server_cpu_us
    )
}

fn print_targets(reports: &[Report], larges: &[large::LargeReport], accounts: usize) -> usize {
    println!("\n== targets ==");
    let mut missed = 0;
    let mut check = |what: String, value: String, pass: bool| {
        println!("{} {what}: {value}", if pass { "PASS" } else { "MISS" });
        if !pass {
            missed += 1;
        }
    };
    for report in reports {
        let backend = report.backend;
        if let Some((_, health, default)) = report.unary.iter().find(|(level, _, _)| *level == 64) {
            let ratio = default.per_second / health.per_second.max(1.0);
            // Beside each, what Health/Check itself reads once it carries the same
            // bearer token (measured in the same slices): the share of the gap that is
            // the token on the wire, before any of Patchbay's code runs.
            let carrying = report
                .token_on_the_wire
                .iter()
                .find(|(level, _)| *level == 64)
                .map(|&(_, carrying)| carrying);
            let beside = |what: String| match carrying {
                Some(carrying) => format!("{what} ({})", carrying_note(health, carrying)),
                None => what,
            };
            check(
                format!(
                    "{backend}: GetDefaultAccount ≥ 95% of Health/Check throughput at concurrency 64"
                ),
                beside(format!("{:.0}%", ratio * 100.0)),
                ratio >= 0.95,
            );
            check(
                format!(
                    "{backend}: GetDefaultAccount server CPU per call within 3 µs of Health/Check's"
                ),
                beside(format!(
                    "{:.1} µs vs {:.1} µs",
                    default.server_cpu_us, health.server_cpu_us
                )),
                default.server_cpu_us <= health.server_cpu_us + 3.0,
            );
            check(
                format!("{backend}: GetDefaultAccount p99 ≤ 5 ms at concurrency 64"),
                format!(
                    "{:.2} ms (Health/Check's own: {:.2} ms)",
                    default.latency.p99_ms, health.latency.p99_ms
                ),
                default.latency.p99_ms <= 5.0,
            );
        }
        if backend == "PostgreSQL" {
            check(
                format!("{backend}: SetDefaultAccount ≥ 1000 writes/s with {WRITERS} writers"),
                match &report.parallel_writes {
                    Some(rate) => format!(
                        "{:.0} writes/s ({:.0} µs of CPU per write on the whole machine, {:.0}% of its cores busy)",
                        rate.per_second,
                        rate.server_us + rate.client_us + rate.rest_us,
                        rate.busy_percent
                    ),
                    None => format!("{:.0} writes/s", report.parallel_writes_per_second),
                },
                report.parallel_writes_per_second >= 1000.0,
            );
        }
        check(
            format!("{backend}: no call shed (RESOURCE_EXHAUSTED) during the measurements"),
            format!("{} shed", report.shed as u64),
            report.shed == 0.0,
        );
        check(
            format!("{backend}: SDK cached lookup ≤ 200 ns"),
            format!("{:.0} ns", report.lookup_ns),
            report.lookup_ns <= 200.0,
        );
        check(
            format!("{backend}: SDK DefaultAccounts::sender ≤ 200 ns"),
            format!("{:.0} ns", report.sender_ns),
            report.sender_ns <= 200.0,
        );
        if let Some(one) = report.propagation_one {
            check(
                format!("{backend}: watch propagation p99 ≤ 50 ms on one replica"),
                format!("{:.2} ms", one.p99_ms),
                one.p99_ms <= 50.0,
            );
        }
        if let Some(two) = report.propagation_two {
            check(
                format!("{backend}: watch propagation p99 ≤ 250 ms across two replicas"),
                format!("{:.2} ms", two.p99_ms),
                two.p99_ms <= 250.0,
            );
        }
        check(
            format!("{backend}: server RSS ≤ 100 MiB with {accounts} accounts"),
            format!("{:.1} MiB peak", report.peak_rss_kib as f64 / 1024.0),
            report.peak_rss_kib <= 100 * 1024,
        );
    }
    for large in larges {
        let backend = large.backend;
        check(
            format!(
                "{backend}: {} accounts (seeded in bulk): peak RSS ≤ 250 MiB",
                large.accounts
            ),
            format!("{:.1} MiB", large.peak_rss_kib as f64 / 1024.0),
            large.peak_rss_kib <= 250 * 1024,
        );
        check(
            format!(
                "{backend}: {} accounts: cold-cache GetDefaultAccount p99 ≤ 2 ms ({} calls)",
                large.accounts, large.cold_calls
            ),
            format!("{:.2} ms", large.cold.p99_ms),
            large.cold.p99_ms <= 2.0,
        );
        check(
            format!("{backend}: {} accounts: no call shed", large.accounts),
            format!("{} shed", large.shed as u64),
            large.shed == 0.0,
        );
    }
    if larges.is_empty() {
        check(
            "1,000,000 accounts over 10,000 workspaces: peak RSS and cold-cache p99".to_owned(),
            "not measured in this run (--large-accounts 0)".to_owned(),
            false,
        );
    }
    missed
}
