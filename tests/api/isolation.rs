//! Tenancy: another workspace's records do not exist for a caller, and a division-scoped
//! caller sees its division and workspace-wide records but writes only its own.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, WORKSPACE, backend_tests, create, expect_code, get_settings,
    new_account, to_struct, upsert_settings,
};
use patchbay_sdk::tonic::Code;
use serde_json::json;

backend_tests!(
    other_workspace_is_not_found,
    division_scope_limits_reads_and_writes
);

async fn other_workspace_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ours = create(
        &app.admin(),
        new_account(Channel::Email, "ours", json!({"api_key": "k-ours"})),
    )
    .await;
    app.admin()
        .set_default_account(&ours.id)
        .await
        .expect("default");
    upsert_settings(
        &app.admin(),
        proto::UpsertChannelSettingsRequest {
            channel: Channel::Email.into(),
            is_active: Some(true),
            config: Some(to_struct(json!({"sender": "ours"}))),
            ..Default::default()
        },
    )
    .await;

    let intruder = app.client("admin", OTHER_WORKSPACE, None);
    let mut accounts = intruder.accounts();
    let id = ours.id.clone();
    let status = expect_code(
        accounts
            .get_account(proto::GetAccountRequest { id: id.clone() })
            .await,
        Code::NotFound,
    );
    assert!(
        !status.message().contains("ours"),
        "nothing of the record leaks: {status:?}"
    );
    expect_code(
        accounts
            .update_account(proto::UpdateAccountRequest {
                id: id.clone(),
                display_name: Some("hijacked".into()),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        accounts
            .set_default_account(proto::SetDefaultAccountRequest {
                id: id.clone(),
                expected_revision: None,
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        accounts
            .delete_account(proto::DeleteAccountRequest {
                id: id.clone(),
                expected_revision: None,
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        accounts
            .get_default_account(proto::GetDefaultAccountRequest {
                channel: Channel::Email.into(),
                division_id: String::new(),
                no_fallback: false,
            })
            .await,
        Code::NotFound,
    );
    assert!(
        intruder
            .list_all_accounts(None)
            .await
            .expect("list")
            .is_empty()
    );
    let settings = get_settings(&intruder, Channel::Email).await;
    assert!(
        settings.id.is_empty(),
        "the other workspace's email is unconfigured"
    );
    assert!(
        intruder
            .integrations()
            .list_channel_settings(proto::ListChannelSettingsRequest {})
            .await
            .expect("list")
            .into_inner()
            .channel_settings
            .is_empty()
    );

    // The same key is free in the other workspace, and ours is untouched.
    create(&intruder, new_account(Channel::Email, "ours", json!({}))).await;
    let after = app.admin().get_account(&ours.id).await.expect("ours");
    assert_eq!(after.display_name, ours.display_name);
    assert!(after.is_default);
}

async fn division_scope_limits_reads_and_writes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let workspace_wide = create(&admin, new_account(Channel::Sms, "hq", json!({}))).await;
    let support = create(
        &admin,
        proto::CreateAccountRequest {
            division_id: Some("support".into()),
            ..new_account(Channel::Sms, "support-line", json!({}))
        },
    )
    .await;

    let sales_admin = app.client("admin", WORKSPACE, Some("sales"));
    // Created without a division, the account lands in the caller's.
    let own = create(
        &sales_admin,
        new_account(Channel::Sms, "sales-line", json!({})),
    )
    .await;
    assert_eq!(own.division_id.as_deref(), Some("sales"));

    let visible: Vec<_> = sales_admin
        .list_all_accounts(None)
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.account_key)
        .collect();
    assert_eq!(
        visible,
        ["hq", "sales-line"],
        "its division and workspace-wide ones"
    );

    let mut accounts = sales_admin.accounts();
    expect_code(
        accounts
            .get_account(proto::GetAccountRequest {
                id: support.id.clone(),
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        accounts
            .update_account(proto::UpdateAccountRequest {
                id: support.id.clone(),
                display_name: Some("x".into()),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    // Seen, but not its to change.
    sales_admin
        .get_account(&workspace_wide.id)
        .await
        .expect("workspace-wide is visible");
    expect_code(
        accounts
            .set_default_account(proto::SetDefaultAccountRequest {
                id: workspace_wide.id.clone(),
                expected_revision: None,
            })
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        accounts
            .create_account(proto::CreateAccountRequest {
                division_id: Some("support".into()),
                ..new_account(Channel::Sms, "sneaky", json!({}))
            })
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        accounts
            .update_account(proto::UpdateAccountRequest {
                id: own.id.clone(),
                division_id: Some(String::new()),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
    sales_admin
        .set_default_account(&own.id)
        .await
        .expect("its own division's default");
    assert!(
        admin
            .list_all_accounts(None)
            .await
            .expect("all")
            .iter()
            .all(|a| a.account_key != "sneaky")
    );
}
