//! Secrets at rest: no plaintext in the database, ciphertexts bound to their record and
//! field, clear errors for missing keys, and rotation under live traffic.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, TestApp, TestOptions, backend_tests, create, expect_code, key_ring, new_account,
    to_json, to_struct, update, upsert_settings,
};
use patchbay_sdk::tonic::Code;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

backend_tests!(
    no_secret_is_stored_in_plaintext,
    swapped_ciphertexts_do_not_decrypt,
    a_missing_key_is_named,
    rotation_reseals_everything_under_live_writes,
    newly_secret_names_are_sealed_by_rotation_and_schemas_decide_for_providers,
);

async fn no_secret_is_stored_in_plaintext(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let secrets = [
        "EAAG-plaintext-token-123456",
        "nested-password-zz",
        "array-secret-qq",
        "rotated-secret-yy",
        "SG.sendgrid-key-ww",
    ];
    let account = create(
        &admin,
        proto::CreateAccountRequest {
            config: Some(to_struct(json!({
                "phone_number_id": "5511",
                "access_token": secrets[0],
                "smtp": {"password": secrets[1], "host": "mail.example"},
                "hooks": [{"secret": secrets[2], "url": "https://h.example"}],
            }))),
            ..patchbay_e2e::new_whatsapp("5511", secrets[0])
        },
    )
    .await;
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            config: Some(to_struct(json!({"app_secret": secrets[3]}))),
            ..Default::default()
        },
    )
    .await;
    upsert_settings(
        &admin,
        proto::UpsertChannelSettingsRequest {
            channel: Channel::Email.into(),
            config: Some(to_struct(json!({"api_key": secrets[4]}))),
            ..Default::default()
        },
    )
    .await;
    let doomed = create(
        &admin,
        new_account(
            Channel::Sms,
            "gone",
            json!({"auth_token": "deleted-secret-dd"}),
        ),
    )
    .await;
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: doomed.id.clone(),
            expected_revision: None,
        })
        .await
        .expect("delete");
    let revealed = app
        .service()
        .account_credentials(&account.id)
        .await
        .expect("reveal");
    assert_eq!(
        to_json(revealed.config.as_ref().expect("config"))["app_secret"],
        json!(secrets[3])
    );

    let dump = app.dump().await;
    assert!(dump.contains("pbx1.t1."), "sealed values are there");
    for secret in secrets
        .iter()
        .chain([&"deleted-secret-dd", &account.verify_token.as_str()])
    {
        assert!(!dump.contains(secret), "{secret} found in the database");
    }
    assert!(dump.contains("mail.example"), "plain values stay readable");
}

async fn swapped_ciphertexts_do_not_decrypt(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let a = create(
        &admin,
        new_account(Channel::Sms, "a", json!({"api_key": "key-of-a"})),
    )
    .await;
    let b = create(
        &admin,
        new_account(Channel::Sms, "b", json!({"api_key": "key-of-b"})),
    )
    .await;

    let db = app.database().await;
    let mut configs = Vec::new();
    for key in ["a", "b"] {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT CAST(config AS TEXT) AS config FROM accounts WHERE account_key = '{key}'"),
            ))
            .await
            .expect("query")
            .expect("row");
        let text: String = row.try_get("", "config").expect("config");
        configs.push(serde_json::from_str::<serde_json::Value>(&text).expect("json"));
    }
    let json_value = |v: &serde_json::Value| sea_orm::Value::Json(Some(Box::new(v.clone())));
    let uuid_value =
        |id: &str| sea_orm::Value::Uuid(Some(uuid::Uuid::parse_str(id).expect("uuid")));
    app.execute(
        "UPDATE accounts SET config = $1 WHERE id = $2",
        vec![json_value(&configs[1]), uuid_value(&a.id)],
    )
    .await;
    app.execute(
        "UPDATE accounts SET config = $1 WHERE id = $2",
        vec![json_value(&configs[0]), uuid_value(&b.id)],
    )
    .await;

    for id in [&a.id, &b.id] {
        let status = expect_code(
            admin
                .accounts()
                .get_account(proto::GetAccountRequest { id: id.clone() })
                .await,
            Code::DataLoss,
        );
        assert!(status.message().contains("config.api_key"), "{status:?}");
        assert!(
            status.message().contains(id.as_str()),
            "names the record: {status:?}"
        );
        assert!(!status.message().contains("key-of-"), "{status:?}");
        expect_code(
            app.service()
                .accounts()
                .get_account_credentials(proto::GetAccountCredentialsRequest { id: id.clone() })
                .await,
            Code::DataLoss,
        );
    }

    // Moving a ciphertext between two fields of one record fails the same way.
    let c = create(
        &admin,
        new_account(
            Channel::Sms,
            "c",
            json!({"api_key": "k", "auth_token": "t"}),
        ),
    )
    .await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(config AS TEXT) AS config FROM accounts WHERE account_key = 'c'",
        ))
        .await
        .expect("query")
        .expect("row");
    let text: String = row.try_get("", "config").expect("config");
    let mut config: serde_json::Value = serde_json::from_str(&text).expect("json");
    let token = config["auth_token"].clone();
    config["auth_token"] = config["api_key"].clone();
    config["api_key"] = token;
    app.execute(
        "UPDATE accounts SET config = $1 WHERE id = $2",
        vec![json_value(&config), uuid_value(&c.id)],
    )
    .await;
    expect_code(
        admin
            .accounts()
            .get_account(proto::GetAccountRequest { id: c.id.clone() })
            .await,
        Code::DataLoss,
    );
}

async fn a_missing_key_is_named(backend: Backend) {
    let first = TestApp::spawn_with(
        backend,
        TestOptions {
            keys: key_ring("k0", &["k0"]),
            database_url: None,
            ..Default::default()
        },
    )
    .await;
    let account = create(
        &first.admin(),
        new_account(Channel::Sms, "s", json!({"api_key": "sealed-with-k0"})),
    )
    .await;
    let database_url = first.database_url.clone();
    let _data = first.stop().await;

    let without = TestApp::spawn_with(
        backend,
        TestOptions {
            keys: key_ring("k1", &["k1"]),
            database_url: Some(database_url.clone()),
            ..Default::default()
        },
    )
    .await;
    let status = expect_code(
        without
            .admin()
            .accounts()
            .get_account(proto::GetAccountRequest {
                id: account.id.clone(),
            })
            .await,
        Code::Internal,
    );
    assert!(
        status.message().contains("\"k0\""),
        "names the key id: {status:?}"
    );
    assert!(!status.message().contains("sealed-with-k0"));
    without.stop().await;

    let with_both = TestApp::spawn_with(
        backend,
        TestOptions {
            keys: key_ring("k1", &["k0", "k1"]),
            database_url: Some(database_url),
            ..Default::default()
        },
    )
    .await;
    let revealed = with_both
        .service()
        .account_credentials(&account.id)
        .await
        .expect("retired key still opens");
    assert_eq!(
        to_json(revealed.config.as_ref().expect("config"))["api_key"],
        json!("sealed-with-k0")
    );
}

async fn rotation_reseals_everything_under_live_writes(backend: Backend) {
    const ACCOUNTS: usize = 24;
    let before = TestApp::spawn_with(
        backend,
        TestOptions {
            keys: key_ring("t1", &["t1"]),
            database_url: None,
            ..Default::default()
        },
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..ACCOUNTS {
        let account = create(
            &before.admin(),
            new_account(
                Channel::Sms,
                &format!("r{i}"),
                json!({"api_key": format!("v0-{i}")}),
            ),
        )
        .await;
        ids.push(account.id);
    }
    upsert_settings(
        &before.admin(),
        proto::UpsertChannelSettingsRequest {
            channel: Channel::Sms.into(),
            config: Some(to_struct(json!({"api_key": "settings-v0"}))),
            ..Default::default()
        },
    )
    .await;
    before
        .admin()
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: ids[0].clone(),
            expected_revision: None,
        })
        .await
        .expect("delete");
    let database_url = before.database_url.clone();
    let _data = before.stop().await;

    // The operator adds t2, makes it active, restarts, and rotates while traffic flows.
    let keys = key_ring("t2", &["t1", "t2"]);
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            keys,
            database_url: Some(database_url.clone()),
            ..Default::default()
        },
    )
    .await;
    // What `keys rotate` has to do, as the metrics count it: every live account and
    // the channel settings (the deleted account's secrets were erased by its delete).
    let census = app.store().await;
    assert_eq!(
        census.records_off_active_key().await.expect("census"),
        ACCOUNTS as u64
    );
    let writer = {
        let admin = app.admin();
        let ids = ids.clone();
        tokio::spawn(async move {
            for round in 1..=4 {
                for (i, id) in ids.iter().enumerate().skip(1) {
                    update(
                        &admin,
                        proto::UpdateAccountRequest {
                            id: id.clone(),
                            config: Some(to_struct(json!({"api_key": format!("v{round}-{i}")}))),
                            ..Default::default()
                        },
                    )
                    .await;
                    admin.get_account(id).await.expect("reads go on");
                }
            }
        })
    };
    let store = app.store().await;
    let report = store.rotate_keys(5).await.expect("rotation");
    writer.await.expect("writer");
    assert_eq!(report.records_checked, ACCOUNTS as u64, "{report:?}");

    // Nothing lost: every account holds its last written secret.
    let service = app.service();
    for (i, id) in ids.iter().enumerate().skip(1) {
        let revealed = service.account_credentials(id).await.expect("reveal");
        assert_eq!(
            to_json(revealed.config.as_ref().expect("config"))["api_key"],
            json!(format!("v4-{i}"))
        );
    }
    // A second pass finds nothing left to do.
    let again = store.rotate_keys(5).await.expect("rotation");
    assert_eq!(again.records_rewritten, 0, "{again:?}");
    assert_eq!(census.records_off_active_key().await.expect("census"), 0);
    let stored = app.secret_columns().await;
    assert!(
        !stored.contains("pbx1.t1."),
        "no ciphertext under the retired key remains"
    );
    assert_eq!(
        stored.matches("pbx1.t2.").count(),
        2 * (ACCOUNTS - 1) + 1,
        "every secret under t2; none of the deleted account's"
    );
    let _data_again = app.stop().await;

    // The retired key can go: everything opens with t2 alone, deleted rows included.
    let after = TestApp::spawn_with(
        backend,
        TestOptions {
            keys: key_ring("t2", &["t2"]),
            database_url: Some(database_url),
            ..Default::default()
        },
    )
    .await;
    let settings = patchbay_e2e::get_settings(&after.admin(), Channel::Sms).await;
    assert_eq!(settings.revision, 1);
    let stored = after
        .store()
        .await
        .channel_settings()
        .find_channel_settings(patchbay_e2e::WORKSPACE, patchbay::domain::Channel::Sms)
        .await
        .expect("read")
        .expect("configured");
    assert_eq!(stored.config["api_key"], json!("settings-v0"));
    assert_eq!(
        after
            .admin()
            .list_all_accounts(None)
            .await
            .expect("list")
            .len(),
        ACCOUNTS - 1
    );
}

/// The name rule grew (`*_key`, `authorization`, `bearer`, `passphrase`): a value stored
/// in clear under such a name before reads as it is, masked, until `keys rotate` seals
/// it. A provider config goes by its schema alone: DocuSign's `integration_key` is not a
/// secret there.
async fn newly_secret_names_are_sealed_by_rotation_and_schemas_decide_for_providers(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let account = create(
        &admin,
        new_account(Channel::Sms, "legacy", json!({"region": "eu"})),
    )
    .await;
    // As an older server stored it: in clear, under names that are secret now.
    let legacy = json!({
        "region": "eu",
        "signing_key": "legacy-signing-0001",
        "Authorization": "Basic legacy-basic-0002",
        "ssh_passphrase": "legacy-phrase-0003",
    });
    app.execute(
        "UPDATE accounts SET config = $1 WHERE id = $2",
        vec![
            sea_orm::Value::Json(Some(Box::new(legacy.clone()))),
            sea_orm::Value::Uuid(Some(uuid::Uuid::parse_str(&account.id).expect("uuid"))),
        ],
    )
    .await;
    let shown = patchbay_e2e::config_of(&admin.get_account(&account.id).await.expect("read"));
    for key in ["signing_key", "Authorization", "ssh_passphrase"] {
        assert!(
            shown[key]
                .as_str()
                .is_some_and(|v| v.starts_with("********")),
            "{key} masked: {shown}"
        );
    }
    assert_eq!(shown["region"], json!("eu"));

    let docusign = admin
        .integrations()
        .create_integration(proto::CreateIntegrationRequest {
            provider: "docusign".into(),
            name: "DocuSign".into(),
            config: Some(to_struct(json!({
                "integration_key": "ik-not-a-secret-0001",
                "user_id": "u-1",
                "account_id": "a-1",
                "private_key": "-----BEGIN RSA PRIVATE KEY----- docusign-private-0001",
            }))),
            ..Default::default()
        })
        .await
        .expect("docusign")
        .into_inner()
        .integration
        .expect("integration");
    let config = to_json(docusign.config.as_ref().expect("config"));
    assert_eq!(config["integration_key"], json!("ik-not-a-secret-0001"));
    assert!(
        config["private_key"]
            .as_str()
            .is_some_and(|v| v.starts_with("********"))
    );

    let report = app.store().await.rotate_keys(10).await.expect("rotation");
    assert_eq!(report.secrets_resealed, 3, "{report:?}");
    let stored = app.secret_columns().await;
    for plain in [
        "legacy-signing-0001",
        "legacy-basic-0002",
        "legacy-phrase-0003",
    ] {
        assert!(!stored.contains(plain), "{plain} sealed by the rotation");
    }
    let revealed = app
        .service()
        .account_credentials(&account.id)
        .await
        .expect("reveal");
    let revealed = to_json(revealed.config.as_ref().expect("config"));
    assert_eq!(revealed, legacy, "the values are unchanged");

    let db = app.database().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(config AS TEXT) AS config FROM integrations",
        ))
        .await
        .expect("query")
        .expect("row");
    let text: String = row.try_get("", "config").expect("config");
    assert!(text.contains("ik-not-a-secret-0001"), "not sealed: {text}");
    assert!(!text.contains("docusign-private-0001"), "sealed: {text}");
}
