//! Token checks against a fake Meta: debug_token's verdict is recorded on each Meta
//! account; only Meta calling a token invalid flags it (a 500 or a 404 flags nothing);
//! expiries come from debug_token; TOKEN_EXPIRING once per threshold; a new token is
//! REAUTHORIZED; one replica checks each token per round; one failing account does not
//! stop the round.
//!
//! Recorded answers: debug_token's `{"data": {"app_id", "is_valid", "expires_at",
//! "data_access_expires_at", "scopes", "error": {"code", "message"}}}` is Graph API
//! reference, Debug Token (Chatwoot's spec/services/whatsapp/token_validation_service_spec.rb
//! stubs the same shape); error bodies are Graph API, "Handling errors".

use std::time::Duration;

use patchbay::meta::MetaSettings;
use patchbay_e2e::proto::{self, AccountEventKind, Channel};
use patchbay_e2e::{
    Backend, TestApp, TestOptions, all_providers_at, backend_tests, create, get_account,
    graph_path, latest_revision, new_account, new_whatsapp, test_meta, to_struct, update,
};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    meta_s_verdicts_are_recorded_and_only_invalid_tokens_flag,
    another_apps_tokens_are_their_accounts_outcome_and_the_round_goes_on
);

const IN_THREE_DAYS: i64 = 3 * 86_400;

/// A Meta that sets WhatsApp numbers up and answers debug_token per token.
async fn fake_meta() -> MockServer {
    let meta = MockServer::start().await;
    // WhatsApp numbers are set up as Meta does (the stand-in, under this test's mocks).
    patchbay_e2e::fake_meta().mount(&meta).await;
    let now = chrono::Utc::now().timestamp();
    let answers = [
        (
            "EAAG-dead",
            ResponseTemplate::new(200).set_body_json(json!({"data": {"app_id": "1",
                "is_valid": false, "error": {"code": 190, "message": "The user has logged out"}}})),
        ),
        (
            "EAAG-outage",
            ResponseTemplate::new(500).set_body_json(json!({"error": {"message": "boom",
                "code": 190}})),
        ),
        (
            "EAAP-misrouted",
            ResponseTemplate::new(404).set_body_string("<html>Not Found</html>"),
        ),
        (
            "EAAP-page",
            ResponseTemplate::new(200).set_body_json(json!({"data": {"is_valid": true,
                "expires_at": now + 60 * 86_400, "scopes": ["pages_messaging"]}})),
        ),
        (
            // The call itself refused (the app's own token): no account's fault.
            "EAAG-app-refused",
            ResponseTemplate::new(400).set_body_json(json!({"error": {"message":
                "Invalid OAuth access token - Cannot parse access token", "type": "OAuthException",
                "code": 190}})),
        ),
        (
            "EAAG-expiring",
            ResponseTemplate::new(200).set_body_json(json!({"data": {"is_valid": true,
                "expires_at": now + IN_THREE_DAYS, "data_access_expires_at": now + 80 * 86_400,
                "scopes": ["whatsapp_business_messaging", "whatsapp_business_management"]}})),
        ),
    ];
    for (token, answer) in answers {
        Mock::given(method("GET"))
            .and(path(graph_path("debug_token")))
            .and(query_param("input_token", token))
            .respond_with(answer)
            .mount(&meta)
            .await;
    }
    meta
}

fn options(meta: &MockServer, check_every: Option<Duration>) -> TestOptions {
    TestOptions {
        provider_urls: all_providers_at(&meta.uri()),
        meta: MetaSettings {
            check_every,
            ..test_meta()
        },
        ..TestOptions::default()
    }
}

/// The accounts, in the order the checker meets them (ids grow with time): the one
/// whose check proves the round went past the others comes last.
async fn accounts(app: &TestApp) -> [proto::Account; 6] {
    let admin = app.admin();
    let page = |key: &str, token: &str| {
        new_account(
            Channel::Messenger,
            key,
            json!({"page_id": key, "page_access_token": token}),
        )
    };
    [
        create(&admin, new_whatsapp("555001", "EAAG-dead")).await,
        create(&admin, new_whatsapp("555002", "EAAG-outage")).await,
        create(&admin, page("700", "EAAP-misrouted")).await,
        create(&admin, page("701", "EAAP-page")).await,
        create(&admin, new_whatsapp("555003", "EAAG-expiring")).await,
        create(&admin, new_whatsapp("555004", "EAAG-app-refused")).await,
    ]
}

/// Events after `after` until one of `kind` for `account` (at most 15 s).
async fn events_until(
    app: &TestApp,
    after: i64,
    kind: AccountEventKind,
    account: &str,
) -> Vec<proto::AccountEvent> {
    let mut stream = app
        .service()
        .accounts()
        .watch_account_events(proto::WatchAccountEventsRequest {
            after_revision: Some(after),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .expect("the round's events in time")
            .expect("healthy stream")
            .expect("open stream");
        let done = event.kind == i32::from(kind)
            && event.account.as_ref().is_some_and(|a| a.id == account);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

/// The HEALTH_CHANGED event of `account` among `events`.
fn health_change(events: &[proto::AccountEvent], account: &proto::Account) -> proto::AccountEvent {
    events
        .iter()
        .find(|e| {
            e.kind == i32::from(AccountEventKind::HealthChanged)
                && e.account.as_ref().is_some_and(|a| a.id == account.id)
        })
        .cloned()
        .expect("a HEALTH_CHANGED event")
}

/// The reason of `code` in `health`.
fn reason_of(health: &proto::AccountHealth, code: &str) -> proto::HealthReason {
    health
        .reasons
        .iter()
        .find(|reason| reason.code == code)
        .cloned()
        .unwrap_or_else(|| panic!("no {code} reason in {health:?}"))
}

fn of(events: &[proto::AccountEvent], account: &proto::Account) -> Vec<AccountEventKind> {
    events
        .iter()
        .filter(|e| e.account.as_ref().is_some_and(|a| a.id == account.id))
        .map(|e| AccountEventKind::try_from(e.kind).expect("kind"))
        .collect()
}

async fn meta_s_verdicts_are_recorded_and_only_invalid_tokens_flag(backend: Backend) {
    let meta = fake_meta().await;
    let writer = TestApp::spawn_with(backend, options(&meta, None)).await;
    let [dead, outage, misrouted, page, expiring, app_refused] = accounts(&writer).await;
    let before = latest_revision(&writer).await;
    // A server that checks tokens: its first round runs as it starts.
    let checker = TestApp::spawn_with(
        backend,
        TestOptions {
            database_url: Some(writer.database_url.clone()),
            ..options(&meta, Some(Duration::from_secs(3600)))
        },
    )
    .await;
    let events = events_until(
        &checker,
        before,
        AccountEventKind::TokenExpiring,
        &expiring.id,
    )
    .await;
    // The refused token is one write: its flag, and what it makes of the account's
    // health (#30), beside the health before.
    assert_eq!(
        of(&events, &dead),
        [
            AccountEventKind::ReauthorizationRequired,
            AccountEventKind::HealthChanged
        ]
    );
    let changed = health_change(&events, &dead);
    let health = changed
        .account
        .and_then(|account| account.health)
        .expect("the account's health");
    assert_eq!(health.state, i32::from(proto::HealthState::Unavailable));
    let credentials = reason_of(&health, "reauthorization_required");
    assert_eq!(
        credentials.class,
        i32::from(proto::HealthReasonClass::Credentials)
    );
    assert!(credentials.detail.contains("logged out"), "{credentials:?}");
    assert!(
        !credentials.detail.contains("EAAG"),
        "no token: {credentials:?}"
    );
    let previous = changed.previous_health.expect("the health before");
    assert!(
        previous
            .reasons
            .iter()
            .all(|reason| reason.code != "reauthorization_required"),
        "{previous:?}"
    );
    assert!(of(&events, &outage).is_empty(), "a 500 flags nothing");
    assert!(of(&events, &misrouted).is_empty(), "a 404 flags nothing");
    assert!(of(&events, &page).is_empty());
    assert_eq!(of(&events, &expiring), [AccountEventKind::TokenExpiring]);
    let reason = events
        .iter()
        .find(|e| e.kind == i32::from(AccountEventKind::ReauthorizationRequired))
        .map(|e| e.reason.clone())
        .unwrap_or_default();
    assert!(reason.contains("logged out"), "{reason}");
    assert!(!reason.contains("EAAG"), "no token in a reason: {reason}");

    let admin = checker.admin();
    let dead_now = get_account(&admin, &dead.id).await;
    assert!(dead_now.reauthorization_required);
    assert!(dead_now.reauthorization_reason.contains("logged out"));
    for unharmed in [&outage, &misrouted] {
        let account = get_account(&admin, &unharmed.id).await;
        assert!(!account.reauthorization_required, "{}", account.account_key);
        assert!(account.token_expires_at.is_none());
    }
    // Expiries as debug_token gave them, for WhatsApp and Messenger alike.
    let expiring_now = get_account(&admin, &expiring.id).await;
    let expires = expiring_now.token_expires_at.expect("expiry").seconds;
    let left = expires - chrono::Utc::now().timestamp();
    assert!(
        (IN_THREE_DAYS - 60..=IN_THREE_DAYS).contains(&left),
        "{left}"
    );
    assert!(expiring_now.data_access_expires_at.is_some());
    assert!(
        get_account(&admin, &page.id)
            .await
            .token_expires_at
            .is_some()
    );
    // debug_token refused as a call (the app's token): the round stops, flagging nobody.
    asked(&meta, "EAAG-app-refused", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !get_account(&admin, &app_refused.id)
            .await
            .reauthorization_required
    );

    // A new token for the flagged account: trusted again.
    let after_round = latest_revision(&checker).await;
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: dead.id.clone(),
            config: Some(to_struct(json!({"access_token": "EAAG-fresh"}))),
            ..Default::default()
        },
    )
    .await;
    // The health change is the write's last event.
    let events = events_until(
        &checker,
        after_round,
        AccountEventKind::HealthChanged,
        &dead.id,
    )
    .await;
    assert!(of(&events, &dead).contains(&AccountEventKind::Reauthorized));
    let trusted = get_account(&admin, &dead.id).await;
    assert!(!trusted.reauthorization_required);
    // The new token clears the CREDENTIALS reason in the same write.
    let health = trusted.health.expect("health");
    assert!(
        health
            .reasons
            .iter()
            .all(|reason| reason.class != i32::from(proto::HealthReasonClass::Credentials)),
        "{health:?}"
    );

    // The round was cut short at the refused app token: the next resumes after the
    // last account it checked, asking nothing again of those before. Meta takes the
    // app token again meanwhile (a mock over the refusal).
    let after_reauth = latest_revision(&checker).await;
    Mock::given(method("GET"))
        .and(path(graph_path("debug_token")))
        .and(query_param("input_token", "EAAG-app-refused"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "is_valid": true, "expires_at": 0, "scopes": ["whatsapp_business_messaging",
            "whatsapp_business_management"]}})))
        .with_priority(1)
        .mount(&meta)
        .await;
    let another_round = || async {
        writer
            .execute(
                "UPDATE task_leases SET last_round_at = NULL WHERE name = 'token_checks'",
                vec![],
            )
            .await;
        TestApp::spawn_with(
            backend,
            TestOptions {
                database_url: Some(writer.database_url.clone()),
                ..options(&meta, Some(Duration::from_secs(3600)))
            },
        )
        .await
    };
    let page_asked = asked_times(&meta, "EAAP-page").await;
    let resumed = another_round().await;
    asked(&meta, "EAAG-app-refused", 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        asked_times(&meta, "EAAP-page").await,
        page_asked,
        "a resumed round starts after the last account checked"
    );
    drop(resumed);
    // The round after a whole one starts at the beginning: the threshold already
    // announced is not announced again.
    let _again = another_round().await;
    asked(&meta, "EAAG-expiring", 2).await;
    let later = checker
        .store()
        .await
        .events()
        .account_events_after(patchbay_e2e::WORKSPACE, after_reauth, 100)
        .await
        .expect("events");
    assert!(
        later
            .iter()
            .all(|e| e.kind != patchbay::domain::account::events::AccountEventKind::TokenExpiring),
        "{later:?}"
    );
}

/// Waits until Meta was asked about `token` `times` times (at most 15 s).
async fn asked(meta: &MockServer, token: &str, times: usize) {
    let counted = tokio::time::timeout(Duration::from_secs(15), async {
        while asked_times(meta, token).await < times {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "{token} was asked about {times} times");
}

async fn asked_times(meta: &MockServer, token: &str) -> usize {
    patchbay_e2e::requests_with(meta, "/debug_token", "input_token", token).await
}

/// Two replicas checking tokens on one PostgreSQL database: one round between them,
/// so each token is asked about once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_ask_meta_once_per_token_per_round() {
    let meta = fake_meta().await;
    let writer = TestApp::spawn_with(Backend::Postgres, options(&meta, None)).await;
    let accounts = accounts(&writer).await;
    let before = latest_revision(&writer).await;
    // What was asked before the replicas: a page token Meta did not vouch for its page
    // was asked about once more, right after its account was written.
    let tokens = [
        "EAAG-dead",
        "EAAG-outage",
        "EAAP-misrouted",
        "EAAP-page",
        "EAAG-expiring",
        "EAAG-app-refused",
    ];
    let mut asked_before = Vec::new();
    for token in tokens {
        asked_before.push(asked_times(&meta, token).await);
    }
    let replica = || {
        TestApp::spawn_with(
            Backend::Postgres,
            TestOptions {
                database_url: Some(writer.database_url.clone()),
                ..options(&meta, Some(Duration::from_secs(3600)))
            },
        )
    };
    let (one, _two) = tokio::join!(replica(), replica());
    events_until(
        &one,
        before,
        AccountEventKind::TokenExpiring,
        &accounts[4].id,
    )
    .await;
    // Let a second round, were one running, get as far.
    tokio::time::sleep(Duration::from_millis(500)).await;
    asked(&meta, "EAAG-app-refused", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (token, before) in tokens.into_iter().zip(asked_before) {
        let asked = asked_times(&meta, token).await - before;
        // One check each; the 500 is one check retried as the Graph client retries a
        // safe call (the policy's attempts), by one replica.
        let checks = if token == "EAAG-outage" {
            test_meta().retry.attempts as usize
        } else {
            1
        };
        assert_eq!(asked, checks, "{token} asked {asked} times");
    }
}

/// One tenant cannot stop the round (#28, item 2): six accounts holding another Meta
/// app's tokens, and one whose token Meta cannot parse, come before a victim whose
/// token Meta invalidated; each is its own outcome (flagged, with the reason), and the
/// round reaches the victim.
/// Meta's answers to such a token: `(#100) The App_id in the input_token did not match
/// the Viewing App` (Meta's "Access Tokens: Debugging" page: the tokens must be from the
/// same app; the answer as firebase/quickstart-unity #1040 and public Graph clients'
/// tests record it), and the one nyaruka/rapidpro #3734 records, `(#100) You must
/// provide an app access token, or a user access token that is an owner or developer of
/// the app`. Either is the token's only because Meta takes our app token (asked once).
async fn another_apps_tokens_are_their_accounts_outcome_and_the_round_goes_on(backend: Backend) {
    let meta = MockServer::start().await;
    patchbay_e2e::fake_meta().mount(&meta).await;
    let another_app = |message: &str| {
        ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": message, "type": "OAuthException", "code": 100, "fbtrace_id": "FOO"}}))
    };
    for i in 0..6 {
        let answer = if i % 2 == 0 {
            another_app("(#100) The App_id in the input_token did not match the Viewing App")
        } else {
            another_app(
                "(#100) You must provide an app access token, or a user access token that is an owner or developer of the app",
            )
        };
        Mock::given(method("GET"))
            .and(path(graph_path("debug_token")))
            .and(query_param("input_token", format!("EAAP-other-app-{i}")))
            .respond_with(answer)
            .mount(&meta)
            .await;
    }
    // A token Meta cannot parse: a credential error of the call, which a round tells
    // from a refusal of our app token by asking about the app token itself (Meta's
    // debug_token answers an app token with its `type: "APP"` data).
    Mock::given(method("GET"))
        .and(path(graph_path("debug_token")))
        .and(query_param("input_token", "EAAP-garbage"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"error": {"message":
            "Invalid OAuth access token - Cannot parse access token", "type": "OAuthException",
            "code": 190}})),
        )
        .mount(&meta)
        .await;
    Mock::given(method("GET"))
        .and(path(graph_path("debug_token")))
        .and(query_param(
            "input_token",
            format!(
                "{}|{}",
                patchbay_e2e::META_APP_ID,
                patchbay_e2e::META_APP_SECRET
            ),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "app_id": patchbay_e2e::META_APP_ID, "type": "APP", "application": "Patchbay",
            "is_valid": true, "scopes": []}})))
        .mount(&meta)
        .await;
    Mock::given(method("GET"))
        .and(path(graph_path("debug_token")))
        .and(query_param("input_token", "EAAP-victim"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"app_id": "1",
            "is_valid": false, "error": {"code": 190,
                "message": "The session has been invalidated because the user changed their password"}}})))
        .mount(&meta)
        .await;
    let writer = TestApp::spawn_with(backend, options(&meta, None)).await;
    let admin = writer.admin();
    let mut others = Vec::new();
    for i in 0..6 {
        others.push(
            create(
                &admin,
                new_account(
                    Channel::Messenger,
                    &format!("80{i}"),
                    json!({"page_id": format!("80{i}"), "page_access_token": format!("EAAP-other-app-{i}")}),
                ),
            )
            .await,
        );
    }
    let garbage = create(
        &admin,
        new_account(
            Channel::Messenger,
            "808",
            json!({"page_id": "808", "page_access_token": "EAAP-garbage"}),
        ),
    )
    .await;
    let victim = create(
        &admin,
        new_account(
            Channel::Messenger,
            "809",
            json!({"page_id": "809", "page_access_token": "EAAP-victim"}),
        ),
    )
    .await;
    let before = latest_revision(&writer).await;
    let checker = TestApp::spawn_with(
        backend,
        TestOptions {
            database_url: Some(writer.database_url.clone()),
            ..options(&meta, Some(Duration::from_secs(3600)))
        },
    )
    .await;
    events_until(
        &checker,
        before,
        AccountEventKind::ReauthorizationRequired,
        &victim.id,
    )
    .await;
    let admin = checker.admin();
    assert!(
        get_account(&admin, &victim.id)
            .await
            .reauthorization_required
    );
    let unparsed = get_account(&admin, &garbage.id).await;
    assert!(unparsed.reauthorization_required);
    assert!(
        unparsed.reauthorization_reason.contains("Cannot parse"),
        "{}",
        unparsed.reauthorization_reason
    );
    for other in &others {
        let flagged = get_account(&admin, &other.id).await;
        assert!(flagged.reauthorization_required, "{}", flagged.account_key);
        assert_eq!(
            flagged.reauthorization_reason,
            "the token belongs to another Meta app"
        );
    }
}
