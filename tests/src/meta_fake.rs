//! A stand-in for Meta's Graph API that keeps state and enforces what Meta enforces on
//! the calls Patchbay makes to set up WhatsApp numbers and Messenger menus. Every answer
//! and every refusal below cites where Meta (or Chatwoot's specs of the same calls) shows
//! it; nothing here comes from Patchbay's own understanding.
//!
//! Mounted at a low priority, so that a test's own mocks answer first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Meta's number registration allowance: "Requests to the registration endpoint are
/// limited to 10 requests per business number in a 72 hour moving window" (Cloud API
/// reference, Registration).
const REGISTER_ALLOWANCE: usize = 10;

#[derive(Clone, Debug, Default)]
pub struct Number {
    pub waba_id: String,
    /// `CONNECTED` once registered.
    pub status: String,
    /// The number's two-step verification PIN, once it has one.
    pub pin: Option<String>,
    /// The number's own callback (`webhook_configuration.phone_number`).
    pub callback: Option<String>,
    pub register_calls: usize,
    /// A WhatsApp Business app number (coexistence): registering it disconnects the app.
    pub business_app: bool,
    pub app_disconnected: bool,
    /// The syncs Meta took, in order (`smb_app_state_sync`, `history`).
    pub syncs: Vec<String>,
    /// Sync requests to refuse before taking them (a passing failure at Meta).
    pub failing_syncs: usize,
    /// How Meta displays the number (default "+1 555-000-1111").
    pub display_phone_number: Option<String>,
    /// The only token that may act on the number, when set (any token otherwise).
    pub token: Option<String>,
    /// Meta's rating of the number: `GREEN` (the default once registered), `YELLOW`,
    /// `RED` or `NA` (Cloud API reference, WhatsApp Business Phone Number:
    /// `quality_rating`; the WABA's phone_numbers list shows `UNKNOWN` too).
    pub quality_rating: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Waba {
    pub subscribed: bool,
    /// The WABA-level override of our app's subscription.
    pub callback: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    numbers: HashMap<String, Number>,
    wabas: HashMap<String, Waba>,
    /// Pages (by page token) with a Get Started button.
    get_started: HashMap<String, String>,
    menus: HashMap<String, Value>,
    /// Ids whose subscription was deleted (`DELETE /{id}/subscribed_apps`).
    unsubscribed: Vec<String>,
    /// What debug_token says of each token it knows (others are invalid).
    grants: HashMap<String, Value>,
    /// Tokens Meta invalidated: every call with one is refused (error 190).
    revoked: Vec<String>,
}

/// The stand-in; clones share one state.
#[derive(Clone, Debug)]
pub struct FakeMeta {
    state: Arc<Mutex<State>>,
    /// The app-level callback configured in Meta's dashboard.
    app_callback: String,
    app_id: String,
}

impl FakeMeta {
    pub fn new(app_callback: &str, app_id: &str) -> Self {
        Self {
            state: Arc::default(),
            app_callback: app_callback.to_owned(),
            app_id: app_id.to_owned(),
        }
    }

    /// Mounts the stand-in on `server`, under every test's own mocks.
    pub async fn mount(&self, server: &MockServer) {
        Mock::given(wiremock::matchers::any())
            .respond_with(self.clone())
            .with_priority(u8::MAX)
            .mount(server)
            .await;
    }

    /// Declares a number of `waba_id`: a new one (`PENDING`, no PIN), or one registered
    /// before with its two-step PIN (`CONNECTED`).
    pub fn add_number(&self, phone_number_id: &str, waba_id: &str, registered_pin: Option<&str>) {
        let mut state = self.state.lock().expect("state");
        state.numbers.insert(
            phone_number_id.to_owned(),
            Number {
                waba_id: waba_id.to_owned(),
                status: if registered_pin.is_some() {
                    "CONNECTED"
                } else {
                    "PENDING"
                }
                .to_owned(),
                pin: registered_pin.map(str::to_owned),
                ..Number::default()
            },
        );
    }

    /// Lets only `token` act on the number (as Meta lets only the tokens with access to
    /// its WABA), and sets how Meta displays it.
    pub fn restrict_number(&self, phone_number_id: &str, token: &str, display: &str) {
        let mut state = self.state.lock().expect("state");
        if let Some(number) = state.numbers.get_mut(phone_number_id) {
            number.token = Some(token.to_owned());
            number.display_phone_number = Some(display.to_owned());
        }
    }

    /// debug_token says `token` is a page token of `page_id`: the shape of a real
    /// answer recorded in bk-rs/facebook-apis-rs,
    /// facebook-access-token-api/tests/response_body_json_files/
    /// debug_token__page_access_token.json (8be773f), `profile_id` being "the ID of the
    /// page this token contains" (Graph API reference, debug_token).
    pub fn grant_page_token(&self, token: &str, page_id: &str) {
        self.grant(
            token,
            json!({"app_id": self.app_id, "type": "PAGE", "application": "Patchbay",
                "data_access_expires_at": 1_900_000_000, "expires_at": 0, "is_valid": true,
                "profile_id": page_id,
                "scopes": ["pages_show_list", "pages_messaging", "pages_manage_metadata"],
                "granular_scopes": [
                    {"scope": "pages_show_list", "target_ids": [page_id]},
                    {"scope": "pages_messaging", "target_ids": [page_id]}],
                "user_id": "10222270944537964"}),
        );
    }

    /// debug_token says `token` is a user token granted `waba_id`: Meta's Embedded
    /// Signup example ("Manage accounts", solution providers), `target_ids` naming the
    /// WABAs under both WhatsApp scopes.
    pub fn grant_waba_token(&self, token: &str, waba_id: &str) {
        self.grant(
            token,
            json!({"app_id": self.app_id, "application": "Patchbay",
                "data_access_expires_at": 1_900_000_000, "expires_at": 1_900_000_000,
                "granular_scopes": [
                    {"scope": "whatsapp_business_management", "target_ids": [waba_id]},
                    {"scope": "whatsapp_business_messaging", "target_ids": [waba_id]}],
                "is_valid": true,
                "scopes": ["whatsapp_business_management", "whatsapp_business_messaging", "public_profile"],
                "type": "USER", "user_id": "10222270944537964"}),
        );
    }

    fn grant(&self, token: &str, data: Value) {
        let mut state = self.state.lock().expect("state");
        state.grants.insert(token.to_owned(), data);
    }

    /// Meta invalidates `token` (its user changed their password, say).
    pub fn revoke(&self, token: &str) {
        let mut state = self.state.lock().expect("state");
        state.revoked.push(token.to_owned());
    }

    /// Meta rates the number `rating` (`GREEN`, `YELLOW`, `RED`).
    pub fn set_quality(&self, phone_number_id: &str, rating: &str) {
        let mut state = self.state.lock().expect("state");
        if let Some(number) = state.numbers.get_mut(phone_number_id) {
            number.quality_rating = Some(rating.to_owned());
        }
    }

    /// Declares a WhatsApp Business app number of `waba_id` (coexistence).
    pub fn add_business_app_number(&self, phone_number_id: &str, waba_id: &str) {
        self.add_number(phone_number_id, waba_id, None);
        let mut state = self.state.lock().expect("state");
        if let Some(number) = state.numbers.get_mut(phone_number_id) {
            number.business_app = true;
        }
    }

    /// Refuses the next `count` sync requests of a number (then takes them).
    pub fn fail_syncs(&self, phone_number_id: &str, count: usize) {
        let mut state = self.state.lock().expect("state");
        if let Some(number) = state.numbers.get_mut(phone_number_id) {
            number.failing_syncs = count;
        }
    }

    /// Sets a number's status (`DISCONNECTED`: registered with a PIN, but not on the
    /// Cloud API here).
    pub fn set_status(&self, phone_number_id: &str, status: &str) {
        let mut state = self.state.lock().expect("state");
        if let Some(number) = state.numbers.get_mut(phone_number_id) {
            number.status = status.to_owned();
        }
    }

    /// Sets a WABA-level override of our app's subscription (as an earlier version of
    /// Patchbay did).
    pub fn set_waba_callback(&self, waba_id: &str, url: &str) {
        let mut state = self.state.lock().expect("state");
        let waba = state.wabas.entry(waba_id.to_owned()).or_default();
        waba.subscribed = true;
        waba.callback = Some(url.to_owned());
    }

    pub fn number(&self, phone_number_id: &str) -> Number {
        let state = self.state.lock().expect("state");
        state
            .numbers
            .get(phone_number_id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn waba(&self, waba_id: &str) -> Waba {
        let state = self.state.lock().expect("state");
        state.wabas.get(waba_id).cloned().unwrap_or_default()
    }

    /// Where Meta sends `phone_number_id`'s webhooks: "the system first checks if your
    /// app has designated an alternate callback URL for the business phone number…
    /// If the phone number has no alternate, the system checks if the WABA… If the WABA
    /// also has no alternate, the webhook falls back to your app's callback URL"
    /// (Meta, "Webhook overrides").
    pub fn webhook_target(&self, phone_number_id: &str) -> String {
        let state = self.state.lock().expect("state");
        let number = state
            .numbers
            .get(phone_number_id)
            .cloned()
            .unwrap_or_default();
        let waba = state
            .wabas
            .get(&number.waba_id)
            .cloned()
            .unwrap_or_default();
        number
            .callback
            .or(waba.callback)
            .unwrap_or_else(|| self.app_callback.clone())
    }

    pub fn set_get_started(&self, page_token: &str, payload: &str) {
        let mut state = self.state.lock().expect("state");
        state
            .get_started
            .insert(page_token.to_owned(), payload.to_owned());
    }

    pub fn get_started(&self, page_token: &str) -> Option<String> {
        let state = self.state.lock().expect("state");
        state.get_started.get(page_token).cloned()
    }

    /// The ids (pages, Instagram accounts, WABAs) whose subscription was deleted.
    pub fn unsubscribed(&self) -> Vec<String> {
        let state = self.state.lock().expect("state");
        state.unsubscribed.clone()
    }

    pub fn menu(&self, page_token: &str) -> Option<Value> {
        let state = self.state.lock().expect("state");
        state.menus.get(page_token).cloned()
    }
}

/// `{"success": true}`: Meta's answer to register, subscribed_apps and the number's
/// webhook_configuration ("Webhook overrides"; Chatwoot
/// spec/services/whatsapp/facebook_api_client_spec.rb).
fn success() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"success": true}))
}

/// Meta's error envelope (Graph API, "Handling errors").
fn error(code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": {
        "message": message, "type": "OAuthException", "code": code,
        "fbtrace_id": "AbCdEfGhIjK"}}))
}

fn not_found() -> ResponseTemplate {
    error(
        100,
        "Unsupported request - method type or object does not exist",
    )
}

impl Respond for FakeMeta {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token = request
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        let mut state = self.state.lock().expect("state");
        if request.url.path().ends_with("/debug_token") {
            let input = request
                .url
                .query_pairs()
                .find(|(key, _)| key == "input_token")
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            let data = match state.grants.get(&input) {
                Some(data) if !state.revoked.contains(&input) => data.clone(),
                // A token Meta invalidated: its grant as before, is_valid false, with
                // the session's error (bk-rs/facebook-apis-rs,
                // facebook-access-token-api/tests/response_body_json_files/
                // debug_token__user_access_token_4.json, 8be773f).
                Some(data) => {
                    let mut data = data.clone();
                    data["is_valid"] = json!(false);
                    data["error"] = json!({"code": 190, "subcode": 460,
                        "message": "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."});
                    data
                }
                // A token Meta cannot read at all: no app, no grant (the same
                // repository's 200__cannot_parse_access_token.json).
                None => json!({"is_valid": false, "scopes": [],
                    "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"}}),
            };
            return ResponseTemplate::new(200).set_body_json(json!({"data": data}));
        }
        if state.revoked.contains(&token) {
            // Graph API, "Access token errors": 190 with subcode 460, the session
            // invalidated.
            return ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
                "type": "OAuthException", "code": 190, "error_subcode": 460,
                "fbtrace_id": "AbCdEfGhIjK"}}));
        }
        if token.is_empty() {
            // Graph API: "An active access token must be used to query information".
            return error(
                2500,
                "An active access token must be used to query information about the current user.",
            );
        }
        // /v25.0/{node}[/{edge}]
        let segments: Vec<&str> = request.url.path().split('/').skip(2).collect();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let query = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        let method = request.method.as_str();
        // A number only the tokens with access to it may act on: Graph's answer for an
        // object the token cannot load (code 100, subcode 33).
        if let Some(id) = segments.first()
            && let Some(Some(owner)) = state.numbers.get(*id).map(|number| number.token.clone())
            && owner != token
        {
            return ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": format!("Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api", method.to_lowercase()),
                "type": "GraphMethodException", "code": 100, "error_subcode": 33,
                "fbtrace_id": "AbCdEfGhIjK"}}));
        }
        match (method, segments.as_slice()) {
            // GET /{waba-id}?fields=id,name,account_review_status (WhatsApp Business
            // Account reference).
            ("GET", [id]) if is_waba(&state, id) => ResponseTemplate::new(200).set_body_json(
                json!({"id": id, "name": "Example Store", "account_review_status": "APPROVED"}),
            ),
            // GET /{phone-number-id}?fields=…: the fields of Chatwoot's
            // spec/services/whatsapp/health_service_spec.rb stub; webhook_configuration
            // as "Webhook overrides" shows it (`whatsapp_business_account` "only
            // included if the WABA… also has an alternate callback URL set").
            ("GET", [id]) if state.numbers.contains_key(*id) || is_id(id) => {
                let number = state
                    .numbers
                    .entry((*id).to_owned())
                    .or_insert_with(|| Number {
                        status: "PENDING".into(),
                        ..Number::default()
                    });
                let number = number.clone();
                let waba = state
                    .wabas
                    .get(&number.waba_id)
                    .cloned()
                    .unwrap_or_default();
                let mut configuration = json!({"application": self.app_callback});
                if let Some(url) = &number.callback {
                    configuration["phone_number"] = json!(url);
                }
                if let Some(url) = &waba.callback {
                    configuration["whatsapp_business_account"] = json!(url);
                }
                let registered = number.status == "CONNECTED";
                let shown = number
                    .display_phone_number
                    .clone()
                    .unwrap_or_else(|| "+1 555-000-1111".to_owned());
                ResponseTemplate::new(200).set_body_json(json!({
                    "id": id,
                    "display_phone_number": shown,
                    "verified_name": "Example Store",
                    // A number not registered yet has no rating nor reviewed name
                    // (facebook/openapi, business-messaging-api_v23.0.yaml, the
                    // unregistered number example: quality_rating NA, name_status NONE).
                    "name_status": if registered { "APPROVED" } else { "NONE" },
                    "quality_rating": number.quality_rating.as_deref()
                        .unwrap_or(if registered { "GREEN" } else { "NA" }),
                    "whatsapp_business_manager_messaging_limit": "TIER_250",
                    "status": number.status,
                    "code_verification_status": "VERIFIED",
                    "webhook_configuration": configuration,
                    "throughput": {"level": if registered { "STANDARD" } else { "NOT_APPLICABLE" }},
                    // Chatwoot treats NOT_APPLICABLE as a number still to register
                    // (embedded_signup_service.rb, webhook_setup_service_spec.rb).
                    "platform_type": if registered { "CLOUD_API" } else { "NOT_APPLICABLE" },
                }))
            }
            // POST /{phone-number-id}/register {"messaging_product":"whatsapp","pin"}.
            ("POST", [id, "register"]) => {
                let number = state.numbers.entry((*id).to_owned()).or_default();
                number.register_calls += 1;
                // "registering… disconnects the app" (Onboard WhatsApp Business app users).
                number.app_disconnected |= number.business_app;
                if number.register_calls > REGISTER_ALLOWANCE {
                    // Error codes: 133016 "Account register deregister rate limit
                    // exceeded".
                    return error(
                        133_016,
                        "(#133016) Account register deregister rate limit exceeded",
                    );
                }
                let pin = body.get("pin").and_then(Value::as_str).unwrap_or_default();
                match &number.pin {
                    // Error codes: 133005 "Two step verification PIN Mismatch".
                    Some(existing) if existing != pin => {
                        error(133_005, "(#133005) Two step verification PIN Mismatch")
                    }
                    _ => {
                        number.pin = Some(pin.to_owned());
                        number.status = "CONNECTED".into();
                        success()
                    }
                }
            }
            // GET /{waba-id}/subscribed_apps ("Webhook overrides").
            ("GET", [waba, "subscribed_apps"]) => {
                let waba = state.wabas.get(*waba).cloned().unwrap_or_default();
                let data = if waba.subscribed {
                    let mut app = json!({"whatsapp_business_api_data": {
                        "id": self.app_id, "link": "https://www.facebook.com/games/?app_id=1",
                        "name": "Patchbay"}});
                    if let Some(url) = &waba.callback {
                        app["override_callback_uri"] = json!(url);
                    }
                    vec![app]
                } else {
                    vec![]
                };
                ResponseTemplate::new(200).set_body_json(json!({"data": data}))
            }
            // POST /{waba-id}/subscribed_apps: with override_callback_uri and
            // verify_token it sets the WABA's override; "without any post body
            // parameters" it subscribes, and removes an override ("Webhook overrides").
            ("POST", [waba, "subscribed_apps"]) => {
                let waba = state.wabas.entry((*waba).to_owned()).or_default();
                waba.subscribed = true;
                waba.callback = body
                    .get("override_callback_uri")
                    .and_then(Value::as_str)
                    .filter(|url| !url.is_empty())
                    .map(str::to_owned);
                success()
            }
            // DELETE /{id}/subscribed_apps: the page's (Graph API reference,
            // Page/subscribed_apps, Deleting: `{"success": true}`), or the Instagram
            // account's, webhooks stop reaching the app.
            ("DELETE", [id, "subscribed_apps"]) => {
                if let Some(waba) = state.wabas.get_mut(*id) {
                    waba.subscribed = false;
                    waba.callback = None;
                }
                state.unsubscribed.push((*id).to_owned());
                success()
            }
            // GET /{waba-id}/phone_numbers (Hosted Embedded Signup's answer shape).
            ("GET", [waba, "phone_numbers"]) => {
                let data: Vec<Value> = state
                    .numbers
                    .iter()
                    .filter(|(_, number)| number.waba_id == *waba)
                    .map(|(id, number)| {
                        let mut configuration = json!({"application": self.app_callback});
                        if let Some(url) = &number.callback {
                            configuration["phone_number"] = json!(url);
                        }
                        let shown = number
                            .display_phone_number
                            .clone()
                            .unwrap_or_else(|| "+1 555-000-1111".to_owned());
                        json!({"id": id, "display_phone_number": shown,
                            "verified_name": "Example Store",
                            "webhook_configuration": configuration})
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"data": data}))
            }
            // POST /{phone-number-id} {"webhook_configuration": {"override_callback_uri",
            // "verify_token"}}; an empty URI removes it ("Webhook overrides"). Meta asks
            // for the app to be subscribed to the WABA first: "your app must already
            // be subscribed".
            ("POST", [id]) if body.get("webhook_configuration").is_some() => {
                let Some(number) = state.numbers.get(*id).cloned() else {
                    return not_found();
                };
                let subscribed = state
                    .wabas
                    .get(&number.waba_id)
                    .is_some_and(|w| w.subscribed);
                if !number.waba_id.is_empty() && !subscribed {
                    return error(
                        100,
                        "(#100) The app is not subscribed to the WhatsApp Business Account",
                    );
                }
                let url = body
                    .pointer("/webhook_configuration/override_callback_uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(number) = state.numbers.get_mut(*id) {
                    number.callback = (!url.is_empty()).then(|| url.to_owned());
                }
                success()
            }
            // POST /{phone-number-id}/smb_app_data {"messaging_product":"whatsapp",
            // "sync_type"}: answers a request_id; "You can only perform this step once"
            // (Onboard WhatsApp Business app users).
            ("POST", [id, "smb_app_data"]) => {
                let Some(number) = state.numbers.get_mut(*id) else {
                    return not_found();
                };
                let sync_type = body
                    .get("sync_type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !number.business_app
                    || !["smb_app_state_sync", "history"].contains(&sync_type)
                    || number.syncs.iter().any(|done| done == sync_type)
                {
                    return error(100, "(#100) Invalid parameter");
                }
                if number.failing_syncs > 0 {
                    number.failing_syncs -= 1;
                    return ResponseTemplate::new(500).set_body_json(json!({"error": {
                        "message": "An unexpected error has occurred. Please retry your request later.",
                        "type": "OAuthException", "code": 2, "is_transient": true,
                        "fbtrace_id": "AbCdEfGhIjK"}}));
                }
                number.syncs.push(sync_type.to_owned());
                ResponseTemplate::new(200).set_body_json(
                    json!({"messaging_product": "whatsapp", "request_id": format!("req-{}", number.syncs.len())}),
                )
            }
            // GET /me/messenger_profile?fields=get_started.
            ("GET", ["me", "messenger_profile"])
                if query("fields").as_deref() == Some("get_started") =>
            {
                let data = match state.get_started.get(&token) {
                    Some(payload) => vec![json!({"get_started": {"payload": payload}})],
                    None => vec![],
                };
                ResponseTemplate::new(200).set_body_json(json!({"data": data}))
            }
            // POST /me/messenger_profile: a persistent menu needs a Get Started button,
            // set before or with it ("(#100) You must set a Get Started button if you
            // also wish to use persistent menu.").
            ("POST", ["me", "messenger_profile"]) => {
                if let Some(payload) = body.pointer("/get_started/payload").and_then(Value::as_str)
                {
                    state.get_started.insert(token.clone(), payload.to_owned());
                }
                if let Some(menu) = body.get("persistent_menu") {
                    if !state.get_started.contains_key(&token) {
                        return error(
                            100,
                            "(#100) You must set a Get Started button if you also wish to use persistent menu.",
                        );
                    }
                    state.menus.insert(token, menu.clone());
                }
                ResponseTemplate::new(200).set_body_json(json!({"result": "success"}))
            }
            _ => not_found(),
        }
    }
}

fn is_waba(state: &State, id: &str) -> bool {
    state.wabas.contains_key(id) || state.numbers.values().any(|number| number.waba_id == id)
}

fn is_id(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}
