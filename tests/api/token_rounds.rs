//! The order and the shares of token-check rounds (#28): tokens nearest their expiry are
//! checked first, then tokens without a known expiry; each round checks at most
//! `checks_per_workspace` tokens of one workspace, and a larger workspace's other tokens
//! are checked in the next rounds, in turn, while a small workspace is checked every
//! round. The order is read from the requests the stand-in Meta received.
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

backend_tests!(rounds_go_nearest_expiry_first_and_take_turns_between_workspaces);

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
