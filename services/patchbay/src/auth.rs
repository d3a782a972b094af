//! Bearer tokens: verifying the JWT of every call into a [`Caller`], and minting
//! development tokens for `patchbay token`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::{Caller, Error, Role};

/// How tokens are checked (and, in development, minted).
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// The HS256 shared secret.
    pub hs256_secret: SecretString,
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
}

/// The claims of a Patchbay token, as the spec names them.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division_id: Option<String>,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Verifies bearer tokens. Built once at start; cheap to share.
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(settings: &JwtSettings) -> Self {
        // Only HS256 is accepted: a token naming any other algorithm, `none` included,
        // fails before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        Self {
            key: DecodingKey::from_secret(settings.hs256_secret.expose_secret().as_bytes()),
            validation,
        }
    }

    /// Turns the value of an `authorization` header into the caller it proves.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, Error> {
        let header = authorization
            .ok_or_else(|| unauthenticated("missing authorization: Bearer <token>"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("authorization must be Bearer <token>"))?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|err| unauthenticated(reason(err.kind())))?;
        let claims = data.claims;
        let workspace_id = claims
            .workspace_id
            .filter(|w| !w.is_empty())
            .ok_or_else(|| unauthenticated("token has no workspace_id claim"))?;
        if claims.sub.is_empty() {
            return Err(unauthenticated("token has an empty sub claim"));
        }
        Ok(Caller {
            subject: claims.sub,
            role: Role::parse(&claims.role),
            workspace_id,
            division_id: claims.division_id.filter(|d| !d.is_empty()),
            request_id: String::new(),
        })
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
    pub workspace_id: String,
    pub division_id: Option<String>,
    pub ttl: Duration,
}

/// Mints HS256 tokens with the configured secret, issuer and audience.
pub fn mint(settings: &JwtSettings, request: &TokenRequest) -> Result<String, Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::Internal("system clock is before 1970".to_owned()))?
        .as_secs();
    let claims = Claims {
        sub: request.subject.clone(),
        role: request.role.clone(),
        workspace_id: Some(request.workspace_id.clone()),
        division_id: request.division_id.clone(),
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        exp: now.saturating_add(request.ttl.as_secs()),
        iat: now,
        nbf: None,
    };
    let key = EncodingKey::from_secret(settings.hs256_secret.expose_secret().as_bytes());
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
            hs256_secret: SecretString::from(secret.to_owned()),
            issuer: "patchbay".into(),
            audience: "patchbay".into(),
            leeway: Duration::from_secs(5),
        }
    }

    fn request(role: &str) -> TokenRequest {
        TokenRequest {
            subject: "dev".into(),
            role: role.into(),
            workspace_id: "acme".into(),
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
            .expect("valid token");
        assert_eq!(caller.role, Role::Admin);
        assert_eq!(caller.workspace_id, "acme");
        assert_eq!(caller.division_id.as_deref(), Some("d1"));
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
