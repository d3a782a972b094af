//! Typed configuration, from flags and `PATCHBAY_*` environment variables (clap reads
//! both; a flag wins over the environment). Everything is validated here, at start, with
//! a message naming the bad setting.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::auth::{JwtSettings, PublicKey};
use crate::defaults::DefaultsSettings;
use crate::meta::{MetaApp, MetaSettings, RetryPolicy};
use crate::outbound::ProviderUrls;
use crate::sealing::KeyRing;
use crate::store::DatabaseSettings;
use jsonwebtoken::Algorithm;

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
    Token(TokenArgs),
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
    pub database: DatabaseSettings,
    pub public_base_url: String,
    pub jwt: JwtSettings,
    pub keys: KeyRing,
    pub provider_urls: ProviderUrls,
    pub meta: MetaSettings,
    pub server: ServerSettings,
    pub defaults: DefaultsSettings,
}

/// Overload protection and shutdown, validated.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    /// Open WatchDefaultAccounts streams; they hold no call permit once open.
    pub max_watch_streams: usize,
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
    Ok(ServerSettings {
        request_timeout: positive(
            args.request_timeout_seconds,
            "PATCHBAY_REQUEST_TIMEOUT_SECONDS",
        )?,
        max_concurrent_requests: args.max_concurrent_requests,
        max_watch_streams: args.max_watch_streams,
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

/// Shortest HS256 secret accepted: 256 bits, as RFC 7518 asks.
const MIN_SECRET_BYTES: usize = 32;
const DEV_SECRET_FILE: &str = "jwt-hs256.secret";
const DEV_KEYS_FILE: &str = "encryption-keys.json";
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
        Ok(Settings {
            listen: args.listen,
            database: database_settings(data_dir, &args.database)?,
            public_base_url,
            jwt: jwt_settings(data_dir, &args.jwt)?,
            keys: key_ring(data_dir, &args.encryption)?,
            provider_urls: provider_urls(&args.providers)?,
            meta: meta_settings(&args.providers)?,
            server: server_settings(&args.server)?,
            defaults: defaults_settings(&args.defaults)?,
        })
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

pub fn jwt_settings(data_dir: &Path, args: &JwtArgs) -> Result<JwtSettings, ConfigError> {
    let public_keys = public_keys(args)?;
    let secret = match (&args.jwt_secret, &args.jwt_secret_file) {
        (Some(secret), _) => Some((
            secret.clone(),
            "PATCHBAY_JWT_SECRET (--jwt-secret)".to_owned(),
        )),
        (None, Some(file)) => Some((
            read_secret(file)?,
            format!("PATCHBAY_JWT_SECRET_FILE ({})", file.display()),
        )),
        // The embedded default signs and checks with a generated secret; a deployment
        // that brings public keys only does not get one.
        (None, None) if public_keys.is_empty() => {
            let file = data_dir.join(DEV_SECRET_FILE);
            Some((
                load_or_create_dev_secret(data_dir, &file)?,
                format!("development secret {}", file.display()),
            ))
        }
        (None, None) => None,
    };
    if let Some((secret, source)) = &secret {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError(format!(
                "{source} must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
    }
    if args.jwt_issuer.is_empty() || args.jwt_audience.is_empty() {
        return Err(ConfigError(
            "PATCHBAY_JWT_ISSUER and PATCHBAY_JWT_AUDIENCE must not be empty".to_owned(),
        ));
    }
    let has = |algorithm: Algorithm| match algorithm {
        Algorithm::HS256 => secret.is_some(),
        other => public_keys.iter().any(|k| k.algorithm == other),
    };
    let algorithms = if args.jwt_algorithms.is_empty() {
        [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]
            .into_iter()
            .filter(|a| has(*a))
            .collect()
    } else {
        let mut algorithms = Vec::new();
        for name in &args.jwt_algorithms {
            let algorithm = match name.trim() {
                "HS256" => Algorithm::HS256,
                "RS256" => Algorithm::RS256,
                "ES256" => Algorithm::ES256,
                other => {
                    return Err(ConfigError(format!(
                        "PATCHBAY_JWT_ALGORITHMS (--jwt-algorithms): {other:?} is not one of HS256, RS256, ES256"
                    )));
                }
            };
            if !has(algorithm) {
                return Err(ConfigError(format!(
                    "PATCHBAY_JWT_ALGORITHMS (--jwt-algorithms) allows {name} but no key for it is configured"
                )));
            }
            algorithms.push(algorithm);
        }
        algorithms
    };
    Ok(JwtSettings {
        hs256_secret: secret.map(|(secret, _)| SecretString::from(secret)),
        public_keys,
        algorithms,
        issuer: args.jwt_issuer.clone(),
        audience: args.jwt_audience.clone(),
        leeway: Duration::from_secs(args.jwt_leeway_seconds),
    })
}

fn public_keys(args: &JwtArgs) -> Result<Vec<PublicKey>, ConfigError> {
    let mut keys = Vec::new();
    for entry in &args.jwt_public_key_file {
        let (kid, path) = match entry.split_once('=') {
            Some((kid, path)) => (Some(kid.to_owned()), PathBuf::from(path)),
            None => (None, PathBuf::from(entry)),
        };
        let pem = fs::read(&path).map_err(|err| {
            ConfigError(format!(
                "PATCHBAY_JWT_PUBLIC_KEY_FILES: cannot read {}: {err}",
                path.display()
            ))
        })?;
        keys.push(PublicKey::from_pem(kid, &pem).map_err(|err| {
            ConfigError(format!(
                "PATCHBAY_JWT_PUBLIC_KEY_FILES: {} {err}",
                path.display()
            ))
        })?);
    }
    if let Some(path) = &args.jwt_jwks_file {
        let json = fs::read_to_string(path).map_err(|err| {
            ConfigError(format!(
                "PATCHBAY_JWT_JWKS_FILE: cannot read {}: {err}",
                path.display()
            ))
        })?;
        keys.extend(PublicKey::from_jwks(&json).map_err(|err| {
            ConfigError(format!("PATCHBAY_JWT_JWKS_FILE: {} {err}", path.display()))
        })?);
    }
    Ok(keys)
}

fn provider_urls(args: &ProviderArgs) -> Result<ProviderUrls, ConfigError> {
    let url = |value: &str, name: &str| {
        if crate::domain::provider::is_url(value) {
            Ok(value.trim_end_matches('/').to_owned())
        } else {
            Err(ConfigError(format!(
                "{name} must be an http(s) URL, got {value:?}"
            )))
        }
    };
    Ok(ProviderUrls {
        sendgrid: url(&args.sendgrid_base_url, "PATCHBAY_SENDGRID_BASE_URL")?,
        openai: url(&args.openai_base_url, "PATCHBAY_OPENAI_BASE_URL")?,
        twilio: url(&args.twilio_base_url, "PATCHBAY_TWILIO_BASE_URL")?,
        graph: url(&args.graph_base_url, "PATCHBAY_GRAPH_BASE_URL")?,
        instagram_graph: url(
            &args.instagram_graph_base_url,
            "PATCHBAY_INSTAGRAM_GRAPH_BASE_URL",
        )?,
        instagram_api: url(
            &args.instagram_api_base_url,
            "PATCHBAY_INSTAGRAM_API_BASE_URL",
        )?,
        graph_version: graph_version(&args.graph_api_version)?,
    })
}

/// `v21.0`: what Meta's URLs carry.
fn graph_version(version: &str) -> Result<String, ConfigError> {
    let valid = version.strip_prefix('v').is_some_and(|rest| {
        rest.split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major
                    .chars()
                    .chain(minor.chars())
                    .all(|c| c.is_ascii_digit())
        })
    });
    if valid {
        Ok(version.to_owned())
    } else {
        Err(ConfigError(format!(
            "PATCHBAY_GRAPH_API_VERSION must look like v21.0, got {version:?}"
        )))
    }
}

fn meta_settings(args: &ProviderArgs) -> Result<MetaSettings, ConfigError> {
    let app = match (&args.meta_app_id, &args.meta_app_secret) {
        (None, None) => None,
        (Some(id), Some(secret)) if !id.trim().is_empty() && !secret.trim().is_empty() => {
            Some(MetaApp {
                id: id.trim().to_owned(),
                secret: SecretString::from(secret.trim().to_owned()),
            })
        }
        _ => {
            return Err(ConfigError(
                "PATCHBAY_META_APP_ID and PATCHBAY_META_APP_SECRET go together: set both or neither"
                    .to_owned(),
            ));
        }
    };
    Ok(MetaSettings {
        app,
        retry: RetryPolicy::default(),
        refresh_every: (args.token_refresh_interval_seconds > 0)
            .then(|| Duration::from_secs(args.token_refresh_interval_seconds)),
        refresh_ahead: Duration::from_secs(u64::from(args.token_refresh_ahead_days) * 86_400),
    })
}

pub fn key_ring(data_dir: &Path, args: &EncryptionArgs) -> Result<KeyRing, ConfigError> {
    let (json, source) = match (&args.encryption_keys, &args.encryption_keys_file) {
        (Some(json), _) => (
            json.clone(),
            "PATCHBAY_ENCRYPTION_KEYS (--encryption-keys)".to_owned(),
        ),
        (None, Some(file)) => (
            read_secret(file)?,
            format!("PATCHBAY_ENCRYPTION_KEYS_FILE ({})", file.display()),
        ),
        (None, None) => {
            let file = data_dir.join(DEV_KEYS_FILE);
            let json = load_or_create(data_dir, &file, || {
                let ring = KeyRing::generate_file().map_err(|e| e.to_string())?;
                serde_json::to_string_pretty(&ring).map_err(|e| e.to_string())
            })?;
            (json, format!("development key ring {}", file.display()))
        }
    };
    KeyRing::from_json(&json).map_err(|err| ConfigError(format!("{source} {err}")))
}

fn read_secret(file: &Path) -> Result<String, ConfigError> {
    fs::read_to_string(file)
        .map(|s| s.trim().to_owned())
        .map_err(|err| ConfigError(format!("cannot read secret file {}: {err}", file.display())))
}

/// The embedded default: a random secret generated on first start, readable by the
/// owner only, shared by `patchbay serve` and `patchbay token`.
fn load_or_create_dev_secret(data_dir: &Path, file: &Path) -> Result<String, ConfigError> {
    load_or_create(data_dir, file, || {
        crate::domain::support::random_token(48).map_err(|err| err.to_string())
    })
}

/// Reads `file`, or creates it (mode 0600) with what `generate` makes.
fn load_or_create(
    data_dir: &Path,
    file: &Path,
    generate: impl FnOnce() -> Result<String, String>,
) -> Result<String, ConfigError> {
    if file.exists() {
        return read_secret(file);
    }
    ensure_data_dir(data_dir)?;
    let secret = generate()
        .map_err(|err| ConfigError(format!("cannot generate {}: {err}", file.display())))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(file) {
        Ok(mut handle) => handle
            .write_all(secret.as_bytes())
            .map_err(|err| ConfigError(format!("cannot write {}: {err}", file.display())))
            .map(|()| secret),
        // Another process created it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => read_secret(file),
        Err(err) => Err(ConfigError(format!(
            "cannot create {}: {err}",
            file.display()
        ))),
    }
}

fn ensure_data_dir(data_dir: &Path) -> Result<(), ConfigError> {
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
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dev_secret_is_generated_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = JwtArgs {
            jwt_secret: None,
            jwt_secret_file: None,
            jwt_issuer: "patchbay".into(),
            jwt_audience: "patchbay".into(),
            jwt_leeway_seconds: 30,
            jwt_public_key_file: Vec::new(),
            jwt_jwks_file: None,
            jwt_algorithms: Vec::new(),
        };
        let first = jwt_settings(dir.path(), &args).expect("generated");
        let second = jwt_settings(dir.path(), &args).expect("reused");
        use secrecy::ExposeSecret;
        assert_eq!(
            first
                .hs256_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            second
                .hs256_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(DEV_SECRET_FILE))
                .expect("secret file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn short_secret_is_refused_naming_the_variable() {
        let args = JwtArgs {
            jwt_secret: Some("short".into()),
            jwt_secret_file: None,
            jwt_issuer: "patchbay".into(),
            jwt_audience: "patchbay".into(),
            jwt_leeway_seconds: 30,
            jwt_public_key_file: Vec::new(),
            jwt_jwks_file: None,
            jwt_algorithms: Vec::new(),
        };
        let err = jwt_settings(Path::new("/nonexistent"), &args).expect_err("too short");
        assert!(err.0.contains("PATCHBAY_JWT_SECRET"), "{}", err.0);
    }
}
