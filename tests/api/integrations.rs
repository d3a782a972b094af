//! Provider integrations: schema validation for every provider, defaults, the seed
//! requests, soft delete, identifiers, primary under concurrency, accounts, secrets.

use patchbay_e2e::proto::{self, Channel, ConditionOperator, FieldType};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, backend_tests, create, expect_code, new_whatsapp, to_json,
    to_struct, violated_fields,
};
use patchbay_sdk::Client;
use patchbay_sdk::tonic::{Code, Status};
use serde_json::{Value, json};

backend_tests!(
    seed_000_twilio_request_round_trips,
    chatwoot_reports_every_bad_field_at_once,
    every_provider_accepts_valid_and_rejects_bad_configs,
    inactive_may_be_incomplete_until_activated,
    soft_delete_hides_unless_asked_and_frees_the_identifier,
    concurrent_set_primary_leaves_exactly_one,
    accounts_attach_only_within_the_workspace,
    schema_secrets_are_masked_sealed_and_round_trip,
    roles_revisions_and_conditions,
);

fn request(provider: &str, name: &str, config: Value) -> proto::CreateIntegrationRequest {
    proto::CreateIntegrationRequest {
        provider: provider.into(),
        name: name.into(),
        config: Some(to_struct(config)),
        ..Default::default()
    }
}

async fn try_create(
    client: &Client,
    request: proto::CreateIntegrationRequest,
) -> Result<proto::Integration, Status> {
    client
        .integrations()
        .create_integration(request)
        .await
        .map(|r| r.into_inner().integration.expect("integration"))
}

async fn create_integration(
    client: &Client,
    request: proto::CreateIntegrationRequest,
) -> proto::Integration {
    try_create(client, request)
        .await
        .expect("integration created")
}

async fn try_update(
    client: &Client,
    request: proto::UpdateIntegrationRequest,
) -> Result<proto::Integration, Status> {
    client
        .integrations()
        .update_integration(request)
        .await
        .map(|r| r.into_inner().integration.expect("integration"))
}

async fn list(client: &Client, request: proto::ListIntegrationsRequest) -> Vec<proto::Integration> {
    client
        .integrations()
        .list_integrations(request)
        .await
        .expect("list")
        .into_inner()
        .integrations
}

fn config_of(integration: &proto::Integration) -> Value {
    integration.config.as_ref().map(to_json).unwrap_or_default()
}

fn twilio_seed() -> Value {
    json!({
        "changeKeys": false,
        "phone_number": "21 99999-9999",
        "autoclose_hours": 23,
        "autoclose_minutes": 1,
        "send_autoclose_message_minutes": 10,
        "autoclose_message": "The conversation will be automatically closed due to inactivity.",
        "post_autoclose_message": "This conversation has been closed. Please start a new message if you need further assistance.",
        "account_sid": "AC0123456789abcdef0123456789abcdef",
        "auth_token": "twilio-auth-token-secret-99"
    })
}

async fn seed_000_twilio_request_round_trips(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = create_integration(
        &app.admin(),
        request("whatsapp_twilio", "Whatsapp Twilio", twilio_seed()),
    )
    .await;
    assert_eq!(created.provider, "whatsapp_twilio");
    assert_eq!(created.channel, i32::from(Channel::Whatsapp));
    assert!(created.active && !created.primary);
    assert!(
        created.identifier.starts_with("whatsapp-twilio-"),
        "{}",
        created.identifier
    );
    assert_eq!(created.revision, 1);
    let config = config_of(&created);
    let mut expected = twilio_seed();
    expected["auth_token"] = json!("********t-99");
    assert_eq!(
        config, expected,
        "the seed's fields come back, the token masked"
    );
    let fetched = app
        .supervisor()
        .integrations()
        .get_integration(proto::GetIntegrationRequest {
            id: created.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .integration
        .expect("integration");
    assert_eq!(fetched, created);
}

async fn chatwoot_reports_every_bad_field_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let status = try_create(
        &app.admin(),
        request(
            "chatwoot",
            "Chatwoot",
            json!({
                "accountId": 3,
                "chatwootURL": "chatwoot dot example",
                "chatwootAccessToken": "cw-token",
                "integrationOptions": {"startConversationAs": "closed", "showEmoji": true}
            }),
        ),
    )
    .await
    .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [
            "config.chatwootURL",
            "config.integrationOptions.showEmoji",
            "config.integrationOptions.startConversationAs"
        ]
    );
    assert!(
        list(&app.admin(), proto::ListIntegrationsRequest::default())
            .await
            .is_empty()
    );

    // The same with valid values: defaults fill what was left out.
    let created = create_integration(
        &app.admin(),
        request(
            "chatwoot",
            "Chatwoot",
            json!({"accountId": 3, "chatwootURL": "https://chat.example.com", "chatwootAccessToken": "cw-token-0000"}),
        ),
    )
    .await;
    let config = config_of(&created);
    assert_eq!(config["enabled"], json!(true));
    assert_eq!(
        config["integrationOptions"],
        json!({"enabledGroup": false, "displayAttendant": true, "startConversationAs": "open"})
    );
}

/// A valid value for a field of the published schema.
fn valid_value(field: &proto::ProviderField) -> Value {
    match FieldType::try_from(field.r#type).expect("type") {
        FieldType::String => json!(format!("{}-value-123456", field.name)),
        FieldType::Integer => json!(42),
        FieldType::Boolean => json!(true),
        FieldType::Url => json!("https://api.example.com/x"),
        FieldType::Phone => json!("+55 21 99999-9999"),
        FieldType::Email => json!("ops@example.com"),
        FieldType::Enum => json!(field.allowed_values.last().expect("values")),
        FieldType::Object => Value::Object(
            field
                .fields
                .iter()
                .map(|f| (f.name.clone(), valid_value(f)))
                .collect(),
        ),
        FieldType::Unspecified => Value::Null,
    }
}

/// A value of the right JSON kind that breaks the field's format, or one of the wrong kind.
fn invalid_values(field: &proto::ProviderField) -> Vec<Value> {
    match FieldType::try_from(field.r#type).expect("type") {
        FieldType::String => vec![json!(5)],
        FieldType::Integer => vec![json!("42"), json!(1.5)],
        FieldType::Boolean => vec![json!("yes")],
        FieldType::Url => vec![json!("not a url"), json!("ftp://files.example.com")],
        FieldType::Phone => vec![json!("call me"), json!("123")],
        FieldType::Email => vec![json!("nobody"), json!(7)],
        FieldType::Enum => vec![json!("not-a-choice")],
        FieldType::Object => vec![json!("flat")],
        FieldType::Unspecified => vec![],
    }
}

async fn every_provider_accepts_valid_and_rejects_bad_configs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let providers = admin
        .integrations()
        .list_providers(proto::ListProvidersRequest {})
        .await
        .expect("providers")
        .into_inner()
        .providers;
    for provider in providers {
        let valid: serde_json::Map<String, Value> = provider
            .config_schema
            .iter()
            .map(|f| (f.name.clone(), valid_value(f)))
            .collect();
        create_integration(
            &admin,
            request(&provider.slug, &provider.name, Value::Object(valid.clone())),
        )
        .await;

        for field in &provider.config_schema {
            for bad in invalid_values(field) {
                let mut config = valid.clone();
                config.insert(field.name.clone(), bad.clone());
                let status = try_create(
                    &admin,
                    request(&provider.slug, "bad", Value::Object(config)),
                )
                .await
                .expect_err("invalid config");
                assert_eq!(
                    status.code(),
                    Code::InvalidArgument,
                    "{} {} = {bad}",
                    provider.slug,
                    field.name
                );
                assert_eq!(
                    violated_fields(&status),
                    [format!("config.{}", field.name)],
                    "{} = {bad}",
                    provider.slug
                );
            }
            if field.required {
                let mut config = valid.clone();
                config.remove(&field.name);
                let status = try_create(
                    &admin,
                    request(&provider.slug, "missing", Value::Object(config)),
                )
                .await
                .expect_err("missing field");
                assert_eq!(violated_fields(&status), [format!("config.{}", field.name)]);
            }
        }
        let mut unknown = valid.clone();
        unknown.insert("notAField".into(), json!(1));
        let status = try_create(
            &admin,
            request(&provider.slug, "unknown", Value::Object(unknown)),
        )
        .await
        .expect_err("unknown key");
        assert_eq!(
            violated_fields(&status),
            ["config.notAField"],
            "{}",
            provider.slug
        );
    }
    let status = try_create(&admin, request("fax", "Fax", json!({})))
        .await
        .expect_err("unknown provider");
    assert_eq!(violated_fields(&status), ["provider"]);
}

async fn inactive_may_be_incomplete_until_activated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let draft = create_integration(
        &admin,
        proto::CreateIntegrationRequest {
            active: Some(false),
            ..request("sendgrid", "Mail", json!({"from_name": "Acme"}))
        },
    )
    .await;
    assert!(!draft.active);
    let status = try_update(
        &admin,
        proto::UpdateIntegrationRequest {
            id: draft.id.clone(),
            active: Some(true),
            ..Default::default()
        },
    )
    .await
    .expect_err("incomplete");
    assert_eq!(
        violated_fields(&status),
        ["config.api_key", "config.from_email"]
    );
    // Wrong types are refused even while inactive.
    let status = try_update(
        &admin,
        proto::UpdateIntegrationRequest {
            id: draft.id.clone(),
            config: Some(to_struct(json!({"from_email": 5}))),
            ..Default::default()
        },
    )
    .await
    .expect_err("wrong type");
    assert_eq!(violated_fields(&status), ["config.from_email"]);
    let live = try_update(
        &admin,
        proto::UpdateIntegrationRequest {
            id: draft.id.clone(),
            active: Some(true),
            config: Some(to_struct(
                json!({"api_key": "SG.key-0000000000", "from_email": "a@acme.example"}),
            )),
            ..Default::default()
        },
    )
    .await
    .expect("complete and active");
    assert!(live.active);
    assert_eq!(live.revision, 2);
}

async fn soft_delete_hides_unless_asked_and_frees_the_identifier(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let made = create_integration(
        &admin,
        proto::CreateIntegrationRequest {
            identifier: "mail-main".into(),
            ..request("openai", "AI", json!({"api_key": "sk-0000000000000000"}))
        },
    )
    .await;
    let status = try_create(
        &admin,
        proto::CreateIntegrationRequest {
            identifier: "mail-main".into(),
            ..request("openai", "AI 2", json!({"api_key": "sk-1"}))
        },
    )
    .await
    .expect_err("duplicate identifier");
    assert_eq!(status.code(), Code::AlreadyExists);

    admin
        .integrations()
        .delete_integration(proto::DeleteIntegrationRequest {
            id: made.id.clone(),
            expected_revision: Some(1),
        })
        .await
        .expect("delete");
    expect_code(
        admin
            .integrations()
            .get_integration(proto::GetIntegrationRequest {
                id: made.id.clone(),
            })
            .await,
        Code::NotFound,
    );
    assert!(
        list(&admin, proto::ListIntegrationsRequest::default())
            .await
            .is_empty()
    );
    let with_deleted = list(
        &admin,
        proto::ListIntegrationsRequest {
            include_deleted: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(with_deleted.len(), 1);
    assert_eq!(with_deleted[0].deleted_by, "admin-user");
    assert!(with_deleted[0].deleted_at.is_some());
    create_integration(
        &admin,
        proto::CreateIntegrationRequest {
            identifier: "mail-main".into(),
            ..request("openai", "AI 3", json!({"api_key": "sk-2"}))
        },
    )
    .await;

    // Filters.
    create_integration(
        &admin,
        proto::CreateIntegrationRequest {
            active: Some(false),
            ..request("sendgrid", "Off", json!({}))
        },
    )
    .await;
    assert_eq!(
        list(
            &admin,
            proto::ListIntegrationsRequest {
                provider: "sendgrid".into(),
                ..Default::default()
            }
        )
        .await
        .len(),
        1
    );
    assert_eq!(
        list(
            &admin,
            proto::ListIntegrationsRequest {
                channel: Channel::Email.into(),
                ..Default::default()
            }
        )
        .await
        .len(),
        1
    );
    assert_eq!(
        list(
            &admin,
            proto::ListIntegrationsRequest {
                active: Some(true),
                ..Default::default()
            }
        )
        .await
        .len(),
        1
    );
}

async fn concurrent_set_primary_leaves_exactly_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let mut ids = Vec::new();
    for i in 0..50 {
        let made = create_integration(
            &admin,
            request(
                "sendgrid",
                &format!("Mail {i}"),
                json!({"api_key": format!("SG.{i:04}"), "from_email": "a@acme.example"}),
            ),
        )
        .await;
        ids.push(made.id);
    }
    let calls: Vec<_> = ids
        .iter()
        .map(|id| {
            let mut integrations = admin.integrations();
            let id = id.clone();
            tokio::spawn(async move {
                integrations
                    .set_primary_integration(proto::SetPrimaryIntegrationRequest {
                        id,
                        expected_revision: None,
                    })
                    .await
            })
        })
        .collect();
    for call in calls {
        call.await
            .expect("task")
            .expect("every SetPrimaryIntegration succeeds");
    }
    let all = list(
        &admin,
        proto::ListIntegrationsRequest {
            page_size: 100,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.iter().filter(|i| i.primary).count(), 1);

    // Another channel, and channel-less providers, keep their own primary.
    let ai = create_integration(
        &admin,
        proto::CreateIntegrationRequest {
            primary: true,
            ..request("openai", "AI", json!({"api_key": "sk-x"}))
        },
    )
    .await;
    assert!(ai.primary);
    let all = list(
        &admin,
        proto::ListIntegrationsRequest {
            page_size: 100,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.iter().filter(|i| i.primary).count(), 2);
}

async fn accounts_attach_only_within_the_workspace(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("5511", "t")).await;
    let chatwoot = |account_id: String| proto::CreateIntegrationRequest {
        account_id: Some(account_id),
        ..request(
            "chatwoot",
            "Inbox",
            json!({"accountId": 1, "chatwootURL": "https://c.example.com", "chatwootAccessToken": "cw"}),
        )
    };
    let attached = create_integration(&app.admin(), chatwoot(account.id.clone())).await;
    assert_eq!(attached.account_id.as_deref(), Some(account.id.as_str()));

    // Another number: one number has one owner across workspaces.
    let elsewhere = create(
        &app.client("admin", OTHER_WORKSPACE, None),
        new_whatsapp("5512", "t"),
    )
    .await;
    for id in [elsewhere.id, uuid::Uuid::new_v4().to_string()] {
        let status = try_create(&app.admin(), chatwoot(id))
            .await
            .expect_err("not ours");
        assert_eq!(violated_fields(&status), ["account_id"]);
    }
    let status = try_create(&app.admin(), chatwoot("nope".into()))
        .await
        .expect_err("not a uuid");
    assert_eq!(violated_fields(&status), ["account_id"]);
    let detached = try_update(
        &app.admin(),
        proto::UpdateIntegrationRequest {
            id: attached.id,
            account_id: Some(String::new()),
            ..Default::default()
        },
    )
    .await
    .expect("detach");
    assert_eq!(detached.account_id, None);
}

async fn schema_secrets_are_masked_sealed_and_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    // `crypt_key` is secret only because the schema says so.
    let made = create_integration(
        &admin,
        request("d4sign", "D4Sign", json!({"token_api": "d4-token-secret-1111", "crypt_key": "d4-crypt-secret-2222", "safe_uuid": "s1"})),
    )
    .await;
    let shown = config_of(&made);
    assert_eq!(shown["crypt_key"], json!("********2222"));
    assert_eq!(shown["token_api"], json!("********1111"));
    let dump = app.dump().await;
    assert!(!dump.contains("d4-crypt-secret-2222") && !dump.contains("d4-token-secret-1111"));

    let mut echoed = shown.clone();
    echoed["safe_uuid"] = json!("s2");
    try_update(
        &admin,
        proto::UpdateIntegrationRequest {
            id: made.id.clone(),
            config: Some(to_struct(echoed)),
            ..Default::default()
        },
    )
    .await
    .expect("masked echo");
    let stored = app
        .store()
        .await
        .integrations()
        .find_integration(
            patchbay_e2e::WORKSPACE,
            uuid::Uuid::parse_str(&made.id).expect("uuid"),
        )
        .await
        .expect("read")
        .expect("live");
    assert_eq!(stored.config["crypt_key"], json!("d4-crypt-secret-2222"));
    assert_eq!(stored.config["safe_uuid"], json!("s2"));
}

async fn roles_revisions_and_conditions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let made = create_integration(
        &app.admin(),
        proto::CreateIntegrationRequest {
            conditions: vec![proto::Condition {
                field: "tags".into(),
                operator: ConditionOperator::In.into(),
                value: Some(prost_types::Value {
                    kind: Some(prost_types::value::Kind::ListValue(
                        prost_types::ListValue {
                            values: vec![prost_types::Value {
                                kind: Some(prost_types::value::Kind::StringValue("vip".into())),
                            }],
                        },
                    )),
                }),
            }],
            ..request("openai", "AI", json!({"api_key": "sk-0"}))
        },
    )
    .await;
    assert_eq!(made.conditions.len(), 1);

    let status = try_create(
        &app.admin(),
        proto::CreateIntegrationRequest {
            conditions: vec![
                proto::Condition {
                    field: String::new(),
                    operator: ConditionOperator::Equal.into(),
                    value: None,
                },
                proto::Condition {
                    field: "x".into(),
                    operator: 0,
                    value: None,
                },
            ],
            ..request("openai", "AI 2", json!({"api_key": "sk-1"}))
        },
    )
    .await
    .expect_err("bad conditions");
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "conditions[0].field",
            "conditions[0].value",
            "conditions[1].operator"
        ]
    );

    let supervisor = app.supervisor();
    assert_eq!(
        list(&supervisor, proto::ListIntegrationsRequest::default())
            .await
            .len(),
        1
    );
    expect_code(
        try_create(&supervisor, request("openai", "S", json!({"api_key": "k"}))).await,
        Code::PermissionDenied,
    );
    expect_code(
        app.service()
            .integrations()
            .list_integrations(proto::ListIntegrationsRequest::default())
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        app.client("admin", OTHER_WORKSPACE, None)
            .integrations()
            .get_integration(proto::GetIntegrationRequest {
                id: made.id.clone(),
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        try_update(
            &app.admin(),
            proto::UpdateIntegrationRequest {
                id: made.id.clone(),
                name: Some("x".into()),
                expected_revision: Some(7),
                ..Default::default()
            },
        )
        .await,
        Code::Aborted,
    );
    let events = app
        .admin()
        .audit()
        .list_audit_events(proto::ListAuditEventsRequest {
            record_id: made.id.clone(),
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .events;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].record_kind,
        i32::from(proto::RecordKind::Integration)
    );
    assert!(
        events[0]
            .changed_fields
            .contains(&"config.api_key".to_owned())
    );
}
