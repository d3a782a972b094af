//! The command line: subcommands, and every flag of `patchbay serve` with its
//! `PATCHBAY_*` variable and its default (defined beside the settings it belongs to).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use super::listener::TlsArgs;
pub use super::server_args::ServerArgs;
use crate::outbound::default_urls as urls;

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
    /// <base>/webhooks/<channel>/<route>.
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

/// The default-account fast path: read cache and watch streams.
#[derive(Debug, Args)]
pub struct DefaultsArgs {
    /// How many default-account answers (workspace, channel, division) the read cache holds.
    #[arg(
        long,
        env = "PATCHBAY_DEFAULT_CACHE_CAPACITY",
        default_value_t = crate::views::defaults::CACHE_CAPACITY
    )]
    pub default_cache_capacity: usize,
    /// Longest a cached default is served without a change notification, in seconds.
    #[arg(long, env = "PATCHBAY_DEFAULT_CACHE_TTL_SECONDS", default_value_t = crate::views::defaults::CACHE_TTL_SECONDS)]
    pub default_cache_ttl_seconds: u64,
    /// Changes a WatchDefaultAccounts stream may fall behind before it is ended (ABORTED).
    #[arg(long, env = "PATCHBAY_WATCH_BUFFER", default_value_t = crate::views::defaults::WATCH_BUFFER)]
    pub watch_buffer: usize,
}

/// Where the providers' APIs live (credential checks); tests point them at a fake.
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// SendGrid API base URL.
    #[arg(
        long,
        env = "PATCHBAY_SENDGRID_BASE_URL",
        default_value = urls::SENDGRID
    )]
    pub sendgrid_base_url: String,
    /// OpenAI API base URL.
    #[arg(
        long,
        env = "PATCHBAY_OPENAI_BASE_URL",
        default_value = urls::OPENAI
    )]
    pub openai_base_url: String,
    /// Twilio API base URL.
    #[arg(
        long,
        env = "PATCHBAY_TWILIO_BASE_URL",
        default_value = urls::TWILIO
    )]
    pub twilio_base_url: String,
    /// Meta Graph API base URL.
    #[arg(
        long,
        env = "PATCHBAY_GRAPH_BASE_URL",
        default_value = urls::GRAPH
    )]
    pub graph_base_url: String,
    /// Instagram Graph API base URL.
    #[arg(
        long,
        env = "PATCHBAY_INSTAGRAM_GRAPH_BASE_URL",
        default_value = urls::INSTAGRAM_GRAPH
    )]
    pub instagram_graph_base_url: String,
    /// Instagram Login API base URL (OAuth code exchange).
    #[arg(
        long,
        env = "PATCHBAY_INSTAGRAM_API_BASE_URL",
        default_value = urls::INSTAGRAM_API
    )]
    pub instagram_api_base_url: String,
    /// Graph API version used in every call to graph.facebook.com and
    /// graph.instagram.com (default: v25.0). A version Meta no longer serves is refused;
    /// one ending within 90 days is warned about.
    #[arg(long, env = "PATCHBAY_GRAPH_API_VERSION")]
    pub graph_api_version: Option<String>,
    /// Meta app id: OAuth code exchanges (Embedded Signup, Instagram and Messenger
    /// connect) need it.
    #[arg(long, env = "PATCHBAY_META_APP_ID")]
    pub meta_app_id: Option<String>,
    /// Meta app secret: OAuth code exchanges, and the key of Meta's webhook signatures
    /// (X-Hub-Signature-256).
    #[arg(long, env = "PATCHBAY_META_APP_SECRET", hide_env_values = true)]
    pub meta_app_secret: Option<String>,
    /// Instagram app id (Meta's dashboard: Instagram > API setup with Instagram login),
    /// a pair of its own beside the Meta app's: ConnectInstagram's code exchange needs it.
    #[arg(long, env = "PATCHBAY_INSTAGRAM_APP_ID")]
    pub instagram_app_id: Option<String>,
    /// Instagram app secret: Instagram Login's code and long-lived exchanges, and the
    /// first key tried on Instagram webhooks at the app-level callback.
    #[arg(long, env = "PATCHBAY_INSTAGRAM_APP_SECRET", hide_env_values = true)]
    pub instagram_app_secret: Option<String>,
    /// The verify token of Meta's app-level webhook callback (<base>/webhooks/meta),
    /// checked by RouteWebhook's handshake; unset, that handshake is refused.
    #[arg(
        long,
        env = "PATCHBAY_META_WEBHOOK_VERIFY_TOKEN",
        hide_env_values = true
    )]
    pub meta_webhook_verify_token: Option<String>,
    /// The background rounds that ask Meta about every account.
    #[command(flatten)]
    pub rounds: super::round_args::RoundArgs,
    /// The payload of the Get Started button SetMessengerPersistentMenu adds to a page
    /// without one (Meta shows no persistent menu without it).
    #[arg(long, env = "PATCHBAY_MESSENGER_GET_STARTED_PAYLOAD", default_value = crate::meta::GET_STARTED_PAYLOAD)]
    pub messenger_get_started_payload: String,
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
    /// admin, supervisor, service or gateway.
    #[arg(long)]
    pub role: String,
    /// The workspace (tenant) the token acts in; required but for --role gateway,
    /// which has none.
    #[arg(long)]
    pub workspace: Option<String>,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// One row of the configuration table of docs/configuration.md: flag, variable, default.
    struct Row {
        flag: String,
        env: String,
        default: String,
    }

    fn readme_rows() -> Vec<Row> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let readme = std::fs::read_to_string(path).unwrap_or_default();
        readme
            .lines()
            .filter(|line| line.starts_with("| `--"))
            .map(|line| {
                let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
                let plain = |cell: &str| {
                    cell.trim_matches(|c| c == '|' || c == '`' || c == ' ')
                        .to_owned()
                };
                Row {
                    flag: plain(cells[0]).trim_start_matches("--").to_owned(),
                    env: plain(cells.get(1).copied().unwrap_or_default()),
                    default: cells.get(2).copied().unwrap_or_default().to_owned(),
                }
            })
            .collect()
    }

    #[test]
    fn the_configuration_table_is_patchbay_serve_help() {
        let cli = Cli::command();
        let serve = cli
            .find_subcommand("serve")
            .expect("serve subcommand")
            .clone();
        let flags: Vec<_> = cli
            .get_arguments()
            .chain(serve.get_arguments())
            .filter_map(|arg| Some((arg.get_long()?.to_owned(), arg.clone())))
            .filter(|(long, _)| long != "help" && long != "version")
            .collect();
        let rows = readme_rows();
        assert!(rows.len() > 40, "the table has {} rows", rows.len());
        for (long, arg) in &flags {
            let row = rows
                .iter()
                .find(|row| &row.flag == long)
                .unwrap_or_else(|| panic!("--{long} has no row in docs/configuration.md's table"));
            let env = arg.get_env().map(|env| env.to_string_lossy().into_owned());
            assert_eq!(Some(&row.env), env.as_ref(), "the variable of --{long}");
            let mut defaults: Vec<_> = arg
                .get_default_values()
                .iter()
                .map(|value| value.to_string_lossy().into_owned())
                .collect();
            // A switch is off unless given.
            if !arg.get_action().takes_values() {
                defaults = vec!["false".to_owned()];
            }
            match defaults.as_slice() {
                [value] => assert_eq!(row.default, format!("`{value}`"), "the default of --{long}"),
                _ => assert!(
                    !row.default.starts_with('`'),
                    "--{long} has no default, docs/configuration.md says {}",
                    row.default
                ),
            }
        }
        for row in &rows {
            assert!(
                flags.iter().any(|(long, _)| long == &row.flag),
                "docs/configuration.md names --{}, which patchbay serve does not have",
                row.flag
            );
        }
    }
}
