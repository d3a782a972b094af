//! The token lifecycle rules: which config key holds a Meta account's token, which
//! scopes it needs, and when its expiry is announced. Pure: `app::accounts::token_checks`
//! asks Meta and records what these rules make of the answer.

use chrono::{DateTime, Utc};

use super::Account;
use crate::domain::channel::Channel;

/// The channels whose tokens are Meta's, checked with debug_token.
pub const CHECKED_CHANNELS: [Channel; 3] =
    [Channel::Whatsapp, Channel::Messenger, Channel::Instagram];

/// The config key of `channel`'s Meta token.
pub fn token_key(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Whatsapp | Channel::Instagram => Some("access_token"),
        Channel::Messenger => Some("page_access_token"),
        _ => None,
    }
}

/// The account's Meta token, when it has one (a WhatsApp account only when it is a
/// Cloud account: a Twilio number's token is not Meta's).
pub fn meta_token(account: &Account) -> Option<&str> {
    if account.channel == Channel::Whatsapp
        && !super::whatsapp::is_cloud_account(account.channel, &account.config)
    {
        return None;
    }
    account
        .config
        .get(token_key(account.channel)?)
        .and_then(serde_json::Value::as_str)
        .filter(|token| !token.is_empty())
}

/// How a token an admin stored was obtained, as far as it tells: an Instagram token
/// starting with `IG` is Instagram Login's (Meta's prefix for them); any other Meta
/// token is pasted. `None` for an account without a Meta token.
pub fn pasted_token_source(account: &Account) -> Option<super::TokenSource> {
    let token = meta_token(account)?;
    Some(
        if account.channel == Channel::Instagram && token.starts_with("IG") {
            super::TokenSource::InstagramLogin
        } else {
            super::TokenSource::Pasted
        },
    )
}

/// Whether the account's token is an Instagram Login token, checked and subscribed at
/// graph.instagram.com.
pub fn is_instagram_login(account: &Account) -> bool {
    account.channel == Channel::Instagram
        && account.provider_state.token_source == Some(super::TokenSource::InstagramLogin)
}

/// The scopes a token needs to send on `channel`: each inner list is one need, met by
/// any of its scopes (Instagram's differ between Instagram Login and Facebook Login).
fn required_scopes(channel: Channel) -> &'static [&'static [&'static str]] {
    match channel {
        Channel::Whatsapp => &[&["whatsapp_business_messaging"]],
        Channel::Messenger => &[&["pages_messaging"]],
        Channel::Instagram => &[&[
            "instagram_business_manage_messages",
            "instagram_manage_messages",
        ]],
        _ => &[],
    }
}

/// The needs `scopes` do not meet, named by their first scope.
pub fn missing_scopes(channel: Channel, scopes: &[String]) -> Vec<&'static str> {
    required_scopes(channel)
        .iter()
        .filter(|any_of| !any_of.iter().any(|scope| scopes.iter().any(|s| s == scope)))
        .map(|any_of| any_of[0])
        .collect()
}

/// The expiry-warning threshold (in days) a token expiring at `expires_at` has reached
/// at `now`: the smallest threshold it is within, unless one at least as small was
/// announced already (`warned`), which then stays. `None` when it is within none.
pub fn expiry_warning(
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    thresholds: &[u32],
    warned: Option<i32>,
) -> Option<i32> {
    let Some(expires_at) = expires_at else {
        return warned;
    };
    let left = expires_at - now;
    let reached = thresholds
        .iter()
        .filter_map(|&days| i32::try_from(days).ok())
        .filter(|&days| left <= chrono::Duration::days(i64::from(days)))
        .min();
    match (reached, warned) {
        (Some(days), Some(before)) => Some(days.min(before)),
        (reached, before) => reached.or(before),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::at;

    #[test]
    fn each_threshold_is_reached_once_and_the_smallest_wins() {
        let now = at(0);
        let in_days = |days: i64| Some(now + chrono::Duration::days(days));
        let thresholds = [7, 1];
        assert_eq!(expiry_warning(in_days(30), now, &thresholds, None), None);
        assert_eq!(expiry_warning(in_days(5), now, &thresholds, None), Some(7));
        // Announced: the same threshold again is no news.
        assert_eq!(
            expiry_warning(in_days(4), now, &thresholds, Some(7)),
            Some(7)
        );
        let hours = Some(now + chrono::Duration::hours(12));
        assert_eq!(expiry_warning(hours, now, &thresholds, Some(7)), Some(1));
        assert_eq!(expiry_warning(hours, now, &thresholds, Some(1)), Some(1));
        // A token that never expires is never announced.
        assert_eq!(expiry_warning(None, now, &thresholds, None), None);
        assert_eq!(expiry_warning(in_days(5), now, &[], None), None);
    }

    #[test]
    fn a_token_needs_the_scopes_of_its_channel() {
        let scopes = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(missing_scopes(Channel::Messenger, &scopes(&["pages_messaging"])).is_empty());
        assert_eq!(
            missing_scopes(
                Channel::Whatsapp,
                &scopes(&["whatsapp_business_management"])
            ),
            ["whatsapp_business_messaging"]
        );
        assert!(
            missing_scopes(Channel::Instagram, &scopes(&["instagram_manage_messages"])).is_empty()
        );
        assert!(missing_scopes(Channel::Email, &[]).is_empty());
    }
}
