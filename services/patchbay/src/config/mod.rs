//! Typed configuration, from flags and `PATCHBAY_*` environment variables (clap reads
//! both; a flag wins over the environment). Everything is validated here, at start, with
//! a message naming the bad setting.

mod keys;
mod listener;
mod providers;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::JwtSettings;
use crate::defaults::DefaultsSettings;
use crate::listener::TlsSettings;
use crate::meta::MetaSettings;
use crate::outbound::{OutboundSettings, ProviderUrls};
use crate::sealing::KeyRing;
use crate::store::DatabaseSettings;

pub use keys::{DevKeys, jwt_settings, key_ring};
use providers::{meta_settings, provider_urls};

/// Patchbay: the channel integrations of a messaging platform, over gRPC.
#[derive(Debug, Parser)]
#[command(name = "patchbay", version, about)]
pub struct Cli {
    /// Directory for the embedded SQLite database and generated development keys.
    #[arg(
        long,
        global = true,
        env = "PATCHBAY_DATA_DIR",
        default_value = ".patchbay"
    )]
    pub data_dir: PathBuf,

    /// TOML file of settings keyed by long flag name; flags and PATCHBAY_* variables win.
    #[arg(long, global = true, env = "PATCHBAY_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (migrates the database first).
    Serve(Box<ServeArgs>),
    /// Bring the database schema up to date and exit.
    Migrate(DatabaseArgs),
    /// Print a development JWT signed with the configured HS256 secret.
    Token(Box<TokenArgs>),
    /// Manage the encryption keys of secrets at rest.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new key entry to add to the key ring (and make active).
    Generate,
    /// Re-encrypt every stored secret under the active key, in batches, while the
    /// server keeps serving; prints the counts.
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Records read and rewritten per batch.
    #[arg(long, default_value_t = 200)]
    pub batch_size: u64,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub encryption: EncryptionArgs,
}

#[derive(Debug, Args)]
pub struct EncryptionArgs {
    /// The key ring as JSON: {"active": "<id>", "keys": {"<id>": "<base64 of 32 bytes>"}}.
    #[arg(long, env = "PATCHBAY_ENCRYPTION_KEYS", hide_env_values = true)]
    pub encryption_keys: Option<String>,

    /// File holding the key ring JSON. Without it and without PATCHBAY_ENCRYPTION_KEYS, a
    /// development key ring is generated in the data directory (mode 0600).
    #[arg(
        long,
        env = "PATCHBAY_ENCRYPTION_KEYS_FILE",
        conflicts_with = "encryption_keys"
    )]
    pub encryption_keys_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the gRPC server listens on.
    #[arg(long, env = "PATCHBAY_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Public base URL of the webhook gateway; account webhook URLs are
    /// <base>/webhooks/<channel>/<account_key>.
    #[arg(
        long,
        env = "PATCHBAY_PUBLIC_BASE_URL",
        default_value = "http://localhost:8080"
    )]
    pub public_base_url: String,

    /// Log format.
    #[arg(long, env = "PATCHBAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// OTLP/gRPC collector to export spans to (e.g. http://127.0.0.1:4317); none: no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// PEM CA certificates that an https:// OTLP collector's certificate must chain to
    /// (default: the system's roots).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CERTIFICATE")]
    pub otlp_ca_file: Option<PathBuf>,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub jwt: JwtArgs,

    #[command(flatten)]
    pub encryption: EncryptionArgs,

    #[command(flatten)]
    pub providers: ProviderArgs,

    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub defaults: DefaultsArgs,
}

/// TLS on the listener.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// PEM certificate chain of the listener (with --tls-key-file): the server speaks TLS.
    #[arg(long, env = "PATCHBAY_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, env = "PATCHBAY_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate signed by one (mTLS).
    #[arg(long, env = "PATCHBAY_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// How often the TLS files are checked for a change (new handshakes use new files).
    #[arg(
        long,
        env = "PATCHBAY_TLS_RELOAD_INTERVAL_SECONDS",
        default_value_t = 30
    )]
    pub tls_reload_interval_seconds: u64,
    /// Serve plaintext on a non-loopback address: only where a service mesh (or another
    /// proxy) terminates TLS in front of the server.
    #[arg(long, env = "PATCHBAY_ALLOW_PLAINTEXT")]
    pub allow_plaintext: bool,
}

/// How the server protects itself and shuts down.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Longest a call may run (a caller's shorter grpc-timeout wins) before DEADLINE_EXCEEDED.
    #[arg(long, env = "PATCHBAY_REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// Calls in flight beyond which new calls are refused at once with RESOURCE_EXHAUSTED.
    #[arg(long, env = "PATCHBAY_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// How many verified bearer tokens are remembered (until they expire); 0 verifies every call.
    #[arg(long, env = "PATCHBAY_TOKEN_CACHE_CAPACITY", default_value_t = 10_000)]
    pub token_cache_capacity: usize,
    /// WatchDefaultAccounts streams open at once beyond which new ones get RESOURCE_EXHAUSTED.
    #[arg(long, env = "PATCHBAY_MAX_WATCH_STREAMS", default_value_t = 10_000)]
    pub max_watch_streams: usize,
    /// One workspace's share of the open watch streams (at most --max-watch-streams).
    #[arg(
        long,
        env = "PATCHBAY_MAX_WATCH_STREAMS_PER_WORKSPACE",
        default_value_t = 1_000
    )]
    pub max_watch_streams_per_workspace: usize,
    /// One workspace's share of the calls in flight (at most --max-concurrent-requests).
    #[arg(
        long,
        env = "PATCHBAY_MAX_CONCURRENT_REQUESTS_PER_WORKSPACE",
        default_value_t = 128
    )]
    pub max_concurrent_requests_per_workspace: usize,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "PATCHBAY_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// HTTP/2 keepalive ping interval, in seconds.
    #[arg(long, env = "PATCHBAY_HTTP2_KEEPALIVE_SECONDS", default_value_t = 30)]
    pub http2_keepalive_seconds: u64,
    /// On SIGTERM, how long in-flight calls may finish before the server exits anyway.
    #[arg(long, env = "PATCHBAY_DRAIN_TIMEOUT_SECONDS", default_value_t = 20)]
    pub drain_timeout_seconds: u64,
    /// How often the database is pinged to report health.
    #[arg(
        long,
        env = "PATCHBAY_HEALTH_CHECK_INTERVAL_SECONDS",
        default_value_t = 5
    )]
    pub health_check_interval_seconds: u64,
}

/// The default-account fast path: read cache and watch streams.
#[derive(Debug, Args)]
pub struct DefaultsArgs {
    /// How many default-account answers (workspace, channel, division) the read cache holds.
    #[arg(
        long,
        env = "PATCHBAY_DEFAULT_CACHE_CAPACITY",
        default_value_t = 100_000
    )]
    pub default_cache_capacity: usize,
    /// Longest a cached default is served without a change notification, in seconds.
    #[arg(long, env = "PATCHBAY_DEFAULT_CACHE_TTL_SECONDS", default_value_t = 60)]
    pub default_cache_ttl_seconds: u64,
    /// Changes a WatchDefaultAccounts stream may fall behind before it is ended (ABORTED).
    #[arg(long, env = "PATCHBAY_WATCH_BUFFER", default_value_t = 256)]
    pub watch_buffer: usize,
}

/// Where the providers' APIs live (credential checks); tests point them at a fake.
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// SendGrid API base URL.
    #[arg(
        long,
        env = "PATCHBAY_SENDGRID_BASE_URL",
        default_value = "https://api.sendgrid.com"
    )]
    pub sendgrid_base_url: String,
    /// OpenAI API base URL.
    #[arg(
        long,
        env = "PATCHBAY_OPENAI_BASE_URL",
        default_value = "https://api.openai.com"
    )]
    pub openai_base_url: String,
    /// Twilio API base URL.
    #[arg(
        long,
        env = "PATCHBAY_TWILIO_BASE_URL",
        default_value = "https://api.twilio.com"
    )]
    pub twilio_base_url: String,
    /// Meta Graph API base URL.
    #[arg(
        long,
        env = "PATCHBAY_GRAPH_BASE_URL",
        default_value = "https://graph.facebook.com"
    )]
    pub graph_base_url: String,
    /// Instagram Graph API base URL.
    #[arg(
        long,
        env = "PATCHBAY_INSTAGRAM_GRAPH_BASE_URL",
        default_value = "https://graph.instagram.com"
    )]
    pub instagram_graph_base_url: String,
    /// Instagram Login API base URL (OAuth code exchange).
    #[arg(
        long,
        env = "PATCHBAY_INSTAGRAM_API_BASE_URL",
        default_value = "https://api.instagram.com"
    )]
    pub instagram_api_base_url: String,
    /// Graph API version used in every Graph call.
    #[arg(long, env = "PATCHBAY_GRAPH_API_VERSION", default_value = "v21.0")]
    pub graph_api_version: String,
    /// Meta app id: OAuth code exchanges (Embedded Signup, Instagram and Messenger
    /// connect) need it.
    #[arg(long, env = "PATCHBAY_META_APP_ID")]
    pub meta_app_id: Option<String>,
    /// Meta app secret: OAuth code exchanges, and the key of Meta's webhook signatures
    /// (X-Hub-Signature-256).
    #[arg(long, env = "PATCHBAY_META_APP_SECRET", hide_env_values = true)]
    pub meta_app_secret: Option<String>,
    /// How often the background task looks for Instagram tokens to refresh; 0 turns it
    /// off.
    #[arg(
        long,
        env = "PATCHBAY_TOKEN_REFRESH_INTERVAL_SECONDS",
        default_value_t = 3600
    )]
    pub token_refresh_interval_seconds: u64,
    /// Refresh an Instagram token once it expires within this many days.
    #[arg(long, env = "PATCHBAY_TOKEN_REFRESH_AHEAD_DAYS", default_value_t = 7)]
    pub token_refresh_ahead_days: u32,
    /// Let calls to providers reach loopback, private, CGNAT and unique-local addresses
    /// and tenant URLs use plain http: for tests, local fakes and on-premise providers.
    /// Link-local (cloud metadata) stays refused.
    #[arg(long, env = "PATCHBAY_ALLOW_PRIVATE_OUTBOUND")]
    pub allow_private_outbound: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL (sqlite://… or postgres://…); defaults to a SQLite file in the data
    /// directory.
    #[arg(long, env = "PATCHBAY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Most connections the pool opens.
    #[arg(long, env = "PATCHBAY_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Seconds a call waits for a database connection before failing with UNAVAILABLE.
    #[arg(
        long,
        env = "PATCHBAY_DATABASE_ACQUIRE_TIMEOUT_SECONDS",
        default_value_t = 5
    )]
    pub database_acquire_timeout_seconds: u64,
}

#[derive(Debug, Args)]
pub struct JwtArgs {
    /// HS256 secret (at least 32 bytes). Without it and without a secret file, a
    /// development secret is generated in the data directory.
    #[arg(long, env = "PATCHBAY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// File holding the HS256 secret.
    #[arg(long, env = "PATCHBAY_JWT_SECRET_FILE", conflicts_with = "jwt_secret")]
    pub jwt_secret_file: Option<PathBuf>,

    /// Required `iss` claim.
    #[arg(long, env = "PATCHBAY_JWT_ISSUER", default_value = "patchbay")]
    pub jwt_issuer: String,

    /// Required `aud` claim.
    #[arg(long, env = "PATCHBAY_JWT_AUDIENCE", default_value = "patchbay")]
    pub jwt_audience: String,

    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[arg(long, env = "PATCHBAY_JWT_LEEWAY_SECONDS", default_value_t = 30)]
    pub jwt_leeway_seconds: u64,

    /// Refuse tokens that live longer than this (`exp - iat`); tokens must then carry
    /// `iat`. Unset: no limit.
    #[arg(long, env = "PATCHBAY_JWT_MAX_LIFETIME_SECONDS")]
    pub jwt_max_lifetime_seconds: Option<u64>,

    /// RS256/ES256 public key in PEM, as `path` or `kid=path`; repeat the flag (or
    /// separate with commas in the variable) for several keys.
    #[arg(long, env = "PATCHBAY_JWT_PUBLIC_KEY_FILES", value_delimiter = ',')]
    pub jwt_public_key_file: Vec<String>,

    /// JWKS file with RS256/ES256 public keys, chosen by the token's `kid`.
    #[arg(long, env = "PATCHBAY_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,

    /// Accepted algorithms, from HS256, RS256, ES256 (default: those with a configured key).
    #[arg(long, env = "PATCHBAY_JWT_ALGORITHMS", value_delimiter = ',')]
    pub jwt_algorithms: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// admin, supervisor or service.
    #[arg(long)]
    pub role: String,
    /// The workspace (tenant) the token acts in.
    #[arg(long)]
    pub workspace: String,
    /// Restrict the token to one division.
    #[arg(long)]
    pub division: Option<String>,
    /// Lifetime: 30s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// The `sub` claim.
    #[arg(long, default_value = "dev")]
    pub sub: String,

    #[command(flatten)]
    pub jwt: JwtArgs,
}

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
    /// Open WatchDefaultAccounts streams; they hold no call permit once open.
    pub max_watch_streams: usize,
    /// One workspace's share of the open watch streams.
    pub max_watch_streams_per_workspace: usize,
    /// One workspace's share of the calls in flight.
    pub max_concurrent_requests_per_workspace: usize,
    pub max_message_bytes: usize,
    pub http2_keepalive: Duration,
    pub drain_timeout: Duration,
    pub health_check_interval: Duration,
    /// How many verified bearer tokens are remembered; 0 verifies every call.
    pub token_cache_capacity: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 256,
            max_watch_streams: 10_000,
            max_watch_streams_per_workspace: 1_000,
            max_concurrent_requests_per_workspace: 128,
            max_message_bytes: 4 * 1024 * 1024,
            http2_keepalive: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(20),
            health_check_interval: Duration::from_secs(5),
            token_cache_capacity: 10_000,
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
    if args.max_concurrent_requests_per_workspace == 0
        || args.max_concurrent_requests_per_workspace > args.max_concurrent_requests
    {
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
        max_watch_streams: args.max_watch_streams,
        max_watch_streams_per_workspace: args.max_watch_streams_per_workspace,
        max_concurrent_requests_per_workspace: args.max_concurrent_requests_per_workspace,
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
    })
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

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
        if dev_keys == DevKeys::Refused {
            if let Some(missing) = keys::missing_keys(&args.jwt, Some(&args.encryption)) {
                return Err(keys::not_embedded(&missing));
            }
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

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
