//! Secrets out of words passed on: providers sometimes quote the credential they
//! refused.

/// `text` with every secret of `secrets` (four characters or more) masked: providers
/// sometimes quote the credential they refused, and their words are passed on.
pub fn scrub<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut scrubbed = text.to_owned();
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.len() >= 4 {
            scrubbed = scrubbed.replace(secret, "********");
        }
    }
    scrubbed
}

/// Every string held under a secret-named key of `document`, at any depth.
pub fn secret_strings(document: &super::config_document::Document) -> Vec<String> {
    fn walk(value: &serde_json::Value, secret: bool, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(text) if secret => out.push(text.clone()),
            serde_json::Value::Object(object) => {
                for (key, value) in object {
                    walk(
                        value,
                        secret || super::config_document::is_secret_key(key),
                        out,
                    );
                }
            }
            serde_json::Value::Array(values) => {
                for value in values {
                    walk(value, secret, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, value) in document {
        walk(value, super::config_document::is_secret_key(key), &mut out);
    }
    out
}
