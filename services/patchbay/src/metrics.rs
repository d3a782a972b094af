//! Prometheus metrics, served as text at `/metrics` on their own plain-HTTP listener
//! (`--metrics-listen`; off by default). They carry no secret and no value a client
//! chose beyond the method (an unknown method path counts as `unknown`): no workspace,
//! no token, no id. Without the listener, the `metrics` macros record nothing.
//!
//! Names (docs/operations.md, "Metrics"):
//! - `patchbay_grpc_requests_total{method, code}`,
//!   `patchbay_grpc_request_duration_seconds{method}` (histogram);
//! - `patchbay_grpc_in_flight`, `patchbay_grpc_shed_total{reason}`;
//! - `patchbay_watch_streams_open{kind}`;
//! - `patchbay_default_cache_lookups_total{outcome}`,
//!   `patchbay_default_cache_invalidations_total`, `patchbay_token_cache_hits_total`;
//! - `patchbay_db_pool_connections{state}`, `patchbay_db_pool_acquire_duration_seconds`
//!   (histogram, from `telemetry`), `patchbay_db_pool_acquire_timeouts_total`;
//! - `patchbay_outbound_calls_total{provider, outcome}`;
//! - `patchbay_token_checks_total{outcome}`, `patchbay_token_refreshes_total{outcome}`;
//! - `patchbay_webhook_routes` (accounts in the routing index);
//! - `patchbay_memory_entries{holder}`, `patchbay_memory_bytes{holder}` (what each
//!   in-memory holder keeps, counted when scraped: `memory.rs`).

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::store::Store;

/// Latency buckets, in seconds: the hot path is well under a millisecond.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process's recorder, installed once by the first metrics listener (several
/// servers in one test process share it) and never removed.
static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot install the metrics recorder");
                    None
                }
            }
        })
        .as_ref()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps each histogram sample until upkeep folds it into the buckets
/// (`render` does it too). Without this, a server nobody scrapes kept every call's
/// latency sample for ever: about 8 bytes a call, the soak's leak (#31). A thread of
/// its own, not a task: the recorder outlives any one runtime (tests start many).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "cannot start the metrics upkeep thread");
    }
}

/// Whether this process records metrics: a metrics listener installed the recorder.
pub fn recording() -> bool {
    RECORDER.get().is_some_and(Option::is_some)
}

/// The metrics every call moves, as handles looked up once. The `metrics` macros hash
/// their key, search the recorder's registry under its lock and build their label list
/// on each use, which a call of a few microseconds feels. A handle is only taken once
/// the recorder is installed (one taken before would record nothing, for good).
pub mod hot {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::LazyLock;

    use metrics::{Counter, Gauge, Histogram};

    use super::recording;

    static TOKEN_CACHE_HITS: LazyLock<Counter> =
        LazyLock::new(|| metrics::counter!("patchbay_token_cache_hits_total"));
    static DEFAULT_CACHE_HITS: LazyLock<Counter> = LazyLock::new(
        || metrics::counter!("patchbay_default_cache_lookups_total", "outcome" => "hit"),
    );
    static POOL_ACQUIRE_WAITS: LazyLock<Histogram> =
        LazyLock::new(|| metrics::histogram!("patchbay_db_pool_acquire_duration_seconds"));
    static IN_FLIGHT: LazyLock<Gauge> =
        LazyLock::new(|| metrics::gauge!("patchbay_grpc_in_flight"));

    /// A method's label and a gRPC code's name.
    type MethodCode = (&'static str, &'static str);

    thread_local! {
        /// Per worker thread, so that finding a method's handles takes no shared lock.
        static CALLS: RefCell<HashMap<MethodCode, (Counter, Histogram)>> =
            RefCell::new(HashMap::new());
    }

    /// A bearer token answered from the verified-token cache.
    pub fn token_cache_hit() {
        if recording() {
            TOKEN_CACHE_HITS.increment(1);
        }
    }

    /// A GetDefaultAccount scope answered from the read cache.
    pub fn default_cache_hit() {
        if recording() {
            DEFAULT_CACHE_HITS.increment(1);
        }
    }

    /// A connection taken from the database pool after waiting `seconds`.
    pub fn pool_acquire_waited(seconds: f64) {
        if recording() {
            POOL_ACQUIRE_WAITS.record(seconds);
        }
    }

    /// A call started (`1.0`) or ended (`-1.0`).
    pub fn in_flight(change: f64) {
        if recording() {
            IN_FLIGHT.increment(change);
        }
    }

    /// A call of `method` finished with `code` after `seconds`.
    pub fn call_finished(method: &'static str, code: &'static str, seconds: f64) {
        if !recording() {
            return;
        }
        CALLS.with_borrow_mut(|calls| {
            let (count, latency) = calls.entry((method, code)).or_insert_with(|| {
                (
                    metrics::counter!("patchbay_grpc_requests_total", "method" => method, "code" => code),
                    metrics::histogram!("patchbay_grpc_request_duration_seconds", "method" => method),
                )
            });
            count.increment(1);
            latency.record(seconds);
        });
    }
}

/// Binds the metrics listener; the task it returns serves `/metrics` until dropped.
pub async fn listen(
    address: SocketAddr,
    store: Store,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()> + Send)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let handle = recorder().cloned();
    let scraped = std::sync::Arc::new(tokio::sync::Notify::new());
    let census = sealed_census(store.clone(), scraped.clone());
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (handle, store) = (handle.clone(), store.clone());
            scraped.notify_one();
            async move {
                store.report_pool();
                crate::memory::report();
                handle.map(|h| h.render()).unwrap_or_default()
            }
        }),
    );
    let serve = async move {
        let serve = async {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::warn!(error = %err, "the metrics listener stopped");
            }
        };
        tokio::select! {
            () = serve => {}
            () = census => {}
        }
    };
    Ok((bound, serve))
}

/// How often the records still sealed under another key are counted: a scan of every
/// sealed table, too much for every scrape.
const CENSUS_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Keeps `patchbay_sealed_records_off_active_key` (what `keys rotate` has left to do)
/// current while metrics are served: counted once something scrapes them, then every
/// `CENSUS_EVERY`. Not at start: on a large installation the count scans every sealed
/// table, which a replica starting with cold caches should not do before anyone asks.
async fn sealed_census(store: Store, scraped: std::sync::Arc<tokio::sync::Notify>) {
    scraped.notified().await;
    loop {
        match store.records_off_active_key().await {
            Ok(count) => {
                metrics::gauge!("patchbay_sealed_records_off_active_key").set(count as f64)
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot count the records sealed under other keys")
            }
        }
        tokio::time::sleep(CENSUS_EVERY).await;
    }
}

/// An open watch stream, counted in `patchbay_watch_streams_open{kind}` while it lives.
pub struct Open(&'static str);

impl Open {
    pub fn stream(kind: &'static str) -> Open {
        metrics::gauge!("patchbay_watch_streams_open", "kind" => kind).increment(1.0);
        Open(kind)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("patchbay_watch_streams_open", "kind" => self.0).decrement(1.0);
    }
}

/// The method label of a request path: the RPC's name for Patchbay's, health and
/// reflection by theirs, `unknown` for anything else (a client does not name labels).
pub fn method_label(path: &str) -> &'static str {
    if let Some(action) = crate::grpc::authorization::action_of(path) {
        return action.name();
    }
    match path {
        "/grpc.health.v1.Health/Check" => "Health/Check",
        "/grpc.health.v1.Health/Watch" => "Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        | "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" => {
            "ServerReflectionInfo"
        }
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn a_method_label_is_a_known_name_or_unknown() {
        assert_eq!(
            method_label("/patchbay.v1.AccountService/GetDefaultAccount"),
            "GetDefaultAccount"
        );
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "Health/Check");
        for made_up in [
            "/patchbay.v1.AccountService/EveryoneIsAdmin",
            "/acme-workspace/secret",
            "",
        ] {
            assert_eq!(method_label(made_up), "unknown");
        }
    }
}
