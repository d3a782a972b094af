//! Facebook Login and Messenger against a fake Meta: user token and pages (with paging),
//! per-page subscription, the sealed user token handle, and the persistent menu.
//!
//! Recorded answers and where they come from:
//! - The code and `fb_exchange_token` exchanges (`access_token`, `token_type`,
//!   `expires_in`): Facebook Login, "Manually Build a Login Flow" and "Long-Lived
//!   Access Tokens".
//! - `GET /me/accounts` (`data[]` with `id`, `name`, `category`, `access_token`,
//!   `tasks`; `paging.cursors.after`, `paging.next`) and `GET /{page-id}`: Graph API
//!   reference, User/accounts and Page; "Paginated results".
//! - `{"success": true}` for `POST /{page-id}/subscribed_apps`: Graph API reference,
//!   Page/subscribed_apps; Chatwoot's `Channel::FacebookPage` subscribes the same way.
//! - `{"result": "success"}` and `{"data": [{"get_started": …}]}` for the Messenger
//!   Profile API: Messenger Platform reference, Messenger Profile API and Get Started.
//! - Error bodies (190, 200 permission): Graph API, "Handling errors".

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, META_APP_ID, META_APP_SECRET, OTHER_WORKSPACE, TestApp, backend_tests, create,
    credential, expect_code, get_account, graph_path, new_account, spawn_with_fake, test_meta,
    violated_fields,
};
use patchbay_sdk::tonic::Code;
use prost::Message;
use serde_json::json;
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    connect_lists_every_page_and_hands_out_no_meta_token,
    each_page_succeeds_or_fails_on_its_own,
    the_user_token_handle_belongs_to_its_workspace,
    the_persistent_menu_is_checked_then_set_or_deleted,
    a_page_without_get_started_gets_one_with_its_menu,
    a_subscription_cut_off_by_its_deadline_finishes_and_a_replay_resumes_it,
    a_connect_takes_a_page_another_workspace_owned,
    another_divisions_page_is_answered_without_it_and_costs_no_meta_call
);

const REDIRECT: &str = "https://app.example.test/messenger/callback";

async fn app_with_meta(backend: Backend) -> (TestApp, MockServer) {
    spawn_with_fake(backend, test_meta()).await
}

fn graph(rest: &str) -> String {
    graph_path(rest)
}

/// Facebook Login for `code`: short-lived token, long-lived `EAAL-long`, and two pages
/// of `/me/accounts` (three Facebook Pages).
async fn mount_login(meta: &MockServer) {
    Mock::given(method("GET"))
        .and(path(graph("oauth/access_token")))
        .and(query_param("client_id", META_APP_ID))
        .and(query_param("redirect_uri", REDIRECT))
        .and(query_param("client_secret", META_APP_SECRET))
        .and(query_param("code", "fb-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "EAAS-short", "token_type": "bearer", "expires_in": 5183}),
        ))
        .expect(1)
        .mount(meta)
        .await;
    Mock::given(method("GET"))
        .and(path(graph("oauth/access_token")))
        .and(query_param("grant_type", "fb_exchange_token"))
        .and(query_param("client_id", META_APP_ID))
        .and(query_param("client_secret", META_APP_SECRET))
        .and(query_param("fb_exchange_token", "EAAS-short"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "EAAL-long", "token_type": "bearer", "expires_in": 5_183_944}),
        ))
        .expect(1)
        .mount(meta)
        .await;
    let next = format!(
        "{}{}?access_token=EAAL-long&fields=id%2Cname%2Ccategory&limit=2&after=QVFIUjJ",
        meta.uri(),
        graph("me/accounts")
    );
    Mock::given(method("GET"))
        .and(path(graph("me/accounts")))
        .and(header("authorization", "Bearer EAAL-long"))
        .and(query_param("after", "QVFIUjJ"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "103", "name": "Acme Outlet", "category": "Shopping & retail",
                "access_token": "EAAP-103"}],
            "paging": {"cursors": {"before": "QVFIUjJ", "after": "QVFIUjJ"}}})))
        .expect(1)
        .mount(meta)
        .await;
    Mock::given(method("GET"))
        .and(path(graph("me/accounts")))
        .and(header("authorization", "Bearer EAAL-long"))
        .and(query_param("fields", "id,name,category"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"id": "101", "name": "Acme", "category": "Company", "access_token": "EAAP-101"},
                {"id": "102", "name": "Acme Support", "category": "Product/service", "access_token": "EAAP-102"}],
            "paging": {"cursors": {"before": "QVFIUjE", "after": "QVFIUjJ"}, "next": next}})))
        .up_to_n_times(1)
        .expect(1)
        .mount(meta)
        .await;
}

async fn connect(client: &patchbay_sdk::Client) -> proto::ConnectMessengerResponse {
    client
        .accounts()
        .connect_messenger(proto::ConnectMessengerRequest {
            code: "fb-code".into(),
            redirect_uri: REDIRECT.into(),
        })
        .await
        .expect("connect")
        .into_inner()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn connect_lists_every_page_and_hands_out_no_meta_token(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    mount_login(&meta).await;
    let connected = connect(&app.admin()).await;
    let pages: Vec<_> = connected
        .pages
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str(), p.category.as_str()))
        .collect();
    assert_eq!(
        pages,
        vec![
            ("101", "Acme", "Company"),
            ("102", "Acme Support", "Product/service"),
            ("103", "Acme Outlet", "Shopping & retail"),
        ]
    );
    let bytes = connected.encode_to_vec();
    for token in ["EAAS-short", "EAAL-long", "EAAP-101", "EAAP-103"] {
        assert!(!contains(&bytes, token), "{token} in the response");
    }
    assert!(!connected.user_token.is_empty());
}

async fn mount_page(meta: &MockServer, page: &str, subscribe: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(graph(page)))
        .and(header("authorization", "Bearer EAAL-long"))
        .and(query_param("fields", "id,name,category,access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": page, "name": format!("Page {page}"), "category": "Company",
            "access_token": format!("EAAP-{page}")})))
        .expect(1)
        .mount(meta)
        .await;
    Mock::given(method("POST"))
        .and(path(graph(&format!("{page}/subscribed_apps"))))
        .and(header("authorization", format!("Bearer EAAP-{page}").as_str()))
        .and(body_string(
            "subscribed_fields=messages%2Cmessaging_postbacks%2Cmessaging_optins%2Cmessage_deliveries%2Cmessage_reads%2Cmessaging_referrals",
        ))
        .respond_with(subscribe)
        .expect(1)
        .mount(meta)
        .await;
}

async fn each_page_succeeds_or_fails_on_its_own(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    mount_login(&meta).await;
    let ok = || ResponseTemplate::new(200).set_body_json(json!({"success": true}));
    mount_page(&meta, "101", ok()).await;
    mount_page(
        &meta,
        "102",
        ResponseTemplate::new(403).set_body_json(json!({"error": {
            "message": "(#200) The user must be an administrator of the page",
            "type": "OAuthException", "code": 200, "fbtrace_id": "Ab2"}})),
    )
    .await;
    mount_page(&meta, "103", ok()).await;
    let admin = app.admin();
    let handle = connect(&admin).await.user_token;
    let keyed = || {
        let mut request =
            patchbay_sdk::tonic::Request::new(proto::SubscribeMessengerPagesRequest {
                user_token: handle.clone(),
                page_ids: vec!["101".into(), "102".into(), "103".into()],
                division_id: None,
            });
        request
            .metadata_mut()
            .insert("idempotency-key", "pages-1".parse().expect("header"));
        request
    };
    let response = admin
        .accounts()
        .subscribe_messenger_pages(keyed())
        .await
        .expect("subscribe")
        .into_inner();
    let outcome: Vec<_> = response
        .results
        .iter()
        .map(|r| (r.page_id.as_str(), r.success, r.error_code.as_str()))
        .collect();
    assert_eq!(
        outcome,
        vec![
            ("101", true, ""),
            ("102", false, "FAILED_PRECONDITION"),
            ("103", true, "")
        ]
    );
    assert!(response.results[1].error_message.contains("administrator"));
    let bytes = response.encode_to_vec();
    assert!(!contains(&bytes, "EAAP-101") && !contains(&bytes, "EAAL-long"));

    let accounts = admin
        .list_all_accounts(Some(Channel::Messenger))
        .await
        .expect("list");
    let keys: Vec<_> = accounts.iter().map(|a| a.account_key.as_str()).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&"101") && keys.contains(&"103"));
    let first = accounts
        .iter()
        .find(|a| a.account_key == "101")
        .expect("101");
    assert_eq!(first.display_name, "Page 101");
    assert_eq!(
        credential(&app, &first.id, "page_access_token").await,
        "EAAP-101"
    );

    // A replay answers as the first call did, without calling Meta again (each page's
    // mocks expect one call), and reports a page whose account was deleted since.
    let third = accounts
        .iter()
        .find(|a| a.account_key == "103")
        .expect("103");
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: third.id.clone(),
            expected_revision: None,
        })
        .await
        .expect("delete");
    let replayed = admin
        .accounts()
        .subscribe_messenger_pages(keyed())
        .await
        .expect("replay")
        .into_inner();
    let outcome: Vec<_> = replayed
        .results
        .iter()
        .map(|r| (r.page_id.as_str(), r.success, r.error_code.as_str()))
        .collect();
    assert_eq!(
        outcome,
        vec![
            ("101", true, ""),
            ("102", false, "FAILED_PRECONDITION"),
            ("103", false, "NOT_FOUND")
        ]
    );
    assert_eq!(
        replayed.results[0].account.as_ref().map(|a| &a.id),
        Some(&first.id)
    );
    assert_eq!(
        admin
            .list_all_accounts(Some(Channel::Messenger))
            .await
            .expect("list")
            .len(),
        1,
        "the deleted page is not connected again"
    );

    // Bad requests name every bad field.
    let status = expect_code(
        admin
            .accounts()
            .subscribe_messenger_pages(proto::SubscribeMessengerPagesRequest {
                user_token: String::new(),
                page_ids: vec!["abc".into()],
                division_id: None,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["user_token", "page_ids[0]"]);
}

async fn the_user_token_handle_belongs_to_its_workspace(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    mount_login(&meta).await;
    let handle = connect(&app.admin()).await.user_token;
    let other = app.client("admin", OTHER_WORKSPACE, None);
    let status = expect_code(
        other
            .accounts()
            .subscribe_messenger_pages(proto::SubscribeMessengerPagesRequest {
                user_token: handle.clone(),
                page_ids: vec!["101".into()],
                division_id: None,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["user_token"]);
    let mut tampered = handle.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let status = expect_code(
        app.admin()
            .accounts()
            .subscribe_messenger_pages(proto::SubscribeMessengerPagesRequest {
                user_token: String::from_utf8(tampered).expect("ascii"),
                page_ids: vec!["101".into()],
                division_id: None,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["user_token"]);
    // Nothing reached Meta for either refusal: only the login's four calls.
    assert_eq!(meta.received_requests().await.unwrap_or_default().len(), 4);
}

fn item(kind: &str, title: &str, payload: &str, url: &str) -> proto::PersistentMenuItem {
    proto::PersistentMenuItem {
        r#type: kind.into(),
        title: title.into(),
        payload: payload.into(),
        url: url.into(),
        ..Default::default()
    }
}

async fn the_persistent_menu_is_checked_then_set_or_deleted(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    let admin = app.admin();
    let page = create(
        &admin,
        new_account(
            Channel::Messenger,
            "101",
            json!({"page_id": "101", "page_access_token": "EAAP-101"}),
        ),
    )
    .await;
    // The page has a Get Started button already: the menu goes alone. The answer's
    // shape is the Messenger Profile API's `{"data": [...]}` of the fields asked.
    Mock::given(method("GET"))
        .and(path(graph("me/messenger_profile")))
        .and(query_param("fields", "get_started"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [{"get_started": {"payload": "HELLO"}}]})),
        )
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .and(path(graph("me/messenger_profile")))
        .and(header("authorization", "Bearer EAAP-101"))
        .and(body_json(json!({"persistent_menu": [{
            "locale": "default", "composer_input_disabled": false,
            "call_to_actions": [
                {"type": "postback", "title": "Talk to an agent", "payload": "AGENT"},
                {"type": "web_url", "title": "Shop", "url": "https://shop.example.test/",
                 "webview_height_ratio": "full"}]}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": "success"})))
        .expect(1)
        .mount(&meta)
        .await;
    Mock::given(method("DELETE"))
        .and(path(graph("me/messenger_profile")))
        .and(header("authorization", "Bearer EAAP-101"))
        .and(body_json(json!({"fields": ["persistent_menu"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": "success"})))
        .expect(1)
        .mount(&meta)
        .await;

    let mut shop = item("web_url", "Shop", "", "https://shop.example.test/");
    shop.webview_height_ratio = "full".into();
    let set = admin
        .accounts()
        .set_messenger_persistent_menu(proto::SetMessengerPersistentMenuRequest {
            account_id: page.id.clone(),
            persistent_menu: vec![proto::PersistentMenu {
                locale: "default".into(),
                composer_input_disabled: false,
                call_to_actions: vec![item("postback", "Talk to an agent", "AGENT", ""), shop],
            }],
            delete: false,
        })
        .await
        .expect("set")
        .into_inner();
    assert!(set.success && !set.deleted);

    let status = expect_code(
        admin
            .accounts()
            .set_messenger_persistent_menu(proto::SetMessengerPersistentMenuRequest {
                account_id: page.id.clone(),
                persistent_menu: vec![proto::PersistentMenu {
                    locale: "en-us".into(),
                    composer_input_disabled: false,
                    call_to_actions: vec![
                        item("postback", "A title that is far too long for Meta", "X", ""),
                        item("web_url", "Shop", "", "javascript:alert(1)"),
                        item("nested", "More", "", ""),
                    ],
                }],
                delete: false,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        vec![
            "persistent_menu",
            "persistent_menu[0].locale",
            "persistent_menu[0].call_to_actions[0].title",
            "persistent_menu[0].call_to_actions[1].url",
            "persistent_menu[0].call_to_actions[2].type",
        ]
    );

    let deleted = admin
        .accounts()
        .set_messenger_persistent_menu(proto::SetMessengerPersistentMenuRequest {
            account_id: page.id.clone(),
            delete: true,
            ..Default::default()
        })
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.success && deleted.deleted);

    // Meta rejects the page token: FAILED_PRECONDITION, and the account says so.
    meta.reset().await;
    Mock::given(method("DELETE"))
        .and(path(graph("me/messenger_profile")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: The session has been invalidated.",
            "type": "OAuthException", "code": 190, "error_subcode": 460, "fbtrace_id": "Ab3"}})))
        .expect(1)
        .mount(&meta)
        .await;
    let status = expect_code(
        admin
            .accounts()
            .set_messenger_persistent_menu(proto::SetMessengerPersistentMenuRequest {
                account_id: page.id.clone(),
                delete: true,
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("190"), "{}", status.message());
    assert!(!status.message().contains("EAAP-101"));
    let flagged = get_account(&admin, &page.id).await;
    assert!(flagged.reauthorization_required);

    // Only Messenger accounts have a menu; other workspaces do not see this one.
    let email = create(&admin, new_account(Channel::Email, "ops", json!({}))).await;
    expect_code(
        admin
            .accounts()
            .set_messenger_persistent_menu(proto::SetMessengerPersistentMenuRequest {
                account_id: email.id,
                delete: true,
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
    );
    expect_code(
        app.client("admin", OTHER_WORKSPACE, None)
            .accounts()
            .set_messenger_persistent_menu(proto::SetMessengerPersistentMenuRequest {
                account_id: page.id,
                delete: true,
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
}

/// Meta refuses a persistent menu on a page without a Get Started button; the stand-in
/// Meta enforces it, and the page gets one with its menu. An existing one stays.
async fn a_page_without_get_started_gets_one_with_its_menu(backend: Backend) {
    let server = MockServer::start().await;
    let fake = patchbay_e2e::fake_meta();
    fake.mount(&server).await;
    let app = TestApp::spawn_with(
        backend,
        patchbay_e2e::TestOptions {
            provider_urls: patchbay_e2e::all_providers_at(&server.uri()),
            meta: patchbay_e2e::test_meta(),
            ..Default::default()
        },
    )
    .await;
    let admin = app.admin();
    let menu = |id: &str| proto::SetMessengerPersistentMenuRequest {
        account_id: id.to_owned(),
        persistent_menu: vec![proto::PersistentMenu {
            locale: "default".into(),
            composer_input_disabled: false,
            call_to_actions: vec![item("postback", "Talk to an agent", "AGENT", "")],
        }],
        delete: false,
    };
    let bare = create(
        &admin,
        new_account(
            Channel::Messenger,
            "201",
            json!({"page_id": "201", "page_access_token": "EAAP-201"}),
        ),
    )
    .await;
    let set = admin
        .accounts()
        .set_messenger_persistent_menu(menu(&bare.id))
        .await
        .expect("a page without Get Started gets its menu")
        .into_inner();
    assert!(set.success);
    assert_eq!(fake.get_started("EAAP-201").as_deref(), Some("GET_STARTED"));
    assert!(fake.menu("EAAP-201").is_some());

    let greeted = create(
        &admin,
        new_account(
            Channel::Messenger,
            "202",
            json!({"page_id": "202", "page_access_token": "EAAP-202"}),
        ),
    )
    .await;
    fake.set_get_started("EAAP-202", "WELCOME");
    admin
        .accounts()
        .set_messenger_persistent_menu(menu(&greeted.id))
        .await
        .expect("menu");
    assert_eq!(
        fake.get_started("EAAP-202").as_deref(),
        Some("WELCOME"),
        "an existing Get Started button is kept"
    );
}

/// A page's subscription stalls past the call's deadline: the page tasks go on by
/// themselves, and a replay resumes the call without fetching or subscribing a page
/// that is done (each page's mocks expect one call).
async fn a_subscription_cut_off_by_its_deadline_finishes_and_a_replay_resumes_it(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    mount_login(&meta).await;
    let ok = || ResponseTemplate::new(200).set_body_json(json!({"success": true}));
    mount_page(&meta, "201", ok()).await;
    mount_page(
        &meta,
        "202",
        ok().set_delay(std::time::Duration::from_secs(3)),
    )
    .await;
    let admin = app.admin();
    let handle = connect(&admin).await.user_token;
    let keyed = |timeout: Option<std::time::Duration>| {
        let mut request =
            patchbay_sdk::tonic::Request::new(proto::SubscribeMessengerPagesRequest {
                user_token: handle.clone(),
                page_ids: vec!["201".into(), "202".into()],
                division_id: None,
            });
        request
            .metadata_mut()
            .insert("idempotency-key", "pages-slow".parse().expect("header"));
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        request
    };
    let cut = admin
        .accounts()
        .subscribe_messenger_pages(keyed(Some(std::time::Duration::from_secs(1))))
        .await
        .expect_err("the deadline passes while Meta stalls");
    assert!(
        matches!(cut.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{cut:?}"
    );
    // The stalled page finishes on its own.
    let mut connected = 0;
    for _ in 0..100 {
        connected = admin
            .list_all_accounts(Some(Channel::Messenger))
            .await
            .expect("list")
            .len();
        if connected == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(connected, 2, "both pages are connected past the deadline");
    let resumed = admin
        .accounts()
        .subscribe_messenger_pages(keyed(None))
        .await
        .expect("replay")
        .into_inner();
    assert!(resumed.results.iter().all(|r| r.success), "{resumed:?}");
    drop(app);
    meta.verify().await;
}

/// Only a flow in which Meta names the page takes it from its owner (#27): the former
/// owner reads LOST and is told with OWNERSHIP_LOST, naming no other workspace.
async fn a_connect_takes_a_page_another_workspace_owned(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    // debug_token of the other workspace's page token names page 101: the shape of a
    // recorded page token's answer (bk-rs/facebook-apis-rs,
    // facebook-access-token-api/tests/response_body_json_files/
    // debug_token__page_access_token.json).
    Mock::given(method("GET"))
        .and(path(graph("debug_token")))
        .and(query_param("input_token", "EAAP-theirs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "app_id": META_APP_ID, "type": "PAGE", "application": "Patchbay",
            "data_access_expires_at": 1_900_000_000, "expires_at": 0, "is_valid": true,
            "profile_id": "101", "scopes": ["pages_messaging"],
            "granular_scopes": [{"scope": "pages_messaging", "target_ids": ["101"]}],
            "user_id": "123"}})))
        .mount(&meta)
        .await;
    let other = app.client("admin", OTHER_WORKSPACE, None);
    let theirs = create(
        &other,
        new_account(
            Channel::Messenger,
            "p101",
            json!({"page_id": "101", "page_access_token": "EAAP-theirs"}),
        ),
    )
    .await;
    assert_eq!(theirs.ownership, i32::from(proto::Ownership::Confirmed));
    let mut events = app
        .client("service", OTHER_WORKSPACE, None)
        .accounts()
        .watch_account_events(proto::WatchAccountEventsRequest {
            after_revision: Some(0),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();

    mount_login(&meta).await;
    let ok = || ResponseTemplate::new(200).set_body_json(json!({"success": true}));
    mount_page(&meta, "101", ok()).await;
    let admin = app.admin();
    let handle = connect(&admin).await.user_token;
    let response = admin
        .accounts()
        .subscribe_messenger_pages(proto::SubscribeMessengerPagesRequest {
            user_token: handle,
            page_ids: vec!["101".into()],
            division_id: None,
        })
        .await
        .expect("subscribe")
        .into_inner();
    assert!(response.results[0].success, "{response:?}");
    let ours = response.results[0].account.clone().expect("the account");
    assert_eq!(ours.ownership, i32::from(proto::Ownership::Confirmed));
    let lost = get_account(&other, &theirs.id).await;
    assert_eq!(lost.ownership, i32::from(proto::Ownership::Lost));
    let event = loop {
        let event = events.message().await.expect("stream").expect("open");
        if event.kind == i32::from(proto::AccountEventKind::OwnershipLost) {
            break event;
        }
    };
    assert_eq!(event.account.as_ref().expect("account").id, theirs.id);
    assert!(!event.reason.contains(patchbay_e2e::WORKSPACE), "{event:?}");
    assert!(!event.reason.contains(&ours.id), "{event:?}");
    // The page's webhooks are ours now, on the app's callback and on their URL alike.
    let body = json!({"object": "page", "entry": [{"id": "101", "time": 1, "messaging": []}]});
    let (to, _) = patchbay_e2e::routed(&app, &patchbay_e2e::app_callback_url(), &body).await;
    assert_eq!(to, vec![(0, ours.id.clone())]);
    let (to, _) = patchbay_e2e::routed(&app, &lost.webhook_url, &body).await;
    assert_eq!(to, vec![(0, ours.id.clone())]);
    // debug_token's word again (an update of their token) does not give it back.
    let again = patchbay_e2e::update(
        &other,
        proto::UpdateAccountRequest {
            id: theirs.id.clone(),
            config: Some(patchbay_e2e::to_struct(
                json!({"page_access_token": "EAAP-theirs"}),
            )),
            display_name: Some("Still theirs?".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(again.ownership, i32::from(proto::Ownership::Lost));
}

/// Division walls on SubscribeMessengerPages (#28, item 3): a page another division
/// holds is ALREADY_EXISTS before Meta is asked, and a resumed call whose page another
/// division connected meanwhile is NOT_FOUND; neither names that division's account.
async fn another_divisions_page_is_answered_without_it_and_costs_no_meta_call(backend: Backend) {
    let (app, meta) = app_with_meta(backend).await;
    mount_login(&meta).await;
    let ok = || ResponseTemplate::new(200).set_body_json(json!({"success": true}));
    // Each page's mocks expect one call: the page of another division is never fetched.
    mount_page(&meta, "101", ok()).await;
    mount_page(
        &meta,
        "102",
        ok().set_delay(std::time::Duration::from_secs(3)),
    )
    .await;
    let sales = app.client("admin", patchbay_e2e::WORKSPACE, Some("sales"));
    let support = app.client("admin", patchbay_e2e::WORKSPACE, Some("support"));
    let handle = connect(&sales).await.user_token;
    // Keyed by a name of its own: the page id is what names the page.
    let theirs = create(
        &support,
        new_account(
            Channel::Messenger,
            "support-page",
            json!({"page_id": "103", "page_access_token": "EAAP-support"}),
        ),
    )
    .await;
    let answer = sales
        .accounts()
        .subscribe_messenger_pages(proto::SubscribeMessengerPagesRequest {
            user_token: handle.clone(),
            page_ids: vec!["101".into(), "103".into()],
            division_id: Some("sales".into()),
        })
        .await
        .expect("subscribe")
        .into_inner();
    assert!(answer.results[0].success, "{answer:?}");
    let refused = &answer.results[1];
    assert!(!refused.success);
    assert_eq!(refused.error_code, "ALREADY_EXISTS");
    assert!(
        refused
            .error_message
            .contains("connected in another division"),
        "{refused:?}"
    );
    let bytes = answer.encode_to_vec();
    assert!(!contains(&bytes, &theirs.id), "{answer:?}");

    // A call cut off by its deadline while page 102 is under way; meanwhile support
    // connects 102 by hand; the resumed call answers nothing of it.
    let keyed = |timeout: Option<std::time::Duration>| {
        let mut request =
            patchbay_sdk::tonic::Request::new(proto::SubscribeMessengerPagesRequest {
                user_token: handle.clone(),
                page_ids: vec!["102".into()],
                division_id: Some("sales".into()),
            });
        request
            .metadata_mut()
            .insert("idempotency-key", "pages-walls".parse().expect("header"));
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        request
    };
    let cut = sales
        .accounts()
        .subscribe_messenger_pages(keyed(Some(std::time::Duration::from_millis(500))))
        .await
        .expect_err("the deadline passes while Meta stalls");
    assert!(
        matches!(cut.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{cut:?}"
    );
    let supports = create(
        &support,
        new_account(
            Channel::Messenger,
            "102",
            json!({"page_id": "102", "page_access_token": "EAAP-support-102"}),
        ),
    )
    .await;
    // The first call's task finishes (and fails: the page is support's now).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let resumed = sales
        .accounts()
        .subscribe_messenger_pages(keyed(None))
        .await
        .expect("resumed")
        .into_inner();
    let result = &resumed.results[0];
    assert!(!result.success, "{resumed:?}");
    // Found connected since the first try, in a division the caller cannot see (NOT_FOUND),
    // or refused before Meta (ALREADY_EXISTS): either way nothing of it.
    assert!(
        ["NOT_FOUND", "ALREADY_EXISTS"].contains(&result.error_code.as_str()),
        "{resumed:?}"
    );
    let bytes = resumed.encode_to_vec();
    assert!(!contains(&bytes, &supports.id), "{resumed:?}");
    assert!(!contains(&bytes, "EAAP-support"), "{resumed:?}");
    drop(app);
    meta.verify().await;
}
