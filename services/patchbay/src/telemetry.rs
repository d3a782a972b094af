//! Logging and tracing: structured `tracing` output to stderr (pretty or JSON, filtered
//! by `PATCHBAY_LOG` or `RUST_LOG`, `info` by default), and, when an OTLP endpoint is
//! configured, spans exported over OTLP/gRPC with `tracing-opentelemetry` (over TLS for an
//! `https://` collector, with the system's roots or a given CA). The W3C `traceparent` of
//! each call is honoured (`grpc::request_span`). Beside them, under its own filter, the
//! database pool's acquire events become the `patchbay_db_pool_acquire_duration_seconds`
//! histogram.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use tonic::transport::{Certificate, ClientTlsConfig};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn";

/// Keeps the span exporter alive; dropping it flushes what is left.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("patchbay: flushing spans failed: {err}");
        }
    }
}

/// Where spans are exported.
#[derive(Clone, Copy, Debug)]
pub struct Exporter<'a> {
    /// The OTLP/gRPC collector (`http://…`, or `https://…` over TLS).
    pub endpoint: &'a str,
    /// The CA an https collector's certificate must chain to; `None`: system roots.
    pub ca_file: Option<&'a std::path::Path>,
}

/// Installs the global subscriber, logs filtered by `PATCHBAY_LOG` or `RUST_LOG`. Call
/// inside the Tokio runtime: the OTLP exporter's connection lives on it.
pub fn init(format: LogFormat, exporter: Option<Exporter<'_>>) -> Result<TelemetryGuard, String> {
    let filter = std::env::var("PATCHBAY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    install(format, filter, exporter)
}

/// [`init`] with the log filter given. `filter` chooses what is logged and exported as
/// spans; the pool's acquire waits reach the metrics whatever it says.
pub fn install(
    format: LogFormat,
    filter: EnvFilter,
    exporter: Option<Exporter<'_>>,
) -> Result<TelemetryGuard, String> {
    let provider = match exporter {
        Some(Exporter { endpoint, ca_file }) => {
            let builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint);
            // Always: the exporter treats an endpoint without a scheme as https, and the
            // TLS settings only take effect for an https endpoint.
            let builder = builder.with_tls_config(collector_tls(ca_file)?);
            let exporter = builder
                .build()
                .map_err(|err| format!("OTEL_EXPORTER_OTLP_ENDPOINT ({endpoint}): {err}"))?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(Resource::builder().with_service_name("patchbay").build())
                    .build(),
            )
        }
        None => None,
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut traced: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    if let Some(provider) = &provider {
        traced.push(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("patchbay"))
                .boxed(),
        );
    }
    traced.push(match format {
        // Each line carries the fields of its spans: method, workspace, request id.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed(),
    });
    // Each with its own filter: the log filter does not silence the pool's waits.
    let pool_waits = Targets::new().with_target(POOL_ACQUIRE_TARGET, LevelFilter::TRACE);
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(traced.with_filter(filter))
        .with(PoolAcquireWaits.with_filter(pool_waits))
        .try_init();
    Ok(TelemetryGuard { provider })
}

fn collector_tls(ca_file: Option<&std::path::Path>) -> Result<ClientTlsConfig, String> {
    Ok(match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|err| {
                format!(
                    "OTEL_EXPORTER_OTLP_CERTIFICATE (--otlp-ca-file): cannot read {}: {err}",
                    path.display()
                )
            })?;
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
        }
        None => ClientTlsConfig::new().with_native_roots(),
    })
}

/// The target of the event sqlx sends for each connection its pool hands out (with
/// `acquired_after_secs`), at the level `Store::connect` asks for.
pub const POOL_ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// Records each pool acquire's wait in `patchbay_db_pool_acquire_duration_seconds`.
struct PoolAcquireWaits;

impl<S: tracing::Subscriber> Layer<S> for PoolAcquireWaits {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if !crate::metrics::recording() {
            return;
        }
        let mut waited = Waited(None);
        event.record(&mut waited);
        if let Some(seconds) = waited.0 {
            crate::metrics::hot::pool_acquire_waited(seconds);
        }
    }
}

/// The `acquired_after_secs` field of an acquire event.
struct Waited(Option<f64>);

impl Visit for Waited {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "acquired_after_secs" {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}
