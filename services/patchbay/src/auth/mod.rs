//! Bearer tokens: verifying the JWT of every call into a [`Caller`], and minting
//! development tokens for `patchbay token`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::caller::Scope;
use crate::domain::{Caller, Error, Role};
use crate::views::verified_tokens::VerifiedTokens;

/// Longest accepted `workspace_id` claim: it keys records and change notifications.
const MAX_WORKSPACE_ID_LEN: usize = 256;

/// How tokens are checked (and, in development, minted).
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// The HS256 shared secret, if HS256 tokens are accepted (and for `patchbay token`).
    pub hs256_secret: Option<SecretString>,
    /// RS256 / ES256 public keys, from PEM files or a JWKS file.
    pub public_keys: Vec<PublicKey>,
    /// The algorithms a token may name; any other, `none` included, is refused.
    pub algorithms: Vec<Algorithm>,
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// When set, tokens must carry `iat` and live at most this long (`exp - iat`).
    pub max_lifetime: Option<Duration>,
}

/// A public verification key and the algorithm it verifies.
#[derive(Clone)]
pub struct PublicKey {
    /// The `kid` a token names to pick this key; a key without one serves tokens without
    /// a `kid` when it is the only key of its algorithm.
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// An RSA or EC public key in PEM, its algorithm told by its type (RS256 or ES256).
    pub fn from_pem(kid: Option<String>, pem: &[u8]) -> Result<PublicKey, String> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(PublicKey {
                kid,
                algorithm: Algorithm::RS256,
                key,
            });
        }
        if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            return Ok(PublicKey {
                kid,
                algorithm: Algorithm::ES256,
                key,
            });
        }
        Err("is not an RSA or EC public key in PEM".to_owned())
    }

    /// Every RS256/ES256 key of a JWKS document.
    pub fn from_jwks(json: &str) -> Result<Vec<PublicKey>, String> {
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(json).map_err(|err| format!("is not a JWKS document: {err}"))?;
        set.keys
            .iter()
            .map(|jwk| {
                let kid = jwk.common.key_id.clone();
                let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                    (Some(alg), _) => alg
                        .to_string()
                        .parse::<Algorithm>()
                        .map_err(|_| format!("key {kid:?} has an unsupported alg {alg}"))?,
                    (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
                    (None, AlgorithmParameters::EllipticCurve(_)) => Algorithm::ES256,
                    (None, _) => return Err(format!("key {kid:?} is neither RSA nor EC")),
                };
                if !matches!(algorithm, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(format!(
                        "key {kid:?} is {algorithm:?}; only RS256 and ES256 keys are used"
                    ));
                }
                let key =
                    DecodingKey::from_jwk(jwk).map_err(|err| format!("key {kid:?}: {err}"))?;
                Ok(PublicKey {
                    kid,
                    algorithm,
                    key,
                })
            })
            .collect()
    }
}

/// Claims of a Patchbay token, as the spec names them.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division_id: Option<String>,
    pub iss: String,
    /// A string or an array of strings, as RFC 7519 allows (the validation checks it).
    pub aud: Audience,
    pub exp: u64,
    /// Optional, as RFC 7519 has it; required with a maximum lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// The `aud` claim: one audience, or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Verifies bearer tokens. Built once at start; cheap to share.
/// A caller a bearer token proves, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub caller: Caller,
    /// When the token stops being valid (its `exp` plus the leeway), in seconds since
    /// the epoch.
    pub valid_until: u64,
}

pub struct Authenticator {
    hmac: Option<DecodingKey>,
    public_keys: Vec<PublicKey>,
    /// One validation per allowed algorithm, built once: tokens are checked on every call.
    validations: Vec<(Algorithm, Validation)>,
    max_lifetime: Option<u64>,
    /// Clock skew tolerated on `exp`, in seconds.
    leeway: u64,
    /// Tokens verified before, until they expire.
    verified: VerifiedTokens<Authenticated>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field(
                "algorithms",
                &self.validations.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            )
            .field("public_keys", &self.public_keys)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Verifies every token (no verified-token cache).
    pub fn new(settings: &JwtSettings) -> Self {
        Self::with_token_cache(settings, 0)
    }

    /// Remembers up to `capacity` verified tokens until they expire.
    pub fn with_token_cache(settings: &JwtSettings, capacity: usize) -> Self {
        let validations = settings
            .algorithms
            .iter()
            .map(|&algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&[settings.issuer.as_str()]);
                validation.set_audience(&[settings.audience.as_str()]);
                validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
                validation.validate_nbf = true;
                validation.leeway = settings.leeway.as_secs();
                (algorithm, validation)
            })
            .collect();
        Self {
            hmac: settings
                .hs256_secret
                .as_ref()
                .map(|secret| DecodingKey::from_secret(secret.expose_secret().as_bytes())),
            public_keys: settings.public_keys.clone(),
            validations,
            max_lifetime: settings.max_lifetime.map(|d| d.as_secs()),
            leeway: settings.leeway.as_secs(),
            verified: VerifiedTokens::new(capacity),
        }
    }

    /// Turns the value of an `authorization` header into the caller it proves.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Authenticated, Error> {
        let header = authorization
            .ok_or_else(|| unauthenticated("missing authorization: Bearer <token>"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("authorization must be Bearer <token>"))?;
        if let Some(authenticated) = self.verified.get(token) {
            crate::metrics::hot::token_cache_hit();
            return Ok(authenticated);
        }
        // `alg: none` and unknown algorithms do not even parse as a header.
        let token_header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("token is malformed or names an unknown algorithm"))?;
        let algorithm = token_header.alg;
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == algorithm) else {
            return Err(unauthenticated("token algorithm is not allowed"));
        };
        let key = self.key_for(algorithm, token_header.kid.as_deref())?;
        let data = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|err| unauthenticated(reason(err.kind())))?;
        let claims = data.claims;
        let role = Role::parse(&claims.role);
        // The gateway acts for the whole installation: a workspace (or division) on its
        // token is a minting mistake, never a scope to trust.
        let workspace_id = if role == Role::Gateway {
            if claims.workspace_id.is_some() || claims.division_id.is_some() {
                return Err(unauthenticated(
                    "a gateway token carries no workspace_id or division_id claim",
                ));
            }
            String::new()
        } else {
            claims
                .workspace_id
                .filter(|w| !w.is_empty())
                .ok_or_else(|| unauthenticated("token has no workspace_id claim"))?
        };
        if workspace_id.len() > MAX_WORKSPACE_ID_LEN {
            return Err(unauthenticated("token's workspace_id claim is too long"));
        }
        if claims.sub.is_empty() {
            return Err(unauthenticated("token has an empty sub claim"));
        }
        // These are written to audit rows and keys: a NUL (which PostgreSQL refuses)
        // or another control character is a bad token, not an internal error later.
        for (name, value) in [
            ("sub", claims.sub.as_str()),
            ("workspace_id", workspace_id.as_str()),
            ("role", claims.role.as_str()),
        ] {
            if value.chars().any(char::is_control) || value.len() > 256 {
                return Err(unauthenticated(match name {
                    "sub" => "token's sub claim holds control characters or is too long",
                    "workspace_id" => {
                        "token's workspace_id claim holds control characters or is too long"
                    }
                    _ => "token's role claim holds control characters or is too long",
                }));
            }
        }
        // A division claim restricts the caller: an empty or malformed one is a token
        // mistake, never "no restriction".
        if let Some(division) = &claims.division_id
            && (division.is_empty()
                || crate::domain::account::validate_division_id(division, "division_id").is_err())
        {
            return Err(unauthenticated(
                "token's division_id claim is empty or not a division id",
            ));
        }
        if let Some(max) = self.max_lifetime {
            let iat = claims.iat.ok_or_else(|| {
                unauthenticated("token has no iat claim, and tokens must say when they were issued")
            })?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(u64::MAX);
            // Issued in the future, or after it expires: the lifetime would not hold.
            if iat > now.saturating_add(self.leeway) || iat > claims.exp {
                return Err(unauthenticated(
                    "token's iat claim is in the future or after exp",
                ));
            }
            if claims.exp.saturating_sub(iat) > max {
                return Err(unauthenticated(
                    "token lives longer than the longest lifetime allowed",
                ));
            }
        }
        let scope = if role == Role::Gateway {
            Scope::Gateway
        } else {
            Scope::Workspace {
                id: workspace_id,
                division: claims.division_id,
            }
        };
        let caller = Caller {
            subject: claims.sub,
            role,
            scope,
            request_id: String::new(),
            idempotency: None,
            place: None,
        };
        let authenticated = Authenticated {
            caller,
            valid_until: claims.exp.saturating_add(self.leeway),
        };
        self.verified.insert(token, &authenticated, claims.exp);
        Ok(authenticated)
    }

    /// How many verified tokens are remembered.
    pub fn remembered_tokens(&self) -> usize {
        self.verified.remembered()
    }

    /// The key that verifies a token of `algorithm`: the shared secret for HS256 (so an
    /// HS256 token "signed" with a public key never verifies), else the public key its
    /// `kid` names, or the only key of that algorithm when it names none.
    fn key_for(&self, algorithm: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, Error> {
        if algorithm == Algorithm::HS256 {
            return self
                .hmac
                .as_ref()
                .ok_or_else(|| unauthenticated("token algorithm is not allowed"));
        }
        let mut candidates = self.public_keys.iter().filter(|k| k.algorithm == algorithm);
        match kid {
            Some(kid) => candidates
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| &k.key)
                .ok_or_else(|| unauthenticated("token names an unknown key id")),
            None => match (candidates.next(), candidates.next()) {
                (Some(only), None) => Ok(&only.key),
                (None, _) => Err(unauthenticated("token algorithm is not allowed")),
                (Some(_), Some(_)) => Err(unauthenticated("token must name its key id (kid)")),
            },
        }
    }
}

fn unauthenticated(message: &str) -> Error {
    Error::Unauthenticated(message.to_owned())
}

/// Why a token was refused, without echoing any of it.
fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid",
        ErrorKind::InvalidIssuer => "token has the wrong issuer",
        ErrorKind::InvalidAudience => "token has the wrong audience",
        ErrorKind::InvalidSignature => "token signature is invalid",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "token algorithm is not allowed"
        }
        ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
        _ => "token is malformed",
    }
}

/// What a development token says.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub subject: String,
    pub role: String,
    /// `None` for a gateway token.
    pub workspace_id: Option<String>,
    pub division_id: Option<String>,
    pub ttl: Duration,
}

/// Mints HS256 tokens with the configured secret, issuer and audience.
pub fn mint(settings: &JwtSettings, request: &TokenRequest) -> Result<String, Error> {
    let secret = settings.hs256_secret.as_ref().ok_or_else(|| {
        Error::FailedPrecondition("no HS256 secret is configured to sign with".to_owned())
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::Internal("system clock is before 1970".to_owned()))?
        .as_secs();
    let claims = Claims {
        sub: request.subject.clone(),
        role: request.role.clone(),
        workspace_id: request.workspace_id.clone(),
        division_id: request.division_id.clone(),
        iss: settings.issuer.clone(),
        aud: Audience::One(settings.audience.clone()),
        exp: now.saturating_add(request.ttl.as_secs()),
        iat: Some(now),
        nbf: None,
    };
    let key = EncodingKey::from_secret(secret.expose_secret().as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|err| Error::Internal(format!("cannot sign token: {err}")))
}

/// Parses `30s`, `15m`, `1h`, `7d` (or plain seconds).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 15m, 1h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} has an unknown unit; use s, m, h or d")),
    };
    if value == 0 {
        return Err("a token must live longer than 0s".to_owned());
    }
    value
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secret: &str) -> JwtSettings {
        JwtSettings {
            hs256_secret: Some(SecretString::from(secret.to_owned())),
            public_keys: Vec::new(),
            algorithms: vec![Algorithm::HS256],
            issuer: "patchbay".into(),
            audience: "patchbay".into(),
            leeway: Duration::from_secs(5),
            max_lifetime: None,
        }
    }

    fn request(role: &str) -> TokenRequest {
        TokenRequest {
            subject: "dev".into(),
            role: role.into(),
            workspace_id: Some("acme".into()),
            division_id: Some("d1".into()),
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn minted_token_authenticates_as_its_claims() {
        let settings = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        let token = mint(&settings, &request("admin")).expect("mint");
        let caller = Authenticator::new(&settings)
            .authenticate(Some(&format!("Bearer {token}")))
            .expect("valid token")
            .caller;
        assert_eq!(caller.role, Role::Admin);
        assert_eq!(caller.workspace_id(), "acme");
        assert_eq!(caller.division_id(), Some("d1"));
    }

    #[test]
    fn a_gateway_token_has_no_workspace_and_one_with_a_workspace_is_refused() {
        let settings = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        let authenticator = Authenticator::new(&settings);
        let bare = TokenRequest {
            workspace_id: None,
            division_id: None,
            ..request("gateway")
        };
        let token = mint(&settings, &bare).expect("mint");
        let caller = authenticator
            .authenticate(Some(&format!("Bearer {token}")))
            .expect("gateway token")
            .caller;
        assert_eq!(caller.role, Role::Gateway);
        assert_eq!(caller.workspace_id(), "");
        for request in [
            request("gateway"),
            TokenRequest {
                division_id: None,
                ..request("gateway")
            },
            TokenRequest {
                workspace_id: None,
                ..request("gateway")
            },
        ] {
            let token = mint(&settings, &request).expect("mint");
            let err = authenticator
                .authenticate(Some(&format!("Bearer {token}")))
                .expect_err("a gateway with a workspace or division");
            assert!(matches!(err, Error::Unauthenticated(m) if m.contains("gateway")));
        }
    }

    #[test]
    fn token_signed_with_another_secret_is_refused() {
        let token = mint(
            &settings("one-secret-one-secret-one-secret"),
            &request("admin"),
        )
        .expect("mint");
        let err = Authenticator::new(&settings("two-secret-two-secret-two-secret"))
            .authenticate(Some(&format!("Bearer {token}")))
            .expect_err("wrong secret");
        assert!(matches!(err, Error::Unauthenticated(m) if m.contains("signature")));
    }

    #[test]
    fn a_verified_token_is_remembered_and_a_refused_one_is_not() {
        let settings = settings("s3cret-s3cret-s3cret-s3cret-s3cret");
        let authenticator = Authenticator::with_token_cache(&settings, 2);
        let token = mint(&settings, &request("service")).expect("mint");
        let header = format!("Bearer {token}");
        let first = authenticator.authenticate(Some(&header)).expect("valid");
        assert_eq!(authenticator.remembered_tokens(), 1);
        let second = authenticator.authenticate(Some(&header)).expect("cached");
        assert_eq!(first, second, "the remembered caller is the verified one");
        assert_eq!(authenticator.remembered_tokens(), 1);

        // A token that fails verification is never remembered, however often it comes.
        let forged = mint(
            &self::settings("another-secret-another-secret"),
            &request("admin"),
        )
        .expect("mint");
        for _ in 0..3 {
            assert!(
                authenticator
                    .authenticate(Some(&format!("Bearer {forged}")))
                    .is_err()
            );
        }
        assert_eq!(authenticator.remembered_tokens(), 1);

        // The cache stays within its capacity.
        for role in ["admin", "supervisor", "service", "admin"] {
            let token = mint(
                &settings,
                &TokenRequest {
                    subject: format!("{role}-{}", uuid::Uuid::new_v4()),
                    ..request(role)
                },
            )
            .expect("mint");
            authenticator
                .authenticate(Some(&format!("Bearer {token}")))
                .expect("valid");
            assert!(authenticator.remembered_tokens() <= 2);
        }
    }

    #[test]
    fn a_token_past_its_expiry_is_not_served_from_the_cache() {
        let cache = VerifiedTokens::new(10);
        let caller = Authenticated {
            caller: crate::domain::testing::caller(Role::Service, None),
            valid_until: u64::MAX,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        cache.insert("expired", &caller, now - 1);
        assert!(cache.get("expired").is_none());
        cache.insert("expiring", &caller, now + 60);
        assert_eq!(cache.get("expiring"), Some(caller));
    }

    #[test]
    fn ttl_parses_units() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("h").is_err());
    }
}

#[cfg(test)]
mod hostile_tokens {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    use super::*;

    fn authenticator() -> Authenticator {
        Authenticator::new(&JwtSettings {
            hs256_secret: Some(SecretString::from(
                "hostile-secret-hostile-secret-0123".to_owned(),
            )),
            public_keys: Vec::new(),
            algorithms: vec![Algorithm::HS256, Algorithm::RS256],
            issuer: "patchbay".into(),
            audience: "patchbay".into(),
            leeway: Duration::from_secs(5),
            max_lifetime: None,
        })
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,40}".prop_map(|s| URL_SAFE_NO_PAD.encode(s)),
            Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)),
            Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"x"}"#)),
            Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#)),
            Just(URL_SAFE_NO_PAD.encode(r#"{"sub":"a","role":"admin","workspace_id":"w","exp":99999999999,"iss":"patchbay","aud":"patchbay"}"#)),
            "[A-Za-z0-9_-]{0,60}",
        ]
    }

    proptest! {
        #[test]
        fn any_header_is_refused_without_a_panic(header in ".{0,300}") {
            let result = authenticator().authenticate(Some(&header));
            prop_assert!(matches!(result, Err(Error::Unauthenticated(_))));
        }

        #[test]
        fn any_forged_token_is_refused(a in segment(), b in segment(), c in segment()) {
            let header = format!("Bearer {a}.{b}.{c}");
            let result = authenticator().authenticate(Some(&header));
            prop_assert!(matches!(result, Err(Error::Unauthenticated(_))));
        }
    }
}
