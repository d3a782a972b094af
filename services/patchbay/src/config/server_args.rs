//! How the server protects itself and shuts down: deadlines, places, message sizes.

use std::net::SocketAddr;

use clap::Args;

use super::settings::server_defaults as server;

/// How the server protects itself and shuts down.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Longest a call may run (a caller's shorter grpc-timeout wins) before DEADLINE_EXCEEDED.
    #[arg(long, env = "PATCHBAY_REQUEST_TIMEOUT_SECONDS", default_value_t = server::REQUEST_TIMEOUT_SECONDS)]
    pub request_timeout_seconds: u64,
    /// Calls in flight beyond which new calls are refused at once with RESOURCE_EXHAUSTED.
    #[arg(long, env = "PATCHBAY_MAX_CONCURRENT_REQUESTS", default_value_t = server::MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,
    /// RouteWebhook calls in flight: the webhook gateway's own places, beside the server's.
    #[arg(long, env = "PATCHBAY_MAX_CONCURRENT_GATEWAY_REQUESTS", default_value_t = server::MAX_CONCURRENT_GATEWAY_REQUESTS)]
    pub max_concurrent_gateway_requests: usize,
    /// How many verified bearer tokens are remembered (until they expire); 0 verifies every call.
    #[arg(long, env = "PATCHBAY_TOKEN_CACHE_CAPACITY", default_value_t = server::TOKEN_CACHE_CAPACITY)]
    pub token_cache_capacity: usize,
    /// WatchDefaultAccounts streams open at once beyond which new ones get RESOURCE_EXHAUSTED.
    #[arg(long, env = "PATCHBAY_MAX_WATCH_STREAMS", default_value_t = server::MAX_WATCH_STREAMS)]
    pub max_watch_streams: usize,
    /// One workspace's share of the open watch streams (at most --max-watch-streams).
    #[arg(
        long,
        env = "PATCHBAY_MAX_WATCH_STREAMS_PER_WORKSPACE",
        default_value_t = server::MAX_WATCH_STREAMS_PER_WORKSPACE
    )]
    pub max_watch_streams_per_workspace: usize,
    /// One workspace's cap on the calls in flight (at most --max-concurrent-requests); unset,
    /// all of them: a tenant alone may use the whole server, and the fair rule shares it.
    #[arg(long, env = "PATCHBAY_MAX_CONCURRENT_REQUESTS_PER_WORKSPACE")]
    pub max_concurrent_requests_per_workspace: Option<usize>,
    /// Longest a call's request message may take to arrive after its headers, in seconds;
    /// beyond it the call is DEADLINE_EXCEEDED. A call holds no place while it arrives.
    #[arg(
        long,
        env = "PATCHBAY_REQUEST_READ_TIMEOUT_SECONDS",
        default_value_t = server::REQUEST_READ_TIMEOUT_SECONDS
    )]
    pub request_read_timeout_seconds: u64,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "PATCHBAY_MAX_MESSAGE_BYTES", default_value_t = server::MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// HTTP/2 keepalive ping interval, in seconds.
    #[arg(long, env = "PATCHBAY_HTTP2_KEEPALIVE_SECONDS", default_value_t = server::HTTP2_KEEPALIVE_SECONDS)]
    pub http2_keepalive_seconds: u64,
    /// On SIGTERM, how long in-flight calls may finish before the server exits anyway.
    #[arg(long, env = "PATCHBAY_DRAIN_TIMEOUT_SECONDS", default_value_t = server::DRAIN_TIMEOUT_SECONDS)]
    pub drain_timeout_seconds: u64,
    /// How often the database is pinged to report health.
    #[arg(
        long,
        env = "PATCHBAY_HEALTH_CHECK_INTERVAL_SECONDS",
        default_value_t = server::HEALTH_CHECK_INTERVAL_SECONDS
    )]
    pub health_check_interval_seconds: u64,
    /// How long account events are kept for WatchAccountEvents to replay, in days.
    #[arg(
        long,
        env = "PATCHBAY_ACCOUNT_EVENTS_RETENTION_DAYS",
        default_value_t = server::ACCOUNT_EVENTS_RETENTION_DAYS
    )]
    pub account_events_retention_days: u32,
    /// Serve Prometheus metrics at http://<address>/metrics (plain HTTP: they carry no
    /// secret); off when unset.
    #[arg(long, env = "PATCHBAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Browser origins allowed to call over gRPC-Web (CORS), comma-separated, e.g.
    /// https://console.example.com; none when unset (gRPC-Web itself is always on).
    #[arg(long, env = "PATCHBAY_GRPC_WEB_ORIGINS", value_delimiter = ',')]
    pub grpc_web_origins: Vec<String>,
}
