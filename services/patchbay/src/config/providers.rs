//! Where the providers' APIs are and the Meta app: validated base URLs, the Graph API
//! version, the app credentials and the token refresh schedule.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, ProviderArgs};
use crate::meta::{MetaApp, MetaSettings, RetryPolicy};
use crate::outbound::guard::{self, AddressPolicy, Origin};
use crate::outbound::{OutboundSettings, ProviderUrls, settings};

pub(super) fn outbound_settings(args: &ProviderArgs) -> OutboundSettings {
    OutboundSettings {
        policy: address_policy(args),
        resolver: None,
    }
}

fn address_policy(args: &ProviderArgs) -> AddressPolicy {
    if args.allow_private_outbound {
        AddressPolicy::AllowPrivate
    } else {
        AddressPolicy::PublicOnly
    }
}

/// Each base URL is checked by its literal form, as the outbound guard will check it
/// before every call (no DNS lookup at start): an address the guard refuses is named now,
/// with its setting, rather than on the first call.
pub(super) fn provider_urls(args: &ProviderArgs) -> Result<ProviderUrls, ConfigError> {
    let policy = address_policy(args);
    let url = |value: &str, name: &str| {
        if !crate::domain::provider::is_url(value) {
            return Err(ConfigError(format!(
                "{name} must be an http(s) URL, got {value:?}"
            )));
        }
        guard::check_url(value, Origin::Operator, policy).map_err(|refusal| {
            ConfigError(format!(
                "{name}: {refusal} (set PATCHBAY_ALLOW_PRIVATE_OUTBOUND=true, \
                 --allow-private-outbound, for a local fake or an on-premise provider)"
            ))
        })?;
        Ok(value.trim_end_matches('/').to_owned())
    };
    Ok(ProviderUrls {
        sendgrid: url(&args.sendgrid_base_url, settings::SENDGRID)?,
        openai: url(&args.openai_base_url, settings::OPENAI)?,
        twilio: url(&args.twilio_base_url, settings::TWILIO)?,
        graph: url(&args.graph_base_url, settings::GRAPH)?,
        instagram_graph: url(&args.instagram_graph_base_url, settings::INSTAGRAM_GRAPH)?,
        instagram_api: url(&args.instagram_api_base_url, settings::INSTAGRAM_API)?,
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
    let webhook_verify_token = match args.meta_webhook_verify_token.as_deref().map(str::trim) {
        None => None,
        Some(token) if token.len() >= 16 => Some(SecretString::from(token.to_owned())),
        Some(_) => {
            return Err(ConfigError(
                "PATCHBAY_META_WEBHOOK_VERIFY_TOKEN must be at least 16 characters: it is all that proves a handshake"
                    .to_owned(),
            ));
        }
    };
    Ok(MetaSettings {
        app,
        webhook_verify_token,
        retry: RetryPolicy::default(),
        refresh_every: (args.token_refresh_interval_seconds > 0)
            .then(|| Duration::from_secs(args.token_refresh_interval_seconds)),
        refresh_ahead: Duration::from_secs(u64::from(args.token_refresh_ahead_days) * 86_400),
        refresh_max_failures: match args.token_refresh_max_failures {
            0 => {
                return Err(ConfigError(
                    "PATCHBAY_TOKEN_REFRESH_MAX_FAILURES must be at least 1".to_owned(),
                ));
            }
            max => max,
        },
        check_every: (args.token_check_interval_seconds > 0)
            .then(|| Duration::from_secs(args.token_check_interval_seconds)),
        expiry_warning_days: args.token_expiry_warning_days.clone(),
    })
}
