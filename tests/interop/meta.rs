//! The stand-in Meta (and SendGrid) of the interop suite: every Graph, Instagram and Facebook Login
//! call that one success of each Meta-backed RPC makes, answered in the shapes Meta
//! documents (each answer cites its page). Tokens carry the client's tag from the
//! code it was given (`fb-python` → `EAAS-fb-python` → `EAAL-fb-python`), so that the
//! pages and Instagram accounts of one client's workspace are not another's.
//!
//! These answers only need to be right enough for the call to succeed: what Patchbay
//! sends Meta, call by call, is checked in the e2e suite's Meta tests.

use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The tag a token or code carries after its last `-` (`EAAL-fb-python` → `python`).
fn tag_of(text: &str) -> String {
    text.rsplit('-').next().unwrap_or_default().to_owned()
}

fn query(request: &Request, key: &str) -> String {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn bearer(request: &Request) -> String {
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

/// A page id of `tag`'s workspace (tags start with different letters): `page_id("python", 1)`.
pub fn page_id(tag: &str, n: u32) -> String {
    format!("71{:03}{n:03}", tag.bytes().next().unwrap_or(b'x'))
}

/// How the stand-in answers one route.
type Answerer = fn(&Request) -> Value;

struct Answer(Answerer);

impl Respond for Answer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json((self.0)(request))
    }
}

/// Facebook Login's code exchange, short-lived then long-lived; Embedded Signup's
/// code exchange is the same endpoint.
/// https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow#exchangecode
/// https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived
fn facebook_token(request: &Request) -> Value {
    let exchanged = query(request, "fb_exchange_token");
    let token = if exchanged.is_empty() {
        format!("EAAS-{}", query(request, "code"))
    } else {
        exchanged.replacen("EAAS-", "EAAL-", 1)
    };
    json!({"access_token": token, "token_type": "bearer", "expires_in": 5_183_944})
}

/// `GET /me/accounts`: the user's pages, each with its page token.
/// https://developers.facebook.com/docs/graph-api/reference/user/accounts/
fn user_pages(request: &Request) -> Value {
    let tag = tag_of(&bearer(request));
    let pages: Vec<Value> = [1, 2]
        .map(|n| {
            json!({
            "id": page_id(&tag, n), "name": format!("Acme {tag} {n}"), "category": "Company",
            "access_token": format!("EAAP-{n}-{tag}"), "tasks": ["MANAGE", "MESSAGING"]})
        })
        .into();
    json!({
        "data": pages,
        "paging": {"cursors": {"before": "QVFIUjE", "after": "QVFIUjE"}}
    })
}

/// `GET /{page-id}?fields=id,name,category,access_token`.
/// https://developers.facebook.com/docs/graph-api/reference/page/
fn page(request: &Request) -> Value {
    let id = request.url.path().rsplit('/').next().unwrap_or_default();
    json!({"id": id, "name": "Acme", "category": "Company",
        "access_token": format!("EAAP-{id}-{}", tag_of(&bearer(request)))})
}

/// Instagram Login's code exchange (`api.instagram.com/oauth/access_token`), in the
/// documented `data` shape.
/// https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/business-login#step-2--exchange-the-code-for-a-token
fn instagram_short(request: &Request) -> Value {
    let form = String::from_utf8_lossy(&request.body).into_owned();
    let code = form
        .split('&')
        .find_map(|pair| pair.strip_prefix("code="))
        .unwrap_or_default();
    json!({"data": [{"access_token": format!("IGQS-{code}"),
        "user_id": "17841400000000001", "permissions": "instagram_business_basic,instagram_business_manage_messages"}]})
}

/// `graph.instagram.com/access_token?grant_type=ig_exchange_token`.
/// https://developers.facebook.com/docs/instagram-platform/reference/access_token
fn instagram_long(request: &Request) -> Value {
    let short = query(request, "access_token");
    json!({"access_token": short.replacen("IGQS-", "IGQL-", 1), "token_type": "bearer",
        "expires_in": 5_183_944})
}

/// `graph.instagram.com/{version}/me?fields=user_id,username,…`.
/// https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/get-started#fields
fn instagram_me(request: &Request) -> Value {
    let tag = tag_of(&bearer(request));
    let user_id = format!("178414000000{:03}", tag.bytes().next().unwrap_or(b'x'));
    json!({"id": format!("app-scoped-{tag}"), "user_id": user_id,
        "username": format!("acme.{tag}"), "name": "Acme", "account_type": "BUSINESS"})
}

/// `GET /{phone-number-id}`: the number's status.
/// https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account-to-number-current-status/
fn phone_number(request: &Request) -> Value {
    let id = request.url.path().rsplit('/').next().unwrap_or_default();
    json!({"id": id, "display_phone_number": "+1 555-0100", "verified_name": "Acme",
        "quality_rating": "GREEN", "code_verification_status": "VERIFIED",
        "name_status": "APPROVED", "whatsapp_business_manager_messaging_limit": "TIER_1K",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"}, "status": "CONNECTED"})
}

/// `GET /{waba-id}`.
/// https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/
fn waba(request: &Request) -> Value {
    let id = request.url.path().rsplit('/').next().unwrap_or_default();
    json!({"id": id, "name": "Acme", "account_review_status": "APPROVED"})
}

/// `GET /{waba-id}/subscribed_apps`.
/// https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/subscribed_apps/
fn waba_apps(_: &Request) -> Value {
    json!({"data": [{"whatsapp_business_api_data": {
        "link": "https://www.facebook.com/games/?app_id=1234567890",
        "name": "Patchbay", "id": crate::META_APP_ID}}]})
}

/// `{"success": true}`: `POST /{phone-number-id}/register`, `POST /{waba-id}/subscribed_apps`,
/// `POST /{page-id}/subscribed_apps`, `POST /{phone-number-id}` (webhook_configuration),
/// `POST graph.instagram.com/{ig-user-id}/subscribed_apps` (as the Page edge answers).
/// https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/override/
/// https://developers.facebook.com/docs/whatsapp/cloud-api/reference/registration
/// https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/subscribed_apps/#Creating
/// https://developers.facebook.com/docs/graph-api/reference/page/subscribed_apps/#Creating
fn success(_: &Request) -> Value {
    json!({"success": true})
}

/// `GET /me/messenger_profile?fields=get_started`: a page with a Get Started button.
/// https://developers.facebook.com/docs/messenger-platform/reference/messenger-profile-api/get-started-button
fn get_started(_: &Request) -> Value {
    json!({"data": [{"get_started": {"payload": "GET_STARTED"}}]})
}

/// `POST` and `DELETE /me/messenger_profile`.
/// https://developers.facebook.com/docs/messenger-platform/reference/messenger-profile-api/
fn profile_result(_: &Request) -> Value {
    json!({"result": "success"})
}

/// SendGrid's `GET /v3/scopes`, which CheckIntegration asks with the API key.
/// https://www.twilio.com/docs/sendgrid/api-reference/api-key-permissions/retrieve-a-list-of-scopes-for-which-this-user-has-access
fn sendgrid_scopes(_: &Request) -> Value {
    json!({"scopes": ["mail.send", "alerts.read"]})
}

pub async fn stand_in() -> MockServer {
    let meta = MockServer::start().await;
    let v = r"/v[0-9]+\.[0-9]+";
    let mounts: [(&str, String, Answerer); 18] = [
        ("GET", "^/v3/scopes$".to_owned(), sendgrid_scopes),
        ("GET", format!("^{v}/oauth/access_token$"), facebook_token),
        ("GET", format!("^{v}/me/accounts$"), user_pages),
        (
            "POST",
            format!("^{v}/me/messenger_profile$"),
            profile_result,
        ),
        (
            "DELETE",
            format!("^{v}/me/messenger_profile$"),
            profile_result,
        ),
        ("GET", format!("^{v}/me/messenger_profile$"), get_started),
        ("POST", format!("^{v}/71[0-9]+/subscribed_apps$"), success),
        ("GET", format!("^{v}/71[0-9]+$"), page),
        ("POST", format!("^{v}/8[0-9]+/register$"), success),
        ("GET", format!("^{v}/8[0-9]+$"), phone_number),
        ("POST", format!("^{v}/8[0-9]+$"), success),
        ("POST", format!("^{v}/9[0-9]+/subscribed_apps$"), success),
        ("GET", format!("^{v}/9[0-9]+/subscribed_apps$"), waba_apps),
        ("GET", format!("^{v}/9[0-9]+$"), waba),
        ("POST", "^/oauth/access_token$".to_owned(), instagram_short),
        ("GET", "^/access_token$".to_owned(), instagram_long),
        ("GET", format!("^{v}/me$"), instagram_me),
        ("POST", format!("^{v}/178[0-9]+/subscribed_apps$"), success),
    ];
    for (verb, route, answer) in mounts {
        Mock::given(method(verb))
            .and(path_regex(route))
            .respond_with(Answer(answer))
            .mount(&meta)
            .await;
    }
    meta
}
