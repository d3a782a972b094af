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
    /// The page a page token acts for (`profile_id`: "for impersonated access tokens,
    /// the ID of the page this token contains").
    pub profile_id: Option<String>,
    /// `granular_scopes`: each scope and the ids it is limited to; `None` where Meta
    /// shows no targets ("if permission applies to all, targets will not be shown").
    pub granular_scopes: Vec<GranularScope>,
}

/// One of debug_token's `granular_scopes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GranularScope {
    pub scope: String,
    pub target_ids: Option<Vec<String>>,
}

impl TokenInfo {
    /// The ids `scope` is limited to, when Meta names them.
    pub fn targets(&self, scope: &str) -> Option<&[String]> {
        self.granular_scopes
            .iter()
            .find(|granted| granted.scope == scope)?
            .target_ids
            .as_deref()
    }
}

/// Most granular scopes, and target ids per scope, read from one answer.
const MAX_SCOPES: usize = 100;
const MAX_TARGETS: usize = 1000;

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
    // Ids as Meta writes them: strings (a number is read too); anything else is none.
    let id = |value: &Value| match value {
        Value::String(text) if text.len() <= 64 => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    let granular_scopes = data
        .get("granular_scopes")
        .and_then(Value::as_array)
        .map(|granted| {
            granted
                .iter()
                .take(MAX_SCOPES)
                .filter_map(|granted| {
                    Some(GranularScope {
                        scope: granted.get("scope")?.as_str()?.chars().take(100).collect(),
                        target_ids: granted.get("target_ids").and_then(Value::as_array).map(
                            |targets| targets.iter().take(MAX_TARGETS).filter_map(id).collect(),
                        ),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(TokenInfo {
        is_valid,
        expires_at: time("expires_at"),
        data_access_expires_at: time("data_access_expires_at"),
        scopes,
        reason,
        profile_id: data.get("profile_id").and_then(id),
        granular_scopes,
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

    /// A page token's answer: a real one recorded in bk-rs/facebook-apis-rs,
    /// facebook-access-token-api/tests/response_body_json_files/
    /// debug_token__page_access_token.json (8be773f); a system user's, from Meta's
    /// WhatsApp "Permissions" page: scopes without targets.
    #[test]
    fn profile_id_and_granular_scopes_are_read_and_a_scope_without_targets_names_none() {
        let page = token_info(&json!({"data":{"app_id":"257422819769992","type":"PAGE",
            "application":"oauth2-rs-f-b-web-app-demo","data_access_expires_at":1676858291,
            "expires_at":1669086000,"is_valid":true,"profile_id":"103455271248220",
            "scopes":["pages_show_list","public_profile"],
            "granular_scopes":[{"scope":"pages_show_list","target_ids":["103455271248220"]}],
            "user_id":"123"}}))
        .expect("read");
        assert_eq!(page.profile_id.as_deref(), Some("103455271248220"));
        assert_eq!(
            page.targets("pages_show_list"),
            Some(&["103455271248220".to_owned()][..])
        );
        assert_eq!(page.targets("pages_messaging"), None);
        let system_user = token_info(&json!({"data":{"app_id":"634974688087057",
            "type":"SYSTEM_USER","application":"Lucky Shrub","data_access_expires_at":0,
            "expires_at":0,"is_valid":true,"issued_at":1712099387,
            "scopes":["whatsapp_business_management","whatsapp_business_messaging"],
            "granular_scopes":[{"scope":"whatsapp_business_management"},
                {"scope":"whatsapp_business_messaging"}],"user_id":"104169029247128"}}))
        .expect("read");
        assert_eq!(system_user.profile_id, None);
        assert_eq!(system_user.targets("whatsapp_business_messaging"), None);
        // Odd shapes name nothing, and never fail the answer.
        let odd = token_info(&json!({"data":{"is_valid":true,"profile_id":{"x":1},
            "granular_scopes":[{"scope":7},{"scope":"pages_messaging","target_ids":[{"a":1},42]}]}}))
        .expect("read");
        assert_eq!(odd.profile_id, None);
        assert_eq!(odd.targets("pages_messaging"), Some(&["42".to_owned()][..]));
    }
}
