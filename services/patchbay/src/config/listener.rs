//! The listener's transport: TLS files, mTLS, and the rule that keeps plaintext on
//! loopback (bearer tokens and revealed credentials cross that connection).

use std::net::SocketAddr;
use std::time::Duration;

use std::path::PathBuf;

use clap::Args;

use super::ConfigError;
use crate::listener::TlsSettings;

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
    /// TLS handshakes in progress at once from one IPv4 /24 or IPv6 /48 (512 in all).
    #[arg(
        long,
        env = "PATCHBAY_TLS_HANDSHAKES_PER_NETWORK",
        default_value_t = 32
    )]
    pub tls_handshakes_per_network: usize,
    /// Serve plaintext on a non-loopback address: only where a service mesh (or another
    /// proxy) terminates TLS in front of the server.
    #[arg(long, env = "PATCHBAY_ALLOW_PLAINTEXT")]
    pub allow_plaintext: bool,
}

pub(super) fn tls_settings(
    listen: SocketAddr,
    args: &TlsArgs,
) -> Result<Option<TlsSettings>, ConfigError> {
    if args.tls_reload_interval_seconds == 0 {
        return Err(ConfigError(
            "PATCHBAY_TLS_RELOAD_INTERVAL_SECONDS (--tls-reload-interval-seconds) must be at least 1"
                .to_owned(),
        ));
    }
    if args.tls_handshakes_per_network == 0 {
        return Err(ConfigError(
            "PATCHBAY_TLS_HANDSHAKES_PER_NETWORK (--tls-handshakes-per-network) must be at least 1"
                .to_owned(),
        ));
    }
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert_file), Some(key_file)) => Some(TlsSettings {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            client_ca_file: args.tls_client_ca_file.clone(),
            reload_interval: Duration::from_secs(args.tls_reload_interval_seconds),
            handshakes_per_network: args.tls_handshakes_per_network,
        }),
        (None, None) => None,
        _ => {
            return Err(ConfigError(
                "PATCHBAY_TLS_CERT_FILE and PATCHBAY_TLS_KEY_FILE (--tls-cert-file, \
                 --tls-key-file) go together: set both or neither"
                    .to_owned(),
            ));
        }
    };
    if tls.is_none() && args.tls_client_ca_file.is_some() {
        return Err(ConfigError(
            "PATCHBAY_TLS_CLIENT_CA_FILE (--tls-client-ca-file) needs PATCHBAY_TLS_CERT_FILE \
             and PATCHBAY_TLS_KEY_FILE: client certificates are checked during a TLS handshake"
                .to_owned(),
        ));
    }
    if tls.is_none() && !listen.ip().is_loopback() && !args.allow_plaintext {
        return Err(ConfigError(format!(
            "PATCHBAY_LISTEN (--listen) {listen} is not a loopback address and no TLS is \
             configured: set PATCHBAY_TLS_CERT_FILE and PATCHBAY_TLS_KEY_FILE (--tls-cert-file, \
             --tls-key-file), or PATCHBAY_ALLOW_PLAINTEXT=true (--allow-plaintext) when a \
             service mesh terminates TLS in front of the server"
        )));
    }
    Ok(tls)
}
