//! The listener's transport: TLS files, mTLS, and the rule that keeps plaintext on
//! loopback (bearer tokens and revealed credentials cross that connection).

use std::net::SocketAddr;
use std::time::Duration;

use super::{ConfigError, TlsArgs};
use crate::listener::TlsSettings;

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
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert_file), Some(key_file)) => Some(TlsSettings {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            client_ca_file: args.tls_client_ca_file.clone(),
            reload_interval: Duration::from_secs(args.tls_reload_interval_seconds),
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
