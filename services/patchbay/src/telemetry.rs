//! Logging and tracing: structured `tracing` output to stderr (pretty or JSON, filtered
//! by `PATCHBAY_LOG` or `RUST_LOG`, `info` by default), and, when an OTLP endpoint is
//! configured, spans exported over OTLP/gRPC with `tracing-opentelemetry` (over TLS for an
//! `https://` collector, with the system's roots or a given CA). The W3C `traceparent` of
//! each call is honoured (`grpc::request_span`).

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use tonic::transport::{Certificate, ClientTlsConfig};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn";

/// Keeps the span exporter alive; dropping it flushes what is left.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(err) = provider.shutdown() {
                eprintln!("patchbay: flushing spans failed: {err}");
            }
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

/// Installs the global subscriber. Call inside the Tokio runtime: the OTLP exporter's
/// connection lives on it.
pub fn init(format: LogFormat, exporter: Option<Exporter<'_>>) -> Result<TelemetryGuard, String> {
    let filter = std::env::var("PATCHBAY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));

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
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("patchbay")));

    let registry = tracing_subscriber::registry().with(filter).with(otel);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        // Each line carries the fields of its spans: method, workspace, request id.
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
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
