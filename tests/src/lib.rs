//! The end-to-end harness: every test gets its own server on 127.0.0.1 (a random port),
//! its own freshly migrated database — a SQLite file or a new PostgreSQL database — and
//! real SDK clients.
//!
//! PostgreSQL tests need `PATCHBAY_TEST_POSTGRES_URL` (a server URL without a database
//! name, e.g. `postgres://postgres@127.0.0.1:5433`); `scripts/test` starts a throwaway
//! server and sets it. Without it they fail: a skipped PostgreSQL run is not a pass.

pub mod certs;
pub mod meta_fake;

use std::net::SocketAddr;
use std::time::Duration;

use patchbay::Application;
use patchbay::auth::{JwtSettings, TokenRequest};
use patchbay::config::{ServerSettings, Settings};
use patchbay::meta::{MetaApp, MetaSettings, RetryPolicy};
use patchbay::outbound::{AddressPolicy, OutboundSettings, ProviderUrls};
use patchbay::sealing::KeyRing;
use patchbay::store::{DatabaseSettings, Store};
use patchbay::views::defaults::DefaultsSettings;
use patchbay_sdk::Client;
use patchbay_sdk::tonic::transport::{Channel, Endpoint};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use patchbay_sdk::proto;

pub const POSTGRES_URL_VAR: &str = "PATCHBAY_TEST_POSTGRES_URL";
pub const WORKSPACE: &str = "acme";
pub const OTHER_WORKSPACE: &str = "globex";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
pub const ISSUER: &str = "patchbay";
pub const AUDIENCE: &str = "patchbay";
pub const PUBLIC_BASE_URL: &str = "https://hooks.example.test";
pub const GRAPH_VERSION: &str = "v25.0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when the options asked for it.
    pub metrics_addr: Option<SocketAddr>,
    /// The server's background tasks: a test may stop one to see it restarted.
    pub supervisor: patchbay::supervisor::Supervisor,
    pub backend: Backend,
    pub keys: KeyRing,
    pub database_url: String,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    data_dir: Option<tempfile::TempDir>,
    _meta: Option<wiremock::MockServer>,
}

/// How to start a test server beyond the defaults.
pub struct TestOptions {
    /// The server's key ring (default: the single key `t1`).
    pub keys: KeyRing,
    /// How the server checks tokens (default: HS256 with [`JWT_SECRET`]).
    pub jwt: JwtSettings,
    /// Where the providers' APIs are (default: nowhere reachable, except a Meta that
    /// accepts WhatsApp set-up: see [`TestApp::spawn_with`]).
    pub provider_urls: ProviderUrls,
    /// How outbound calls are guarded (default: private addresses allowed, so that the
    /// local fakes are reachable).
    pub outbound: OutboundSettings,
    /// The Meta app, retries and token refresh (default: [`test_meta`]).
    pub meta: MetaSettings,
    /// Overload and shutdown settings.
    pub server: ServerSettings,
    /// An existing database to serve (default: a fresh one).
    pub database_url: Option<String>,
    /// Default-account cache and watch settings.
    pub defaults: DefaultsSettings,
    /// The address to listen on (default: a random port); a restarted server takes
    /// its predecessor's to be found by the same clients.
    pub listen: Option<SocketAddr>,
    /// TLS on the listener (default: plaintext on loopback).
    pub tls: Option<patchbay::listener::TlsSettings>,
    /// How the harness's own channel connects when `tls` is set (the CA to trust, a
    /// client certificate for mTLS).
    pub client_tls: Option<patchbay_sdk::ConnectOptions>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            keys: key_ring("t1", &["t1"]),
            jwt: jwt_settings(),
            provider_urls: unreachable_providers(),
            outbound: OutboundSettings {
                policy: AddressPolicy::AllowPrivate,
                resolver: None,
            },
            meta: test_meta(),
            server: ServerSettings::default(),
            database_url: None,
            defaults: DefaultsSettings::default(),
            listen: None,
            tls: None,
            client_tls: None,
        }
    }
}

const UNREACHABLE: &str = "http://127.0.0.1:9";
pub const META_APP_ID: &str = "1234567890";
pub const META_APP_SECRET: &str = "test-meta-app-secret";
/// The Instagram app (Instagram API with Instagram Login): a pair of its own.
pub const INSTAGRAM_APP_ID: &str = "9876543210";
pub const INSTAGRAM_APP_SECRET: &str = "test-instagram-app-secret";

/// Provider URLs on a closed local port: a test that forgets its fake fails fast
/// instead of calling the real provider.
pub fn unreachable_providers() -> ProviderUrls {
    all_providers_at(UNREACHABLE)
}

/// The verify token of the test server's app-level Meta webhook callback.
pub const META_WEBHOOK_VERIFY_TOKEN: &str = "test-meta-webhook-verify-token";

/// A Meta app, quick retries (3 attempts, 10 ms apart) and no background refresh.
pub fn test_meta() -> MetaSettings {
    MetaSettings {
        app: Some(MetaApp {
            id: META_APP_ID.to_owned(),
            secret: META_APP_SECRET.to_owned().into(),
        }),
        instagram_app: Some(MetaApp {
            id: INSTAGRAM_APP_ID.to_owned(),
            secret: INSTAGRAM_APP_SECRET.to_owned().into(),
        }),
        webhook_verify_token: Some(META_WEBHOOK_VERIFY_TOKEN.to_owned().into()),
        retry: RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(10),
        },
        refresh_every: None,
        refresh_ahead: Duration::from_secs(7 * 86_400),
        refresh_max_failures: 5,
        check_every: None,
        health_every: None,
        expiry_warning_days: vec![7, 1],
        checks_per_workspace: 1_000,
        today: None,
        messenger_get_started_payload: "GET_STARTED".to_owned(),
    }
}

/// A Meta that sets up every WhatsApp number as Meta does when all goes well (see
/// [`meta_fake::FakeMeta`]): what creating a WhatsApp Cloud account meets in production.
pub async fn accepting_meta() -> wiremock::MockServer {
    let meta = wiremock::MockServer::start().await;
    fake_meta().mount(&meta).await;
    meta
}

/// The stand-in Meta of this installation's app, its callback at the public base URL.
pub fn fake_meta() -> meta_fake::FakeMeta {
    meta_fake::FakeMeta::new(&format!("{PUBLIC_BASE_URL}/webhooks/meta"), META_APP_ID)
}

/// A server whose providers all live at the stateful stand-in Meta ([`fake_meta`]) on
/// a wiremock server of its own (returned, to be kept for the test's life; a test may
/// mount mocks of its own on it, which answer first), with `meta` settings.
pub async fn spawn_with_fake_meta(
    backend: Backend,
    meta: MetaSettings,
    graph_version: Option<&str>,
) -> (TestApp, meta_fake::FakeMeta, wiremock::MockServer) {
    let server = wiremock::MockServer::start().await;
    let fake = fake_meta();
    fake.mount(&server).await;
    let mut provider_urls = all_providers_at(&server.uri());
    if let Some(version) = graph_version {
        provider_urls.graph_version = version.to_owned();
    }
    let options = TestOptions {
        provider_urls,
        meta,
        ..TestOptions::default()
    };
    (TestApp::spawn_with(backend, options).await, fake, server)
}

/// A server whose providers all live at one fake (wiremock), with `meta` settings;
/// [`fake_meta`] answers what the test's own mocks do not.
pub async fn spawn_with_fake(
    backend: Backend,
    meta: MetaSettings,
) -> (TestApp, wiremock::MockServer) {
    let fake = wiremock::MockServer::start().await;
    // Under the test's own mocks: Meta as the stand-in answers whatever they leave out.
    fake_meta().mount(&fake).await;
    let options = TestOptions {
        provider_urls: all_providers_at(&fake.uri()),
        meta,
        ..Default::default()
    };
    (TestApp::spawn_with(backend, options).await, fake)
}

/// A Graph API path under the test API version: `graph_path("me/accounts")`.
pub fn graph_path(rest: &str) -> String {
    format!("/{GRAPH_VERSION}/{rest}")
}

/// Every provider API at one base URL (a wiremock server).
pub fn all_providers_at(base: &str) -> ProviderUrls {
    ProviderUrls {
        sendgrid: base.to_owned(),
        openai: base.to_owned(),
        twilio: base.to_owned(),
        graph: base.to_owned(),
        instagram_graph: base.to_owned(),
        instagram_api: base.to_owned(),
        graph_version: GRAPH_VERSION.to_owned(),
    }
}

/// A key ring of deterministic test keys: the same id always names the same key, so
/// servers started one after the other share their secrets.
pub fn key_ring(active: &str, ids: &[&str]) -> KeyRing {
    use base64::Engine;
    let keys: serde_json::Map<String, serde_json::Value> = ids
        .iter()
        .map(|id| {
            let bytes: Vec<u8> = format!("{id:_<32}").bytes().take(32).collect();
            let key = base64::engine::general_purpose::STANDARD.encode(bytes);
            ((*id).to_owned(), serde_json::Value::String(key))
        })
        .collect();
    let index_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    KeyRing::from_json(
        &serde_json::json!({ "active": active, "keys": keys, "index_key": index_key }).to_string(),
    )
    .expect("test key ring")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, TestOptions::default()).await
    }

    /// A test that brings no Meta of its own (its graph URL is the unreachable one)
    /// gets [`accepting_meta`], so that WhatsApp accounts are created as in production.
    pub async fn spawn_with(backend: Backend, options: TestOptions) -> TestApp {
        Self::spawn_until(backend, options, std::future::pending()).await
    }

    /// As [`spawn_with`](Self::spawn_with), and the server also stops when `signal`
    /// completes (`patchbay::startup::shutdown_signal()`: SIGTERM, as `patchbay serve`).
    pub async fn spawn_until(
        backend: Backend,
        mut options: TestOptions,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temporary data dir");
        let meta = if options.provider_urls.graph == UNREACHABLE {
            let meta = accepting_meta().await;
            options.provider_urls.graph = meta.uri();
            Some(meta)
        } else {
            None
        };
        let database_url = match (options.database_url, backend) {
            (Some(url), _) => url,
            (None, Backend::Sqlite) => format!(
                "sqlite://{}?mode=rwc",
                data_dir.path().join("patchbay.db").display()
            ),
            (None, Backend::Postgres) => create_postgres_database().await,
        };
        let settings = Settings {
            tls: options.tls.clone(),
            listen: options
                .listen
                .unwrap_or_else(|| "127.0.0.1:0".parse().expect("address")),
            database: DatabaseSettings {
                url: database_url.clone(),
                max_connections: 8,
                acquire_timeout: Duration::from_secs(10),
            },
            public_base_url: PUBLIC_BASE_URL.to_owned(),
            jwt: options.jwt,
            provider_urls: options.provider_urls,
            outbound: options.outbound,
            meta: options.meta,
            server: options.server,
            keys: options.keys.clone(),
            defaults: options.defaults,
            development_keys: None,
        };
        let app = Application::build(settings).await.expect("server builds");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let supervisor = app.supervisor();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                tokio::select! {
                    _ = stopped => {}
                    () = signal => {}
                }
            })
            .await
            .expect("server runs");
        });
        let channel = match (&options.tls, &options.client_tls) {
            (Some(_), Some(client)) => client
                .endpoint(format!("https://{addr}"))
                .expect("endpoint")
                .connect()
                .await
                .expect("client connects over TLS"),
            _ => Endpoint::from_shared(format!("http://{addr}"))
                .expect("endpoint")
                .connect()
                .await
                .expect("client connects"),
        };
        TestApp {
            addr,
            metrics_addr,
            supervisor,
            backend,
            keys: options.keys,
            database_url,
            channel,
            shutdown: Some(shutdown),
            server: Some(server),
            data_dir: Some(data_dir),
            _meta: meta,
        }
    }

    /// A second server on this one's database (a replica, on PostgreSQL).
    pub async fn replica(&self) -> TestApp {
        self.replica_with(TestOptions::default()).await
    }

    /// A second server on this one's database, with `options` otherwise.
    pub async fn replica_with(&self, options: TestOptions) -> TestApp {
        TestApp::spawn_with(
            self.backend,
            TestOptions {
                database_url: Some(self.database_url.clone()),
                ..options
            },
        )
        .await
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A client acting as `role` in `workspace`.
    pub fn client(&self, role: &str, workspace: &str, division: Option<&str>) -> Client {
        Client::from_channel(self.channel(), &token(role, workspace, division)).expect("client")
    }

    /// The installation's webhook gateway: no workspace.
    pub fn gateway(&self) -> Client {
        self.client("gateway", "", None)
    }

    pub fn admin(&self) -> Client {
        self.client("admin", WORKSPACE, None)
    }

    pub fn supervisor(&self) -> Client {
        self.client("supervisor", WORKSPACE, None)
    }

    pub fn service(&self) -> Client {
        self.client("service", WORKSPACE, None)
    }

    /// A client with a raw `authorization` token, valid or not.
    pub fn with_token(&self, token: &str) -> Client {
        Client::from_channel(self.channel(), token).expect("client")
    }

    /// A direct connection to the server's database, for checks behind the API.
    pub async fn database(&self) -> DatabaseConnection {
        Database::connect(&self.database_url)
            .await
            .expect("database connection")
    }

    /// A second store on the server's database, reading through the same code as the
    /// server (secrets opened with the server's keys): for checks behind the API.
    pub async fn store(&self) -> Store {
        Store::connect(&self.database_settings(), self.keys.clone())
            .await
            .expect("store")
    }

    pub fn database_settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.clone(),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
        }
    }

    /// Stops the server and waits until it has. Returns its data directory, which holds
    /// the SQLite file: keep it to start another server on the same database.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
        self.data_dir.take()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub fn jwt_settings() -> JwtSettings {
    JwtSettings {
        hs256_secret: Some(JWT_SECRET.to_owned().into()),
        public_keys: Vec::new(),
        algorithms: vec![jsonwebtoken::Algorithm::HS256],
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway: Duration::from_secs(5),
        max_lifetime: None,
    }
}

/// A valid token for the test server.
pub fn token(role: &str, workspace: &str, division: Option<&str>) -> String {
    patchbay::auth::mint(
        &jwt_settings(),
        &TokenRequest {
            subject: format!("{role}-user"),
            role: role.to_owned(),
            workspace_id: (role != "gateway").then(|| workspace.to_owned()),
            division_id: division.map(str::to_owned),
            ttl: Duration::from_secs(600),
        },
    )
    .expect("token")
}

/// A new, empty database on the test PostgreSQL server.
async fn create_postgres_database() -> String {
    let server = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: PostgreSQL tests need a server. \
             Run ./scripts/test, which starts one."
        )
    });
    let server = server.trim_end_matches('/');
    let admin = Database::connect(format!("{server}/postgres"))
        .await
        .expect("connect to the test PostgreSQL server");
    let name = format!("patchbay_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let _ = admin.close().await;
    format!("{server}/{name}")
}

/// Runs each named test once per backend: `mod sqlite { … }` and `mod postgres { … }`.
/// Each test is an `async fn name(backend: Backend)` in the calling module.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )+
        }
    };
}

/// JSON as a `google.protobuf.Struct` (the object of `value`; anything else is empty).
pub fn to_struct(value: serde_json::Value) -> prost_types::Struct {
    let serde_json::Value::Object(object) = value else {
        return prost_types::Struct::default();
    };
    prost_types::Struct {
        fields: object.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

fn to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        object @ serde_json::Value::Object(_) => Kind::StructValue(to_struct(object)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A `Struct` as JSON, integral numbers as integers.
pub fn to_json(value: &prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        value
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(value: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 =>
        {
            #[allow(clippy::cast_possible_truncation)]
            serde_json::Value::from(*n as i64)
        }
        Some(Kind::NumberValue(n)) => serde_json::json!(n),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(s)) => to_json(s),
    }
}

/// The config of an account, as JSON.
pub fn config_of(account: &proto::Account) -> serde_json::Value {
    account.config.as_ref().map(to_json).unwrap_or_default()
}

/// The fields named by the `google.rpc.BadRequest` of a status.
pub fn violated_fields(status: &patchbay_sdk::tonic::Status) -> Vec<String> {
    use patchbay_sdk::tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Asserts the call failed with `code` and returns its status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(
    result: Result<T, patchbay_sdk::tonic::Status>,
    code: patchbay_sdk::tonic::Code,
) -> patchbay_sdk::tonic::Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got a success: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// A create request for a non-WhatsApp channel.
pub fn new_account(
    channel: proto::Channel,
    key: &str,
    config: serde_json::Value,
) -> proto::CreateAccountRequest {
    proto::CreateAccountRequest {
        channel: channel.into(),
        account_key: key.to_owned(),
        display_name: format!("Account {key}"),
        config: Some(to_struct(config)),
        ..Default::default()
    }
}

/// A create request for a WhatsApp number.
pub fn new_whatsapp(phone_number_id: &str, token: &str) -> proto::CreateAccountRequest {
    proto::CreateAccountRequest {
        channel: proto::Channel::Whatsapp.into(),
        display_name: format!("WhatsApp {phone_number_id}"),
        config: Some(to_struct(serde_json::json!({
            "phone_number_id": phone_number_id,
            "waba_id": "900000001",
            "access_token": token,
        }))),
        ..Default::default()
    }
}

/// Makes `fallbacks`, in order, the workspace-wide WhatsApp scope's fallbacks, as admin.
pub async fn whatsapp_fallbacks(admin: &Client, fallbacks: &[&proto::Account]) {
    admin
        .accounts()
        .set_fallback_accounts(proto::SetFallbackAccountsRequest {
            channel: proto::Channel::Whatsapp.into(),
            division_id: String::new(),
            account_ids: fallbacks.iter().map(|account| account.id.clone()).collect(),
        })
        .await
        .expect("fallbacks");
}

/// What GetDefaultAccount serves for the workspace-wide WhatsApp scope.
pub async fn whatsapp_served(
    client: &Client,
    no_fallback: bool,
) -> proto::GetDefaultAccountResponse {
    client
        .accounts()
        .get_default_account(proto::GetDefaultAccountRequest {
            channel: proto::Channel::Whatsapp.into(),
            division_id: String::new(),
            no_fallback,
        })
        .await
        .expect("an answer")
        .into_inner()
}

/// Creates an account as admin and returns it.
pub async fn create(client: &Client, request: proto::CreateAccountRequest) -> proto::Account {
    client
        .accounts()
        .create_account(request)
        .await
        .expect("account created")
        .into_inner()
        .account
        .expect("account in response")
}

/// Reads one account.
pub async fn get_account(client: &Client, id: &str) -> proto::Account {
    client
        .accounts()
        .get_account(proto::GetAccountRequest { id: id.to_owned() })
        .await
        .expect("account read")
        .into_inner()
        .account
        .expect("account in response")
}

/// One config value of an account in clear, read as a sending service does
/// (GetAccountCredentials); empty when the account has none.
pub async fn credential(app: &TestApp, id: &str, key: &str) -> String {
    let secrets = app
        .service()
        .account_credentials(id)
        .await
        .expect("credentials");
    secrets
        .config
        .as_ref()
        .map(to_json)
        .and_then(|config| {
            config
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Updates an account and returns the new state.
pub async fn update(client: &Client, request: proto::UpdateAccountRequest) -> proto::Account {
    client
        .accounts()
        .update_account(request)
        .await
        .expect("account updated")
        .into_inner()
        .account
        .expect("account in response")
}

/// Upserts channel settings and returns what the server answered.
pub async fn upsert_settings(
    client: &Client,
    request: proto::UpsertChannelSettingsRequest,
) -> proto::ChannelSettings {
    client
        .integrations()
        .upsert_channel_settings(request)
        .await
        .expect("settings upserted")
        .into_inner()
        .channel_settings
        .expect("settings in response")
}

/// The settings of one channel, as `client` sees them.
pub async fn get_settings(client: &Client, channel: proto::Channel) -> proto::ChannelSettings {
    client
        .integrations()
        .get_channel_settings(proto::GetChannelSettingsRequest {
            channel: channel.into(),
        })
        .await
        .expect("settings read")
        .into_inner()
        .channel_settings
        .expect("settings in response")
}

/// The raw answer of GetDefaultAccount, for tests that expect an error.
pub async fn try_default(
    client: &Client,
    channel: proto::Channel,
    division_id: &str,
) -> Result<proto::GetDefaultAccountResponse, patchbay_sdk::tonic::Status> {
    client
        .accounts()
        .get_default_account(proto::GetDefaultAccountRequest {
            channel: channel.into(),
            division_id: division_id.to_owned(),
            no_fallback: false,
        })
        .await
        .map(patchbay_sdk::tonic::Response::into_inner)
}

/// The config of a channel settings record, as JSON.
pub fn settings_config(settings: &proto::ChannelSettings) -> serde_json::Value {
    settings.config.as_ref().map(to_json).unwrap_or_default()
}

impl TestApp {
    /// Everything the database holds, as text: the SQLite files byte for byte, or every
    /// row of every table on PostgreSQL. What an attacker with a dump would see.
    pub async fn dump(&self) -> String {
        match self.backend {
            Backend::Sqlite => {
                let path = self
                    .database_url
                    .trim_start_matches("sqlite://")
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let mut bytes = Vec::new();
                for suffix in ["", "-wal"] {
                    if let Ok(content) = std::fs::read(format!("{path}{suffix}")) {
                        bytes.extend(content);
                    }
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Backend::Postgres => {
                let db = self.database().await;
                let mut text = String::new();
                for table in [
                    "accounts",
                    "account_events",
                    "channel_settings",
                    "audit_events",
                    "integrations",
                    "idempotency_keys",
                ] {
                    let rows = db
                        .query_all_raw(sea_orm::Statement::from_string(
                            sea_orm::DbBackend::Postgres,
                            format!("SELECT CAST(t AS TEXT) AS row FROM {table} t"),
                        ))
                        .await
                        .expect("dump");
                    for row in rows {
                        let line: String = row.try_get("", "row").expect("row text");
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
                text
            }
        }
    }

    /// The stored text of every column that holds secrets, live and deleted rows alike.
    pub async fn secret_columns(&self) -> String {
        let db = self.database().await;
        let mut text = String::new();
        for query in [
            "SELECT CAST(config AS TEXT) AS v FROM accounts",
            "SELECT verify_token AS v FROM accounts",
            "SELECT CAST(config AS TEXT) AS v FROM channel_settings",
        ] {
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    query,
                ))
                .await
                .expect("query");
            for row in rows {
                let value: String = row.try_get("", "v").expect("text");
                text.push_str(&value);
                text.push('\n');
            }
        }
        text
    }

    /// Runs one statement with positional parameters written as `$1`, `$2`… (turned
    /// into `?` on SQLite).
    pub async fn execute(&self, sql: &str, values: Vec<sea_orm::Value>) {
        let (backend, sql) = match self.backend {
            Backend::Postgres => (sea_orm::DbBackend::Postgres, sql.to_owned()),
            Backend::Sqlite => {
                let mut sql = sql.to_owned();
                for n in (1..=values.len()).rev() {
                    sql = sql.replace(&format!("${n}"), "?");
                }
                (sea_orm::DbBackend::Sqlite, sql)
            }
        };
        self.database()
            .await
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend, sql, values,
            ))
            .await
            .expect("statement");
    }
}

/// Meta's `X-Hub-Signature-256` value for `body`: `sha256=` and the hex HMAC-SHA256 of
/// the raw bytes with the app secret (Meta, "Webhooks: Validate payloads").
pub fn meta_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A Meta delivery to `url` as Meta posts it: `X-Hub-Signature-256` is the HMAC-SHA256
/// of the raw body with `secret` (Meta, "Webhooks: Validate payloads").
pub fn meta_post(url: &str, secret: &str, body: &[u8]) -> proto::RouteWebhookRequest {
    proto::RouteWebhookRequest {
        method: "POST".into(),
        url: url.into(),
        headers: [
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "x-hub-signature-256".to_owned(),
                meta_signature(secret, body),
            ),
        ]
        .into_iter()
        .collect(),
        raw_body: body.to_vec(),
    }
}

/// The workspace's latest account-event revision (what a watch after it starts from).
pub async fn latest_revision(app: &TestApp) -> i64 {
    app.store()
        .await
        .events()
        .account_event_window(WORKSPACE)
        .await
        .expect("window")
        .0
}

/// The accounts each entry of a Meta body posted to `url` goes to, as `(entry, account
/// id)`, and the unrouted entries' reasons.
pub async fn routed(
    app: &TestApp,
    url: &str,
    body: &serde_json::Value,
) -> (Vec<(i32, String)>, Vec<String>) {
    let answer = app
        .gateway()
        .webhooks()
        .route_webhook(meta_post(url, META_APP_SECRET, body.to_string().as_bytes()))
        .await
        .expect("verified")
        .into_inner();
    let mut deliveries: Vec<_> = answer
        .deliveries
        .into_iter()
        .map(|d| (d.entry_index, d.account_id))
        .collect();
    deliveries.sort();
    (
        deliveries,
        answer.unrouted.into_iter().map(|u| u.reason).collect(),
    )
}

/// The app-level callback's URL.
pub fn app_callback_url() -> String {
    format!("{PUBLIC_BASE_URL}/webhooks/meta")
}

/// How many requests a stand-in received at a path ending in `path_end` with the query
/// parameter `name` set to `value` (a token asked about, refreshed, …).
pub async fn requests_with(
    server: &wiremock::MockServer,
    path_end: &str,
    name: &str,
    value: &str,
) -> usize {
    let requests = server.received_requests().await.expect("recorded");
    requests
        .iter()
        .filter(|r| r.url.path().ends_with(path_end))
        .filter(|r| r.url.query_pairs().any(|(k, v)| k == name && v == value))
        .count()
}
