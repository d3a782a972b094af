//! How a client reaches the server: `http://` in the clear (loopback, or a mesh that
//! encrypts for it), `https://` over TLS with the system's roots or a given CA, and
//! optionally a client certificate for servers that ask for one (mTLS).

use std::time::Duration;

use tonic::codec::CompressionEncoding;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::client::Error;

/// TLS and connection settings for [`Client::connect_with`](crate::Client::connect_with).
#[derive(Clone, Default)]
pub struct ConnectOptions {
    ca_certificate_pem: Option<Vec<u8>>,
    client_identity: Option<(Vec<u8>, Vec<u8>)>,
    domain_name: Option<String>,
    compression: Option<CompressionEncoding>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("ca_certificate", &self.ca_certificate_pem.is_some())
            .field("client_identity", &self.client_identity.is_some())
            .field("domain_name", &self.domain_name)
            .field("compression", &self.compression)
            .finish()
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Streams this side has cancelled that HTTP/2 remembers (each for 1 s, hyper's default),
/// so that the frames the server had already sent on them are ignored, as RFC 9113
/// §6.4 asks. hyper remembers 50; a client that cancels more watches than that in a
/// second (a dropped `Streaming`, a timeout) has h2 answer each later frame with a
/// reset of its own, and h2 closes the connection, every call on it failing with
/// RESOURCE_EXHAUSTED "too_many_internal_resets", once 1,024 of those have added up
/// over the connection's life (hyperium/h2#856). Measured with the soak made of
/// watchers only: some 440 cancels a second on one connection ended it within two
/// minutes. A few hundred bytes per remembered stream is the price. (h2 0.4.21 raises
/// its own defaults to 8,192 for 5 s: revisit this when the lock file moves to it.)
const REMEMBERED_RESET_STREAMS: usize = 1024;

impl ConnectOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust this CA (PEM) instead of the system's roots.
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate_pem = Some(pem.into());
        self
    }

    /// Present this certificate chain and key (PEM) when the server asks (mTLS).
    pub fn client_identity_pem(
        mut self,
        certificate: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_identity = Some((certificate.into(), key.into()));
        self
    }

    /// The name to verify the server's certificate against, when it differs from the
    /// endpoint's host.
    pub fn domain_name(mut self, name: impl Into<String>) -> Self {
        self.domain_name = Some(name.into());
        self
    }

    /// Compress requests with `encoding` (`CompressionEncoding::Gzip` or `Zstd`), and
    /// accept answers compressed with it. Worth it for large configs over slow links;
    /// on a fast network it costs more CPU than it saves.
    pub fn compression(mut self, encoding: CompressionEncoding) -> Self {
        self.compression = Some(encoding);
        self
    }

    /// The encoding set with [`compression`](Self::compression), if any.
    pub fn compression_encoding(&self) -> Option<CompressionEncoding> {
        self.compression
    }

    /// An endpoint for `url`: TLS for `https://`, with these options. Use it to build a
    /// [`Channel`] that several clients (with different tokens) share.
    /// Options that only TLS can honour (a CA, a client certificate, a domain name)
    /// with a URL that is not `https://` are an error: the token would go in the clear.
    pub fn endpoint(&self, url: impl Into<String>) -> Result<Endpoint, Error> {
        let url = url.into();
        let https = url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        let wants_tls = self.ca_certificate_pem.is_some()
            || self.client_identity.is_some()
            || self.domain_name.is_some();
        if wants_tls && !https {
            return Err(Error::InsecureEndpoint(url));
        }
        let endpoint = Endpoint::from_shared(url)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_max_concurrent_reset_streams(REMEMBERED_RESET_STREAMS);
        if !https {
            return Ok(endpoint);
        }
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca_certificate_pem {
            Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
            None => tls.with_native_roots(),
        };
        if let Some((certificate, key)) = &self.client_identity {
            tls = tls.identity(Identity::from_pem(certificate, key));
        }
        if let Some(name) = &self.domain_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(endpoint.tls_config(tls)?)
    }

    /// Connects to `url` now.
    pub async fn connect(&self, url: impl Into<String>) -> Result<Channel, Error> {
        Ok(self.endpoint(url)?.connect().await?)
    }
}
