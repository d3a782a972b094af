//! The order and the shares of token-check rounds (#28): tokens nearest their expiry are
//! checked first, then tokens without a known expiry; each round checks at most
//! `checks_per_workspace` tokens of one workspace, and a larger workspace's other tokens
//! are checked in the next rounds, in turn, while a small workspace is checked every
//! round. The order is read from the requests the stand-in Meta received. The
//! refresher goes by the same rules.
//!
//! Recorded answers: debug_token's `{"data": {"app_id", "type", "is_valid", "expires_at",
//! "scopes", "profile_id"}}` is Graph API reference, Debug Token (a page token's answer
//! names its page in `profile_id`; `expires_at` 0 is a token that never expires).

use std::time::Duration;

use patchbay::meta::MetaSettings;
use patchbay_e2e::proto::{Channel, Ownership};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, TestOptions, WORKSPACE, all_providers_at, backend_tests,
    create, graph_path, new_account, test_meta,
};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    rounds_go_nearest_expiry_first_and_take_turns_between_workspaces,
    the_refresher_s_outages_end_its_round_and_count_on_no_account,
    a_round_whose_lease_another_replica_took_stops,
);

/// Tokens of one workspace a round checks, here.
const CAP: usize = 2;

fn options(meta: &MockServer, check_every: Option<Duration>) -> TestOptions {
    TestOptions {
        provider_urls: all_providers_at(&meta.uri()),
        meta: MetaSettings {
            check_every,
            checks_per_workspace: CAP,
            ..test_meta()
        },
        ..TestOptions::default()
    }
}

/// The tokens debug_token was asked about, in order, from the `from`-th request on.
async fn asked_since(meta: &MockServer, from: usize) -> Vec<String> {
    let requests = meta.received_requests().await.expect("recorded");
    requests
        .iter()
        .skip(from)
        .filter(|r| r.url.path().ends_with("/debug_token"))
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "input_token")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

async fn rounds_go_nearest_expiry_first_and_take_turns_between_workspaces(backend: Backend) {
    let meta = MockServer::start().await;
    patchbay_e2e::fake_meta().mount(&meta).await;
    let now = chrono::Utc::now().timestamp();
    // Acme's five pages: the later made, the sooner its token expires. Globex's one page
    // has a token that never expires (a system user's).
    let expiry = |i: i64| now + (5 - i) * 86_400;
    let mut pages = Vec::new();
    for i in 0..5 {
        pages.push((
            WORKSPACE,
            format!("90{i}"),
            format!("EAAP-turn-{i}"),
            expiry(i),
        ));
    }
    pages.push((
        OTHER_WORKSPACE,
        "909".to_owned(),
        "EAAP-turn-g".to_owned(),
        0,
    ));
    for (_, page, token, expires_at) in &pages {
        Mock::given(method("GET"))
            .and(path(graph_path("debug_token")))
            .and(query_param("input_token", token.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
                "app_id": patchbay_e2e::META_APP_ID, "type": "PAGE", "is_valid": true,
                "expires_at": expires_at, "scopes": ["pages_messaging"], "profile_id": page}})))
            .mount(&meta)
            .await;
    }
    let writer = TestApp::spawn_with(backend, options(&meta, None)).await;
    for (workspace, page, token, expires_at) in &pages {
        let admin = writer.client("admin", workspace, None);
        let account = create(
            &admin,
            new_account(
                Channel::Messenger,
                page,
                json!({"page_id": page, "page_access_token": token}),
            ),
        )
        .await;
        // Confirmed at its creation: no start-up pass asks about it again.
        assert_eq!(account.ownership, i32::from(Ownership::Confirmed), "{page}");
        if *expires_at > 0 {
            // The expiry a first round would have learnt, known before any round.
            let at = chrono::DateTime::from_timestamp(*expires_at, 0).expect("time");
            let id = uuid::Uuid::parse_str(&account.id).expect("uuid");
            writer
                .execute(
                    "UPDATE accounts SET token_expires_at = $1 WHERE id = $2",
                    vec![at.into(), id.into()],
                )
                .await;
        }
    }
    let expected_rounds = [
        // Acme's two nearest expiries, then the token without one.
        vec!["EAAP-turn-4", "EAAP-turn-3", "EAAP-turn-g"],
        // Acme's next two in turn; Globex every round.
        vec!["EAAP-turn-2", "EAAP-turn-1", "EAAP-turn-g"],
        // Acme's last; its turn ends.
        vec!["EAAP-turn-0", "EAAP-turn-g"],
        // And starts over.
        vec!["EAAP-turn-4", "EAAP-turn-3", "EAAP-turn-g"],
    ];
    for (n, expected) in expected_rounds.iter().enumerate() {
        writer
            .execute(
                "UPDATE task_leases SET last_round_at = NULL WHERE name = 'token_checks'",
                vec![],
            )
            .await;
        let from = meta.received_requests().await.expect("recorded").len();
        let checker = TestApp::spawn_with(
            backend,
            TestOptions {
                database_url: Some(writer.database_url.clone()),
                ..options(&meta, Some(Duration::from_secs(3600)))
            },
        )
        .await;
        // The round ends with Globex's token, the last in its order.
        let waited = tokio::time::timeout(Duration::from_secs(15), async {
            while !asked_since(&meta, from)
                .await
                .iter()
                .any(|t| t == "EAAP-turn-g")
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "round {n} reached Globex's token");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(&asked_since(&meta, from).await, expected, "round {n}");
        drop(checker);
    }
}

/// The refresher by the same rules: five outages in a row end its round, counting on no
/// account, and the next round resumes where it stopped, past the accounts it dealt
/// with. Meta's outage answer: code 2 is "API Service … temporary issue due to downtime,
/// wait and retry" (Graph API, "Handling Errors", which gives the code only); the body and
/// its 500 are as observed and recorded by public Graph clients (e.g.
/// facebookarchive/php-graph-sdk #794 for code 1 on a 500).
async fn the_refresher_s_outages_end_its_round_and_count_on_no_account(backend: Backend) {
    let meta = MockServer::start().await;
    let outage = ResponseTemplate::new(500).set_body_json(json!({"error": {
        "message": "An unexpected error has occurred. Please retry your request later.",
        "type": "OAuthException", "is_transient": true, "code": 2, "fbtrace_id": "A1"}}));
    for i in 0..5 {
        Mock::given(method("GET"))
            .and(path("/refresh_access_token"))
            .and(query_param("access_token", format!("IGQ-down-{i}")))
            .respond_with(outage.clone())
            .mount(&meta)
            .await;
    }
    // Instagram's refresh answer: Instagram API with Instagram Login, "Refresh a
    // long-lived token".
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(query_param("access_token", "IGQ-late"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "IGQ-late-refreshed", "token_type": "bearer", "expires_in": 5_183_944}),
        ))
        .mount(&meta)
        .await;
    let refresher_options = |refresh_every| TestOptions {
        provider_urls: all_providers_at(&meta.uri()),
        meta: MetaSettings {
            refresh_every,
            ..test_meta()
        },
        ..TestOptions::default()
    };
    let writer = TestApp::spawn_with(backend, refresher_options(None)).await;
    let admin = writer.admin();
    let soon = chrono::Utc::now() + chrono::Duration::days(1);
    let mut down = Vec::new();
    for i in 0..6 {
        let (key, token, expires_at) = match i {
            5 => (
                "late".to_owned(),
                "IGQ-late".to_owned(),
                soon + chrono::Duration::days(1),
            ),
            i => (
                format!("down-{i}"),
                format!("IGQ-down-{i}"),
                soon + chrono::Duration::minutes(i),
            ),
        };
        let account = create(
            &admin,
            new_account(Channel::Instagram, &key, json!({"access_token": token})),
        )
        .await;
        let id = uuid::Uuid::parse_str(&account.id).expect("uuid");
        writer
            .execute(
                "UPDATE accounts SET token_expires_at = $1 WHERE id = $2",
                vec![expires_at.into(), id.into()],
            )
            .await;
        down.push(id);
    }
    let late = down.pop().expect("late");
    let refreshes_of = |token: &'static str| {
        patchbay_e2e::requests_with(&meta, "/refresh_access_token", "access_token", token)
    };
    let round = || async {
        writer
            .execute(
                "UPDATE task_leases SET last_round_at = NULL WHERE name = 'token_refresh'",
                vec![],
            )
            .await;
        TestApp::spawn_with(
            backend,
            TestOptions {
                database_url: Some(writer.database_url.clone()),
                ..refresher_options(Some(Duration::from_secs(3600)))
            },
        )
        .await
    };
    let first = round().await;
    let waited = tokio::time::timeout(Duration::from_secs(15), async {
        while refreshes_of("IGQ-down-4").await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the round reached the fifth outage");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        refreshes_of("IGQ-late").await,
        0,
        "five outages in a row end the round"
    );
    let store = writer.store().await;
    for id in &down {
        let account = store
            .accounts()
            .find_account(patchbay_e2e::WORKSPACE, *id)
            .await
            .expect("read")
            .expect("account");
        assert_eq!(
            account.provider_state.refresh_failures, 0,
            "an outage counts on no account"
        );
    }
    drop(first);

    let first_asked = refreshes_of("IGQ-down-0").await;
    let _second = round().await;
    let waited = tokio::time::timeout(Duration::from_secs(15), async {
        while refreshes_of("IGQ-late").await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the next round reached the account after the outages"
    );
    assert_eq!(
        refreshes_of("IGQ-down-0").await,
        first_asked,
        "it resumed after the accounts the cut round dealt with"
    );
    let refreshed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let account = store
                .accounts()
                .find_account(patchbay_e2e::WORKSPACE, late)
                .await
                .expect("read")
                .expect("account");
            if account.config.get("access_token").and_then(|v| v.as_str())
                == Some("IGQ-late-refreshed")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(refreshed.is_ok(), "the late token was refreshed");
}

/// A replica whose lease lapsed (a stalled round) and was taken by another stops at its
/// next renewal instead of running beside the other's round.
async fn a_round_whose_lease_another_replica_took_stops(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.store().await;
    let now = chrono::Utc::now();
    let every = Duration::from_secs(1);
    assert!(
        store
            .leases()
            .try_take_round("test_round", "replica-a", every, now)
            .await
            .expect("take")
    );
    store
        .leases()
        .renew_round("test_round", "replica-a", now)
        .await
        .expect("still a's");
    // Eleven minutes without a renewal: the ten-minute lease lapsed, and b takes it.
    let later = now + chrono::Duration::minutes(11);
    assert!(
        store
            .leases()
            .try_take_round("test_round", "replica-b", every, later)
            .await
            .expect("take")
    );
    let lost = store
        .leases()
        .renew_round("test_round", "replica-a", later)
        .await
        .expect_err("a's lease is b's now");
    assert!(lost.to_string().contains("another replica"), "{lost}");
    store
        .leases()
        .renew_round("test_round", "replica-b", later)
        .await
        .expect("b's round goes on");
}
