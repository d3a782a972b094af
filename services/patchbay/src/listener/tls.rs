//! TLS on the gRPC listener: the certificate chain and key from PEM files, optionally a
//! CA that client certificates must chain to (mTLS), ALPN `h2` and `http/1.1`.
//!
//! cert-manager and Vault rotate certificates every few weeks, so the files are watched:
//! at most every `reload_interval` their modification times are compared with the last
//! load's, and when one changed the whole configuration is built again and used for new
//! handshakes. Open connections keep the session they negotiated. A configuration that
//! does not load (a key written before its certificate) keeps the previous one serving
//! and is tried again when the files change again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::locks;

/// The TLS settings of the listener, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Clients must present a certificate signed by this CA (mTLS).
    pub client_ca_file: Option<PathBuf>,
    /// How often the files' modification times are compared.
    pub reload_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{setting} ({path}): {problem}")]
pub struct TlsError {
    setting: &'static str,
    path: String,
    problem: String,
}

impl TlsError {
    fn new(setting: &'static str, path: &Path, problem: impl ToString) -> Self {
        Self {
            setting,
            path: path.display().to_string(),
            problem: problem.to_string(),
        }
    }
}

const CERT_SETTING: &str = "PATCHBAY_TLS_CERT_FILE";
const KEY_SETTING: &str = "PATCHBAY_TLS_KEY_FILE";
const CA_SETTING: &str = "PATCHBAY_TLS_CLIENT_CA_FILE";

/// The modification times a configuration was built from.
type Stamps = Vec<Option<SystemTime>>;

/// The listener's current TLS configuration, swapped when its files change.
pub struct ReloadingTls {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    /// The stamps of the last load attempted, successful or not.
    attempted: RwLock<Stamps>,
}

impl ReloadingTls {
    /// Loads the configuration once; a start with files that do not load fails, naming
    /// the setting and the file.
    pub fn load(settings: TlsSettings) -> Result<Arc<Self>, TlsError> {
        let stamps = stamps(&settings);
        let config = build(&settings)?;
        Ok(Arc::new(Self {
            settings,
            current: RwLock::new(Arc::new(config)),
            attempted: RwLock::new(stamps),
        }))
    }

    /// An acceptor with the configuration of this moment.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(locks::read(&self.current).clone())
    }

    /// Watches the files until the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.settings.reload_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let this = self.clone();
            // Reading files blocks: keep it off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
        }
    }

    /// Builds the configuration again when a file's modification time changed since the
    /// last attempt; returns whether a new one is in use.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamps(&self.settings);
        if *locks::read(&self.attempted) == now {
            return false;
        }
        *locks::write(&self.attempted) = now;
        match build(&self.settings) {
            Ok(config) => {
                *locks::write(&self.current) = Arc::new(config);
                tracing::info!(
                    cert_file = %self.settings.cert_file.display(),
                    "TLS certificate reloaded; new connections use it"
                );
                true
            }
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    "TLS files changed but do not load; the previous certificate stays in use"
                );
                false
            }
        }
    }
}

fn stamps(settings: &TlsSettings) -> Stamps {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut stamps = vec![modified(&settings.cert_file), modified(&settings.key_file)];
    if let Some(ca) = &settings.client_ca_file {
        stamps.push(modified(ca));
    }
    stamps
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|err| TlsError::new(setting, path, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::new(setting, path, err))?;
    if certificates.is_empty() {
        return Err(TlsError::new(setting, path, "holds no PEM certificate"));
    }
    Ok(certificates)
}

/// The server configuration the files describe.
fn build(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let chain = read_certificates(CERT_SETTING, &settings.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key_file)
        .map_err(|err| TlsError::new(KEY_SETTING, &settings.key_file, err))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::new(CERT_SETTING, &settings.cert_file, err))?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(CA_SETTING, ca_file)? {
                roots
                    .add(certificate)
                    .map_err(|err| TlsError::new(CA_SETTING, ca_file, err))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|err| TlsError::new(CA_SETTING, ca_file, err))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|err| TlsError::new(KEY_SETTING, &settings.key_file, err))?;
    // h2 for gRPC; http/1.1 for gRPC-Web clients later.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
