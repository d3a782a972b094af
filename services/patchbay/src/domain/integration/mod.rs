//! The provider integration record (seeds 000/001/003/004) and its rules: identifiers,
//! conditions, the primary scope here; what each write does in `rules`.

mod rules;

pub use rules::{
    Validated, changed_fields, create, delete, masked, patched, set_primary, update, validate_new,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::channel::Channel;
use super::config_document::Document;
use super::error::{Error, FieldViolation};
use super::ids::random_token;

#[derive(Clone, PartialEq)]
pub struct Integration {
    pub id: Uuid,
    pub workspace_id: String,
    pub provider: String,
    pub name: String,
    pub identifier: String,
    pub channel: Option<Channel>,
    pub active: bool,
    pub primary: bool,
    pub conditions: Vec<Condition>,
    pub account_id: Option<Uuid>,
    pub config: Document,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub deleted_by: Option<String>,
}

/// Config is left out: it holds secrets.
impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("identifier", &self.identifier)
            .field("active", &self.active)
            .field("primary", &self.primary)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl Integration {
    /// Within this scope at most one live integration is primary: its channel, or its
    /// provider when the provider has no channel.
    pub fn primary_scope(&self) -> String {
        primary_scope(self.channel, &self.provider)
    }
}

pub fn primary_scope(channel: Option<Channel>, provider: &str) -> String {
    match channel {
        Some(channel) => channel.as_str().to_owned(),
        None => format!("provider:{provider}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOperator {
    Equal,
    NotEqual,
    In,
    NotIn,
    Contains,
    StartsWith,
    Exists,
}

/// One rule deciding whether an integration applies to a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    pub operator: ConditionOperator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

pub const MAX_CONDITIONS: usize = 50;
/// A condition's value, as JSON, is at most this many bytes.
pub const MAX_CONDITION_VALUE_BYTES: usize = 4 * 1024;
/// An IN or NOT_IN list holds at most this many values.
pub const MAX_CONDITION_LIST: usize = 100;

/// Checks one condition: a field name, and a value that fits the operator. Conditions
/// are checked where they arrive (`grpc::integration_convert`), each by its index.
pub fn validate_condition(condition: &Condition, path: &str) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if condition.field.trim().is_empty()
        || condition.field.len() > 128
        || condition.field.chars().any(char::is_control)
    {
        violations.push(FieldViolation::new(
            format!("{path}.field"),
            "must be 1 to 128 characters, none of them control characters",
        ));
    }
    let value_problem = match (condition.operator, &condition.value) {
        (ConditionOperator::Exists, None) => None,
        (ConditionOperator::Exists, Some(_)) => Some("takes no value with EXISTS"),
        (ConditionOperator::In | ConditionOperator::NotIn, Some(Value::Array(items)))
            if !items.is_empty() =>
        {
            None
        }
        (ConditionOperator::In | ConditionOperator::NotIn, _) => {
            Some("must be a non-empty list with IN and NOT_IN")
        }
        (ConditionOperator::Contains | ConditionOperator::StartsWith, Some(Value::String(_))) => {
            None
        }
        (ConditionOperator::Contains | ConditionOperator::StartsWith, _) => {
            Some("must be a string with CONTAINS and STARTS_WITH")
        }
        (ConditionOperator::Equal | ConditionOperator::NotEqual, Some(value))
            if !value.is_null() && !value.is_array() && !value.is_object() =>
        {
            None
        }
        (ConditionOperator::Equal | ConditionOperator::NotEqual, _) => {
            Some("must be a string, number or boolean with EQUAL and NOT_EQUAL")
        }
    };
    if let Some(problem) = value_problem {
        violations.push(FieldViolation::new(format!("{path}.value"), problem));
    } else if let Some(value) = &condition.value {
        let bytes = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
        fn has_nul(value: &Value) -> bool {
            match value {
                Value::String(text) => text.contains('\0'),
                Value::Array(items) => items.iter().any(has_nul),
                Value::Object(object) => object
                    .iter()
                    .any(|(key, item)| key.contains('\0') || has_nul(item)),
                _ => false,
            }
        }
        let has_nul = has_nul(value);
        if has_nul {
            violations.push(FieldViolation::new(
                format!("{path}.value"),
                "must not contain NUL characters",
            ));
        }
        if matches!(value, Value::Array(items) if items.len() > MAX_CONDITION_LIST) {
            violations.push(FieldViolation::new(
                format!("{path}.value"),
                format!("holds at most {MAX_CONDITION_LIST} values"),
            ));
        } else if bytes > MAX_CONDITION_VALUE_BYTES {
            violations.push(FieldViolation::new(
                format!("{path}.value"),
                format!("is at most {MAX_CONDITION_VALUE_BYTES} bytes as JSON"),
            ));
        }
    }
    violations
}

pub const MAX_NAME_LEN: usize = 200;
pub const MAX_IDENTIFIER_LEN: usize = 100;

pub fn validate_name(name: &str) -> Result<(), FieldViolation> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(FieldViolation::new(
            "name",
            format!("must be 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Identifiers are used in API calls and references: lowercase letters, digits, `-`, `_`.
pub fn validate_identifier(identifier: &str) -> Result<(), FieldViolation> {
    if identifier.is_empty()
        || identifier.len() > MAX_IDENTIFIER_LEN
        || !identifier
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(FieldViolation::new(
            "identifier",
            format!("must be 1 to {MAX_IDENTIFIER_LEN} lowercase letters, digits, - or _"),
        ));
    }
    Ok(())
}

/// An identifier from a name: a lowercase slug plus a short random suffix, so that two
/// integrations named alike still get distinct identifiers.
pub fn derive_identifier(name: &str) -> Result<String, Error> {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(60).collect();
    let suffix: String = random_token(6)?
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(char::to_lowercase)
        .take(6)
        .collect();
    Ok(if slug.is_empty() {
        format!("integration-{suffix}")
    } else {
        format!("{slug}-{suffix}")
    })
}

/// The filters of a ListIntegrations call.
#[derive(Debug, Default)]
pub struct IntegrationQuery {
    pub provider: Option<String>,
    pub channel: Option<Channel>,
    pub active: Option<bool>,
    pub include_deleted: bool,
}

/// A create request, as domain values.
pub struct NewIntegration {
    pub provider: String,
    pub name: String,
    pub identifier: String,
    pub channel: Option<Channel>,
    pub active: Option<bool>,
    pub primary: bool,
    pub conditions: Vec<Condition>,
    pub account_id: Option<Uuid>,
    pub config: Document,
    /// Try the credentials against the provider before writing.
    pub check: bool,
}

/// An update request: every `None` leaves the field as it is.
#[derive(Clone, Default)]
pub struct IntegrationPatch {
    pub name: Option<String>,
    pub identifier: Option<String>,
    pub active: Option<bool>,
    pub primary: Option<bool>,
    pub conditions: Option<Vec<Condition>>,
    /// `Some(None)` detaches the integration from its account.
    pub account_id: Option<Option<Uuid>>,
    pub config: Option<Document>,
    pub expected_revision: Option<i64>,
    /// Try the resulting credentials against the provider before writing.
    pub check: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn identifiers_derive_from_names_with_a_suffix() {
        let id = derive_identifier("Whatsapp Twilio — Sales!").expect("id");
        assert!(id.starts_with("whatsapp-twilio-sales-"), "{id}");
        assert!(validate_identifier(&id).is_ok());
        assert_ne!(
            id,
            derive_identifier("Whatsapp Twilio — Sales!").expect("id")
        );
    }

    #[test]
    fn conditions_check_their_values_against_the_operator() {
        let ok = Condition {
            field: "tag".into(),
            operator: ConditionOperator::In,
            value: Some(json!(["a"])),
        };
        assert!(validate_condition(&ok, "c").is_empty());
        let bad = Condition {
            field: "".into(),
            operator: ConditionOperator::In,
            value: Some(json!("a")),
        };
        let fields: Vec<_> = validate_condition(&bad, "c")
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["c.field", "c.value"]);
        let exists = Condition {
            field: "x".into(),
            operator: ConditionOperator::Exists,
            value: None,
        };
        assert!(validate_condition(&exists, "c").is_empty());
    }

    #[test]
    fn condition_values_are_bounded() {
        let big_list = Condition {
            field: "tag".into(),
            operator: ConditionOperator::In,
            value: Some(Value::Array(vec![Value::from(1); MAX_CONDITION_LIST + 1])),
        };
        assert_eq!(validate_condition(&big_list, "conditions[0]").len(), 1);
        let long_text = Condition {
            field: "name".into(),
            operator: ConditionOperator::Contains,
            value: Some(Value::String("x".repeat(MAX_CONDITION_VALUE_BYTES))),
        };
        assert_eq!(validate_condition(&long_text, "conditions[1]").len(), 1);
        let fine = Condition {
            field: "name".into(),
            operator: ConditionOperator::Contains,
            value: Some(Value::String("vip".into())),
        };
        assert!(validate_condition(&fine, "conditions[2]").is_empty());
    }
}
