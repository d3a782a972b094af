//! Where the providers' APIs are and the Meta app: validated base URLs, the Graph API
//! version, the app credentials and the token refresh schedule.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, ProviderArgs};
use crate::meta::{MetaApp, MetaSettings, RetryPolicy};
use crate::outbound::ProviderUrls;

pub(super) fn provider_urls(args: &ProviderArgs) -> Result<ProviderUrls, ConfigError> {
    let url = |value: &str, name: &str| {
        if crate::domain::provider::is_url(value) {
            Ok(value.trim_end_matches('/').to_owned())
        } else {
            Err(ConfigError(format!(
                "{name} must be an http(s) URL, got {value:?}"
            )))
        }
    };
    Ok(ProviderUrls {
        sendgrid: url(&args.sendgrid_base_url, "PATCHBAY_SENDGRID_BASE_URL")?,
        openai: url(&args.openai_base_url, "PATCHBAY_OPENAI_BASE_URL")?,
        twilio: url(&args.twilio_base_url, "PATCHBAY_TWILIO_BASE_URL")?,
        graph: url(&args.graph_base_url, "PATCHBAY_GRAPH_BASE_URL")?,
        instagram_graph: url(
            &args.instagram_graph_base_url,
            "PATCHBAY_INSTAGRAM_GRAPH_BASE_URL",
        )?,
        instagram_api: url(
            &args.instagram_api_base_url,
            "PATCHBAY_INSTAGRAM_API_BASE_URL",
        )?,
        graph_version: graph_version(&args.graph_api_version)?,
    })
}

/// `v21.0`: what Meta's URLs carry.
fn graph_version(version: &str) -> Result<String, ConfigError> {
    let valid = version.strip_prefix('v').is_some_and(|rest| {
        rest.split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major
                    .chars()
                    .chain(minor.chars())
                    .all(|c| c.is_ascii_digit())
        })
    });
    if valid {
        Ok(version.to_owned())
    } else {
        Err(ConfigError(format!(
            "PATCHBAY_GRAPH_API_VERSION must look like v21.0, got {version:?}"
        )))
    }
}

pub(super) fn meta_settings(args: &ProviderArgs) -> Result<MetaSettings, ConfigError> {
    let app = match (&args.meta_app_id, &args.meta_app_secret) {
        (None, None) => None,
        (Some(id), Some(secret)) if !id.trim().is_empty() && !secret.trim().is_empty() => {
            Some(MetaApp {
                id: id.trim().to_owned(),
                secret: SecretString::from(secret.trim().to_owned()),
            })
        }
        _ => {
            return Err(ConfigError(
                "PATCHBAY_META_APP_ID and PATCHBAY_META_APP_SECRET go together: set both or neither"
                    .to_owned(),
            ));
        }
    };
    Ok(MetaSettings {
        app,
        retry: RetryPolicy::default(),
        refresh_every: (args.token_refresh_interval_seconds > 0)
            .then(|| Duration::from_secs(args.token_refresh_interval_seconds)),
        refresh_ahead: Duration::from_secs(u64::from(args.token_refresh_ahead_days) * 86_400),
    })
}
