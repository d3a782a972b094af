//! Envelope encryption of secret values at rest: AES-256-GCM with a fresh random nonce
//! per value, the key id stored beside each ciphertext, and the record and field the
//! value belongs to bound as associated data, so that a ciphertext copied to another row
//! or field does not decrypt.
//!
//! A sealed value is the text `pbx1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "pbx1.";
const NONCE_BYTES: usize = 12;
const KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The value names a key that is not configured.
    #[error("sealed with key {0:?}, which is not configured")]
    UnknownKey(String),
    /// Wrong record or field, or the bytes were changed.
    #[error("does not decrypt: it belongs to another record or field, or was altered")]
    Tampered,
    #[error("is not a sealed value")]
    Malformed,
    #[error("no randomness available")]
    Randomness,
}

/// The configured keys: one active key seals, every key opens.
#[derive(Clone)]
pub struct KeyRing {
    active: String,
    keys: BTreeMap<String, Aes256Gcm>,
    /// The key of lookup indexes (an HMAC of a verify token finds its account without
    /// decrypting every one). Kept beside the ring and not rotated with it: rotating it
    /// would orphan every index entry.
    index_key: Option<[u8; KEY_BYTES]>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The JSON form of a key ring, as kept in a key file or `PATCHBAY_ENCRYPTION_KEYS`:
/// `{"active": "k2", "keys": {"k1": "<base64 of 32 bytes>", "k2": "…"}}`.
#[derive(Serialize, Deserialize)]
pub struct KeyRingFile {
    pub active: String,
    pub keys: BTreeMap<String, String>,
    /// Base64 of 32 bytes: the key of lookup indexes (optional; without it lookups that
    /// would use an index compare against each candidate instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_key: Option<String>,
}

impl KeyRing {
    /// Parses the JSON form; the error names what is wrong, never a key.
    pub fn from_json(text: &str) -> Result<KeyRing, String> {
        let file: KeyRingFile = serde_json::from_str(text).map_err(|err| {
            format!("is not a key ring ({{\"active\": …, \"keys\": {{…}}}}): {err}")
        })?;
        let mut keys = BTreeMap::new();
        for (id, encoded) in &file.keys {
            if !valid_key_id(id) {
                return Err(format!(
                    "key id {id:?} must be 1 to 64 letters, digits, - or _"
                ));
            }
            let bytes = STANDARD
                .decode(encoded.trim())
                .map_err(|_| format!("key {id:?} is not base64"))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .ok()
                .filter(|_| bytes.len() == KEY_BYTES)
                .ok_or_else(|| format!("key {id:?} must be {KEY_BYTES} bytes"))?;
            keys.insert(id.clone(), cipher);
        }
        if !keys.contains_key(&file.active) {
            return Err(format!(
                "the active key {:?} is not among the keys",
                file.active
            ));
        }
        let index_key = match &file.index_key {
            None => None,
            Some(encoded) => {
                let bytes = STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| "index_key is not base64".to_owned())?;
                Some(
                    <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
                        .map_err(|_| format!("index_key must be {KEY_BYTES} bytes"))?,
                )
            }
        };
        Ok(KeyRing {
            active: file.active,
            keys,
            index_key,
        })
    }

    /// The index entry of `value` in index `name` (HMAC-SHA256 under the index key,
    /// hex), or `None` without an index key.
    pub fn index_of(&self, name: &str, value: &str) -> Option<String> {
        use hmac::{Hmac, Mac};
        let key = self.index_key.as_ref()?;
        let mut mac = <Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key).ok()?;
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        Some(
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// A ring of one freshly generated key, in its JSON form.
    pub fn generate_file() -> Result<KeyRingFile, SealError> {
        let (id, key) = generate_key()?;
        let (_, index_key) = generate_key()?;
        Ok(KeyRingFile {
            active: id.clone(),
            keys: BTreeMap::from([(id, key)]),
            index_key: Some(index_key),
        })
    }

    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// Encrypts `plaintext` under the active key, bound to `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let cipher = self
            .keys
            .get(&self.active)
            .ok_or_else(|| SealError::UnknownKey(self.active.clone()))?;
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Randomness)?;
        let ciphertext = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Tampered)?;
        let mut blob = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(format!(
            "{PREFIX}{}.{}",
            self.active,
            URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    /// Decrypts a sealed value that was bound to `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let (key_id, blob) = parse(sealed)?;
        let cipher = self
            .keys
            .get(key_id)
            .ok_or_else(|| SealError::UnknownKey(key_id.to_owned()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(blob)
            .map_err(|_| SealError::Malformed)?;
        if blob.len() < NONCE_BYTES {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Tampered)
    }
}

/// Whether a stored value is sealed (rather than a legacy plaintext).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// The key id a sealed value names.
pub fn key_id_of(sealed: &str) -> Option<&str> {
    parse(sealed).ok().map(|(id, _)| id)
}

fn parse(sealed: &str) -> Result<(&str, &str), SealError> {
    let rest = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
    rest.split_once('.').ok_or(SealError::Malformed)
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A new key: an id made of the time and a random suffix, and 32 random bytes in base64.
pub fn generate_key() -> Result<(String, String), SealError> {
    let mut key = [0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|_| SealError::Randomness)?;
    let mut suffix = [0u8; 3];
    getrandom::fill(&mut suffix).map_err(|_| SealError::Randomness)?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!("k{}-{suffix}", chrono::Utc::now().format("%Y%m%d"));
    Ok((id, STANDARD.encode(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(active: &str, ids: &[&str]) -> KeyRing {
        let keys: BTreeMap<_, _> = ids
            .iter()
            .map(|id| {
                let (_, key) = generate_key().expect("key");
                (id.to_string(), key)
            })
            .collect();
        let file = KeyRingFile {
            active: active.into(),
            keys,
            index_key: None,
        };
        KeyRing::from_json(&serde_json::to_string(&file).expect("json")).expect("ring")
    }

    #[test]
    fn sealed_value_opens_in_its_context_only() {
        let ring = ring("k1", &["k1"]);
        let sealed = ring
            .seal("account/1/config.token", b"s3cret")
            .expect("seal");
        assert!(is_sealed(&sealed));
        assert_eq!(key_id_of(&sealed), Some("k1"));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            ring.open("account/1/config.token", &sealed).expect("open"),
            b"s3cret"
        );
        assert_eq!(
            ring.open("account/2/config.token", &sealed),
            Err(SealError::Tampered)
        );
        assert_eq!(
            ring.open("account/1/config.other", &sealed),
            Err(SealError::Tampered)
        );
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let ring = ring("k1", &["k1"]);
        let a = ring.seal("c", b"same").expect("seal");
        let b = ring.seal("c", b"same").expect("seal");
        assert_ne!(a, b);
    }

    #[test]
    fn a_missing_key_is_named() {
        let old = ring("k0", &["k0"]);
        let sealed = old.seal("c", b"x").expect("seal");
        let new = ring("k1", &["k1"]);
        assert_eq!(
            new.open("c", &sealed),
            Err(SealError::UnknownKey("k0".into()))
        );
    }

    #[test]
    fn bad_rings_are_refused_without_echoing_keys() {
        assert!(KeyRing::from_json("{}").is_err());
        let err = KeyRing::from_json(r#"{"active":"k1","keys":{"k1":"c2hvcnQ="}}"#)
            .expect_err("short key");
        assert!(
            err.contains("32 bytes") && !err.contains("c2hvcnQ="),
            "{err}"
        );
        let err = KeyRing::from_json(r#"{"active":"k2","keys":{}}"#).expect_err("no active");
        assert!(err.contains("k2"));
    }
}
