//! Property tests: merging any patch into a valid provider config and validating the
//! result never panics, ends in a config the schema accepts or in violations, and never
//! loses or leaks a stored secret. They run against the real catalog definition.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::config_document::{Document, SecretRule, is_masked, mask_with, merge_patch_with};
use super::provider::{Completeness, FieldSpec, Provider};

const SECRET: &str = "cw-stored-secret-token";

fn chatwoot() -> Provider {
    let catalog: Vec<Value> =
        serde_json::from_str(include_str!("../../../../migrations/src/providers.json"))
            .unwrap_or_default();
    let entry = catalog
        .into_iter()
        .find(|p| p["slug"] == "chatwoot")
        .unwrap_or_default();
    let fields: Vec<FieldSpec> =
        serde_json::from_value(entry["fields"].clone()).unwrap_or_default();
    Provider::new(
        "chatwoot".into(),
        "Chatwoot".into(),
        String::new(),
        "support".into(),
        None,
        fields,
    )
}

fn stored() -> Document {
    json!({
        "accountId": 7,
        "enabled": true,
        "chatwootURL": "https://chat.example.com",
        "chatwootAccessToken": SECRET,
        "integrationOptions": {"enabledGroup": false, "displayAttendant": true, "startConversationAs": "open"}
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..100_000).prop_map(|n| json!(n)),
        Just(json!(1.5)),
        "[a-z :/.]{0,12}".prop_map(Value::String),
        Just(json!("https://other.example.com/x")),
        Just(json!("********")),
        Just(json!("********oken")),
        Just(json!("pending")),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("accountId".to_owned()),
        Just("enabled".to_owned()),
        Just("chatwootURL".to_owned()),
        Just("chatwootAccessToken".to_owned()),
        Just("n8nWebhook".to_owned()),
        Just("inbox".to_owned()),
        Just("integrationOptions".to_owned()),
        Just("enabledGroup".to_owned()),
        Just("startConversationAs".to_owned()),
        "[a-z]{1,6}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::btree_map(key(), inner.clone(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            prop::collection::vec(inner, 0..3).prop_map(Value::Array),
        ]
    })
}

fn patch() -> impl Strategy<Value = Document> {
    prop::collection::btree_map(key(), value(), 0..6).prop_map(|m| m.into_iter().collect())
}

proptest! {
    #[test]
    fn merging_then_validating_never_loses_or_leaks_a_secret(patch in patch()) {
        let provider = chatwoot();
        let rule = SecretRule::Schema(provider.secret_paths());
        let stored = stored();
        match merge_patch_with(&stored, &patch, "config", rule) {
            Err(violations) => prop_assert!(!violations.is_empty()),
            Ok(merged) => {
                let kept = merged.get("chatwootAccessToken");
                match patch.get("chatwootAccessToken") {
                    None => prop_assert_eq!(kept, Some(&json!(SECRET))),
                    Some(sent) if is_masked(sent) => prop_assert_eq!(kept, Some(&json!(SECRET))),
                    Some(Value::Null) => prop_assert_eq!(kept, None),
                    // RFC 7396: an object sent over a scalar merges into `{}`, nulls dropped.
                    Some(Value::Object(_)) => prop_assert!(matches!(kept, Some(Value::Object(_)))),
                    Some(sent) => prop_assert_eq!(kept, Some(sent)),
                }
                let violations = provider.validate(&merged, Completeness::Full);
                if violations.is_empty() {
                    // Accepted: every key is a schema field and no secret shows masked.
                    for key in merged.keys() {
                        prop_assert!(provider.fields.iter().any(|f| &f.name == key), "unknown {key} accepted");
                    }
                }
                let shown = Value::Object(mask_with(&merged, "config", rule)).to_string();
                prop_assert!(!shown.contains(SECRET), "the secret leaks through the mask");
            }
        }
    }

    #[test]
    fn echoing_the_masked_config_keeps_everything(edit in leaf()) {
        let provider = chatwoot();
        let rule = SecretRule::Schema(provider.secret_paths());
        let stored = stored();
        let mut echoed = mask_with(&stored, "config", rule);
        echoed.insert("inbox".to_owned(), edit.clone());
        let merged = merge_patch_with(&stored, &echoed, "config", rule);
        prop_assert!(merged.is_ok());
        let merged = merged.unwrap_or_default();
        prop_assert_eq!(merged.get("chatwootAccessToken"), Some(&json!(SECRET)));
        prop_assert_eq!(merged.get("chatwootURL"), stored.get("chatwootURL"));
    }
}
