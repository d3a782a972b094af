//! The happy path of every AccountService RPC, soft delete and pagination.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, PUBLIC_BASE_URL, TestApp, backend_tests, config_of, create, expect_code, new_account,
    new_whatsapp, to_struct, update,
};
use patchbay_sdk::tonic::Code;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

backend_tests!(
    create_whatsapp_derives_key_token_and_webhook,
    create_get_update_round_trip,
    duplicate_key_is_already_exists_and_delete_frees_it,
    delete_is_soft_and_records_who,
    list_filters_by_channel_and_pages,
    stale_expected_revision_is_aborted,
);

async fn create_whatsapp_derives_key_token_and_webhook(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("123456789", "EAAG-token-0001")).await;

    assert_eq!(account.account_key, "wa-123456789");
    assert_eq!(account.channel, i32::from(Channel::Whatsapp));
    assert!(
        account.is_active,
        "accounts are active unless asked otherwise"
    );
    assert!(!account.is_default);
    // Saved PENDING (revision 1), then the set-up at Meta recorded DONE (revision 2).
    assert_eq!(account.revision, 2);
    assert_eq!(account.setup_state, i32::from(proto::SetupState::Done));
    assert!(uuid::Uuid::parse_str(&account.id).is_ok(), "id is a UUID");
    assert!(
        account.verify_token.len() >= 32,
        "verify token is generated"
    );
    // Under an opaque route, unique across workspaces: not the account key.
    let route = account
        .webhook_url
        .strip_prefix(&format!("{PUBLIC_BASE_URL}/webhooks/whatsapp/"))
        .unwrap_or_else(|| panic!("{}", account.webhook_url));
    assert!(
        route.len() == 32 && route.chars().all(|c| c.is_ascii_hexdigit()),
        "{route}"
    );
    assert!(account.created_at.is_some() && account.updated_at.is_some());

    let other = create(&app.admin(), new_whatsapp("987654321", "EAAG-token-0002")).await;
    assert_ne!(
        account.verify_token, other.verify_token,
        "each account gets its own token"
    );
}

async fn create_get_update_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let created = create(
        &admin,
        new_account(
            Channel::Email,
            "support@acme.com",
            json!({"from_name": "Acme"}),
        ),
    )
    .await;

    let fetched = admin.get_account(&created.id).await.expect("get");
    assert_eq!(fetched, created, "get returns what create returned");
    // An account with nothing against it is HEALTHY from the start, never unspecified.
    let health = created.health.clone().expect("health from the start");
    assert_eq!(health.state, i32::from(proto::HealthState::Healthy));
    assert!(health.reasons.is_empty());

    let updated = update(
        &admin,
        proto::UpdateAccountRequest {
            id: created.id.clone(),
            display_name: Some("Support desk".into()),
            is_active: Some(false),
            division_id: Some("sales".into()),
            config: Some(to_struct(json!({"reply_to": "help@acme.com"}))),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(updated.display_name, "Support desk");
    assert!(!updated.is_active);
    assert_eq!(updated.division_id.as_deref(), Some("sales"));
    assert_eq!(
        config_of(&updated),
        json!({"from_name": "Acme", "reply_to": "help@acme.com"})
    );
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.created_at, created.created_at);
    assert_ne!(updated.updated_at, created.updated_at);
    assert_eq!(admin.get_account(&created.id).await.expect("get"), updated);

    // An update that changes nothing writes nothing.
    let same = update(
        &admin,
        proto::UpdateAccountRequest {
            id: created.id.clone(),
            display_name: Some("Support desk".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(same.revision, 2);
}

async fn duplicate_key_is_already_exists_and_delete_frees_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let first = create(&admin, new_account(Channel::Sms, "+15550001", json!({}))).await;

    let status = expect_code(
        admin
            .accounts()
            .create_account(new_account(Channel::Sms, "+15550001", json!({})))
            .await,
        Code::AlreadyExists,
    );
    assert!(status.message().contains("+15550001"), "{status:?}");
    // The same key on another channel is another account.
    create(&admin, new_account(Channel::Chat, "+15550001", json!({}))).await;
    // WhatsApp keys collide through the phone number id.
    create(&admin, new_whatsapp("42", "t")).await;
    expect_code(
        admin
            .accounts()
            .create_account(new_whatsapp("42", "t"))
            .await,
        Code::AlreadyExists,
    );

    // Renaming another account onto a taken key is refused too.
    let second = create(&admin, new_account(Channel::Sms, "+15550002", json!({}))).await;
    expect_code(
        admin
            .accounts()
            .update_account(proto::UpdateAccountRequest {
                id: second.id.clone(),
                account_key: Some("+15550001".into()),
                ..Default::default()
            })
            .await,
        Code::AlreadyExists,
    );

    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: first.id.clone(),
            expected_revision: None,
        })
        .await
        .expect("delete");
    let reborn = create(&admin, new_account(Channel::Sms, "+15550001", json!({}))).await;
    assert_ne!(
        reborn.id, first.id,
        "the freed key belongs to a new account"
    );
}

async fn delete_is_soft_and_records_who(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let account = create(&admin, new_account(Channel::Instagram, "ig-1", json!({}))).await;
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: account.id.clone(),
            expected_revision: Some(account.revision),
        })
        .await
        .expect("delete");

    expect_code(
        admin
            .accounts()
            .get_account(proto::GetAccountRequest {
                id: account.id.clone(),
            })
            .await,
        Code::NotFound,
    );
    assert!(
        admin
            .list_all_accounts(None)
            .await
            .expect("list")
            .is_empty()
    );
    expect_code(
        admin
            .accounts()
            .delete_account(proto::DeleteAccountRequest {
                id: account.id.clone(),
                expected_revision: None,
            })
            .await,
        Code::NotFound,
    );

    // The row is still there, marked.
    let db = app.database().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT deleted_by, deleted_at IS NOT NULL AS gone FROM accounts WHERE account_key = 'ig-1'",
        ))
        .await
        .expect("query")
        .expect("row kept");
    let deleted_by: String = row.try_get("", "deleted_by").expect("deleted_by");
    let gone: bool = row.try_get("", "gone").expect("gone");
    assert_eq!(deleted_by, "admin-user", "deleted_by is the token's sub");
    assert!(gone);
}

async fn list_filters_by_channel_and_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            create(
                &admin,
                new_account(Channel::Email, &format!("e{i}"), json!({})),
            )
            .await
            .id,
        );
    }
    create(&admin, new_account(Channel::Sms, "s1", json!({}))).await;

    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = admin
            .accounts()
            .list_accounts(proto::ListAccountsRequest {
                channel: Channel::Email.into(),
                page_size: 3,
                page_token,
            })
            .await
            .expect("list")
            .into_inner();
        pages += 1;
        assert!(page.accounts.len() <= 3);
        assert!(
            page.accounts
                .iter()
                .all(|a| a.channel == i32::from(Channel::Email))
        );
        seen.extend(page.accounts.into_iter().map(|a| a.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every email account once, in creation order");
    assert_eq!(admin.list_all_accounts(None).await.expect("all").len(), 8);
}

async fn stale_expected_revision_is_aborted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let account = create(&admin, new_account(Channel::Push, "p1", json!({}))).await;
    admin
        .accounts()
        .update_account(proto::UpdateAccountRequest {
            id: account.id.clone(),
            display_name: Some("renamed".into()),
            expected_revision: Some(1),
            ..Default::default()
        })
        .await
        .expect("revision 1 matches");

    for result in [
        admin
            .accounts()
            .update_account(proto::UpdateAccountRequest {
                id: account.id.clone(),
                display_name: Some("again".into()),
                expected_revision: Some(1),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        admin
            .accounts()
            .set_default_account(proto::SetDefaultAccountRequest {
                id: account.id.clone(),
                expected_revision: Some(1),
            })
            .await
            .map(|_| ()),
        admin
            .accounts()
            .delete_account(proto::DeleteAccountRequest {
                id: account.id.clone(),
                expected_revision: Some(1),
            })
            .await
            .map(|_| ()),
    ] {
        expect_code(result, Code::Aborted);
    }
    let unchanged = admin.get_account(&account.id).await.expect("still there");
    assert_eq!(unchanged.display_name, "renamed");
    assert_eq!(unchanged.revision, 2);
    assert!(!unchanged.is_default);
}
