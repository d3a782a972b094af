//! `Debug` for the messages that carry configs or tokens: every field but those, which
//! print as `<redacted>`, so that logging a request or a response never leaks a secret.

use std::fmt;

use crate::proto;

const REDACTED: &str = "<redacted>";

impl fmt::Debug for proto::Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("account_key", &self.account_key)
            .field("display_name", &self.display_name)
            .field("is_active", &self.is_active)
            .field("is_default", &self.is_default)
            .field("division_id", &self.division_id)
            .field("config", &REDACTED)
            .field("verify_token", &REDACTED)
            .field("webhook_url", &self.webhook_url)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// The OAuth code and the (sealed) user token of the Meta connect flows.
macro_rules! redacted_debug {
    ($message:ident { $($shown:ident),* } redacts { $($hidden:ident),* }) => {
        impl fmt::Debug for proto::$message {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($message))
                    $(.field(stringify!($shown), &self.$shown))*
                    $(.field(stringify!($hidden), &REDACTED))*
                    .finish()
            }
        }
    };
}

redacted_debug!(CompleteWhatsAppSignupRequest { waba_id, phone_number_id, division_id } redacts { code });
redacted_debug!(ConnectInstagramRequest { redirect_uri, division_id } redacts { code });
redacted_debug!(ConnectMessengerRequest { redirect_uri } redacts { code });
redacted_debug!(ConnectMessengerResponse { pages } redacts { user_token });
redacted_debug!(SubscribeMessengerPagesRequest { page_ids, division_id } redacts { user_token });
redacted_debug!(VerifyWebhookSubscriptionRequest { channel, account_key, mode, challenge } redacts { verify_token });

impl fmt::Debug for proto::CreateAccountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateAccountRequest")
            .field("channel", &self.channel)
            .field("account_key", &self.account_key)
            .field("display_name", &self.display_name)
            .field("is_active", &self.is_active)
            .field("is_default", &self.is_default)
            .field("division_id", &self.division_id)
            .field("config", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for proto::UpdateAccountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateAccountRequest")
            .field("id", &self.id)
            .field("account_key", &self.account_key)
            .field("display_name", &self.display_name)
            .field("is_active", &self.is_active)
            .field("is_default", &self.is_default)
            .field("division_id", &self.division_id)
            .field("config", &REDACTED)
            .field("expected_revision", &self.expected_revision)
            .finish()
    }
}

impl fmt::Debug for proto::GetAccountCredentialsResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetAccountCredentialsResponse")
            .field("account_id", &self.account_id)
            .field("channel", &self.channel)
            .field("account_key", &self.account_key)
            .field("config", &REDACTED)
            .field("verify_token", &REDACTED)
            .field("revision", &self.revision)
            .finish()
    }
}

impl fmt::Debug for proto::ChannelSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSettings")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("is_active", &self.is_active)
            .field("config", &REDACTED)
            .field("division_id", &self.division_id)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for proto::UpsertChannelSettingsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpsertChannelSettingsRequest")
            .field("channel", &self.channel)
            .field("is_active", &self.is_active)
            .field("config", &REDACTED)
            .field("division_id", &self.division_id)
            .field("expected_revision", &self.expected_revision)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use prost_types::{Struct, Value, value::Kind};

    use super::*;

    #[test]
    fn debug_output_never_shows_configs_or_tokens() {
        let config = Struct {
            fields: [(
                "access_token".to_owned(),
                Value {
                    kind: Some(Kind::StringValue("EAAG-debug-secret".into())),
                },
            )]
            .into_iter()
            .collect(),
        };
        let printed = [
            format!(
                "{:?}",
                proto::CreateAccountRequest {
                    config: Some(config.clone()),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                proto::GetAccountCredentialsResponse {
                    config: Some(config.clone()),
                    verify_token: "vt-debug-secret".into(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                proto::Account {
                    config: Some(config),
                    verify_token: "vt-debug-secret".into(),
                    account_key: "wa-1".into(),
                    ..Default::default()
                }
            ),
        ];
        for text in printed {
            assert!(!text.contains("debug-secret"), "{text}");
            assert!(text.contains(REDACTED), "{text}");
        }
    }
}
