//! Where the providers' APIs are and the Meta app: validated base URLs, the Graph API
//! version, the app credentials and the token refresh schedule.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, ProviderArgs};
use crate::meta::{MetaApp, MetaSettings, RetryPolicy, versions};
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
        graph_version: graph_version(
            args.graph_api_version.as_deref(),
            crate::domain::ids::now().date_naive(),
        )?,
    })
}

/// The Graph API version calls name: the one configured, else the compiled default.
/// A version configured explicitly that Meta no longer serves on `today` refuses the
/// start; one that ends soon is only warned about, at start (`startup`) and in
/// GetWhatsAppHealth. The compiled default never refuses.
pub(super) fn graph_version(
    configured: Option<&str>,
    today: chrono::NaiveDate,
) -> Result<String, ConfigError> {
    let Some(version) = configured else {
        return Ok(versions::DEFAULT_VERSION.to_owned());
    };
    let version = valid_graph_version(version)?;
    if let versions::Standing::Ended { ended } = versions::standing(&version, today) {
        return Err(ConfigError(format!(
            "PATCHBAY_GRAPH_API_VERSION {version} is no longer served by Meta since {ended}: \
             set a newer version, or unset it for the default ({})",
            versions::DEFAULT_VERSION
        )));
    }
    Ok(version)
}

/// `v25.0`: what Meta's URLs carry.
fn valid_graph_version(version: &str) -> Result<String, ConfigError> {
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
            "PATCHBAY_GRAPH_API_VERSION must look like v25.0, got {version:?}"
        )))
    }
}

/// An app's id and secret, set together or not at all.
fn app_pair(
    id: Option<&String>,
    secret: Option<&String>,
    names: (&str, &str),
) -> Result<Option<MetaApp>, ConfigError> {
    match (id, secret) {
        (None, None) => Ok(None),
        (Some(id), Some(secret)) if !id.trim().is_empty() && !secret.trim().is_empty() => {
            Ok(Some(MetaApp {
                id: id.trim().to_owned(),
                secret: SecretString::from(secret.trim().to_owned()),
            }))
        }
        _ => Err(ConfigError(format!(
            "{} and {} go together: set both or neither",
            names.0, names.1
        ))),
    }
}

pub(super) fn meta_settings(args: &ProviderArgs) -> Result<MetaSettings, ConfigError> {
    let app = app_pair(
        args.meta_app_id.as_ref(),
        args.meta_app_secret.as_ref(),
        ("PATCHBAY_META_APP_ID", "PATCHBAY_META_APP_SECRET"),
    )?;
    let instagram_app = app_pair(
        args.instagram_app_id.as_ref(),
        args.instagram_app_secret.as_ref(),
        ("PATCHBAY_INSTAGRAM_APP_ID", "PATCHBAY_INSTAGRAM_APP_SECRET"),
    )?;
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
        instagram_app,
        webhook_verify_token,
        retry: RetryPolicy::default(),
        refresh_every: (args.rounds.token_refresh_interval_seconds > 0)
            .then(|| Duration::from_secs(args.rounds.token_refresh_interval_seconds)),
        // A long-lived Instagram token lives 60 days, and Meta refreshes only tokens at
        // least 24 hours old: a window near 60 days would ask for every new token.
        refresh_ahead: match args.rounds.token_refresh_ahead_days {
            days @ 1..=50 => Duration::from_secs(u64::from(days) * 86_400),
            _ => {
                return Err(ConfigError(
                    "PATCHBAY_TOKEN_REFRESH_AHEAD_DAYS must be 1 to 50 (a long-lived Instagram token lives 60 days)"
                        .to_owned(),
                ));
            }
        },
        refresh_max_failures: match args.rounds.token_refresh_max_failures {
            0 => {
                return Err(ConfigError(
                    "PATCHBAY_TOKEN_REFRESH_MAX_FAILURES must be at least 1".to_owned(),
                ));
            }
            max => max,
        },
        check_every: (args.rounds.token_check_interval_seconds > 0)
            .then(|| Duration::from_secs(args.rounds.token_check_interval_seconds)),
        health_every: (args.rounds.account_health_interval_seconds > 0)
            .then(|| Duration::from_secs(args.rounds.account_health_interval_seconds)),
        expiry_warning_days: args.rounds.token_expiry_warning_days.clone(),
        checks_per_workspace: match args.rounds.token_checks_per_workspace_per_round {
            0 => {
                return Err(ConfigError(
                    "PATCHBAY_TOKEN_CHECKS_PER_WORKSPACE_PER_ROUND must be at least 1".to_owned(),
                ));
            }
            cap => cap,
        },
        today: None,
        messenger_get_started_payload: get_started_payload(&args.messenger_get_started_payload)?,
    })
}

/// Meta takes a payload of up to 1,000 characters.
fn get_started_payload(payload: &str) -> Result<String, ConfigError> {
    if payload.is_empty() || payload.chars().count() > 1000 {
        return Err(ConfigError(
            "PATCHBAY_MESSENGER_GET_STARTED_PAYLOAD must be 1 to 1,000 characters".to_owned(),
        ));
    }
    Ok(payload.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn a_graph_version_past_its_end_refuses_only_when_configured() {
        // The compiled default, whatever the day.
        assert_eq!(
            graph_version(None, day(2040, 1, 1)).expect("default"),
            versions::DEFAULT_VERSION
        );
        // v21.0 is served until 2027-01-21 (Meta's Graph API versions page): chosen
        // before that, it starts (with a warning at start); after, it refuses.
        assert_eq!(
            graph_version(Some("v21.0"), day(2027, 1, 20)).expect("served"),
            "v21.0"
        );
        let refused = graph_version(Some("v21.0"), day(2027, 1, 21)).expect_err("ended");
        assert!(
            refused.0.contains("PATCHBAY_GRAPH_API_VERSION") && refused.0.contains("2027-01-21"),
            "{}",
            refused.0
        );
        // A version whose end Meta has not announced never refuses.
        assert!(graph_version(Some("v26.0"), day(2040, 1, 1)).is_ok());
        assert!(graph_version(Some("21.0"), day(2026, 1, 1)).is_err());
    }

    #[test]
    fn the_get_started_payload_is_one_to_a_thousand_characters() {
        assert_eq!(
            get_started_payload("GET_STARTED").expect("ok"),
            "GET_STARTED"
        );
        assert!(get_started_payload("").is_err());
        assert!(get_started_payload(&"é".repeat(1000)).is_ok());
        let refused = get_started_payload(&"x".repeat(1001)).expect_err("too long");
        assert!(refused.0.contains("PATCHBAY_MESSENGER_GET_STARTED_PAYLOAD"));
    }
}
