//! WhatsApp Cloud API calls: the number's state, its registration, the app's WABA
//! subscription and the number's own callback, health, and the Embedded Signup code
//! exchange.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::graph::{access_token_of, text};
use super::{Call, GraphClient, Host, MetaApp, MetaError};
use crate::domain::account::whatsapp::{
    BusinessAccount, NumberStatus, SubscribedApp, WebhookConfiguration,
};

/// The phone number fields GetWhatsAppHealth asks for.
/// `whatsapp_business_manager_messaging_limit` replaces `messaging_limit_tier` from
/// v24.0 on (Meta's "Messaging limits"); `webhook_configuration` says where the
/// number's webhooks go ("Webhook overrides").
pub const PHONE_FIELDS: &str = "display_phone_number,verified_name,quality_rating,code_verification_status,name_status,whatsapp_business_manager_messaging_limit,throughput,status,platform_type,webhook_configuration";
pub const WABA_FIELDS: &str = "id,name,account_review_status";

/// A WhatsApp Cloud number and the token that acts for it.
pub struct Number<'a> {
    pub phone_number_id: &'a str,
    pub waba_id: &'a str,
    pub token: &'a str,
}

/// The phone number fields of `version`: Meta's "Messaging limits" asks for
/// `whatsapp_business_manager_messaging_limit` "for v24.0 and newer" and
/// `messaging_limit_tier` "for 23.0 and older"; an unknown field fails the whole read.
pub fn phone_fields(version: &str) -> String {
    let major: u32 = version
        .strip_prefix('v')
        .and_then(|rest| rest.split('.').next())
        .and_then(|major| major.parse().ok())
        .unwrap_or(u32::MAX);
    if major >= 24 {
        PHONE_FIELDS.to_owned()
    } else {
        PHONE_FIELDS.replace(
            "whatsapp_business_manager_messaging_limit",
            "messaging_limit_tier",
        )
    }
}

/// Pages of a WABA's numbers read (Meta pages them by 25 or so): a WABA has a few.
const MAX_NUMBER_PAGES: usize = 20;

/// What the set-up reads of a number first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberOnCloud {
    /// `CONNECTED` once the number is registered on the Cloud API.
    pub status: String,
    /// `CLOUD_API`, `ON_PREMISE`, `NOT_APPLICABLE`…
    pub platform_type: String,
    pub display_phone_number: String,
}

/// One number of a WABA, as its list answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WabaNumber {
    pub id: String,
    pub display_phone_number: String,
    /// It has a callback of its own, which Meta resolves before the WABA's.
    pub own_callback: bool,
}

/// Where a number's webhooks go, and the token Meta's handshake there must carry.
pub struct Callback<'a> {
    pub url: &'a str,
    pub verify_token: &'a str,
}

/// The whatsapp calls of the Graph client (`GraphClient::whatsapp`).
pub struct WhatsAppGraph<'a>(&'a GraphClient);

impl GraphClient {
    pub fn whatsapp(&self) -> WhatsAppGraph<'_> {
        WhatsAppGraph(self)
    }
}

/// The client's plumbing (requests, retries, versions) under the product's calls.
impl std::ops::Deref for WhatsAppGraph<'_> {
    type Target = GraphClient;

    fn deref(&self) -> &GraphClient {
        self.0
    }
}

impl WhatsAppGraph<'_> {
    /// `POST /{phone-number-id}/register`: makes the number usable for Cloud API
    /// messaging, protected by the two-step verification `pin`.
    pub async fn register_phone_number(
        &self,
        number: &Number<'_>,
        pin: &str,
    ) -> Result<(), MetaError> {
        // Never repeated: Meta counts every request against the number's 10 in 72 hours.
        let call = Call::post(Host::Graph, format!("{}/register", number.phone_number_id))
            .token(number.token)
            .json(json!({ "messaging_product": "whatsapp", "pin": pin }))
            .never_repeat();
        self.send(call).await.map(drop)
    }

    /// `POST /{waba-id}/subscribed_apps` with no body: subscribes our app to the WABA's
    /// webhooks, to the app's callback. Meta's "Webhook overrides": subscribing
    /// "without any post body parameters" also removes a WABA-level override.
    pub async fn subscribe_app_to_waba(&self, number: &Number<'_>) -> Result<(), MetaError> {
        let call = Call::post(Host::Graph, format!("{}/subscribed_apps", number.waba_id))
            .token(number.token);
        self.send(call).await.map(drop)
    }

    /// `POST /{phone-number-id}` with `{"webhook_configuration": {"override_callback_uri",
    /// "verify_token"}}`: the number's own callback, which Meta resolves before the
    /// WABA's and the app's (Meta verifies it with a handshake there first).
    pub async fn set_number_callback(
        &self,
        number: &Number<'_>,
        callback: &Callback<'_>,
    ) -> Result<(), MetaError> {
        let call = Call::post(Host::Graph, number.phone_number_id)
            .token(number.token)
            .json(json!({"webhook_configuration": {
                "override_callback_uri": callback.url,
                "verify_token": callback.verify_token,
            }}));
        self.send(call).await.map(drop)
    }

    /// `POST /{phone-number-id}` with an empty `override_callback_uri`: the number's own
    /// callback removed ("Webhook overrides": "set override_callback_uri to an empty
    /// string").
    pub async fn remove_number_callback(&self, number: &Number<'_>) -> Result<(), MetaError> {
        let call = Call::post(Host::Graph, number.phone_number_id)
            .token(number.token)
            .json(json!({"webhook_configuration": {"override_callback_uri": ""}}));
        self.send(call).await.map(drop)
    }

    /// `GET /{phone-number-id}?fields=status,platform_type,display_phone_number`: whether
    /// the number is on the Cloud API already, and how Meta displays it.
    pub async fn number_on_cloud(&self, number: &Number<'_>) -> Result<NumberOnCloud, MetaError> {
        let call = Call::get(Host::Graph, number.phone_number_id)
            .token(number.token)
            .query("fields", "status,platform_type,display_phone_number");
        let answer = self.send(call).await?;
        Ok(NumberOnCloud {
            status: text(&answer, "status"),
            platform_type: text(&answer, "platform_type"),
            display_phone_number: text(&answer, "display_phone_number"),
        })
    }

    /// `POST /{phone-number-id}/smb_app_data` with `{"messaging_product": "whatsapp",
    /// "sync_type": …}`: asks Meta to sync a WhatsApp Business app number's contacts
    /// (`smb_app_state_sync`) or history (`history`); Meta answers a `request_id` (Onboard
    /// WhatsApp Business app users). Each can be asked once: never repeated.
    pub async fn request_sync(
        &self,
        number: &Number<'_>,
        sync_type: &str,
    ) -> Result<(), MetaError> {
        let call = Call::post(
            Host::Graph,
            format!("{}/smb_app_data", number.phone_number_id),
        )
        .token(number.token)
        .json(json!({"messaging_product": "whatsapp", "sync_type": sync_type}))
        .never_repeat();
        self.send(call).await.map(drop)
    }

    /// `GET /{waba-id}/phone_numbers?fields=id,display_phone_number,webhook_configuration`:
    /// the WABA's numbers, each with how Meta displays it and whether it has a callback of
    /// its own (`webhook_configuration.phone_number`, "Webhook overrides").
    pub async fn waba_numbers(&self, number: &Number<'_>) -> Result<Vec<WabaNumber>, MetaError> {
        let call = Call::get(Host::Graph, format!("{}/phone_numbers", number.waba_id))
            .token(number.token)
            .query("fields", "id,display_phone_number,webhook_configuration");
        let numbers = self.list_all(call, MAX_NUMBER_PAGES).await?;
        Ok(numbers
            .iter()
            .map(|number| WabaNumber {
                id: text(number, "id"),
                display_phone_number: text(number, "display_phone_number"),
                own_callback: number
                    .pointer("/webhook_configuration/phone_number")
                    .and_then(Value::as_str)
                    .is_some_and(|url| !url.is_empty()),
            })
            .filter(|number| !number.id.is_empty())
            .collect())
    }

    /// `GET /{phone-number-id}`: the number's status, quality and names.
    pub async fn phone_number_status(
        &self,
        number: &Number<'_>,
    ) -> Result<NumberStatus, MetaError> {
        let call = Call::get(Host::Graph, number.phone_number_id)
            .token(number.token)
            .query("fields", phone_fields(self.version()));
        let answer = self.send(call).await?;
        Ok(NumberStatus {
            display_phone_number: text(&answer, "display_phone_number"),
            verified_name: text(&answer, "verified_name"),
            quality_rating: text(&answer, "quality_rating"),
            code_verification_status: text(&answer, "code_verification_status"),
            name_status: text(&answer, "name_status"),
            messaging_limit_tier: Some(text(&answer, "whatsapp_business_manager_messaging_limit"))
                .filter(|limit| !limit.is_empty())
                .unwrap_or_else(|| text(&answer, "messaging_limit_tier")),
            throughput_level: answer
                .get("throughput")
                .map(|throughput| text(throughput, "level"))
                .unwrap_or_default(),
            status: text(&answer, "status"),
            platform_type: text(&answer, "platform_type"),
            webhooks: answer
                .get("webhook_configuration")
                .map(|config| WebhookConfiguration {
                    phone_number: text(config, "phone_number"),
                    whatsapp_business_account: text(config, "whatsapp_business_account"),
                    application: text(config, "application"),
                })
                .unwrap_or_default(),
        })
    }

    /// `GET /{waba-id}`: the WhatsApp Business Account and its review.
    pub async fn waba_info(&self, number: &Number<'_>) -> Result<BusinessAccount, MetaError> {
        let call = Call::get(Host::Graph, number.waba_id)
            .token(number.token)
            .query("fields", WABA_FIELDS);
        let answer = self.send(call).await?;
        Ok(BusinessAccount {
            id: text(&answer, "id"),
            name: text(&answer, "name"),
            account_review_status: text(&answer, "account_review_status"),
        })
    }

    /// `GET /{waba-id}/subscribed_apps`: the apps the WABA's webhooks go to.
    pub async fn waba_subscribed_apps(
        &self,
        number: &Number<'_>,
    ) -> Result<Vec<SubscribedApp>, MetaError> {
        let call = Call::get(Host::Graph, format!("{}/subscribed_apps", number.waba_id))
            .token(number.token);
        let answer = self.send(call).await?;
        let apps = match answer.get("data") {
            Some(Value::Array(apps)) => apps.as_slice(),
            _ => &[],
        };
        Ok(apps
            .iter()
            .map(|app| {
                let data = app
                    .get("whatsapp_business_api_data")
                    .unwrap_or(&Value::Null);
                SubscribedApp {
                    app_id: text(data, "id"),
                    name: text(data, "name"),
                    override_callback_uri: text(app, "override_callback_uri"),
                }
            })
            .collect())
    }

    /// `GET /oauth/access_token?client_id&client_secret&code`: the Embedded Signup
    /// code for a business token. A code is single-use: never repeated.
    pub async fn exchange_signup_code(
        &self,
        app: &MetaApp,
        code: &str,
    ) -> Result<String, MetaError> {
        let call = Call::get(Host::Graph, "oauth/access_token")
            .query("client_id", app.id.clone())
            .query("client_secret", app.secret.expose_secret())
            .query("code", code)
            .never_repeat();
        access_token_of(&self.send(call).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messaging_limit_field_follows_the_version() {
        assert!(phone_fields("v25.0").contains("whatsapp_business_manager_messaging_limit"));
        assert!(phone_fields("v24.0").contains("whatsapp_business_manager_messaging_limit"));
        let old = phone_fields("v23.0");
        assert!(old.contains("messaging_limit_tier") && !old.contains("whatsapp_business_manager"));
    }
}
