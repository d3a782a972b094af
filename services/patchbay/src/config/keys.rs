//! Where the server's keys come from: the JWT verification keys (HS256 secret, RS256/ES256
//! public keys) and the encryption key ring of secrets at rest.
//!
//! Keys fail closed. Development keys are generated in the data directory only for the
//! embedded default — no database URL (SQLite in the data directory) and a loopback
//! listen address — where nothing but this machine reaches the server or its data.
//! Anywhere else a missing key refuses the start: two replicas generating keys of their
//! own would seal with different keys, and a container restarted without its volume
//! would lose every secret.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use secrecy::SecretString;

use super::{ConfigError, EncryptionArgs, JwtArgs, ensure_data_dir};
use crate::auth::{JwtSettings, PublicKey};
use crate::sealing::KeyRing;

/// Shortest HS256 secret accepted: 256 bits, as RFC 7518 asks.
const MIN_SECRET_BYTES: usize = 32;
const DEV_SECRET_FILE: &str = "jwt-hs256.secret";
const DEV_KEYS_FILE: &str = "encryption-keys.json";

/// Whether development keys may be generated (or reused) in the data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevKeys {
    /// The embedded default: generate them on first start.
    Allowed,
    /// Anything else: a missing key refuses the start, naming the settings.
    Refused,
}

/// Which of the two key sets a deployment left unconfigured, as one message naming
/// every setting that would configure them; `None` when both are given.
pub fn missing_keys(jwt: &JwtArgs, encryption: Option<&EncryptionArgs>) -> Option<String> {
    let mut missing = Vec::new();
    if let Some(encryption) = encryption
        && encryption.encryption_keys.is_none()
        && encryption.encryption_keys_file.is_none()
    {
        missing.push(
            "an encryption key ring (PATCHBAY_ENCRYPTION_KEYS or PATCHBAY_ENCRYPTION_KEYS_FILE, \
                 --encryption-keys or --encryption-keys-file)",
        );
    }
    if jwt.jwt_secret.is_none()
        && jwt.jwt_secret_file.is_none()
        && jwt.jwt_public_key_file.is_empty()
        && jwt.jwt_jwks_file.is_none()
    {
        missing.push(
            "JWT verification keys (PATCHBAY_JWT_SECRET, PATCHBAY_JWT_SECRET_FILE, \
             PATCHBAY_JWT_PUBLIC_KEY_FILES or PATCHBAY_JWT_JWKS_FILE)",
        );
    }
    (!missing.is_empty()).then(|| missing.join(" and "))
}

pub fn jwt_settings(
    data_dir: &Path,
    args: &JwtArgs,
    dev_keys: DevKeys,
) -> Result<JwtSettings, ConfigError> {
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
            if dev_keys == DevKeys::Refused {
                return Err(not_embedded(
                    "JWT verification keys (PATCHBAY_JWT_SECRET, PATCHBAY_JWT_SECRET_FILE, PATCHBAY_JWT_PUBLIC_KEY_FILES or PATCHBAY_JWT_JWKS_FILE)",
                ));
            }
            let file = data_dir.join(DEV_SECRET_FILE);
            Some((
                load_or_create_dev_secret(data_dir, &file)?,
                format!("development secret {}", file.display()),
            ))
        }
        (None, None) => None,
    };
    if let Some((secret, source)) = &secret
        && secret.len() < MIN_SECRET_BYTES
    {
        return Err(ConfigError(format!(
            "{source} must be at least {MIN_SECRET_BYTES} bytes"
        )));
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
        max_lifetime: match args.jwt_max_lifetime_seconds {
            None => None,
            Some(0) => {
                return Err(ConfigError(
                    "PATCHBAY_JWT_MAX_LIFETIME_SECONDS (--jwt-max-lifetime-seconds) must be at least 1"
                        .to_owned(),
                ));
            }
            Some(seconds) => Some(Duration::from_secs(seconds)),
        },
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

pub fn key_ring(
    data_dir: &Path,
    args: &EncryptionArgs,
    dev_keys: DevKeys,
) -> Result<KeyRing, ConfigError> {
    let (json, source) = match (&args.encryption_keys, &args.encryption_keys_file) {
        (Some(json), _) => (
            json.clone(),
            "PATCHBAY_ENCRYPTION_KEYS (--encryption-keys)".to_owned(),
        ),
        (None, Some(file)) => (
            read_secret(file)?,
            format!("PATCHBAY_ENCRYPTION_KEYS_FILE ({})", file.display()),
        ),
        (None, None) if dev_keys == DevKeys::Refused => {
            return Err(not_embedded(
                "an encryption key ring (PATCHBAY_ENCRYPTION_KEYS or PATCHBAY_ENCRYPTION_KEYS_FILE, --encryption-keys or --encryption-keys-file)",
            ));
        }
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

/// The refusal of a start without keys outside the embedded default.
pub fn not_embedded(missing: &str) -> ConfigError {
    ConfigError(format!(
        "no {missing} configured; development keys are generated only for the embedded \
         default (no --database-url and a loopback --listen), and this server has a \
         database URL or listens off loopback"
    ))
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
        crate::domain::ids::random_token(48).map_err(|err| err.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt_args(secret: Option<&str>) -> JwtArgs {
        JwtArgs {
            jwt_secret: secret.map(str::to_owned),
            jwt_secret_file: None,
            jwt_issuer: "patchbay".into(),
            jwt_audience: "patchbay".into(),
            jwt_leeway_seconds: 30,
            jwt_max_lifetime_seconds: None,
            jwt_public_key_file: Vec::new(),
            jwt_jwks_file: None,
            jwt_algorithms: Vec::new(),
        }
    }

    #[test]
    fn dev_secret_is_generated_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = jwt_args(None);
        let first = jwt_settings(dir.path(), &args, DevKeys::Allowed).expect("generated");
        let second = jwt_settings(dir.path(), &args, DevKeys::Allowed).expect("reused");
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
        let args = jwt_args(Some("short"));
        let err = jwt_settings(Path::new("/nonexistent"), &args, DevKeys::Allowed)
            .expect_err("too short");
        assert!(err.0.contains("PATCHBAY_JWT_SECRET"), "{}", err.0);
    }
}
