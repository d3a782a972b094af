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
    /// TLS handshakes in progress at once from one network (IPv4 /24, IPv6 /48).
    pub handshakes_per_network: usize,
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

/// What a file looked like when a configuration was built from it: modification time,
/// length and (on Unix) device and inode, so that a file replaced with an older time
/// (`cp -p`, `tar`) or on a file system with coarse times is still noticed.
type Stamps = Vec<Option<(SystemTime, u64, u64, u64)>>;

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

    /// The configuration new handshakes use now.
    pub fn current(&self) -> Arc<ServerConfig> {
        locks::read(&self.current).clone()
    }

    /// Watches the files until the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        let every = self.settings.reload_interval.max(Duration::from_secs(1));
        let mut ticker = tokio::time::interval(every);
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
        let before = stamps(&self.settings);
        if *locks::read(&self.attempted) == before {
            return false;
        }
        let built = build(&self.settings);
        // A file that changed while it was read (written in place) is read again on the
        // next tick rather than remembered as tried.
        if stamps(&self.settings) == before {
            *locks::write(&self.attempted) = before;
        }
        match built {
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
    let modified = |path: &Path| {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let (device, inode) = {
            use std::os::unix::fs::MetadataExt;
            (metadata.dev(), metadata.ino())
        };
        #[cfg(not(unix))]
        let (device, inode) = (0, 0);
        Some((metadata.modified().ok()?, metadata.len(), device, inode))
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate for localhost and its key, self-signed, in PEM.
    fn pair() -> (String, String) {
        let issued =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        (issued.cert.pem(), issued.signing_key.serialize_pem())
    }

    fn write(path: &Path, content: &str) {
        let aside = path.with_extension("tmp");
        std::fs::write(&aside, content).expect("write");
        std::fs::rename(&aside, path).expect("rename");
    }

    /// Files that do not load leave the serving configuration in place, and are tried
    /// again once they change; a good pair replaces it.
    #[test]
    fn broken_files_keep_the_previous_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = TlsSettings {
            cert_file: dir.path().join("tls.crt"),
            key_file: dir.path().join("tls.key"),
            client_ca_file: None,
            reload_interval: Duration::from_secs(1),
            handshakes_per_network: crate::listener::HANDSHAKES_PER_NETWORK,
        };
        let (cert, key) = pair();
        write(&settings.cert_file, &cert);
        write(&settings.key_file, &key);
        let tls = ReloadingTls::load(settings.clone()).expect("loads");
        let serving = tls.current();
        assert!(!tls.reload_if_changed(), "nothing changed");

        let (_, other_key) = pair();
        for broken in ["not a certificate", ""] {
            write(&settings.cert_file, broken);
            assert!(!tls.reload_if_changed(), "garbage does not load");
            assert!(Arc::ptr_eq(&serving, &tls.current()), "the old one serves");
        }
        // A certificate with a key that is not its own.
        write(&settings.cert_file, &cert);
        write(&settings.key_file, &other_key);
        assert!(!tls.reload_if_changed(), "a mismatched pair does not load");
        assert!(Arc::ptr_eq(&serving, &tls.current()));
        std::fs::remove_file(&settings.key_file).expect("remove");
        assert!(!tls.reload_if_changed(), "a missing key does not load");
        assert!(Arc::ptr_eq(&serving, &tls.current()));

        let (new_cert, new_key) = pair();
        write(&settings.key_file, &new_key);
        write(&settings.cert_file, &new_cert);
        assert!(tls.reload_if_changed(), "a good pair loads");
        assert!(!Arc::ptr_eq(&serving, &tls.current()));
        assert_eq!(
            tls.current().alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
