//! WhatsApp Cloud API calls: phone number registration, WABA webhook subscription,
//! health, and the Embedded Signup code exchange.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::graph::{access_token_of, text};
use super::{Call, GraphClient, Host, MetaApp, MetaError};
use crate::domain::account::whatsapp::{BusinessAccount, NumberStatus, SubscribedApp};

/// The phone number fields GetWhatsAppHealth asks for.
pub const PHONE_FIELDS: &str = "display_phone_number,verified_name,quality_rating,code_verification_status,name_status,messaging_limit_tier,throughput,status";
pub const WABA_FIELDS: &str = "id,name,account_review_status";

/// A WhatsApp Cloud number and the token that acts for it.
pub struct Number<'a> {
    pub phone_number_id: &'a str,
    pub waba_id: &'a str,
    pub token: &'a str,
}

/// Where the WABA's webhooks go, and the token Meta's handshake there must carry.
pub struct Callback<'a> {
    pub url: &'a str,
    pub verify_token: &'a str,
}

impl GraphClient {
    /// `POST /{phone-number-id}/register`: makes the number usable for Cloud API
    /// messaging, protected by the two-step verification `pin`.
    pub async fn register_phone_number(
        &self,
        number: &Number<'_>,
        pin: &str,
    ) -> Result<(), MetaError> {
        let call = Call::post(Host::Graph, format!("{}/register", number.phone_number_id))
            .token(number.token)
            .json(json!({ "messaging_product": "whatsapp", "pin": pin }));
        self.send(call).await.map(drop)
    }

    /// `POST /{waba-id}/subscribed_apps`: subscribes our app to the WABA's webhooks,
    /// sent to the account's own callback URL.
    pub async fn subscribe_waba(
        &self,
        number: &Number<'_>,
        callback: &Callback<'_>,
    ) -> Result<(), MetaError> {
        let call = Call::post(Host::Graph, format!("{}/subscribed_apps", number.waba_id))
            .token(number.token)
            .json(json!({
                "override_callback_uri": callback.url,
                "verify_token": callback.verify_token,
            }));
        self.send(call).await.map(drop)
    }

    /// `GET /{phone-number-id}`: the number's status, quality and names.
    pub async fn phone_number_status(
        &self,
        number: &Number<'_>,
    ) -> Result<NumberStatus, MetaError> {
        let call = Call::get(Host::Graph, number.phone_number_id)
            .token(number.token)
            .query("fields", PHONE_FIELDS);
        let answer = self.send(call).await?;
        Ok(NumberStatus {
            display_phone_number: text(&answer, "display_phone_number"),
            verified_name: text(&answer, "verified_name"),
            quality_rating: text(&answer, "quality_rating"),
            code_verification_status: text(&answer, "code_verification_status"),
            name_status: text(&answer, "name_status"),
            messaging_limit_tier: text(&answer, "messaging_limit_tier"),
            throughput_level: answer
                .get("throughput")
                .map(|throughput| text(throughput, "level"))
                .unwrap_or_default(),
            status: text(&answer, "status"),
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
