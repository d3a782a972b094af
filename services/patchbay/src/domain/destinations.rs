//! Where a provider config sends its secrets. Two rules, checked on create and update
//! with the rest of the config, before anything is written or called:
//!
//! - A tenant's URL field must pass the outbound guard by its literal form (https, no
//!   IP literal or `localhost` the guard refuses). No DNS lookup here: names are checked
//!   where the connection is made.
//! - A stored secret only goes where its sender sent it: changing a URL that carries
//!   secrets (the schema's `carries_secrets`) requires each stored one again, in clear,
//!   in the same request. Otherwise an admin could re-point a stored integration at a
//!   host of their own and have Patchbay deliver a token no response ever showed them.

use serde_json::Value;

use super::config_document::{Document, is_masked, value_at};
use super::error::FieldViolation;
use super::provider::{Provider, is_url};

/// The outbound guard's check of a tenant URL's literal form (https, no IP literal or
/// `localhost` it refuses), handed to the rule by its caller: the rule is the domain's,
/// the address classifier the guard's (`outbound/guard.rs`). `Err` says why the URL is
/// refused.
#[derive(Clone, Copy)]
pub struct UrlGuard(pub fn(&str) -> Result<(), String>);

impl std::fmt::Debug for UrlGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlGuard")
    }
}

/// Every violation of the two rules by `next`, the config about to be stored in place
/// of `stored` (empty on create) after `patch`.
pub fn check(
    provider: &Provider,
    stored: &Document,
    patch: &Document,
    next: &Document,
    guard: UrlGuard,
) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    for url_field in provider.url_fields() {
        let before = value_at(stored, &url_field.path);
        let after = value_at(next, &url_field.path);
        if before == after {
            continue;
        }
        // A value that is no URL at all is named by the schema's validation already.
        if let Some(Value::String(url)) = after
            .filter(|_| url_field.is_url)
            .filter(|v| v.as_str().is_some_and(is_url))
            && let Err(refusal) = (guard.0)(url)
        {
            violations.push(FieldViolation::new(&url_field.path, refusal));
        }
        for secret in &url_field.carries_secrets {
            let stored_secret = value_at(stored, secret).filter(|v| !v.is_null());
            let resent = value_at(patch, secret)
                .is_some_and(|v| matches!(v, Value::String(s) if !s.is_empty()) && !is_masked(v));
            if stored_secret.is_some() && !resent {
                violations.push(FieldViolation::new(
                    secret,
                    format!(
                        "send the secret again when you change where it is sent ({} changed)",
                        url_field.path
                    ),
                ));
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::provider::FieldSpec;

    fn chatwoot() -> Provider {
        let fields: Vec<FieldSpec> = serde_json::from_value(json!([
            {"name": "chatwootURL", "type": "url", "carries_secrets": ["chatwootAccessToken"]},
            {"name": "chatwootAccessToken", "type": "string", "secret": true},
            {"name": "n8nWebhook", "type": "url"}
        ]))
        .expect("schema");
        Provider::new(
            "chatwoot".into(),
            String::new(),
            String::new(),
            String::new(),
            None,
            fields,
        )
    }

    fn doc(value: Value) -> Document {
        value.as_object().cloned().unwrap_or_default()
    }

    fn fields(violations: Vec<FieldViolation>) -> Vec<String> {
        violations.into_iter().map(|v| v.field).collect()
    }

    use crate::outbound::guard::{ALLOW_PRIVATE, PUBLIC_ONLY as PUBLIC};

    #[test]
    fn a_moved_url_needs_its_secret_in_clear() {
        let stored = doc(
            json!({"chatwootURL": "https://chat.acme.example", "chatwootAccessToken": "cw-stored-token"}),
        );
        let moved = |patch: Value| {
            let patch = doc(patch);
            let mut next = stored.clone();
            next.extend(patch.clone());
            fields(check(&chatwoot(), &stored, &patch, &next, PUBLIC))
        };
        assert_eq!(
            moved(json!({"chatwootURL": "https://evil.example"})),
            ["config.chatwootAccessToken"]
        );
        assert_eq!(
            moved(
                json!({"chatwootURL": "https://evil.example", "chatwootAccessToken": "********oken"})
            ),
            ["config.chatwootAccessToken"],
            "the masked form does not count"
        );
        assert_eq!(
            moved(
                json!({"chatwootURL": "https://evil.example", "chatwootAccessToken": "cw-new-token"})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            moved(json!({"chatwootURL": null})),
            ["config.chatwootAccessToken"],
            "removing the URL is a change too"
        );
        assert_eq!(
            moved(json!({"n8nWebhook": "https://n8n.example/hook"})),
            Vec::<String>::new(),
            "a URL that carries no secret is free to change"
        );
        assert_eq!(
            moved(json!({"chatwootURL": "https://chat.acme.example"})),
            Vec::<String>::new(),
            "the same URL again is no change"
        );
    }

    /// Not only URLs decide where a secret goes: an SMTP password follows its host, port
    /// and security mode.
    #[test]
    fn any_field_may_carry_secrets() {
        let schema: Vec<FieldSpec> = serde_json::from_value(json!([
            {"name": "host", "type": "string", "carries_secrets": ["password"]},
            {"name": "security", "type": "enum", "values": ["none", "tls"], "carries_secrets": ["password"]},
            {"name": "password", "type": "string", "secret": true},
            {"name": "from_email", "type": "email"}
        ]))
        .expect("schema");
        let smtp = Provider::new(
            "smtp".into(),
            String::new(),
            String::new(),
            String::new(),
            None,
            schema,
        );
        let stored = doc(json!({"host": "mail.acme.example", "security": "tls", "password": "p"}));
        for patch in [
            json!({"host": "mail.evil.example"}),
            json!({"security": "none"}),
        ] {
            let patch = doc(patch);
            let mut next = stored.clone();
            next.extend(patch.clone());
            assert_eq!(
                fields(check(&smtp, &stored, &patch, &next, PUBLIC)),
                ["config.password"]
            );
        }
        let patch = doc(json!({"from_email": "b@acme.example"}));
        let mut next = stored.clone();
        next.extend(patch.clone());
        assert!(check(&smtp, &stored, &patch, &next, PUBLIC).is_empty());
    }

    #[test]
    fn a_value_that_is_no_url_is_left_to_the_schema() {
        let next = doc(json!({"chatwootURL": "not a url"}));
        assert!(check(&chatwoot(), &Document::new(), &next, &next, PUBLIC).is_empty());
    }

    #[test]
    fn tenant_urls_are_checked_by_their_literal_form() {
        let next = doc(
            json!({"chatwootURL": "https://2130706433:3000", "n8nWebhook": "http://n8n.example", "chatwootAccessToken": "t"}),
        );
        assert_eq!(
            fields(check(&chatwoot(), &Document::new(), &next, &next, PUBLIC)),
            ["config.chatwootURL", "config.n8nWebhook"]
        );
        assert!(check(&chatwoot(), &Document::new(), &next, &next, ALLOW_PRIVATE).is_empty());
    }
}
