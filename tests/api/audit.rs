//! The audit log: one event per mutation and per credential reveal, naming fields and
//! never their values, visible to the workspace's admins only.

use patchbay_e2e::proto::{self, AuditAction, Channel, RecordKind};
use patchbay_e2e::{
    Backend, OTHER_WORKSPACE, TestApp, WORKSPACE, backend_tests, create, expect_code, new_account,
    new_whatsapp, to_struct, update, upsert_settings,
};
use patchbay_sdk::Client;
use patchbay_sdk::prost::Message;
use patchbay_sdk::tonic::{Code, Request};
use serde_json::json;

backend_tests!(
    every_mutation_and_reveal_is_audited,
    audit_events_filter_and_page,
    reveal_is_for_services_only
);

const TOKEN: &str = "EAAG-audited-secret-0001";
const NEW_TOKEN: &str = "EAAG-audited-secret-0002";

async fn events(client: &Client, request: proto::ListAuditEventsRequest) -> Vec<proto::AuditEvent> {
    client
        .audit()
        .list_audit_events(request)
        .await
        .expect("list audit events")
        .into_inner()
        .events
}

async fn every_mutation_and_reveal_is_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();

    let mut request = Request::new(new_whatsapp("777", TOKEN));
    request
        .metadata_mut()
        .insert("x-request-id", "req-create-1".parse().expect("header"));
    let account = admin
        .accounts()
        .create_account(request)
        .await
        .expect("create")
        .into_inner()
        .account
        .expect("account");
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            display_name: Some("Renamed".into()),
            config: Some(to_struct(json!({"access_token": NEW_TOKEN}))),
            ..Default::default()
        },
    )
    .await;
    // An update that changes nothing records nothing.
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            display_name: Some("Renamed".into()),
            ..Default::default()
        },
    )
    .await;
    admin
        .set_default_account(&account.id)
        .await
        .expect("default");
    app.service()
        .account_credentials(&account.id)
        .await
        .expect("reveal");
    upsert_settings(
        &admin,
        proto::UpsertChannelSettingsRequest {
            channel: Channel::Email.into(),
            is_active: Some(true),
            config: Some(to_struct(
                json!({"api_key": "SG.audited-key", "from": "a@acme.example"}),
            )),
            ..Default::default()
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

    let response = admin
        .audit()
        .list_audit_events(proto::ListAuditEventsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let bytes = response.encode_to_vec();
    for secret in [
        TOKEN,
        NEW_TOKEN,
        "SG.audited-key",
        account.verify_token.as_str(),
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in the audit log"
        );
    }
    let log: Vec<_> = response
        .events
        .iter()
        .map(|e| {
            (
                AuditAction::try_from(e.action).expect("action"),
                e.changed_fields.clone(),
            )
        })
        .collect();
    let fields = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        log,
        vec![
            (
                AuditAction::Create,
                fields(&[
                    "account_key",
                    "display_name",
                    "is_active",
                    "is_default",
                    "division_id",
                    "verify_token",
                    "config.access_token",
                    "config.phone_number_id",
                    // WhatsApp Cloud: the generated registration PIN.
                    "config.pin",
                    "config.waba_id",
                ])
            ),
            // The set-up at Meta recorded DONE.
            (AuditAction::Update, fields(&["setup_state"])),
            // A new token: the set-up runs again (PENDING), then is recorded DONE.
            (
                AuditAction::Update,
                fields(&["display_name", "setup_state", "config.access_token"])
            ),
            (AuditAction::Update, fields(&["setup_state"])),
            (AuditAction::SetDefault, fields(&["is_default"])),
            (
                AuditAction::RevealCredentials,
                fields(&["config.access_token", "config.pin", "verify_token"])
            ),
            (
                AuditAction::Upsert,
                fields(&["is_active", "config.api_key", "config.from"])
            ),
            (AuditAction::Delete, fields(&["deleted_at"])),
        ]
    );
    let create_event = &response.events[0];
    assert_eq!(create_event.request_id, "req-create-1");
    assert_eq!(create_event.actor, "admin-user");
    assert_eq!(create_event.actor_role, "admin");
    assert_eq!(create_event.workspace_id, WORKSPACE);
    assert_eq!(create_event.record_kind, i32::from(RecordKind::Account));
    assert_eq!(create_event.record_id, account.id);
    assert!(create_event.occurred_at.is_some());
    let reveal = &response.events[5];
    assert_eq!(
        (reveal.actor.as_str(), reveal.actor_role.as_str()),
        ("service-user", "service")
    );
    assert!(
        !response.events[1].request_id.is_empty(),
        "a request id is generated when none is sent"
    );

    let outsider = app.client("admin", OTHER_WORKSPACE, None);
    assert!(
        events(&outsider, proto::ListAuditEventsRequest::default())
            .await
            .is_empty()
    );
}

async fn audit_events_filter_and_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let a = create(&admin, new_account(Channel::Sms, "a", json!({}))).await;
    let b = create(&admin, new_account(Channel::Sms, "b", json!({}))).await;
    admin.set_default_account(&a.id).await.expect("default");
    upsert_settings(
        &admin,
        proto::UpsertChannelSettingsRequest {
            channel: Channel::Sms.into(),
            is_active: Some(true),
            ..Default::default()
        },
    )
    .await;
    app.service()
        .account_credentials(&b.id)
        .await
        .expect("reveal");

    let of_a = events(
        &admin,
        proto::ListAuditEventsRequest {
            record_id: a.id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(of_a.len(), 2);
    assert!(of_a.iter().all(|e| e.record_id == a.id));
    let by_service = events(
        &admin,
        proto::ListAuditEventsRequest {
            actor: "service-user".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_service.len(), 1);
    assert_eq!(by_service[0].record_id, b.id);
    let settings = events(
        &admin,
        proto::ListAuditEventsRequest {
            record_kind: RecordKind::ChannelSettings.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(settings.len(), 1);

    let all = events(&admin, proto::ListAuditEventsRequest::default()).await;
    assert_eq!(all.len(), 5);
    let third = all[2].occurred_at.expect("time");
    let from_third = events(
        &admin,
        proto::ListAuditEventsRequest {
            start_time: Some(third),
            ..Default::default()
        },
    )
    .await;
    let at = |t: &prost_types::Timestamp| (t.seconds, t.nanos);
    assert!(from_third.len() >= 3);
    assert!(
        from_third
            .iter()
            .all(|e| at(&e.occurred_at.expect("time")) >= at(&third))
    );
    let before_third = events(
        &admin,
        proto::ListAuditEventsRequest {
            end_time: Some(third),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(before_third.len() + from_third.len(), all.len());

    let mut paged = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .audit()
            .list_audit_events(proto::ListAuditEventsRequest {
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        paged.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(paged, all);

    let status = expect_code(
        admin
            .audit()
            .list_audit_events(proto::ListAuditEventsRequest {
                record_kind: 42,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(patchbay_e2e::violated_fields(&status), ["record_kind"]);
}

async fn reveal_is_for_services_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = create(&app.admin(), new_whatsapp("888", TOKEN)).await;
    let revealed = app
        .service()
        .account_credentials(&account.id)
        .await
        .expect("service reveals");
    let config = patchbay_e2e::to_json(revealed.config.as_ref().expect("config"));
    assert_eq!(config["access_token"], json!(TOKEN));
    assert_eq!(revealed.verify_token, account.verify_token);

    for client in [app.admin(), app.supervisor()] {
        expect_code(
            client
                .accounts()
                .get_account_credentials(proto::GetAccountCredentialsRequest {
                    id: account.id.clone(),
                })
                .await,
            Code::PermissionDenied,
        );
    }
    let stranger = app.client("service", OTHER_WORKSPACE, None);
    expect_code(
        stranger
            .accounts()
            .get_account_credentials(proto::GetAccountCredentialsRequest {
                id: account.id.clone(),
            })
            .await,
        Code::NotFound,
    );
    let reveals = events(
        &app.admin(),
        proto::ListAuditEventsRequest {
            actor: "service-user".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        reveals.len(),
        1,
        "only the reveal that happened is recorded"
    );
}
