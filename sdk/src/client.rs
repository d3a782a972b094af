//! A friendly client: one connection, a bearer token on every call, typed errors, and
//! retries with backoff for reads when the server answers UNAVAILABLE.

use std::time::Duration;

use tonic::codec::CompressionEncoding;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::proto::{
    self, account_service_client::AccountServiceClient, audit_service_client::AuditServiceClient,
    integration_service_client::IntegrationServiceClient,
    webhook_service_client::WebhookServiceClient,
};

/// Where a client's bearer token comes from on each call: the application keeps it
/// fresh (a closure returning the current token, or any type implementing this), so a
/// long-lived client and its watches go on past one token's expiry.
pub trait TokenSource: Send + Sync + 'static {
    /// The token to send now.
    fn token(&self) -> String;
}

impl<F> TokenSource for F
where
    F: Fn() -> String + Send + Sync + 'static,
{
    fn token(&self) -> String {
        self()
    }
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct BearerToken {
    source: TokenFrom,
}

#[derive(Clone)]
enum TokenFrom {
    Fixed(MetadataValue<Ascii>),
    Source(std::sync::Arc<dyn TokenSource>),
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, Error> {
        let header = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| Error::InvalidToken)?;
        Ok(Self {
            source: TokenFrom::Fixed(header),
        })
    }

    /// A token asked of `source` on every call.
    pub fn from_source(source: impl TokenSource) -> Self {
        Self {
            source: TokenFrom::Source(std::sync::Arc::new(source)),
        }
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = match &self.source {
            TokenFrom::Fixed(header) => header.clone(),
            TokenFrom::Source(source) => format!("Bearer {}", source.token().trim())
                .parse()
                .map_err(|_| Status::unauthenticated("the token source gave no valid token"))?,
        };
        request.metadata_mut().insert("authorization", header);
        Ok(request)
    }
}

pub type AuthenticatedChannel = InterceptedService<Channel, BearerToken>;

/// A field the server named as invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// What a call can fail with, decoded from the gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("the token is not a valid header value")]
    InvalidToken,
    #[error("TLS options were given but {0} is not an https:// endpoint")]
    InsecureEndpoint(String),
    #[error("invalid argument: {message}")]
    InvalidArgument {
        message: String,
        violations: Vec<FieldViolation>,
    },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    #[error("aborted: {0}")]
    Aborted(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("{}: {}", .0.code(), .0.message())]
    Other(Status),
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument => {
                let violations = status
                    .get_details_bad_request()
                    .map(|bad| {
                        bad.field_violations
                            .into_iter()
                            .map(|v| FieldViolation {
                                field: v.field,
                                description: v.description,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Error::InvalidArgument {
                    message,
                    violations,
                }
            }
            Code::NotFound => Error::NotFound(message),
            Code::AlreadyExists => Error::AlreadyExists(message),
            Code::FailedPrecondition => Error::FailedPrecondition(message),
            Code::Aborted => Error::Aborted(message),
            Code::Unauthenticated => Error::Unauthenticated(message),
            Code::PermissionDenied => Error::PermissionDenied(message),
            Code::Unavailable => Error::Unavailable(message),
            _ => Error::Other(status),
        }
    }
}

/// How reads are retried when the server is UNAVAILABLE.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// A Patchbay client for one server and one token.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    token: BearerToken,
    retry: RetryPolicy,
    compression: Option<CompressionEncoding>,
}

/// A generated client that compresses its requests with `encoding`, and takes answers
/// compressed with it, when one is set.
macro_rules! compressed {
    ($client:expr, $encoding:expr) => {{
        let client = $client;
        match $encoding {
            Some(encoding) => client.send_compressed(encoding).accept_compressed(encoding),
            None => client,
        }
    }};
}

impl Client {
    /// Connects to `endpoint`: `http://127.0.0.1:50051` in the clear, or
    /// `https://patchbay.internal:50051` over TLS, trusting the system's roots.
    pub async fn connect(endpoint: impl Into<String>, token: &str) -> Result<Self, Error> {
        Self::connect_with(endpoint, token, &crate::ConnectOptions::new()).await
    }

    /// Connects to `endpoint` with TLS options: a CA to trust instead of the system's
    /// roots, a client certificate for mTLS.
    pub async fn connect_with(
        endpoint: impl Into<String>,
        token: &str,
        options: &crate::ConnectOptions,
    ) -> Result<Self, Error> {
        let channel = options.connect(endpoint).await?;
        Ok(Self::from_channel(channel, token)?.with_compression(options.compression_encoding()))
    }

    /// Uses an existing channel (shared between clients with different tokens).
    pub fn from_channel(channel: Channel, token: &str) -> Result<Self, Error> {
        Ok(Self {
            channel,
            token: BearerToken::new(token)?,
            retry: RetryPolicy::default(),
            compression: None,
        })
    }

    /// Uses an existing channel, asking `source` for the token on every call: the
    /// application refreshes it, and watches reopened after a token expired go on with
    /// the fresh one.
    pub fn from_channel_with_token_source(channel: Channel, source: impl TokenSource) -> Self {
        Self {
            channel,
            token: BearerToken::from_source(source),
            retry: RetryPolicy::default(),
            compression: None,
        }
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Compresses every request with `encoding` (gzip or zstd) and accepts answers
    /// compressed with it (the server compresses those over 1 KiB that carry no
    /// secret); `None` sends everything as it is, the default.
    pub fn with_compression(mut self, encoding: Option<CompressionEncoding>) -> Self {
        self.compression = encoding;
        self
    }

    /// The generated `AccountService` client, for calls this wrapper does not cover.
    pub fn accounts(&self) -> AccountServiceClient<AuthenticatedChannel> {
        compressed!(
            AccountServiceClient::with_interceptor(self.channel.clone(), self.token.clone()),
            self.compression
        )
    }

    /// The generated `AuditService` client.
    pub fn audit(&self) -> AuditServiceClient<AuthenticatedChannel> {
        compressed!(
            AuditServiceClient::with_interceptor(self.channel.clone(), self.token.clone()),
            self.compression
        )
    }

    /// An account with its secrets in clear (service role; the reveal is audited).
    pub async fn account_credentials(
        &self,
        id: &str,
    ) -> Result<proto::GetAccountCredentialsResponse, Error> {
        let request = proto::GetAccountCredentialsRequest { id: id.to_owned() };
        self.retrying(|| {
            let mut client = self.accounts();
            let request = request.clone();
            async move { client.get_account_credentials(request).await }
        })
        .await
    }

    /// The generated `WebhookService` client.
    pub fn webhooks(&self) -> WebhookServiceClient<AuthenticatedChannel> {
        compressed!(
            WebhookServiceClient::with_interceptor(self.channel.clone(), self.token.clone()),
            self.compression
        )
    }

    /// Checks and routes one webhook request exactly as the provider sent it (gateway
    /// role): `method`, the full `url` (query string included), the headers and the
    /// raw body. The answer is Meta's handshake challenge, or the account each entry
    /// of the body is for; `Err(PermissionDenied)` for a bad signature or verify token,
    /// `Err(NotFound)` for a URL that names no route. Retried when UNAVAILABLE (a
    /// replica catching up): nothing is written.
    pub async fn route_webhook(
        &self,
        method: &str,
        url: &str,
        headers: impl IntoIterator<Item = (String, String)>,
        raw_body: impl Into<Vec<u8>>,
    ) -> Result<proto::RouteWebhookResponse, Error> {
        let request = proto::RouteWebhookRequest {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: headers.into_iter().collect(),
            raw_body: raw_body.into(),
        };
        self.retrying(|| {
            let mut client = self.webhooks();
            let request = request.clone();
            async move { client.route_webhook(request).await }
        })
        .await
    }

    /// The generated `IntegrationService` client.
    pub fn integrations(&self) -> IntegrationServiceClient<AuthenticatedChannel> {
        compressed!(
            IntegrationServiceClient::with_interceptor(self.channel.clone(), self.token.clone()),
            self.compression
        )
    }

    /// The account that sends on `channel` for `division` (the division's default,
    /// else the workspace-wide default).
    pub async fn default_account(
        &self,
        channel: proto::Channel,
        division_id: Option<&str>,
    ) -> Result<proto::Account, Error> {
        let request = proto::GetDefaultAccountRequest {
            channel: channel.into(),
            division_id: division_id.unwrap_or_default().to_owned(),
            no_fallback: false,
        };
        let response = self
            .retrying(|| {
                let mut client = self.accounts();
                let request = request.clone();
                async move { client.get_default_account(request).await }
            })
            .await?;
        response
            .account
            .ok_or_else(|| Error::Other(Status::internal("response without an account")))
    }

    /// A local copy of the default accounts that follows every change: lookups with no
    /// network call (see [`DefaultAccounts`](crate::DefaultAccounts)).
    pub fn watch_default_accounts(&self, options: crate::WatchOptions) -> crate::DefaultAccounts {
        crate::DefaultAccounts::watch(self.clone(), options)
    }

    pub async fn get_account(&self, id: &str) -> Result<proto::Account, Error> {
        let request = proto::GetAccountRequest { id: id.to_owned() };
        let response = self
            .retrying(|| {
                let mut client = self.accounts();
                let request = request.clone();
                async move { client.get_account(request).await }
            })
            .await?;
        response
            .account
            .ok_or_else(|| Error::Other(Status::internal("response without an account")))
    }

    /// Every account of `channel` (all channels when `None`), following pages.
    pub async fn list_all_accounts(
        &self,
        channel: Option<proto::Channel>,
    ) -> Result<Vec<proto::Account>, Error> {
        let mut accounts = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = proto::ListAccountsRequest {
                channel: channel.unwrap_or(proto::Channel::Unspecified).into(),
                page_size: 500,
                page_token: page_token.clone(),
            };
            let page = self
                .retrying(|| {
                    let mut client = self.accounts();
                    let request = request.clone();
                    async move { client.list_accounts(request).await }
                })
                .await?;
            accounts.extend(page.accounts);
            if page.next_page_token.is_empty() {
                return Ok(accounts);
            }
            page_token = page.next_page_token;
        }
    }

    pub async fn create_account(
        &self,
        request: proto::CreateAccountRequest,
    ) -> Result<proto::Account, Error> {
        let response = self.accounts().create_account(request).await?.into_inner();
        response
            .account
            .ok_or_else(|| Error::Other(Status::internal("response without an account")))
    }

    pub async fn set_default_account(&self, id: &str) -> Result<proto::Account, Error> {
        let request = proto::SetDefaultAccountRequest {
            id: id.to_owned(),
            expected_revision: None,
        };
        let response = self
            .accounts()
            .set_default_account(request)
            .await?
            .into_inner();
        response
            .account
            .ok_or_else(|| Error::Other(Status::internal("response without an account")))
    }

    /// Runs a read, retrying with exponential backoff while the server is UNAVAILABLE.
    async fn retrying<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status)
                    if status.code() == Code::Unavailable && attempt < self.retry.attempts =>
                {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.max_backoff);
                    attempt += 1;
                }
                Err(status) => return Err(status.into()),
            }
        }
    }
}
