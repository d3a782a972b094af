//! The provider catalog and what a provider's config schema means: which fields exist,
//! their types, which are required, their defaults and which are secret. The schemas
//! come from the `providers` table (seeded from `migrations/src/providers.json`); this
//! module is the one place that interprets them, for validation, defaults, masking and
//! the catalog answer alike.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::channel::Channel;
use super::config_document::Document;
use super::error::FieldViolation;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    String,
    Integer,
    Boolean,
    Url,
    Phone,
    Email,
    Enum,
    Object,
}

/// One field of a provider's config schema.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    /// For a URL field: the secret fields (siblings, by name) that are sent to that URL.
    /// Changing the URL then requires those secrets again in the same request.
    #[serde(default)]
    pub carries_secrets: Vec<String>,
}

/// A field of a provider's config that decides where secrets go — a URL, or an SMTP
/// host, port or security mode — and the secrets it carries, by path. Every URL field is
/// one (a tenant URL is guarded even when it carries no secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlField {
    pub path: String,
    pub is_url: bool,
    pub carries_secrets: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Provider {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: String,
    /// `None` for providers outside messaging (OpenAI, e-signature).
    pub channel: Option<Channel>,
    pub fields: Vec<FieldSpec>,
    /// Paths (`config.x.y`) of the fields flagged secret.
    secret_paths: BTreeSet<String>,
    /// The fields that decide where secrets go, with the secrets each one carries.
    url_fields: Vec<UrlField>,
}

/// How strictly a config is checked: an inactive integration may lack required fields
/// (seed 004); activating it runs the full validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completeness {
    Full,
    Partial,
}

impl Provider {
    pub fn new(
        slug: String,
        name: String,
        description: String,
        category: String,
        channel: Option<Channel>,
        fields: Vec<FieldSpec>,
    ) -> Self {
        let mut secret_paths = BTreeSet::new();
        collect_secret_paths(&fields, "config", &mut secret_paths);
        let mut url_fields = Vec::new();
        collect_url_fields(&fields, "config", &mut url_fields);
        Self {
            slug,
            name,
            description,
            category,
            channel,
            fields,
            secret_paths,
            url_fields,
        }
    }

    pub fn secret_paths(&self) -> &BTreeSet<String> {
        &self.secret_paths
    }

    pub fn url_fields(&self) -> &[UrlField] {
        &self.url_fields
    }

    /// Schema mistakes a reader could not see: a field that says it carries a field that
    /// is not a secret sibling of it.
    pub fn schema_problems(&self) -> Vec<String> {
        self.url_fields
            .iter()
            .flat_map(|url| {
                url.carries_secrets
                    .iter()
                    .filter(|secret| !self.secret_paths.contains(*secret))
                    .map(move |secret| {
                        format!(
                            "{}: {} carries {secret}, which is not a secret field",
                            self.slug, url.path
                        )
                    })
            })
            .collect()
    }

    /// Every way `config` breaks the schema, each named by its path under `config`.
    pub fn validate(&self, config: &Document, completeness: Completeness) -> Vec<FieldViolation> {
        let mut violations = Vec::new();
        check_object(
            &self.fields,
            config,
            "config",
            completeness,
            &self.slug,
            &mut violations,
        );
        violations
    }

    /// `config` with the schema's defaults filled in where a field is absent, nested
    /// objects included.
    pub fn with_defaults(&self, config: &Document) -> Document {
        fill_defaults(&self.fields, config)
    }
}

fn collect_secret_paths(fields: &[FieldSpec], path: &str, out: &mut BTreeSet<String>) {
    for field in fields {
        let field_path = format!("{path}.{}", field.name);
        if field.secret {
            out.insert(field_path.clone());
        }
        collect_secret_paths(&field.fields, &field_path, out);
    }
}

fn collect_url_fields(fields: &[FieldSpec], path: &str, out: &mut Vec<UrlField>) {
    for field in fields {
        let field_path = format!("{path}.{}", field.name);
        if field.kind == FieldKind::Url || !field.carries_secrets.is_empty() {
            out.push(UrlField {
                path: field_path.clone(),
                is_url: field.kind == FieldKind::Url,
                carries_secrets: field
                    .carries_secrets
                    .iter()
                    .map(|sibling| format!("{path}.{sibling}"))
                    .collect(),
            });
        }
        collect_url_fields(&field.fields, &field_path, out);
    }
}

fn check_object(
    fields: &[FieldSpec],
    object: &Document,
    path: &str,
    completeness: Completeness,
    slug: &str,
    out: &mut Vec<FieldViolation>,
) {
    for key in object.keys() {
        if !fields.iter().any(|f| &f.name == key) {
            out.push(FieldViolation::new(
                format!("{path}.{key}"),
                format!("is not a field of provider {slug}"),
            ));
        }
    }
    for field in fields {
        let field_path = format!("{path}.{}", field.name);
        match object.get(&field.name) {
            None | Some(Value::Null) => {
                if field.required && completeness == Completeness::Full {
                    out.push(FieldViolation::new(field_path, "is required"));
                }
            }
            Some(value) => check_value(field, value, &field_path, completeness, slug, out),
        }
    }
}

fn check_value(
    field: &FieldSpec,
    value: &Value,
    path: &str,
    completeness: Completeness,
    slug: &str,
    out: &mut Vec<FieldViolation>,
) {
    let problem = match (field.kind, value) {
        (FieldKind::String, Value::String(s)) => {
            (field.required && s.trim().is_empty() && completeness == Completeness::Full)
                .then(|| "must not be empty".to_owned())
        }
        (FieldKind::Integer, Value::Number(n)) => {
            (!(n.is_i64() || n.is_u64())).then(|| "must be a whole number".to_owned())
        }
        (FieldKind::Boolean, Value::Bool(_)) => None,
        (FieldKind::Url, Value::String(s)) => {
            (!is_url(s)).then(|| "must be an http or https URL".to_owned())
        }
        (FieldKind::Phone, Value::String(s)) => {
            (!is_phone(s)).then(|| "must be a phone number of 8 to 15 digits".to_owned())
        }
        (FieldKind::Email, Value::String(s)) => {
            (!is_email(s)).then(|| "must be an email address".to_owned())
        }
        (FieldKind::Enum, Value::String(s)) => (!field.values.contains(s))
            .then(|| format!("must be one of {}", field.values.join(", "))),
        (FieldKind::Object, Value::Object(object)) => {
            check_object(&field.fields, object, path, completeness, slug, out);
            None
        }
        (kind, _) => Some(format!("must be {}", kind_name(kind))),
    };
    if let Some(description) = problem {
        out.push(FieldViolation::new(path, description));
    }
}

fn kind_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::String => "a string",
        FieldKind::Integer => "a whole number",
        FieldKind::Boolean => "true or false",
        FieldKind::Url => "a URL string",
        FieldKind::Phone => "a phone number string",
        FieldKind::Email => "an email address string",
        FieldKind::Enum => "one of the allowed strings",
        FieldKind::Object => "an object",
    }
}

fn fill_defaults(fields: &[FieldSpec], object: &Document) -> Document {
    let mut filled = object.clone();
    for field in fields {
        match (filled.get(&field.name), &field.default) {
            (None | Some(Value::Null), Some(default)) => {
                filled.insert(field.name.clone(), default.clone());
            }
            (None | Some(Value::Null), None) if field.kind == FieldKind::Object => {
                let nested = fill_defaults(&field.fields, &Document::new());
                if !nested.is_empty() {
                    filled.insert(field.name.clone(), Value::Object(nested));
                }
            }
            (Some(Value::Object(nested)), _) if field.kind == FieldKind::Object => {
                let nested = fill_defaults(&field.fields, nested);
                filled.insert(field.name.clone(), Value::Object(nested));
            }
            _ => {}
        }
    }
    filled
}

/// An absolute http(s) URL with a host and no whitespace, read the same way by this
/// check and by the URL parser the outbound guard and the HTTP client use (a backslash or
/// a second `@` makes them disagree on the host, so such URLs are refused).
pub fn is_url(text: &str) -> bool {
    if text.contains('\\') || text.matches('@').count() > 1 {
        return false;
    }
    let parsed_host = url::Url::parse(text)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    let name = host.split(':').next().unwrap_or_default();
    !name.is_empty()
        && text.len() <= 2048
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']'))
        && parsed_host.is_some()
}

/// A phone number as people write it (`+55 21 99999-9999`, `(21) 99999-9999`): digits
/// with spaces, dashes, dots or parentheses, an optional leading `+`, 8 to 15 digits.
pub fn is_phone(text: &str) -> bool {
    let body = text.trim().strip_prefix('+').unwrap_or(text.trim());
    let digits = body.chars().filter(char::is_ascii_digit).count();
    (8..=15).contains(&digits)
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
}

/// `local@domain.tld`, without spaces, one `@`.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The providers of the catalog Patchbay knows how to talk to, by slug. Code that
/// does something per provider (a credential check) matches on this, exhaustively: a
/// provider added to the catalog is a compile error there until it is decided for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    WhatsappCloud,
    WhatsappTwilio,
    Instagram,
    Messenger,
    Sendgrid,
    Smtp,
    TwilioSms,
    Openai,
    Chatwoot,
    Docusign,
    Clicksign,
    D4sign,
    Certisign,
    AdobeSign,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 14] = [
        ProviderKind::WhatsappCloud,
        ProviderKind::WhatsappTwilio,
        ProviderKind::Instagram,
        ProviderKind::Messenger,
        ProviderKind::Sendgrid,
        ProviderKind::Smtp,
        ProviderKind::TwilioSms,
        ProviderKind::Openai,
        ProviderKind::Chatwoot,
        ProviderKind::Docusign,
        ProviderKind::Clicksign,
        ProviderKind::D4sign,
        ProviderKind::Certisign,
        ProviderKind::AdobeSign,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            ProviderKind::WhatsappCloud => "whatsapp_cloud",
            ProviderKind::WhatsappTwilio => "whatsapp_twilio",
            ProviderKind::Instagram => "instagram",
            ProviderKind::Messenger => "messenger",
            ProviderKind::Sendgrid => "sendgrid",
            ProviderKind::Smtp => "smtp",
            ProviderKind::TwilioSms => "twilio_sms",
            ProviderKind::Openai => "openai",
            ProviderKind::Chatwoot => "chatwoot",
            ProviderKind::Docusign => "docusign",
            ProviderKind::Clicksign => "clicksign",
            ProviderKind::D4sign => "d4sign",
            ProviderKind::Certisign => "certisign",
            ProviderKind::AdobeSign => "adobe_sign",
        }
    }

    /// The kind of a catalog slug; `None` for a provider this build does not know.
    pub fn parse(slug: &str) -> Option<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.slug() == slug)
    }
}

impl Provider {
    /// What this build knows the provider as.
    pub fn kind(&self) -> Option<ProviderKind> {
        ProviderKind::parse(&self.slug)
    }
}

/// The catalog, loaded once at start (it changes only with a migration).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    providers: BTreeMap<String, Provider>,
}

impl Catalog {
    pub fn new(providers: Vec<Provider>) -> Self {
        Self {
            providers: providers.into_iter().map(|p| (p.slug.clone(), p)).collect(),
        }
    }

    pub fn get(&self, slug: &str) -> Option<&Provider> {
        self.providers.get(slug)
    }

    pub fn all(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_is_its_slug_and_the_seeded_catalog_has_them_all() {
        for kind in ProviderKind::ALL {
            assert_eq!(ProviderKind::parse(kind.slug()), Some(kind));
        }
        assert_eq!(ProviderKind::parse("fax"), None);
        let seeded = include_str!("../../../../migrations/src/providers.json");
        for kind in ProviderKind::ALL {
            assert!(
                seeded.contains(&format!("\"slug\": \"{}\"", kind.slug())),
                "{} is not seeded",
                kind.slug()
            );
        }
    }

    use serde_json::json;

    use super::*;

    fn chatwoot() -> Provider {
        let fields: Vec<FieldSpec> = serde_json::from_value(json!([
            {"name": "accountId", "type": "integer", "required": true},
            {"name": "enabled", "type": "boolean", "default": true},
            {"name": "chatwootURL", "type": "url", "required": true, "carries_secrets": ["chatwootAccessToken"]},
            {"name": "chatwootAccessToken", "type": "string", "required": true, "secret": true},
            {"name": "integrationOptions", "type": "object", "fields": [
                {"name": "enabledGroup", "type": "boolean", "default": false},
                {"name": "startConversationAs", "type": "enum", "values": ["open", "pending"], "default": "open"}
            ]}
        ]))
        .expect("schema");
        Provider::new(
            "chatwoot".into(),
            "Chatwoot".into(),
            String::new(),
            "support".into(),
            Some(Channel::Chat),
            fields,
        )
    }

    fn doc(value: Value) -> Document {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_violation_is_named_by_its_path() {
        let config = doc(json!({
            "accountId": "seven",
            "chatwootURL": "not a url",
            "chatwootAccessToken": "t",
            "integrationOptions": {"startConversationAs": "closed", "bogus": 1},
        }));
        let fields: Vec<_> = chatwoot()
            .validate(&config, Completeness::Full)
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "config.accountId",
                "config.chatwootURL",
                "config.integrationOptions.bogus",
                "config.integrationOptions.startConversationAs"
            ]
        );
    }

    #[test]
    fn partial_configs_skip_required_fields_only() {
        let provider = chatwoot();
        assert!(
            provider
                .validate(&Document::new(), Completeness::Partial)
                .is_empty()
        );
        assert_eq!(
            provider
                .validate(&Document::new(), Completeness::Full)
                .len(),
            3
        );
        let typed_wrong = doc(json!({"accountId": true}));
        assert_eq!(
            provider.validate(&typed_wrong, Completeness::Partial).len(),
            1
        );
    }

    #[test]
    fn defaults_fill_absent_fields_at_any_depth() {
        let filled = chatwoot().with_defaults(&doc(
            json!({"accountId": 1, "integrationOptions": {"enabledGroup": true}}),
        ));
        assert_eq!(
            Value::Object(filled),
            json!({"accountId": 1, "enabled": true, "integrationOptions": {"enabledGroup": true, "startConversationAs": "open"}})
        );
        let filled = chatwoot().with_defaults(&Document::new());
        assert_eq!(
            filled["integrationOptions"],
            json!({"enabledGroup": false, "startConversationAs": "open"})
        );
    }

    #[test]
    fn url_fields_name_the_secrets_they_carry() {
        assert_eq!(
            chatwoot().url_fields(),
            [UrlField {
                path: "config.chatwootURL".into(),
                is_url: true,
                carries_secrets: vec!["config.chatwootAccessToken".into()],
            }]
        );
        assert!(chatwoot().schema_problems().is_empty());
    }

    /// The catalog as shipped: every secret a URL carries is a secret field.
    #[test]
    fn the_shipped_catalog_is_consistent() {
        #[derive(Deserialize)]
        struct Entry {
            slug: String,
            fields: Vec<FieldSpec>,
        }
        let entries: Vec<Entry> =
            serde_json::from_str(include_str!("../../../../migrations/src/providers.json"))
                .expect("providers.json");
        for entry in entries {
            let provider = Provider::new(
                entry.slug,
                String::new(),
                String::new(),
                String::new(),
                None,
                entry.fields,
            );
            assert_eq!(provider.schema_problems(), Vec::<String>::new());
        }
    }

    #[test]
    fn secret_paths_come_from_the_schema() {
        assert!(
            chatwoot()
                .secret_paths()
                .contains("config.chatwootAccessToken")
        );
    }

    #[test]
    fn value_formats() {
        assert!(is_url("https://chat.example.com/app"));
        assert!(!is_url("ftp://x") && !is_url("https://") && !is_url("https://a b"));
        assert!(!is_url("https://evil.example\\@chat.acme.example"));
        assert!(!is_url("https://a@evil.example@chat.acme.example"));
        assert!(is_phone("21 99999-9999") && is_phone("+55 (21) 99999-9999"));
        assert!(!is_phone("12345") && !is_phone("call me"));
        assert!(is_email("a@b.co") && !is_email("a@b") && !is_email("a b@c.d"));
    }
}
