//! The settings the server runs with, validated from the command line.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cli::{DatabaseArgs, DefaultsArgs, ServeArgs, ServerArgs};
use super::keys::{self, DevKeys, jwt_settings, key_ring};
use super::providers::{self, meta_settings, provider_urls};
use super::{ConfigError, listener};
use crate::auth::JwtSettings;
use crate::listener::TlsSettings;
use crate::meta::MetaSettings;
use crate::outbound::{OutboundSettings, ProviderUrls};
use crate::sealing::KeyRing;
use crate::store::DatabaseSettings;
use crate::views::defaults::DefaultsSettings;

/// Everything the server needs, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// TLS on the listener; `None`: plaintext (loopback, or a mesh in front).
    pub tls: Option<TlsSettings>,
    pub database: DatabaseSettings,
    pub public_base_url: String,
    pub jwt: JwtSettings,
    pub keys: KeyRing,
    pub provider_urls: ProviderUrls,
    /// How calls to providers are guarded (`--allow-private-outbound`).
    pub outbound: OutboundSettings,
    pub meta: MetaSettings,
    pub server: ServerSettings,
    pub defaults: DefaultsSettings,
    /// The data directory whose generated development keys are in use (the embedded
    /// default only); the server says so once at start.
    pub development_keys: Option<PathBuf>,
}

/// Overload protection and shutdown, validated.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    /// RouteWebhook calls in flight: the gateway's own places.
    pub max_concurrent_gateway_requests: usize,
    /// Open WatchDefaultAccounts streams; they hold no call permit once open.
    pub max_watch_streams: usize,
    /// One workspace's share of the open watch streams.
    pub max_watch_streams_per_workspace: usize,
    /// One workspace's cap on the calls in flight (the server's places unless set).
    pub max_concurrent_requests_per_workspace: usize,
    /// Longest a request message may take to arrive after its headers.
    pub request_read_timeout: Duration,
    pub max_message_bytes: usize,
    pub http2_keepalive: Duration,
    pub drain_timeout: Duration,
    pub health_check_interval: Duration,
    /// How many verified bearer tokens are remembered; 0 verifies every call.
    pub token_cache_capacity: usize,
    /// How long account events are kept.
    pub account_events_retention: Duration,
    /// Where Prometheus metrics are served; `None`: nowhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Browser origins allowed to call over gRPC-Web (`scheme://host[:port]`).
    pub grpc_web_origins: Vec<String>,
}

/// The defaults of [`ServerSettings`], as `patchbay serve --help` shows them.
pub mod server_defaults {
    pub const REQUEST_TIMEOUT_SECONDS: u64 = 30;
    pub const MAX_CONCURRENT_REQUESTS: usize = 256;
    /// RouteWebhook calls in flight.
    pub const MAX_CONCURRENT_GATEWAY_REQUESTS: usize = 128;
    pub const MAX_WATCH_STREAMS: usize = 10_000;
    pub const MAX_WATCH_STREAMS_PER_WORKSPACE: usize = 1_000;
    pub const REQUEST_READ_TIMEOUT_SECONDS: u64 = 10;
    pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
    pub const HTTP2_KEEPALIVE_SECONDS: u64 = 30;
    pub const DRAIN_TIMEOUT_SECONDS: u64 = 20;
    pub const HEALTH_CHECK_INTERVAL_SECONDS: u64 = 5;
    pub const TOKEN_CACHE_CAPACITY: usize = 10_000;
    pub const ACCOUNT_EVENTS_RETENTION_DAYS: u32 = 30;
}

impl Default for ServerSettings {
    fn default() -> Self {
        use server_defaults as d;
        Self {
            request_timeout: Duration::from_secs(d::REQUEST_TIMEOUT_SECONDS),
            max_concurrent_requests: d::MAX_CONCURRENT_REQUESTS,
            max_concurrent_gateway_requests: d::MAX_CONCURRENT_GATEWAY_REQUESTS,
            max_watch_streams: d::MAX_WATCH_STREAMS,
            max_watch_streams_per_workspace: d::MAX_WATCH_STREAMS_PER_WORKSPACE,
            max_concurrent_requests_per_workspace: d::MAX_CONCURRENT_REQUESTS,
            request_read_timeout: Duration::from_secs(d::REQUEST_READ_TIMEOUT_SECONDS),
            max_message_bytes: d::MAX_MESSAGE_BYTES,
            http2_keepalive: Duration::from_secs(d::HTTP2_KEEPALIVE_SECONDS),
            drain_timeout: Duration::from_secs(d::DRAIN_TIMEOUT_SECONDS),
            health_check_interval: Duration::from_secs(d::HEALTH_CHECK_INTERVAL_SECONDS),
            token_cache_capacity: d::TOKEN_CACHE_CAPACITY,
            account_events_retention: Duration::from_secs(
                u64::from(d::ACCOUNT_EVENTS_RETENTION_DAYS) * 86_400,
            ),
            metrics_listen: None,
            grpc_web_origins: Vec::new(),
        }
    }
}

fn defaults_settings(args: &DefaultsArgs) -> Result<DefaultsSettings, ConfigError> {
    if args.watch_buffer == 0 {
        return Err(ConfigError(
            "PATCHBAY_WATCH_BUFFER must be at least 1".to_owned(),
        ));
    }
    Ok(DefaultsSettings {
        cache_capacity: args.default_cache_capacity,
        cache_ttl: Duration::from_secs(args.default_cache_ttl_seconds),
        watch_buffer: args.watch_buffer,
        ..DefaultsSettings::default()
    })
}

fn server_settings(args: &ServerArgs) -> Result<ServerSettings, ConfigError> {
    let positive = |value: u64, name: &str| {
        if value == 0 {
            Err(ConfigError(format!("{name} must be at least 1")))
        } else {
            Ok(Duration::from_secs(value))
        }
    };
    if args.max_concurrent_requests == 0 {
        return Err(ConfigError(
            "PATCHBAY_MAX_CONCURRENT_REQUESTS must be at least 1".to_owned(),
        ));
    }
    if args.max_concurrent_gateway_requests == 0 {
        return Err(ConfigError(
            "PATCHBAY_MAX_CONCURRENT_GATEWAY_REQUESTS must be at least 1".to_owned(),
        ));
    }
    if args.max_message_bytes < 1024 {
        return Err(ConfigError(
            "PATCHBAY_MAX_MESSAGE_BYTES must be at least 1024".to_owned(),
        ));
    }
    if args.max_watch_streams_per_workspace == 0
        || args.max_watch_streams_per_workspace > args.max_watch_streams
    {
        return Err(ConfigError(
            "PATCHBAY_MAX_WATCH_STREAMS_PER_WORKSPACE (--max-watch-streams-per-workspace) must be 1 to PATCHBAY_MAX_WATCH_STREAMS".to_owned(),
        ));
    }
    let per_workspace = args
        .max_concurrent_requests_per_workspace
        .unwrap_or(args.max_concurrent_requests);
    if per_workspace == 0 || per_workspace > args.max_concurrent_requests {
        return Err(ConfigError(
            "PATCHBAY_MAX_CONCURRENT_REQUESTS_PER_WORKSPACE (--max-concurrent-requests-per-workspace) must be 1 to PATCHBAY_MAX_CONCURRENT_REQUESTS".to_owned(),
        ));
    }
    Ok(ServerSettings {
        request_timeout: positive(
            args.request_timeout_seconds,
            "PATCHBAY_REQUEST_TIMEOUT_SECONDS",
        )?,
        max_concurrent_requests: args.max_concurrent_requests,
        max_concurrent_gateway_requests: args.max_concurrent_gateway_requests,
        max_watch_streams: args.max_watch_streams,
        max_watch_streams_per_workspace: args.max_watch_streams_per_workspace,
        max_concurrent_requests_per_workspace: per_workspace,
        request_read_timeout: positive(
            args.request_read_timeout_seconds,
            "PATCHBAY_REQUEST_READ_TIMEOUT_SECONDS",
        )?,
        max_message_bytes: args.max_message_bytes,
        http2_keepalive: positive(
            args.http2_keepalive_seconds,
            "PATCHBAY_HTTP2_KEEPALIVE_SECONDS",
        )?,
        drain_timeout: positive(args.drain_timeout_seconds, "PATCHBAY_DRAIN_TIMEOUT_SECONDS")?,
        health_check_interval: positive(
            args.health_check_interval_seconds,
            "PATCHBAY_HEALTH_CHECK_INTERVAL_SECONDS",
        )?,
        token_cache_capacity: args.token_cache_capacity,
        account_events_retention: positive(
            u64::from(args.account_events_retention_days) * 86_400,
            "PATCHBAY_ACCOUNT_EVENTS_RETENTION_DAYS",
        )?,
        metrics_listen: args.metrics_listen,
        grpc_web_origins: web_origins(&args.grpc_web_origins)?,
    })
}

const SQLITE_FILE: &str = "patchbay.db";

impl Settings {
    pub fn from_serve_args(data_dir: &Path, args: &ServeArgs) -> Result<Settings, ConfigError> {
        let public_base_url = args.public_base_url.trim().to_owned();
        if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://"))
            || public_base_url.len() <= "https://".len()
        {
            return Err(ConfigError(format!(
                "PATCHBAY_PUBLIC_BASE_URL (--public-base-url) must be an http(s) URL, got {public_base_url:?}"
            )));
        }
        let dev_keys = dev_keys_for_serve(args);
        if dev_keys == DevKeys::Refused
            && let Some(missing) = keys::missing_keys(&args.jwt, Some(&args.encryption))
        {
            return Err(keys::not_embedded(&missing));
        }
        let jwt = jwt_settings(data_dir, &args.jwt, dev_keys)?;
        let encryption = key_ring(data_dir, &args.encryption, dev_keys)?;
        let uses_dev_keys = keys::missing_keys(&args.jwt, Some(&args.encryption)).is_some();
        Ok(Settings {
            listen: args.listen,
            tls: listener::tls_settings(args.listen, &args.tls)?,
            database: database_settings(data_dir, &args.database)?,
            public_base_url,
            jwt,
            keys: encryption,
            provider_urls: provider_urls(&args.providers)?,
            outbound: providers::outbound_settings(&args.providers),
            meta: meta_settings(&args.providers)?,
            server: server_settings(&args.server)?,
            defaults: defaults_settings(&args.defaults)?,
            development_keys: uses_dev_keys.then(|| data_dir.to_owned()),
        })
    }
}

/// The embedded default — no database URL and a loopback listen address — is the one
/// place development keys are generated.
fn dev_keys_for_serve(args: &ServeArgs) -> DevKeys {
    if args.database.database_url.is_none() && args.listen.ip().is_loopback() {
        DevKeys::Allowed
    } else {
        DevKeys::Refused
    }
}

/// `keys rotate` has no listen address: only the embedded database may use the
/// development key ring.
pub fn dev_keys_for_database(args: &DatabaseArgs) -> DevKeys {
    if args.database_url.is_none() {
        DevKeys::Allowed
    } else {
        DevKeys::Refused
    }
}

pub fn database_settings(
    data_dir: &Path,
    args: &DatabaseArgs,
) -> Result<DatabaseSettings, ConfigError> {
    let url = match &args.database_url {
        Some(url)
            if url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:") =>
        {
            url.clone()
        }
        Some(_) => {
            return Err(ConfigError(
                "PATCHBAY_DATABASE_URL (--database-url) must start with postgres://, postgresql:// or sqlite:".to_owned(),
            ));
        }
        None => {
            ensure_data_dir(data_dir)?;
            format!("sqlite://{}?mode=rwc", data_dir.join(SQLITE_FILE).display())
        }
    };
    if args.database_max_connections == 0 {
        return Err(ConfigError(
            "PATCHBAY_DATABASE_MAX_CONNECTIONS (--database-max-connections) must be at least 1"
                .to_owned(),
        ));
    }
    if args.database_acquire_timeout_seconds == 0 {
        return Err(ConfigError(
            "PATCHBAY_DATABASE_ACQUIRE_TIMEOUT_SECONDS must be at least 1".to_owned(),
        ));
    }
    Ok(DatabaseSettings {
        url,
        max_connections: args.database_max_connections,
        acquire_timeout: Duration::from_secs(args.database_acquire_timeout_seconds),
    })
}

pub(crate) fn ensure_data_dir(data_dir: &Path) -> Result<(), ConfigError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(data_dir).map_err(|err| {
        ConfigError(format!(
            "PATCHBAY_DATA_DIR (--data-dir): cannot create {}: {err}",
            data_dir.display()
        ))
    })
}

/// The gRPC-Web origins as browsers send them: `scheme://host[:port]`, nothing more.
fn web_origins(origins: &[String]) -> Result<Vec<String>, ConfigError> {
    origins
        .iter()
        .map(|origin| origin.trim())
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let valid = url::Url::parse(origin).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.path() == "/"
                    && !origin.ends_with('/')
                    && url.query().is_none()
                    && url.username().is_empty()
            });
            if valid {
                Ok(origin.to_owned())
            } else {
                Err(ConfigError(format!(
                    "PATCHBAY_GRPC_WEB_ORIGINS (--grpc-web-origins): {origin:?} is not an origin (scheme://host[:port], no path)"
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn grpc_web_origins_are_bare_origins() {
        let origins = |list: &[&str]| {
            super::web_origins(&list.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            origins(&["https://console.example.com", " http://localhost:3000 ", ""])
                .expect("valid"),
            ["https://console.example.com", "http://localhost:3000"]
        );
        for bad in [
            "console.example.com",
            "https://console.example.com/",
            "https://console.example.com/app",
            "https://user@console.example.com",
            "javascript:alert(1)",
            "*",
        ] {
            let err = origins(&[bad]).expect_err(bad);
            assert!(
                err.to_string().contains("PATCHBAY_GRPC_WEB_ORIGINS"),
                "{err}"
            );
        }
    }

    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::config::{Cli, Command};

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn serve_args(extra: &[&str]) -> Box<ServeArgs> {
        let mut argv = vec!["patchbay", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("arguments parse").command {
            Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn keys_fail_closed_outside_the_embedded_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        for extra in [
            &["--database-url", "postgres://db.internal/patchbay"][..],
            &["--listen", "0.0.0.0:50051", "--allow-plaintext"][..],
        ] {
            let err = Settings::from_serve_args(dir.path(), &serve_args(extra))
                .expect_err("no keys outside the embedded default");
            for setting in ["PATCHBAY_ENCRYPTION_KEYS", "PATCHBAY_JWT_SECRET"] {
                assert!(err.0.contains(setting), "{setting} named in {}", err.0);
            }
        }
        assert!(
            !dir.path().join("encryption-keys.json").exists(),
            "no key ring generated"
        );
        // The embedded default generates them, and says so.
        let settings = Settings::from_serve_args(dir.path(), &serve_args(&[]))
            .expect("embedded default starts");
        assert_eq!(settings.development_keys.as_deref(), Some(dir.path()));
        assert!(dir.path().join("encryption-keys.json").exists());
    }

    /// What a careless operator sets for #28's settings is named, never taken.
    #[test]
    fn fairness_settings_out_of_range_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (extra, named) in [
            (
                &["--request-read-timeout-seconds", "0"][..],
                "PATCHBAY_REQUEST_READ_TIMEOUT_SECONDS",
            ),
            (
                &["--max-concurrent-requests-per-workspace", "0"][..],
                "PATCHBAY_MAX_CONCURRENT_REQUESTS_PER_WORKSPACE",
            ),
            (
                &[
                    "--max-concurrent-requests",
                    "8",
                    "--max-concurrent-requests-per-workspace",
                    "9",
                ][..],
                "PATCHBAY_MAX_CONCURRENT_REQUESTS_PER_WORKSPACE",
            ),
            (
                &["--token-checks-per-workspace-per-round", "0"][..],
                "PATCHBAY_TOKEN_CHECKS_PER_WORKSPACE_PER_ROUND",
            ),
            (
                &["--token-refresh-ahead-days", "51"][..],
                "PATCHBAY_TOKEN_REFRESH_AHEAD_DAYS",
            ),
        ] {
            let err = Settings::from_serve_args(dir.path(), &serve_args(extra))
                .expect_err("out of range");
            assert!(err.0.contains(named), "{named} named in {}", err.0);
        }
        // Unset, a workspace's cap is every place of the server.
        let settings = Settings::from_serve_args(
            dir.path(),
            &serve_args(&["--max-concurrent-requests", "40"]),
        )
        .expect("defaults");
        assert_eq!(settings.server.max_concurrent_requests_per_workspace, 40);
    }

    #[test]
    fn plaintext_off_loopback_needs_tls_or_the_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = [
            "--encryption-keys",
            r#"{"active":"k1","keys":{"k1":"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="}}"#,
            "--jwt-secret",
            "a-jwt-secret-of-at-least-32-bytes-0001",
        ];
        let with = |extra: &[&str]| {
            let mut argv = keys.to_vec();
            argv.extend_from_slice(extra);
            Settings::from_serve_args(dir.path(), &serve_args(&argv))
        };
        let err = with(&["--listen", "0.0.0.0:50051"]).expect_err("plaintext off loopback");
        for setting in [
            "PATCHBAY_LISTEN",
            "PATCHBAY_TLS_CERT_FILE",
            "PATCHBAY_TLS_KEY_FILE",
            "PATCHBAY_ALLOW_PLAINTEXT",
        ] {
            assert!(err.0.contains(setting), "{setting} in {}", err.0);
        }
        let settings = with(&["--listen", "0.0.0.0:50051", "--allow-plaintext"])
            .expect("a mesh terminates TLS");
        assert_eq!(settings.tls, None);
        let settings = with(&[
            "--listen",
            "0.0.0.0:50051",
            "--tls-cert-file",
            "cert.pem",
            "--tls-key-file",
            "key.pem",
        ])
        .expect("TLS");
        assert!(settings.tls.is_some());
        let err = with(&["--tls-cert-file", "cert.pem"]).expect_err("half of TLS");
        assert!(err.0.contains("PATCHBAY_TLS_KEY_FILE"), "{}", err.0);
        with(&["--listen", "[::1]:50051"]).expect("IPv6 loopback is loopback");
        for off_loopback in ["[::]:50051", "[::ffff:127.0.0.1]:50051", "10.0.0.5:50051"] {
            with(&["--listen", off_loopback]).expect_err(off_loopback);
        }
    }
}
