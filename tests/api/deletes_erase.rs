//! Deletes erase (#28, item 5): a deleted account's and integration's row keeps no
//! sealed value, an account no verify token and no verify-token index entry; the
//! tombstone keeps who and what it was, and its webhook route. Records deleted before
//! this version are erased by migration 000022.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{Backend, TestApp, backend_tests, create, new_account, to_struct};
use sea_orm::ConnectionTrait;
use serde_json::json;

backend_tests!(
    a_deleted_account_and_integration_keep_no_secret,
    records_deleted_before_the_upgrade_are_erased_by_the_migration
);

/// `sql` ending in `id = `, completed with the backend's placeholder for `id`.
fn by_id(db: &sea_orm::DatabaseConnection, sql: &str, id: &str) -> sea_orm::Statement {
    let backend = db.get_database_backend();
    let placeholder = if backend == sea_orm::DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let id = sea_orm::prelude::Uuid::parse_str(id).expect("a uuid");
    sea_orm::Statement::from_sql_and_values(backend, format!("{sql}{placeholder}"), [id.into()])
}

/// The stored columns of `table`'s row `id` that could hold a secret, as text.
async fn stored(app: &TestApp, table: &str, id: &str) -> (String, String, Option<String>) {
    let db = app.database().await;
    let columns = if table == "accounts" {
        "CAST(config AS TEXT) AS config, verify_token, verify_token_index"
    } else {
        "CAST(config AS TEXT) AS config, '' AS verify_token, NULL AS verify_token_index"
    };
    let row = db
        .query_one_raw(by_id(
            &db,
            &format!("SELECT {columns} FROM {table} WHERE id = "),
            id,
        ))
        .await
        .expect("query")
        .expect("the row stays, as a tombstone");
    (
        row.try_get("", "config").expect("config"),
        row.try_get("", "verify_token").expect("verify token"),
        row.try_get("", "verify_token_index").expect("index"),
    )
}

async fn seed(app: &TestApp) -> (proto::Account, proto::Account, proto::Integration) {
    let admin = app.admin();
    let page = |key: &str| {
        new_account(
            Channel::Messenger,
            key,
            json!({"page_id": format!("9{}", key.len()), "page_access_token": format!("EAAP-secret-{key}"),
                "app_secret": format!("app-secret-{key}"), "label": "kept"}),
        )
    };
    let doomed = create(&admin, page("doomed")).await;
    let kept = create(&admin, page("kept-page")).await;
    let integration = admin
        .integrations()
        .create_integration(proto::CreateIntegrationRequest {
            provider: "chatwoot".into(),
            name: "Chatwoot".into(),
            config: Some(to_struct(json!({"accountId": 3,
                "chatwootURL": "https://chatwoot.example.test",
                "chatwootAccessToken": "cw-secret-token"}))),
            ..Default::default()
        })
        .await
        .expect("integration")
        .into_inner()
        .integration
        .expect("integration");
    (doomed, kept, integration)
}

async fn delete_both(app: &TestApp, account: &str, integration: &str) {
    let admin = app.admin();
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: account.to_owned(),
            ..Default::default()
        })
        .await
        .expect("account deleted");
    admin
        .integrations()
        .delete_integration(proto::DeleteIntegrationRequest {
            id: integration.to_owned(),
            expected_revision: None,
        })
        .await
        .expect("integration deleted");
}

fn assert_erased(config: &str, verify_token: &str, index: Option<&str>) {
    assert!(!config.contains("$patchbay_sealed"), "{config}");
    assert!(!config.contains("pbx1."), "{config}");
    for value in ["EAAP-secret-", "app-secret-", "cw-secret-token"] {
        assert!(!config.contains(value), "{config}");
    }
    assert_eq!(verify_token, "");
    assert_eq!(index, None);
}

async fn a_deleted_account_and_integration_keep_no_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (doomed, kept, integration) = seed(&app).await;
    let (before, token, index) = stored(&app, "accounts", &doomed.id).await;
    assert!(before.contains("$patchbay_sealed") && token.starts_with("pbx1."));
    assert!(index.is_some());
    delete_both(&app, &doomed.id, &integration.id).await;

    let (config, token, index) = stored(&app, "accounts", &doomed.id).await;
    assert_erased(&config, &token, index.as_deref());
    // The tombstone keeps what is no secret.
    let kept_fields: serde_json::Value = serde_json::from_str(&config).expect("json");
    assert_eq!(kept_fields["label"], json!("kept"), "{config}");
    assert_eq!(kept_fields["page_access_token"], json!(null), "{config}");
    let (config, _, _) = stored(&app, "integrations", &integration.id).await;
    assert_erased(&config, "", None);
    assert!(config.contains("chatwoot.example.test"), "{config}");
    // The live account keeps its sealed secrets.
    let (config, token, _) = stored(&app, "accounts", &kept.id).await;
    assert!(config.contains("$patchbay_sealed") && token.starts_with("pbx1."));
    // Its webhook route stays reserved: a URL never names another account.
    let db = app.database().await;
    let route = db
        .query_one_raw(by_id(
            &db,
            "SELECT webhook_route FROM accounts WHERE id = ",
            &doomed.id,
        ))
        .await
        .expect("query")
        .expect("row");
    let route: String = route.try_get("", "webhook_route").expect("route");
    assert!(doomed.webhook_url.ends_with(&route), "{route}");
}

async fn records_deleted_before_the_upgrade_are_erased_by_the_migration(backend: Backend) {
    use sea_orm_migration::MigratorTrait;
    let app = TestApp::spawn(backend).await;
    let (doomed, kept, integration) = seed(&app).await;
    delete_both(&app, &doomed.id, &integration.id).await;
    // As a delete of the version before left them: sealed values and the verify token
    // still in the rows (copied from a live record), then the upgrade.
    let db = app.database().await;
    // Down to before 000022 (the last migration, or with those after it).
    let from_erasure = patchbay_migrations::Migrator::migrations()
        .iter()
        .rev()
        .take_while(|m| m.name() != "m20261206_000022_erase_deleted_secrets")
        .count() as u32
        + 1;
    patchbay_migrations::Migrator::down(&db, Some(from_erasure))
        .await
        .expect("down");
    let (config, token, index) = stored(&app, "accounts", &kept.id).await;
    let backend_of = db.get_database_backend();
    let cast = if backend_of == sea_orm::DbBackend::Postgres {
        "CAST($1 AS JSON)"
    } else {
        "$1"
    };
    app.execute(
        &format!(
            "UPDATE accounts SET config = {cast}, verify_token = $2, verify_token_index = $3 WHERE id = $4"
        ),
        vec![
            config.into(),
            token.into(),
            index.into(),
            uuid(&doomed.id),
        ],
    )
    .await;
    app.execute(
        &format!("UPDATE integrations SET config = {cast} WHERE id = $2"),
        vec![
            json!({"accountId": 3, "chatwootAccessToken": {"$patchbay_sealed": "pbx1.t1.old"}})
                .to_string()
                .into(),
            uuid(&integration.id),
        ],
    )
    .await;
    let (config, _, _) = stored(&app, "accounts", &doomed.id).await;
    assert!(
        config.contains("$patchbay_sealed"),
        "the old delete's leftovers"
    );
    patchbay_migrations::Migrator::up(&db, None)
        .await
        .expect("up");
    let (config, token, index) = stored(&app, "accounts", &doomed.id).await;
    assert_erased(&config, &token, index.as_deref());
    let (config, _, _) = stored(&app, "integrations", &integration.id).await;
    assert_erased(&config, "", None);
    // The live account is untouched.
    let (config, token, _) = stored(&app, "accounts", &kept.id).await;
    assert!(config.contains("$patchbay_sealed") && token.starts_with("pbx1."));
}

fn uuid(id: &str) -> sea_orm::Value {
    sea_orm::prelude::Uuid::parse_str(id)
        .expect("a uuid")
        .into()
}
