//! Default accounts: one per (workspace, division, channel) under any concurrency, and
//! the division → workspace fallback of GetDefaultAccount.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, TestApp, backend_tests, create, expect_code, new_account, new_whatsapp, try_default,
    update,
};
use patchbay_sdk::tonic::Code;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

backend_tests!(
    set_default_clears_the_previous_default,
    get_default_falls_back_from_division_to_workspace,
    deleting_or_deactivating_the_default_leaves_no_default,
    inactive_account_cannot_become_default,
    concurrent_set_default_leaves_exactly_one,
    concurrent_writes_of_two_channels_number_their_changes_without_gaps,
);

async fn set_default_clears_the_previous_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let first = create(&admin, new_whatsapp("111", "t1")).await;
    let second = create(&admin, new_whatsapp("222", "t2")).await;

    let now_default = admin
        .set_default_account(&first.id)
        .await
        .expect("set default");
    assert!(now_default.is_default);
    // Revision 2 was its set-up at Meta recorded DONE.
    assert_eq!(now_default.revision, 3);
    assert_eq!(
        admin
            .default_account(Channel::Whatsapp, None)
            .await
            .expect("default")
            .id,
        first.id
    );

    admin
        .set_default_account(&second.id)
        .await
        .expect("set default");
    let first = admin.get_account(&first.id).await.expect("get");
    assert!(!first.is_default, "the previous default is cleared");
    assert_eq!(
        first.revision, 4,
        "clearing the flag is a change of the record"
    );
    assert_eq!(
        admin
            .default_account(Channel::Whatsapp, None)
            .await
            .expect("default")
            .id,
        second.id
    );

    // Setting the default again changes nothing.
    let again = admin
        .set_default_account(&second.id)
        .await
        .expect("idempotent");
    assert_eq!(again.revision, 3);

    // A new account created as default takes over in the same transaction.
    let third = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_whatsapp("333", "t3")
        },
    )
    .await;
    assert!(third.is_default);
    assert!(!admin.get_account(&second.id).await.expect("get").is_default);

    // Defaults are per channel: another channel is untouched.
    let email = create(&admin, new_account(Channel::Email, "e", json!({}))).await;
    admin
        .set_default_account(&email.id)
        .await
        .expect("email default");
    assert_eq!(
        admin
            .default_account(Channel::Whatsapp, None)
            .await
            .expect("wa")
            .id,
        third.id
    );
}

async fn get_default_falls_back_from_division_to_workspace(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let service = app.service();
    expect_code(
        try_default(&service, Channel::Sms, "").await,
        Code::NotFound,
    );

    let workspace_wide = create(&admin, new_account(Channel::Sms, "main", json!({}))).await;
    admin
        .set_default_account(&workspace_wide.id)
        .await
        .expect("default");
    let sales = create(
        &admin,
        proto::CreateAccountRequest {
            division_id: Some("sales".into()),
            is_default: true,
            ..new_account(Channel::Sms, "sales-line", json!({}))
        },
    )
    .await;
    assert!(sales.is_default);
    assert!(
        admin
            .get_account(&workspace_wide.id)
            .await
            .expect("get")
            .is_default,
        "a division default does not clear the workspace-wide one"
    );

    let for_sales = service
        .default_account(Channel::Sms, Some("sales"))
        .await
        .expect("sales");
    assert_eq!(for_sales.id, sales.id);
    let for_support = service
        .default_account(Channel::Sms, Some("support"))
        .await
        .expect("support");
    assert_eq!(
        for_support.id, workspace_wide.id,
        "no division default: workspace-wide"
    );
    let for_workspace = service
        .default_account(Channel::Sms, None)
        .await
        .expect("workspace");
    assert_eq!(for_workspace.id, workspace_wide.id);

    // A division-scoped caller gets its own division without naming it, and no other.
    let sales_service = app.client("service", patchbay_e2e::WORKSPACE, Some("sales"));
    assert_eq!(
        sales_service
            .default_account(Channel::Sms, None)
            .await
            .expect("own")
            .id,
        sales.id
    );
    expect_code(
        try_default(&sales_service, Channel::Sms, "support").await,
        Code::PermissionDenied,
    );
}

async fn deleting_or_deactivating_the_default_leaves_no_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let account = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_account(Channel::Messenger, "page-1", json!({}))
        },
    )
    .await;
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: account.id.clone(),
            expected_revision: None,
        })
        .await
        .expect("delete");
    expect_code(
        try_default(&admin, Channel::Messenger, "").await,
        Code::NotFound,
    );

    let other = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..new_account(Channel::Messenger, "page-2", json!({}))
        },
    )
    .await;
    let deactivated = update(
        &admin,
        proto::UpdateAccountRequest {
            id: other.id.clone(),
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert!(!deactivated.is_default, "a default is always active");
    expect_code(
        try_default(&admin, Channel::Messenger, "").await,
        Code::NotFound,
    );
}

async fn inactive_account_cannot_become_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let account = create(
        &admin,
        proto::CreateAccountRequest {
            is_active: Some(false),
            ..new_account(Channel::Chat, "c1", json!({}))
        },
    )
    .await;
    expect_code(
        admin
            .accounts()
            .set_default_account(proto::SetDefaultAccountRequest {
                id: account.id.clone(),
                expected_revision: None,
            })
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        !admin
            .get_account(&account.id)
            .await
            .expect("get")
            .is_default
    );
}

async fn concurrent_set_default_leaves_exactly_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            create(&admin, new_whatsapp(&format!("5500{i:02}"), "t"))
                .await
                .id,
        );
    }

    set_defaults_at_once(&admin, &ids).await;

    let accounts = admin
        .list_all_accounts(Some(Channel::Whatsapp))
        .await
        .expect("list");
    let defaults: Vec<_> = accounts.iter().filter(|a| a.is_default).collect();
    assert_eq!(
        defaults.len(),
        1,
        "exactly one default after 50 concurrent calls"
    );
    let answer = admin
        .default_account(Channel::Whatsapp, None)
        .await
        .expect("default");
    assert_eq!(answer.id, defaults[0].id);

    // And the database agrees, behind the API.
    let db = app.database().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM accounts WHERE is_default AND deleted_at IS NULL",
        ))
        .await
        .expect("query")
        .expect("row");
    let count: i64 = row.try_get("", "n").expect("count");
    assert_eq!(count, 1);
}

/// Writers of two channels hold two scope locks at once; the workspace's event and
/// default-change numbers are still taken one after another: no number twice, none left
/// out, and the event head at the last one.
async fn concurrent_writes_of_two_channels_number_their_changes_without_gaps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            create(&admin, new_whatsapp(&format!("5600{i:02}"), "t"))
                .await
                .id,
        );
        let key = format!("desk{i}@acme.test");
        ids.push(
            create(&admin, new_account(Channel::Email, &key, json!({})))
                .await
                .id,
        );
    }
    set_defaults_at_once(&admin, &ids).await;

    let db = app.database().await;
    let revisions = |sql: &'static str| {
        let db = db.clone();
        async move {
            db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .expect("query")
                .iter()
                .map(|row| row.try_get::<i64>("", "revision").expect("revision"))
                .collect::<Vec<_>>()
        }
    };
    let events = revisions("SELECT revision FROM account_events ORDER BY revision").await;
    assert!(
        events.len() > ids.len(),
        "creates and set-defaults: {events:?}"
    );
    let expected: Vec<i64> = (1..=events.len() as i64).collect();
    assert_eq!(events, expected, "event numbers 1..=N, each once");
    let head = revisions("SELECT revision FROM account_event_heads").await;
    assert_eq!(
        head,
        vec![events.len() as i64],
        "the head is at the last event"
    );

    let changes = revisions("SELECT revision FROM default_account_changes ORDER BY revision").await;
    assert!(
        changes.len() >= ids.len(),
        "every set-default recorded: {changes:?}"
    );
    let expected: Vec<i64> = (1..=changes.len() as i64).collect();
    assert_eq!(changes, expected, "default revisions 1..=N, each once");
}

/// SetDefaultAccount on every one of `ids` at once; each must succeed.
async fn set_defaults_at_once(admin: &patchbay_sdk::Client, ids: &[String]) {
    let calls = ids.iter().map(|id| {
        let admin = admin.clone();
        let id = id.clone();
        tokio::spawn(async move { admin.set_default_account(&id).await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await
            .expect("task")
            .expect("every SetDefaultAccount succeeds");
    }
}
