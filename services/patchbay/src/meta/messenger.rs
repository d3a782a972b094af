//! Facebook Login and Messenger calls: user tokens, pages, page subscriptions and the
//! Messenger profile (persistent menu).

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::graph::{access_token_of, text};
use super::instagram::{ExpiringToken, expiring_token};
use super::{Call, GraphClient, Host, MetaApp, MetaError};
use crate::domain::persistent_menu::{Button, Menu};

/// The webhook fields a Messenger page is subscribed to.
pub const MESSAGING_FIELDS: &str = "messages,messaging_postbacks,messaging_optins,message_deliveries,message_reads,messaging_referrals";
/// Pages of `/me/accounts` followed at most (100 pages of 25: 2,500 Facebook Pages).
const MAX_PAGE_LIST_PAGES: usize = 100;

/// A Facebook Page the user manages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FacebookPage {
    pub id: String,
    pub name: String,
    pub category: String,
}

/// A page as its manager sees it: its name, and the token that acts for it (empty when
/// Meta gave none: the user does not manage it, or did not grant the permission).
pub struct PageAccess {
    pub name: String,
    pub access_token: String,
}

/// The messenger calls of the Graph client (`GraphClient::messenger`).
pub struct MessengerGraph<'a>(&'a GraphClient);

impl GraphClient {
    pub fn messenger(&self) -> MessengerGraph<'_> {
        MessengerGraph(self)
    }
}

/// The client's plumbing (requests, retries, versions) under the product's calls.
impl std::ops::Deref for MessengerGraph<'_> {
    type Target = GraphClient;

    fn deref(&self) -> &GraphClient {
        self.0
    }
}

impl MessengerGraph<'_> {
    /// `GET /oauth/access_token?client_id&redirect_uri&client_secret&code`: the Facebook
    /// Login code for a short-lived user token. Single-use code: never repeated.
    pub async fn facebook_code_for_token(
        &self,
        app: &MetaApp,
        code: &str,
        redirect_uri: &str,
    ) -> Result<String, MetaError> {
        let call = Call::get(Host::Graph, "oauth/access_token")
            .query("client_id", app.id.clone())
            .query("redirect_uri", redirect_uri)
            .query("client_secret", app.secret.expose_secret())
            .query("code", code)
            .never_repeat();
        access_token_of(&self.send(call).await?)
    }

    /// `GET /oauth/access_token?grant_type=fb_exchange_token`: a long-lived user token.
    pub async fn facebook_long_lived(
        &self,
        app: &MetaApp,
        short: &str,
    ) -> Result<ExpiringToken, MetaError> {
        let call = Call::get(Host::Graph, "oauth/access_token")
            .query("grant_type", "fb_exchange_token")
            .query("client_id", app.id.clone())
            .query("client_secret", app.secret.expose_secret())
            .query("fb_exchange_token", short);
        expiring_token(&self.send(call).await?)
    }

    /// `GET /me/accounts`, every page of it: the Facebook Pages the user manages.
    pub async fn user_pages(&self, user_token: &str) -> Result<Vec<FacebookPage>, MetaError> {
        let call = Call::get(Host::Graph, "me/accounts")
            .token(user_token)
            .query("fields", "id,name,category");
        let pages = self.list_all(call, MAX_PAGE_LIST_PAGES).await?;
        Ok(pages
            .iter()
            .map(|page| FacebookPage {
                id: text(page, "id"),
                name: text(page, "name"),
                category: text(page, "category"),
            })
            .filter(|page| !page.id.is_empty())
            .collect())
    }

    /// `GET /{page-id}?fields=id,name,category,access_token`: the page and its token.
    pub async fn page_with_token(
        &self,
        user_token: &str,
        page_id: &str,
    ) -> Result<PageAccess, MetaError> {
        let call = Call::get(Host::Graph, page_id)
            .token(user_token)
            .query("fields", "id,name,category,access_token");
        let page = self.send(call).await?;
        Ok(PageAccess {
            name: text(&page, "name"),
            access_token: text(&page, "access_token"),
        })
    }

    /// `POST /{page-id}/subscribed_apps?subscribed_fields=…` with the page token.
    pub async fn subscribe_page(&self, page_id: &str, page_token: &str) -> Result<(), MetaError> {
        let call = Call::post(Host::Graph, format!("{page_id}/subscribed_apps"))
            .token(page_token)
            .form(vec![("subscribed_fields", MESSAGING_FIELDS.to_owned())]);
        self.send(call).await.map(drop)
    }

    /// `DELETE /{page-id}/subscribed_apps`: the page's webhooks stop reaching our app
    /// (Graph API reference, Page/subscribed_apps, Deleting).
    pub async fn unsubscribe_page(&self, page_id: &str, page_token: &str) -> Result<(), MetaError> {
        let call =
            Call::delete(Host::Graph, format!("{page_id}/subscribed_apps")).token(page_token);
        self.send(call).await.map(drop)
    }

    /// `GET /me/messenger_profile?fields=get_started`: whether the page has a Get
    /// Started button. Meta answers `{"data": [{"get_started": {"payload": …}}]}`, or
    /// `{"data": []}` for a page without one.
    pub async fn has_get_started(&self, page_token: &str) -> Result<bool, MetaError> {
        let call = Call::get(Host::Graph, "me/messenger_profile")
            .token(page_token)
            .query("fields", "get_started");
        let answer = self.send(call).await?;
        Ok(answer
            .get("data")
            .and_then(Value::as_array)
            .is_some_and(|data| data.iter().any(|item| item.get("get_started").is_some())))
    }

    /// `POST /me/messenger_profile` with `{"persistent_menu": […]}`: menus that passed
    /// `domain::persistent_menu::validate`, with a Get Started button of `payload`
    /// when given (Meta refuses a persistent menu on a page without one: "(#100) You
    /// must set a Get Started button if you also wish to use persistent menu").
    pub async fn set_persistent_menu(
        &self,
        page_token: &str,
        menus: &[Menu],
        get_started: Option<&str>,
    ) -> Result<(), MetaError> {
        let mut body = json!({ "persistent_menu": menu_json(menus) });
        if let Some(payload) = get_started {
            body["get_started"] = json!({ "payload": payload });
        }
        let call = Call::post(Host::Graph, "me/messenger_profile")
            .token(page_token)
            .json(body);
        self.send(call).await.map(drop)
    }

    /// `DELETE /me/messenger_profile` with `{"fields": ["persistent_menu"]}`.
    pub async fn delete_persistent_menu(&self, page_token: &str) -> Result<(), MetaError> {
        let call = Call::delete(Host::Graph, "me/messenger_profile")
            .token(page_token)
            .json(json!({ "fields": ["persistent_menu"] }));
        self.send(call).await.map(drop)
    }
}

/// Menus as the Messenger Profile API takes them.
fn menu_json(menus: &[Menu]) -> Value {
    Value::Array(
        menus
            .iter()
            .map(|menu| {
                json!({
                    "locale": menu.locale,
                    "composer_input_disabled": menu.composer_input_disabled,
                    "call_to_actions": menu.buttons.iter().map(button_json).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn button_json(button: &Button) -> Value {
    if button.kind == "postback" {
        return json!({"type": "postback", "title": button.title, "payload": button.payload});
    }
    let mut value = json!({"type": button.kind, "title": button.title, "url": button.url});
    if !button.webview_height_ratio.is_empty() {
        value["webview_height_ratio"] = json!(button.webview_height_ratio);
    }
    if button.messenger_extensions {
        value["messenger_extensions"] = json!(true);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn button(kind: &str, title: &str, payload: &str, url: &str) -> Button {
        Button {
            kind: kind.into(),
            title: title.into(),
            payload: payload.into(),
            url: url.into(),
            webview_height_ratio: String::new(),
            messenger_extensions: false,
        }
    }

    #[test]
    fn a_menu_becomes_metas_json() {
        let mut shop = button("web_url", "Shop", "", "https://shop.example/");
        shop.webview_height_ratio = "tall".into();
        shop.messenger_extensions = true;
        let menus = [Menu {
            locale: "default".into(),
            composer_input_disabled: false,
            buttons: vec![button("postback", "Talk to an agent", "AGENT", ""), shop],
        }];
        assert_eq!(
            menu_json(&menus),
            json!([{"locale": "default", "composer_input_disabled": false, "call_to_actions": [
                {"type": "postback", "title": "Talk to an agent", "payload": "AGENT"},
                {"type": "web_url", "title": "Shop", "url": "https://shop.example/",
                 "webview_height_ratio": "tall", "messenger_extensions": true}]}])
        );
    }
}
