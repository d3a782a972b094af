//! Config documents: secrets masked in every response, the masked round trip keeping the
//! stored secret, and JSON merge patch semantics.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, TestApp, WORKSPACE, backend_tests, config_of, create, expect_code, new_whatsapp,
    settings_config, to_json, to_struct, update, upsert_settings, violated_fields,
};
use patchbay_sdk::tonic::Code;
use serde_json::{Value, json};

backend_tests!(
    secrets_are_masked_in_every_response,
    masked_round_trip_keeps_the_stored_secret,
    updates_are_json_merge_patches,
    masked_value_without_a_stored_secret_is_invalid,
);

const TOKEN: &str = "EAAG-real-secret-token-0001";

fn assert_masked(config: &Value, context: &str) {
    assert_eq!(
        config["access_token"],
        json!("********0001"),
        "{context}: {config}"
    );
    assert_eq!(
        config["smtp"]["password"],
        json!("********"),
        "{context}: {config}"
    );
    assert_eq!(
        config["smtp"]["host"],
        json!("mail.acme.com"),
        "{context}: plain values stay"
    );
    assert!(
        !config.to_string().contains(TOKEN),
        "{context}: no secret in {config}"
    );
}

fn account_config() -> Value {
    json!({
        "phone_number_id": "123",
        "access_token": TOKEN,
        "smtp": {"host": "mail.acme.com", "password": "hunter2-secret"},
    })
}

/// The account's config in clear, through the one call that reveals it.
async fn revealed_config(app: &TestApp, id: &str) -> Value {
    let credentials = app
        .service()
        .accounts()
        .get_account_credentials(proto::GetAccountCredentialsRequest { id: id.into() })
        .await
        .expect("credentials")
        .into_inner();
    to_json(credentials.config.as_ref().expect("config"))
}

/// A channel's config in clear, read behind the API with the server's keys.
async fn stored_settings_config(app: &TestApp, channel: patchbay::domain::Channel) -> Value {
    let settings = app
        .store()
        .await
        .channel_settings()
        .find_channel_settings(WORKSPACE, channel)
        .await
        .expect("read")
        .expect("configured");
    Value::Object(settings.config)
}

async fn secrets_are_masked_in_every_response(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let created = create(
        &admin,
        proto::CreateAccountRequest {
            config: Some(to_struct(account_config())),
            ..new_whatsapp("123", TOKEN)
        },
    )
    .await;
    assert_masked(&config_of(&created), "create");
    let updated = update(
        &admin,
        proto::UpdateAccountRequest {
            id: created.id.clone(),
            display_name: Some("x".into()),
            ..Default::default()
        },
    )
    .await;
    assert_masked(&config_of(&updated), "update");
    assert_masked(
        &config_of(
            &admin
                .set_default_account(&created.id)
                .await
                .expect("default"),
        ),
        "set default",
    );

    for (role, client) in [
        ("admin", app.admin()),
        ("supervisor", app.supervisor()),
        ("service", app.service()),
    ] {
        let got = client.get_account(&created.id).await.expect("get");
        assert_masked(&config_of(&got), &format!("get as {role}"));
        for listed in client.list_all_accounts(None).await.expect("list") {
            assert_masked(&config_of(&listed), &format!("list as {role}"));
        }
        let default = client
            .default_account(Channel::Whatsapp, None)
            .await
            .expect("default");
        assert_masked(&config_of(&default), &format!("default as {role}"));
        // The verify token is shown to admins, who paste it into Meta, and nobody else.
        if role == "admin" {
            assert_eq!(got.verify_token, created.verify_token);
        } else {
            assert_eq!(got.verify_token, "********", "{role}");
        }
    }

    let settings = upsert_settings(
        &admin,
        proto::UpsertChannelSettingsRequest {
            channel: Channel::Whatsapp.into(),
            config: Some(to_struct(account_config())),
            ..Default::default()
        },
    )
    .await;
    assert_masked(&settings_config(&settings), "upsert settings");
    for client in [app.admin(), app.supervisor()] {
        let got = client
            .integrations()
            .get_channel_settings(proto::GetChannelSettingsRequest {
                channel: Channel::Whatsapp.into(),
            })
            .await
            .expect("get")
            .into_inner()
            .channel_settings
            .expect("settings");
        assert_masked(&settings_config(&got), "get settings");
        let listed = client
            .integrations()
            .list_channel_settings(proto::ListChannelSettingsRequest {})
            .await
            .expect("list")
            .into_inner()
            .channel_settings;
        assert_masked(&settings_config(&listed[0]), "list settings");
    }
}

async fn masked_round_trip_keeps_the_stored_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let created = create(
        &admin,
        proto::CreateAccountRequest {
            config: Some(to_struct(account_config())),
            ..new_whatsapp("123", TOKEN)
        },
    )
    .await;

    // A UI reads the account, edits one field and sends the whole (masked) config back.
    let mut edited = config_of(&created);
    edited["smtp"]["host"] = json!("mail2.acme.com");
    let updated = update(
        &admin,
        proto::UpdateAccountRequest {
            id: created.id.clone(),
            config: Some(to_struct(edited)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(config_of(&updated)["smtp"]["host"], json!("mail2.acme.com"));

    let stored = revealed_config(&app, &created.id).await;
    assert_eq!(
        stored["access_token"],
        json!(TOKEN),
        "the secret is kept, not the mask"
    );
    assert_eq!(stored["smtp"]["password"], json!("hunter2-secret"));
    assert_eq!(stored["smtp"]["host"], json!("mail2.acme.com"));

    // A new secret in clear replaces the old one.
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: created.id.clone(),
            config: Some(to_struct(
                json!({"access_token": "EAAG-rotated-token-0002"}),
            )),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        revealed_config(&app, &created.id).await["access_token"],
        json!("EAAG-rotated-token-0002")
    );

    // Channel settings keep their secrets the same way.
    let upsert = |config: Value| proto::UpsertChannelSettingsRequest {
        channel: Channel::Email.into(),
        config: Some(to_struct(config)),
        ..Default::default()
    };
    let first = admin
        .integrations()
        .upsert_channel_settings(upsert(
            json!({"api_key": "SG.secret-sendgrid-key", "from": "a@acme.com"}),
        ))
        .await
        .expect("upsert")
        .into_inner()
        .channel_settings
        .expect("settings");
    let mut echoed = settings_config(&first);
    echoed["from"] = json!("b@acme.com");
    admin
        .integrations()
        .upsert_channel_settings(upsert(echoed))
        .await
        .expect("echo");
    let stored = stored_settings_config(&app, patchbay::domain::Channel::Email).await;
    assert_eq!(
        stored,
        json!({"api_key": "SG.secret-sendgrid-key", "from": "b@acme.com"})
    );
}

async fn updates_are_json_merge_patches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let created = create(
        &admin,
        proto::CreateAccountRequest {
            config: Some(to_struct(json!({
                "phone_number_id": "123",
                "keep": "me",
                "drop": "me",
                "nested": {"a": 1, "b": 2},
                "list": [1, 2, 3],
            }))),
            ..new_whatsapp("123", TOKEN)
        },
    )
    .await;
    let patch = json!({
        "drop": null,
        "nested": {"a": null, "c": 3},
        "list": [9],
        "added": true,
    });
    let updated = update(
        &admin,
        proto::UpdateAccountRequest {
            id: created.id.clone(),
            config: Some(to_struct(patch)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        config_of(&updated),
        json!({
            "phone_number_id": "123",
            "keep": "me",
            "nested": {"b": 2, "c": 3},
            "list": [9],
            "added": true,
        })
    );

    // No config in the request: the config is left alone.
    let untouched = update(
        &admin,
        proto::UpdateAccountRequest {
            id: created.id.clone(),
            display_name: Some("renamed".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(config_of(&untouched), config_of(&updated));

    // Channel settings merge the same way across upserts.
    let upsert = |config: Value| proto::UpsertChannelSettingsRequest {
        channel: Channel::Sms.into(),
        config: Some(to_struct(config)),
        ..Default::default()
    };
    let integrations = admin.integrations();
    integrations
        .clone()
        .upsert_channel_settings(upsert(json!({"a": {"x": 1, "y": 2}, "b": 1})))
        .await
        .expect("first");
    let merged = integrations
        .clone()
        .upsert_channel_settings(upsert(json!({"a": {"x": null, "z": 3}, "b": null})))
        .await
        .expect("second")
        .into_inner()
        .channel_settings
        .expect("settings");
    assert_eq!(settings_config(&merged), json!({"a": {"y": 2, "z": 3}}));
}

async fn masked_value_without_a_stored_secret_is_invalid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let status = expect_code(
        admin
            .accounts()
            .create_account(proto::CreateAccountRequest {
                config: Some(to_struct(
                    json!({"phone_number_id": "1", "access_token": "********"}),
                )),
                ..new_whatsapp("1", "x")
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["config.access_token"]);
    assert!(
        admin
            .list_all_accounts(None)
            .await
            .expect("list")
            .is_empty(),
        "nothing written"
    );
}
