//! Nothing a client stores is read as a ciphertext: strings shaped like sealed values, at
//! every depth and position, round-trip as data through every read, and the envelope the
//! server seals into is a shape no client may send. Values sealed before envelopes
//! existed are moved into them by a migration (run down and up again here).

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, TestApp, WORKSPACE, backend_tests, config_of, create, expect_code, get_account,
    new_account, settings_config, to_json, to_struct, upsert_settings, violated_fields,
};
use patchbay_sdk::tonic::Code;
use serde_json::{Value, json};

backend_tests!(
    ciphertext_shaped_values_are_data_everywhere,
    the_envelope_shape_is_refused_from_clients,
    the_envelope_migration_moves_only_sealed_values,
);

/// Look-alikes: an unknown key id, the server's own key id, and a real ciphertext taken
/// from another record.
fn odd_document(real: &str) -> Value {
    json!({
        "note": "pbx1.zz.AAAA",
        "kid_lookalike": "pbx1.t1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "copied": real,
        "list": ["pbx1.zz.AAAA", {"inner": real}, ["pbx1.t1.BBBB"]],
        "nested": {"deeper": {"deepest": "pbx1.zz.CCCC"}},
        "api_key": "pbx1.zz.DDDD"
    })
}

/// A real ciphertext, as stored for another account's secret.
async fn stolen_ciphertext(app: &TestApp) -> String {
    let donor = create(
        &app.admin(),
        new_account(Channel::Email, "donor", json!({"api_key": "donor-secret"})),
    )
    .await;
    let stored = app.secret_columns().await;
    let start = stored.find("pbx1.t1.").expect("a ciphertext is stored");
    let end = stored[start..]
        .find('"')
        .map_or(stored.len(), |end| start + end);
    let real = stored[start..end].to_owned();
    assert!(!donor.id.is_empty() && real.len() > 20, "{real}");
    real
}

async fn ciphertext_shaped_values_are_data_everywhere(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let real = stolen_ciphertext(&app).await;
    let odd = odd_document(&real);
    let sales = app.client("admin", WORKSPACE, Some("sales"));

    // A division admin stores them in an account of their own division, made default.
    let account = create(
        &sales,
        proto::CreateAccountRequest {
            is_default: true,
            division_id: Some("sales".into()),
            ..new_account(Channel::Sms, "odd", odd.clone())
        },
    )
    .await;
    let mut shown = odd.clone();
    shown["api_key"] = json!("********");
    assert_eq!(config_of(&account), shown, "the create answer");
    // Every read of the workspace admin works and shows the values as they came.
    let admin = app.admin();
    assert_eq!(config_of(&get_account(&admin, &account.id).await), shown);
    let listed = admin.list_all_accounts(None).await.expect("the list works");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|a| config_of(a) == shown));
    let default = admin
        .default_account(Channel::Sms, Some("sales"))
        .await
        .expect("default");
    assert_eq!(config_of(&default), shown);
    let revealed = app
        .service()
        .account_credentials(&account.id)
        .await
        .expect("reveal");
    assert_eq!(
        to_json(revealed.config.as_ref().expect("config")),
        odd,
        "the secret is the string that was sent"
    );
    // A watcher's snapshot holds it.
    let mut watch = app
        .service()
        .accounts()
        .watch_default_accounts(proto::WatchDefaultAccountsRequest {
            channels: vec![Channel::Sms.into()],
            division_id: "sales".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("healthy").expect("a snapshot");
    let Some(proto::watch_default_accounts_response::Event::Snapshot(snapshot)) = first.event
    else {
        panic!("expected a snapshot, got {first:?}");
    };
    assert_eq!(snapshot.defaults.len(), 1);

    // Channel settings and an integration take them the same way.
    let settings = upsert_settings(
        &admin,
        proto::UpsertChannelSettingsRequest {
            channel: Channel::Chat.into(),
            config: Some(to_struct(odd.clone())),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(settings_config(&settings), shown);
    assert_eq!(
        settings_config(&patchbay_e2e::get_settings(&admin, Channel::Chat).await),
        shown
    );
    let integration = admin
        .integrations()
        .create_integration(proto::CreateIntegrationRequest {
            provider: "openai".into(),
            name: "OpenAI".into(),
            config: Some(to_struct(json!({
                "api_key": "pbx1.zz.EEEE",
                "organization": real,
                "model": "pbx1.t1.FFFF"
            }))),
            ..Default::default()
        })
        .await
        .expect("integration")
        .into_inner()
        .integration
        .expect("integration");
    let read = admin
        .integrations()
        .get_integration(proto::GetIntegrationRequest {
            id: integration.id.clone(),
        })
        .await
        .expect("read")
        .into_inner()
        .integration
        .expect("integration");
    let config = to_json(read.config.as_ref().expect("config"));
    assert_eq!(config["organization"], json!(real));
    assert_eq!(config["model"], json!("pbx1.t1.FFFF"));
    admin
        .integrations()
        .list_integrations(proto::ListIntegrationsRequest::default())
        .await
        .expect("the list works");
    let report = app.store().await.rotate_keys(10).await.expect("rotation");
    assert_eq!(report.records_rewritten, 0, "nothing to move: {report:?}");
}

async fn the_envelope_shape_is_refused_from_clients(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let status = expect_code(
        app.admin()
            .accounts()
            .create_account(new_account(
                Channel::Sms,
                "forger",
                json!({"x": {"$patchbay_sealed": "pbx1.t1.AAAA"}, "l": [{"$patchbay_sealed": "pbx1.t1.AAAA"}]}),
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["config.l[0].$patchbay_sealed", "config.x.$patchbay_sealed"]
    );
    let status = expect_code(
        app.admin()
            .integrations()
            .upsert_channel_settings(proto::UpsertChannelSettingsRequest {
                channel: Channel::Chat.into(),
                config: Some(to_struct(json!({"$patchbay_sealed": "pbx1.t1.AAAA"}))),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["config.$patchbay_sealed"]);
}

async fn the_envelope_migration_moves_only_sealed_values(backend: Backend) {
    use sea_orm_migration::MigratorTrait;
    let app = TestApp::spawn(backend).await;
    let account = create(
        &app.admin(),
        new_account(
            Channel::Sms,
            "legacy",
            json!({"api_key": "k-legacy", "note": "pbx1.zz.AAAA", "smtp": {"password": "p-legacy"}}),
        ),
    )
    .await;
    let db = app.database().await;
    let stored = || async {
        use sea_orm::ConnectionTrait;
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT CAST(config AS TEXT) AS config FROM accounts WHERE account_key = 'legacy'",
            ))
            .await
            .expect("query")
            .expect("row");
        let text: String = row.try_get("", "config").expect("text");
        serde_json::from_str::<Value>(&text).expect("json")
    };
    // Back to the inline form of earlier versions (the migrations after it undone
    // first), then forward again.
    let after_envelopes = patchbay_migrations::Migrator::migrations()
        .iter()
        .rev()
        .take_while(|m| m.name() != "m20261201_000012_seal_values_in_envelopes")
        .count() as u32;
    patchbay_migrations::Migrator::down(&db, Some(after_envelopes + 1))
        .await
        .expect("down");
    let inline = stored().await;
    assert!(
        inline["api_key"]
            .as_str()
            .is_some_and(|s| s.starts_with("pbx1.t1.")),
        "{inline}"
    );
    assert!(
        inline["smtp"]["password"]
            .as_str()
            .is_some_and(|s| s.starts_with("pbx1.t1."))
    );
    assert_eq!(inline["note"], json!("pbx1.zz.AAAA"));
    patchbay_migrations::Migrator::up(&db, None)
        .await
        .expect("up");
    let wrapped = stored().await;
    assert_eq!(
        wrapped["api_key"]["$patchbay_sealed"], inline["api_key"],
        "moved as it was"
    );
    assert_eq!(
        wrapped["smtp"]["password"]["$patchbay_sealed"],
        inline["smtp"]["password"]
    );
    assert_eq!(
        wrapped["note"],
        json!("pbx1.zz.AAAA"),
        "a look-alike stays data"
    );
    let revealed = app
        .service()
        .account_credentials(&account.id)
        .await
        .expect("reveal");
    assert_eq!(
        to_json(revealed.config.as_ref().expect("config")),
        json!({"api_key": "k-legacy", "note": "pbx1.zz.AAAA", "smtp": {"password": "p-legacy"}})
    );
}
