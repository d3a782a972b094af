//! One record that cannot be opened (sealed under a key that left the ring) fails only
//! its own reads: lists, watch snapshots, the token refresher and key rotation go on for
//! every other record.

use std::time::Duration;

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, TestApp, TestOptions, all_providers_at, backend_tests, create, credential,
    expect_code, key_ring, new_account, test_meta,
};
use patchbay_sdk::tonic::Code;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(an_unreadable_record_fails_only_its_own_reads);

async fn an_unreadable_record_fails_only_its_own_reads(backend: Backend) {
    let meta = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(query_param("access_token", "IGQ-good"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "IGQ-good-refreshed", "token_type": "bearer", "expires_in": 5_183_944}),
        ))
        .mount(&meta)
        .await;
    let options = |keys, database_url, refresh| {
        let mut meta_settings = test_meta();
        meta_settings.refresh_every = refresh;
        TestOptions {
            keys,
            database_url,
            provider_urls: all_providers_at(&meta.uri()),
            meta: meta_settings,
            ..Default::default()
        }
    };

    // Written under t1: the records that stay readable.
    let first = TestApp::spawn_with(backend, options(key_ring("t1", &["t1"]), None, None)).await;
    let database_url = first.database_url.clone();
    let admin = first.admin();
    let good_sms = create(
        &admin,
        new_account(Channel::Sms, "good-sms", json!({"api_key": "k-good"})),
    )
    .await;
    let good_mail = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_account(Channel::Email, "good-mail", json!({"api_key": "k-mail"}))
        },
    )
    .await;
    let good_ig = create(
        &admin,
        new_account(
            Channel::Instagram,
            "good-ig",
            json!({"access_token": "IGQ-good"}),
        ),
    )
    .await;
    let _data = first.stop().await;

    // Written under t2, a key the operator later drops from the ring.
    let second = TestApp::spawn_with(
        backend,
        options(
            key_ring("t2", &["t1", "t2"]),
            Some(database_url.clone()),
            None,
        ),
    )
    .await;
    let admin = second.admin();
    let bad_sms = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_account(Channel::Sms, "bad-sms", json!({"api_key": "k-bad"}))
        },
    )
    .await;
    let bad_ig = create(
        &admin,
        new_account(
            Channel::Instagram,
            "bad-ig",
            json!({"access_token": "IGQ-bad"}),
        ),
    )
    .await;
    // Both Instagram tokens are due; the unreadable one first.
    for (key, days) in [("bad-ig", 1), ("good-ig", 2)] {
        second
            .execute(
                "UPDATE accounts SET token_expires_at = $1 WHERE account_key = $2",
                vec![
                    (chrono::Utc::now() + chrono::Duration::days(days)).into(),
                    key.into(),
                ],
            )
            .await;
    }
    let _data_again = second.stop().await;

    // t2 is gone.
    let app = TestApp::spawn_with(
        backend,
        options(
            key_ring("t1", &["t1"]),
            Some(database_url),
            Some(Duration::from_secs(1)),
        ),
    )
    .await;
    let admin = app.admin();
    let own = expect_code(
        admin
            .accounts()
            .get_account(proto::GetAccountRequest {
                id: bad_sms.id.clone(),
            })
            .await,
        Code::Internal,
    );
    assert!(
        own.message().contains("t2"),
        "names the missing key: {own:?}"
    );

    // Written after the unreadable one, under t1 again.
    let late_sms = create(
        &admin,
        new_account(Channel::Sms, "late-sms", json!({"api_key": "k-late"})),
    )
    .await;
    let listed: Vec<String> = admin
        .list_all_accounts(None)
        .await
        .expect("the list works")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(
        listed,
        [
            good_sms.id.clone(),
            good_mail.id.clone(),
            good_ig.id.clone(),
            late_sms.id.clone()
        ]
    );
    // Pages of one find the record behind the unreadable one, and end.
    let mut paged = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .accounts()
            .list_accounts(proto::ListAccountsRequest {
                page_size: 1,
                page_token: page_token.clone(),
                channel: Channel::Sms.into(),
            })
            .await
            .expect("page")
            .into_inner();
        paged.extend(page.accounts.into_iter().map(|a| a.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
        assert!(paged.len() < 5, "paging ends");
    }
    assert_eq!(paged, [good_sms.id.clone(), late_sms.id.clone()]);

    let mut watch = app
        .service()
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let first_message = watch.message().await.expect("healthy").expect("a snapshot");
    let Some(proto::watch_default_accounts_response::Event::Snapshot(snapshot)) =
        first_message.event
    else {
        panic!("expected a snapshot, got {first_message:?}");
    };
    let defaults: Vec<_> = snapshot.defaults.iter().map(|a| a.id.clone()).collect();
    assert_eq!(defaults, std::slice::from_ref(&good_mail.id));

    // The refresher gets past the unreadable token to the readable one.
    let mut refreshed = false;
    for _ in 0..100 {
        if credential(&app, &good_ig.id, "access_token").await == "IGQ-good-refreshed" {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refreshed, "the readable token was refreshed");

    // Rotation moves the others and reports the two it cannot open.
    let report = app
        .store()
        .await
        .rotate_keys(2)
        .await
        .expect("rotation runs to the end");
    assert_eq!(report.records_checked, 6, "{report:?}");
    assert_eq!(report.unreadable.len(), 2, "{report:?}");
    for id in [&bad_sms.id, &bad_ig.id] {
        assert!(
            report.unreadable.iter().any(|r| r.contains(id.as_str())),
            "{report:?}"
        );
    }
    assert!(patchbay::store::readable::unreadable_records_skipped() > 0);

    // It cannot be changed without its secrets, but it can be deleted, which frees its
    // key for a replacement.
    let refused = expect_code(
        admin
            .accounts()
            .update_account(proto::UpdateAccountRequest {
                id: bad_sms.id.clone(),
                display_name: Some("Renamed".into()),
                ..Default::default()
            })
            .await,
        Code::Internal,
    );
    assert!(refused.message().contains("t2"), "{refused:?}");
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: bad_sms.id.clone(),
            expected_revision: None,
        })
        .await
        .expect("an unreadable account can be deleted");
    create(
        &admin,
        new_account(Channel::Sms, "bad-sms", json!({"api_key": "k-new"})),
    )
    .await;
}
