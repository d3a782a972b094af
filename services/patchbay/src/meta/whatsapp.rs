//! WhatsApp Cloud API calls: phone number registration, WABA webhook subscription,
//! health, and the Embedded Signup code exchange.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::graph::access_token_of;
use super::{Call, GraphClient, Host, MetaApp, MetaError};

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

    pub async fn phone_number_status(&self, number: &Number<'_>) -> Result<Value, MetaError> {
        let call = Call::get(Host::Graph, number.phone_number_id)
            .token(number.token)
            .query("fields", PHONE_FIELDS);
        self.send(call).await
    }

    pub async fn waba_info(&self, number: &Number<'_>) -> Result<Value, MetaError> {
        let call = Call::get(Host::Graph, number.waba_id)
            .token(number.token)
            .query("fields", WABA_FIELDS);
        self.send(call).await
    }

    pub async fn waba_subscribed_apps(&self, number: &Number<'_>) -> Result<Value, MetaError> {
        let call = Call::get(Host::Graph, format!("{}/subscribed_apps", number.waba_id))
            .token(number.token);
        self.send(call).await
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
