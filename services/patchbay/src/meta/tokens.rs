//! Meta's view of a token: `GET /debug_token?input_token=…&access_token={app id}|{app
//! secret}`. Both tokens travel in the query string (Meta takes them nowhere else
//! here), so this call is never logged with its URL and its errors carry no URL.

use chrono::{DateTime, TimeZone, Utc};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::graph::{Call, GraphClient, Host};
use super::{MetaApp, MetaError};

/// What debug_token says of a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub is_valid: bool,
    /// `None`: it never expires (Meta says 0), or Meta did not say.
    pub expires_at: Option<DateTime<Utc>>,
    pub data_access_expires_at: Option<DateTime<Utc>>,
    /// `None` when Meta did not say (then nothing is missing).
    pub scopes: Option<Vec<String>>,
    /// Meta's reason when it is not valid (`data.error.message`), cut short.
    pub reason: Option<String>,
}

impl GraphClient {
    /// Inspects `token` as the Meta app `app`.
    pub async fn debug_token(&self, app: &MetaApp, token: &str) -> Result<TokenInfo, MetaError> {
        let app_token = format!("{}|{}", app.id, app.secret.expose_secret());
        let call = Call::get(Host::Graph, "debug_token")
            .query("input_token", token)
            .query("access_token", app_token);
        token_info(&self.send(call).await?)
    }
}

/// Reads debug_token's answer: `{"data": {"is_valid", "expires_at", "data_access_expires_at",
/// "scopes", "error": {"message"}}}`.
pub fn token_info(answer: &Value) -> Result<TokenInfo, MetaError> {
    let malformed = || MetaError::Malformed("debug_token answered without data.is_valid".into());
    let data = answer
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(malformed)?;
    let is_valid = data
        .get("is_valid")
        .and_then(Value::as_bool)
        .ok_or_else(malformed)?;
    let time = |key: &str| {
        data.get(key)
            .and_then(Value::as_i64)
            .filter(|seconds| *seconds > 0)
            .and_then(|seconds| Utc.timestamp_opt(seconds, 0).single())
    };
    let scopes = data.get("scopes").and_then(Value::as_array).map(|scopes| {
        scopes
            .iter()
            .filter_map(Value::as_str)
            .take(100)
            .map(|scope| scope.chars().take(100).collect())
            .collect()
    });
    let reason = data
        .get("error")
        .and_then(|error| error.get("message"))
        .and_then(Value::as_str)
        .map(|message| message.chars().take(300).collect());
    Ok(TokenInfo {
        is_valid,
        expires_at: time("expires_at"),
        data_access_expires_at: time("data_access_expires_at"),
        scopes,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_answer_is_read_for_validity_expiries_and_scopes() {
        let info = token_info(&json!({"data": {"app_id": "1", "is_valid": true,
            "expires_at": 1_900_000_000, "data_access_expires_at": 1_950_000_000,
            "scopes": ["pages_messaging", "pages_show_list"]}}))
        .expect("read");
        assert!(info.is_valid);
        assert_eq!(info.expires_at.map(|t| t.timestamp()), Some(1_900_000_000));
        assert_eq!(
            info.scopes.as_deref(),
            Some(&["pages_messaging".to_owned(), "pages_show_list".to_owned()][..])
        );
        let never =
            token_info(&json!({"data": {"is_valid": true, "expires_at": 0}})).expect("read");
        assert_eq!(never.expires_at, None, "0 means never");
        let dead = token_info(&json!({"data": {"is_valid": false,
            "error": {"code": 190, "message": "The session has been invalidated"}}}))
        .expect("read");
        assert!(!dead.is_valid);
        assert_eq!(
            dead.reason.as_deref(),
            Some("The session has been invalidated")
        );
        assert!(token_info(&json!({"data": {}})).is_err());
        assert!(token_info(&json!([1, 2])).is_err());
        let odd = token_info(&json!({"data": {"is_valid": true, "expires_at": i64::MAX}}));
        assert!(
            odd.is_ok(),
            "a date beyond what can be held is no date, not a panic"
        );
    }
}
