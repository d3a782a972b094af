//! Bad input: INVALID_ARGUMENT with every bad field named, and nothing written.

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, TestApp, backend_tests, create, expect_code, new_account, new_whatsapp, to_struct,
    violated_fields,
};
use patchbay_sdk::tonic::Code;
use serde_json::{Value, json};

fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("leaf"), |inner, _| json!({ "n": inner }))
}

backend_tests!(
    each_invalid_create_field_is_named,
    every_violation_is_reported_at_once,
    invalid_ids_pages_and_channels_are_named,
    oversized_and_deep_configs_are_refused,
    meta_ids_that_go_into_graph_paths_are_digits,
);

async fn each_invalid_create_field_is_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut accounts = app.admin().accounts();
    let cases: Vec<(&str, proto::CreateAccountRequest)> = vec![
        (
            "channel",
            proto::CreateAccountRequest {
                channel: 0,
                ..new_account(Channel::Sms, "k", json!({}))
            },
        ),
        (
            "channel",
            proto::CreateAccountRequest {
                channel: 99,
                ..new_account(Channel::Sms, "k", json!({}))
            },
        ),
        ("account_key", new_account(Channel::Sms, "", json!({}))),
        (
            "account_key",
            new_account(Channel::Sms, "has space", json!({})),
        ),
        (
            "account_key",
            new_account(Channel::Sms, &"k".repeat(129), json!({})),
        ),
        (
            "config.phone_number_id",
            new_account(Channel::Whatsapp, "", json!({})),
        ),
        (
            "config.phone_number_id",
            new_account(Channel::Whatsapp, "", json!({"phone_number_id": "12ab"})),
        ),
        (
            "account_key",
            proto::CreateAccountRequest {
                account_key: "wa-999".into(),
                ..new_whatsapp("123", "t")
            },
        ),
        (
            "display_name",
            proto::CreateAccountRequest {
                display_name: "x".repeat(201),
                ..new_account(Channel::Sms, "k", json!({}))
            },
        ),
        (
            "division_id",
            proto::CreateAccountRequest {
                division_id: Some("no spaces allowed".into()),
                ..new_account(Channel::Sms, "k", json!({}))
            },
        ),
        (
            "is_default",
            proto::CreateAccountRequest {
                is_default: true,
                is_active: Some(false),
                ..new_account(Channel::Sms, "k", json!({}))
            },
        ),
    ];
    for (field, request) in cases {
        let status = expect_code(
            accounts.create_account(request).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field], "{status:?}");
        assert!(
            status.message().contains(field),
            "the message names {field}: {status:?}"
        );
    }
    assert!(
        app.admin()
            .list_all_accounts(None)
            .await
            .expect("list")
            .is_empty()
    );

    // A finite number is required where JSON has no NaN.
    let mut config = to_struct(json!({"ok": 1}));
    config.fields.insert(
        "ratio".into(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::NumberValue(f64::INFINITY)),
        },
    );
    let status = expect_code(
        accounts
            .create_account(proto::CreateAccountRequest {
                config: Some(config),
                ..new_account(Channel::Sms, "k", json!({}))
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["config.ratio"]);
}

async fn every_violation_is_reported_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let status = expect_code(
        app.admin()
            .accounts()
            .create_account(proto::CreateAccountRequest {
                channel: Channel::Email.into(),
                account_key: "bad key".into(),
                display_name: "x".repeat(300),
                division_id: Some("bad division".into()),
                config: Some(to_struct(json!({"password": "********"}))),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "account_key",
            "config.password",
            "display_name",
            "division_id"
        ]
    );

    let account = create(&app.admin(), new_account(Channel::Email, "ok", json!({}))).await;
    let status = expect_code(
        app.admin()
            .accounts()
            .update_account(proto::UpdateAccountRequest {
                id: account.id.clone(),
                account_key: Some("".into()),
                display_name: Some("\u{7}bell".into()),
                division_id: Some("bad division".into()),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["account_key", "display_name", "division_id"]);
    let unchanged = app.admin().get_account(&account.id).await.expect("get");
    assert_eq!(unchanged, account, "a refused update writes nothing");
}

async fn invalid_ids_pages_and_channels_are_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut accounts = app.admin().accounts();
    for id in ["", "not-a-uuid"] {
        let status = expect_code(
            accounts
                .get_account(proto::GetAccountRequest { id: id.into() })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["id"]);
    }
    let status = expect_code(
        accounts
            .list_accounts(proto::ListAccountsRequest {
                channel: 42,
                page_size: -1,
                page_token: "forged".into(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["channel", "page_size", "page_token"]
    );
    let status = expect_code(
        accounts
            .get_default_account(proto::GetDefaultAccountRequest {
                channel: 0,
                division_id: String::new(),
                no_fallback: false,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["channel"]);
    let status = expect_code(
        accounts
            .delete_account(proto::DeleteAccountRequest {
                id: "x".into(),
                expected_revision: None,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["id"]);
    let status = expect_code(
        accounts
            .get_account(proto::GetAccountRequest {
                id: uuid::Uuid::new_v4().to_string(),
            })
            .await,
        Code::NotFound,
    );
    assert!(violated_fields(&status).is_empty());

    let mut integrations = app.admin().integrations();
    let status = expect_code(
        integrations
            .upsert_channel_settings(proto::UpsertChannelSettingsRequest {
                channel: 0,
                division_id: Some("bad division".into()),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["channel"]);
    let status = expect_code(
        integrations
            .upsert_channel_settings(proto::UpsertChannelSettingsRequest {
                channel: Channel::Sms.into(),
                division_id: Some("bad division".into()),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["division_id"]);
}

async fn oversized_and_deep_configs_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut accounts = app.admin().accounts();
    let big = json!({"blob": "x".repeat(70 * 1024)});
    let status = expect_code(
        accounts
            .create_account(new_account(Channel::Sms, "big", big))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["config"]);

    // Deeper than the document limit but decodable: the deepest allowed path is named.
    let status = expect_code(
        accounts
            .create_account(new_account(
                Channel::Sms,
                "deep",
                json!({ "root": nested(20) }),
            ))
            .await,
        Code::InvalidArgument,
    );
    let fields = violated_fields(&status);
    assert_eq!(fields.len(), 1);
    assert!(fields[0].starts_with("config.root.n"), "{fields:?}");

    // Deeper than protobuf decoding allows: refused before it reaches the service.
    let status = expect_code(
        accounts
            .create_account(new_account(
                Channel::Sms,
                "deeper",
                json!({ "root": nested(60) }),
            ))
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("recursion limit"), "{status:?}");
    assert!(
        app.admin()
            .list_all_accounts(None)
            .await
            .expect("list")
            .is_empty()
    );
}

/// Ids that go into Graph paths are strings of digits wherever they enter, so that none
/// can name another Graph node with the account's token (`waba_id: "me/accounts"`).
async fn meta_ids_that_go_into_graph_paths_are_digits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let whatsapp = |config: serde_json::Value| proto::CreateAccountRequest {
        channel: proto::Channel::Whatsapp.into(),
        config: Some(patchbay_e2e::to_struct(config)),
        ..Default::default()
    };
    for (config, field) in [
        (
            serde_json::json!({"phone_number_id": "5511", "waba_id": "me/accounts", "access_token": "t"}),
            "config.waba_id",
        ),
        (
            serde_json::json!({"phone_number_id": "5511", "waba_id": "123?fields=access_token", "access_token": "t"}),
            "config.waba_id",
        ),
        (
            serde_json::json!({"phone_number_id": 5511, "waba_id": "9", "access_token": "t"}),
            "config.phone_number_id",
        ),
    ] {
        let status = patchbay_e2e::expect_code(
            admin.accounts().create_account(whatsapp(config)).await,
            patchbay_sdk::tonic::Code::InvalidArgument,
        );
        assert_eq!(patchbay_e2e::violated_fields(&status), [field]);
    }
    let status = patchbay_e2e::expect_code(
        admin
            .accounts()
            .create_account(patchbay_e2e::new_account(
                proto::Channel::Messenger,
                "page",
                serde_json::json!({"page_id": "1/subscribed_apps"}),
            ))
            .await,
        patchbay_sdk::tonic::Code::InvalidArgument,
    );
    assert_eq!(patchbay_e2e::violated_fields(&status), ["config.page_id"]);
    // And on update.
    let account = patchbay_e2e::create(&admin, patchbay_e2e::new_whatsapp("5512", "EAAG-t")).await;
    let status = patchbay_e2e::expect_code(
        admin
            .accounts()
            .update_account(proto::UpdateAccountRequest {
                id: account.id,
                config: Some(patchbay_e2e::to_struct(
                    serde_json::json!({"waba_id": "../me"}),
                )),
                ..Default::default()
            })
            .await,
        patchbay_sdk::tonic::Code::InvalidArgument,
    );
    assert_eq!(patchbay_e2e::violated_fields(&status), ["config.waba_id"]);
}
