//! Instagram Login (api.instagram.com) and Instagram Graph (graph.instagram.com) calls.

use secrecy::ExposeSecret;
use serde_json::Value;

use super::graph::access_token_of;
use super::{Call, GraphClient, Host, MetaApp, MetaError};

/// A token and how many seconds it lives, as Meta answers an exchange or refresh.
pub struct ExpiringToken {
    pub token: String,
    pub expires_in: Option<i64>,
}

/// An Instagram professional account, as its profile names it.
pub struct InstagramProfile {
    /// The id Instagram's webhooks name; `None` when Meta's answer has none.
    pub user_id: Option<String>,
    pub username: String,
}

pub const PROFILE_FIELDS: &str = "user_id,username,name,account_type";

/// The instagram calls of the Graph client (`GraphClient::instagram`).
pub struct InstagramGraph<'a>(&'a GraphClient);

impl GraphClient {
    pub fn instagram(&self) -> InstagramGraph<'_> {
        InstagramGraph(self)
    }
}

/// The client's plumbing (requests, retries, versions) under the product's calls.
impl std::ops::Deref for InstagramGraph<'_> {
    type Target = GraphClient;

    fn deref(&self) -> &GraphClient {
        self.0
    }
}

impl InstagramGraph<'_> {
    /// `POST api.instagram.com/oauth/access_token`: the code for a short-lived token.
    /// Instagram has answered both `{"data": [{…}]}` and the flat `{…}`; both are taken.
    /// Single-use code: never repeated.
    pub async fn instagram_code_for_token(
        &self,
        app: &MetaApp,
        code: &str,
        redirect_uri: &str,
    ) -> Result<String, MetaError> {
        let call = Call::post(Host::InstagramApi, "oauth/access_token")
            .form(vec![
                ("client_id", app.id.clone()),
                ("client_secret", app.secret.expose_secret().to_owned()),
                ("grant_type", "authorization_code".to_owned()),
                ("redirect_uri", redirect_uri.to_owned()),
                ("code", code.to_owned()),
            ])
            .never_repeat();
        let answer = self.send(call).await?;
        match answer.pointer("/data/0") {
            Some(first) => access_token_of(first),
            None => access_token_of(&answer),
        }
    }

    /// `GET graph.instagram.com/access_token?grant_type=ig_exchange_token`: a short-lived
    /// token for a long-lived one (60 days). Meta takes the token only in the query here.
    pub async fn instagram_long_lived(
        &self,
        app: &MetaApp,
        short: &str,
    ) -> Result<ExpiringToken, MetaError> {
        let call = Call::get(Host::InstagramGraphUnversioned, "access_token")
            .query("grant_type", "ig_exchange_token")
            .query("client_secret", app.secret.expose_secret())
            .query("access_token", short);
        expiring_token(&self.send(call).await?)
    }

    /// `GET graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token`: a
    /// long-lived token, at least a day old, for a fresh one.
    pub async fn instagram_refresh(&self, token: &str) -> Result<ExpiringToken, MetaError> {
        let call = Call::get(Host::InstagramGraphUnversioned, "refresh_access_token")
            .query("grant_type", "ig_refresh_token")
            .query("access_token", token);
        expiring_token(&self.send(call).await?)
    }

    /// `GET graph.instagram.com/{version}/me`: the professional account's profile. Its
    /// `user_id` is "the Instagram professional account ID… the value of the id field
    /// received in webhook notifications"; its `id` is app-scoped and never used here.
    /// Meta's page shows the answer under `data: [...]`; the flat object is taken too.
    pub async fn instagram_profile(&self, token: &str) -> Result<InstagramProfile, MetaError> {
        let call = Call::get(Host::InstagramGraph, "me")
            .token(token)
            .query("fields", PROFILE_FIELDS);
        let answer = self.send(call).await?;
        let profile = answer.pointer("/data/0").unwrap_or(&answer);
        // Ids come as strings or numbers, depending on the API version.
        let field = |key: &str| match profile.get(key) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        Ok(InstagramProfile {
            user_id: field("user_id").filter(|id| !id.is_empty()),
            username: field("username").unwrap_or_default(),
        })
    }

    /// `POST graph.instagram.com/{version}/{ig-user-id}/subscribed_apps?subscribed_fields=…`:
    /// the account's webhooks, to the app's callback (Instagram API with Instagram
    /// Login, Webhooks; Chatwoot's `Channel::Instagram#subscribe`).
    pub async fn subscribe_instagram(&self, user_id: &str, token: &str) -> Result<(), MetaError> {
        let call = Call::post(Host::InstagramGraph, format!("{user_id}/subscribed_apps"))
            .token(token)
            .query("subscribed_fields", SUBSCRIBED_FIELDS);
        self.send(call).await.map(drop)
    }

    /// `DELETE graph.instagram.com/{version}/{ig-user-id}/subscribed_apps`: the
    /// account's webhooks stop reaching our app.
    pub async fn unsubscribe_instagram(&self, user_id: &str, token: &str) -> Result<(), MetaError> {
        let call =
            Call::delete(Host::InstagramGraph, format!("{user_id}/subscribed_apps")).token(token);
        self.send(call).await.map(drop)
    }
}

/// The webhook fields an Instagram account is subscribed to.
pub const SUBSCRIBED_FIELDS: &str = "messages,messaging_postbacks,messaging_seen,message_reactions";

pub fn expiring_token(answer: &Value) -> Result<ExpiringToken, MetaError> {
    Ok(ExpiringToken {
        token: access_token_of(answer)?,
        expires_in: answer.get("expires_in").and_then(Value::as_i64),
    })
}
