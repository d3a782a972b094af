//! Idempotency keys on mutating calls: a replay returns the first response and writes
//! nothing; another request under the same key is refused; keys expire; a key belongs
//! to one caller; nothing secret is kept with a key.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, backend_tests, expect_code, new_account, to_struct,
    violated_fields,
};
use patchbay_sdk::Client;
use patchbay_sdk::tonic::{Code, Request, Status};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

backend_tests!(
    replays_return_the_first_response_and_write_nothing,
    a_key_belongs_to_one_request,
    failed_calls_release_their_key_and_keys_expire,
    concurrent_replays_create_one_record,
    a_key_belongs_to_one_caller,
    no_secret_is_kept_with_a_key,
);

fn keyed<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("idempotency-key", key.parse().expect("header"));
    request
}

async fn create_with_key(
    client: &Client,
    key: &str,
    account_key: &str,
) -> Result<proto::Account, Status> {
    client
        .accounts()
        .create_account(keyed(
            new_account(Channel::Sms, account_key, json!({"api_key": "k-1"})),
            key,
        ))
        .await
        .map(|r| r.into_inner().account.expect("account"))
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let db = app.database().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("row");
    row.try_get("", "n").expect("n")
}

async fn replays_return_the_first_response_and_write_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let first = create_with_key(&admin, "create-1", "line")
        .await
        .expect("first");
    let again = create_with_key(&admin, "create-1", "line")
        .await
        .expect("replay");
    assert_eq!(again, first);
    assert_eq!(count(&app, "accounts").await, 1);
    let events_after_create = count(&app, "audit_events").await;

    let set_default = |key: &'static str| {
        let mut accounts = admin.accounts();
        let id = first.id.clone();
        async move {
            accounts
                .set_default_account(keyed(
                    proto::SetDefaultAccountRequest {
                        id,
                        expected_revision: Some(1),
                    },
                    key,
                ))
                .await
                .map(|r| r.into_inner())
        }
    };
    let once = set_default("default-1").await.expect("set default");
    // A replay gets the first answer even though expected_revision 1 is stale now.
    assert_eq!(set_default("default-1").await.expect("replay"), once);

    let upsert = proto::UpsertChannelSettingsRequest {
        channel: Channel::Sms.into(),
        config: Some(to_struct(json!({"counter": 1}))),
        ..Default::default()
    };
    let settings = admin
        .integrations()
        .upsert_channel_settings(keyed(upsert.clone(), "upsert-1"))
        .await
        .expect("upsert")
        .into_inner();
    let replayed = admin
        .integrations()
        .upsert_channel_settings(keyed(upsert, "upsert-1"))
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(replayed, settings);

    let integration = proto::CreateIntegrationRequest {
        provider: "openai".into(),
        name: "AI".into(),
        config: Some(to_struct(json!({"api_key": "sk-1"}))),
        ..Default::default()
    };
    let made = admin
        .integrations()
        .create_integration(keyed(integration.clone(), "integration-1"))
        .await
        .expect("create")
        .into_inner();
    let remade = admin
        .integrations()
        .create_integration(keyed(integration, "integration-1"))
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(remade, made);
    assert_eq!(count(&app, "integrations").await, 1);

    let delete = || {
        let mut accounts = admin.accounts();
        let id = first.id.clone();
        async move {
            accounts
                .delete_account(keyed(
                    proto::DeleteAccountRequest {
                        id,
                        expected_revision: None,
                    },
                    "delete-1",
                ))
                .await
        }
    };
    delete().await.expect("delete");
    delete()
        .await
        .expect("a replayed delete answers as the first did, not NOT_FOUND");

    // Only the first of each call was audited.
    assert_eq!(count(&app, "audit_events").await, events_after_create + 4);

    // Keys are per workspace.
    create_with_key(
        &app.client("admin", OTHER_WORKSPACE, None),
        "create-1",
        "line",
    )
    .await
    .expect("other workspace");

    // A replay of a deleted record's create does not bring it (or its secrets) back.
    let status = create_with_key(&admin, "create-1", "line")
        .await
        .expect_err("the record is gone");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

/// A key is (workspace, sub, role, division): another caller's identical request under
/// the same key runs as its own call and never answers with the first caller's record.
async fn a_key_belongs_to_one_caller(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let for_support = |account_key: &str| proto::CreateAccountRequest {
        division_id: Some("support".into()),
        ..new_account(Channel::Sms, account_key, json!({"api_key": "k-1"}))
    };
    let first = app
        .admin()
        .accounts()
        .create_account(keyed(for_support("support-line"), "shared-key"))
        .await
        .expect("workspace admin creates for support")
        .into_inner()
        .account
        .expect("account");
    // The same sub ("admin-user") with a division-scoped token is another caller: the
    // request runs as its own, and sales may not write support's accounts.
    let sales = app.client("admin", patchbay_e2e::WORKSPACE, Some("sales"));
    let status = expect_code(
        sales
            .accounts()
            .create_account(keyed(for_support("support-line"), "shared-key"))
            .await,
        Code::PermissionDenied,
    );
    assert!(!status.message().contains(&first.id), "{status:?}");
    // Its own request under the same key name is its own key.
    let own = sales
        .accounts()
        .create_account(keyed(
            proto::CreateAccountRequest {
                division_id: Some("sales".into()),
                ..new_account(Channel::Sms, "sales-line", json!({}))
            },
            "shared-key",
        ))
        .await
        .expect("a key of its own")
        .into_inner()
        .account
        .expect("account");
    assert_ne!(own.id, first.id);
    // Another sub with the workspace admin's role is another caller too.
    let other_sub = patchbay::auth::mint(
        &patchbay_e2e::jwt_settings(),
        &patchbay::auth::TokenRequest {
            subject: "someone-else".into(),
            role: "admin".into(),
            workspace_id: Some(patchbay_e2e::WORKSPACE.into()),
            division_id: None,
            ttl: std::time::Duration::from_secs(600),
        },
    )
    .expect("token");
    let status = expect_code(
        app.with_token(&other_sub)
            .accounts()
            .create_account(keyed(for_support("support-line"), "shared-key"))
            .await,
        Code::AlreadyExists,
    );
    assert!(!status.message().contains(&first.id));
    assert_eq!(count(&app, "accounts").await, 2);
}

/// Neither the verify token a create answers with nor a config secret is kept with a
/// key: the database holds references and sealed answers only.
async fn no_secret_is_kept_with_a_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let made = admin
        .accounts()
        .create_account(keyed(
            new_account(
                Channel::Sms,
                "secretive",
                json!({"api_key": "kept-secret-0001"}),
            ),
            "secret-create",
        ))
        .await
        .expect("create")
        .into_inner()
        .account
        .expect("account");
    assert!(!made.verify_token.starts_with("********"), "admins see it");
    // An update that changes nothing keeps its answer (sealed).
    let unchanged = proto::UpdateAccountRequest {
        id: made.id.clone(),
        display_name: Some(made.display_name.clone()),
        ..Default::default()
    };
    let first = admin
        .accounts()
        .update_account(keyed(unchanged.clone(), "secret-noop"))
        .await
        .expect("no-op update")
        .into_inner();
    let again = admin
        .accounts()
        .update_account(keyed(unchanged, "secret-noop"))
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(
        admin
            .accounts()
            .create_account(keyed(
                new_account(
                    Channel::Sms,
                    "secretive",
                    json!({"api_key": "kept-secret-0001"})
                ),
                "secret-create",
            ))
            .await
            .expect("replay")
            .into_inner()
            .account
            .expect("account"),
        made
    );
    let dump = app.dump().await;
    for secret in [made.verify_token.as_str(), "kept-secret-0001"] {
        assert!(
            !dump.contains(secret),
            "{secret} is in the database in clear"
        );
    }
}

async fn a_key_belongs_to_one_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    create_with_key(&admin, "k", "one").await.expect("first");
    let status = create_with_key(&admin, "k", "two")
        .await
        .expect_err("another request");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = admin
        .accounts()
        .set_default_account(keyed(
            proto::SetDefaultAccountRequest {
                id: uuid::Uuid::new_v4().to_string(),
                expected_revision: None,
            },
            "k",
        ))
        .await
        .expect_err("another method");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(count(&app, "accounts").await, 1);

    let status = expect_code(
        create_with_key(&admin, "has space", "x").await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["idempotency-key"]);
    // Roles are checked before keys: a supervisor cannot replay an admin's call.
    expect_code(
        create_with_key(&app.supervisor(), "k", "one").await,
        Code::PermissionDenied,
    );
}

async fn failed_calls_release_their_key_and_keys_expire(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let bad = create_with_key(&admin, "retry-me", "bad key")
        .await
        .expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    // The corrected request may use the same key: the failure kept nothing.
    let created = create_with_key(&admin, "retry-me", "good-key")
        .await
        .expect("corrected");
    assert_eq!(
        create_with_key(&admin, "retry-me", "good-key")
            .await
            .expect("replay")
            .id,
        created.id
    );

    // Once expired, the key runs its request again (here: the key is now taken).
    app.execute(
        "UPDATE idempotency_keys SET expires_at = created_at",
        vec![],
    )
    .await;
    let status = create_with_key(&admin, "retry-me", "good-key")
        .await
        .expect_err("ran again");
    assert_eq!(status.code(), Code::AlreadyExists);
}

async fn concurrent_replays_create_one_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let admin = app.admin();
            tokio::spawn(async move { create_with_key(&admin, "burst", "burst-line").await })
        })
        .collect();
    let mut ids = Vec::new();
    for call in calls {
        match call.await.expect("task") {
            Ok(account) => ids.push(account.id),
            Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    assert!(!ids.is_empty());
    assert!(
        ids.iter().all(|id| id == &ids[0]),
        "every success is the first response"
    );
    assert_eq!(count(&app, "accounts").await, 1);
}
