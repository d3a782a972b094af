//! Certificates made inside the tests (rcgen): a CA, server certificates for 127.0.0.1
//! and localhost, client certificates, and the PEM files a TLS listener reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use patchbay::listener::TlsSettings;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate authority of the test's own.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain and its key, in PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA certificate, to trust.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for 127.0.0.1, ::1 and localhost.
    pub fn server(&self) -> Issued {
        self.issue(
            vec!["127.0.0.1".into(), "::1".into(), "localhost".into()],
            "patchbay test server",
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate, for mTLS.
    pub fn client(&self, name: &str) -> Issued {
        self.issue(Vec::new(), name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        names: Vec<String>,
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> Issued {
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// The listener's PEM files in `dir`, and the settings that name them.
pub fn write_listener_files(
    dir: &Path,
    server: &Issued,
    client_ca: Option<&TestCa>,
    reload_interval: Duration,
) -> TlsSettings {
    let cert_file = dir.join("tls.crt");
    let key_file = dir.join("tls.key");
    replace_server_files(&cert_file, &key_file, server);
    let client_ca_file = client_ca.map(|ca| {
        let path = dir.join("clients-ca.crt");
        std::fs::write(&path, ca.pem()).expect("write client CA");
        path
    });
    TlsSettings {
        cert_file,
        key_file,
        client_ca_file,
        reload_interval,
        handshakes_per_network: patchbay::listener::HANDSHAKES_PER_NETWORK,
    }
}

/// Replaces the certificate and key the way a rotation does: each file written aside,
/// then renamed over the old one.
pub fn replace_server_files(cert_file: &PathBuf, key_file: &PathBuf, server: &Issued) {
    for (path, content) in [(key_file, &server.key_pem), (cert_file, &server.cert_pem)] {
        let aside = path.with_extension("new");
        std::fs::write(&aside, content).expect("write");
        std::fs::rename(&aside, path).expect("rename");
    }
}
