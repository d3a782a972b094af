//! The records each client's cases act on, made through the SDK in the client's own
//! workspace (`interop-<tag>`), so that the clients can run side by side.

use std::collections::HashMap;

use hmac::{KeyInit, Mac};
use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{TestApp, create, new_account, new_whatsapp, to_struct, token};
use sea_orm::ConnectionTrait;
use serde_json::json;

pub struct Fixture {
    pub tag: String,
    pub admin: String,
    pub service: String,
    pub supervisor: String,
    pub gateway: String,
    /// A service token of a workspace whose first events are no longer kept.
    pub pruned_service: String,
    pub default_email: String,
    pub other_email: String,
    pub doomed_account: String,
    pub whatsapp: String,
    pub waba_id: String,
    pub signup_phone: String,
    pub page_account: String,
    pub page_key: String,
    pub page_verify_token: String,
    pub messenger_handle: String,
    pub integration: String,
    pub doomed_integration: String,
}

/// The digit that keeps one client's Meta ids apart from another's.
fn digit(tag: &str) -> u8 {
    tag.bytes().next().unwrap_or(b'x') % 10
}

pub async fn prepare(app: &TestApp, tag: &str) -> Fixture {
    let workspace = format!("interop-{tag}");
    let admin_token = token("admin", &workspace, None);
    let admin = app.with_token(&admin_token);
    let email = |key: &str| {
        new_account(
            Channel::Email,
            key,
            json!({"from": format!("{key}@acme.test")}),
        )
    };
    let default_email = create(
        &admin,
        proto::CreateAccountRequest {
            is_default: true,
            ..email("support")
        },
    )
    .await;
    let other_email = create(&admin, email("sales")).await;
    let doomed = create(&admin, email("doomed")).await;
    let d = digit(tag);
    let waba_id = format!("9{d}00001");
    let whatsapp = create(
        &admin,
        proto::CreateAccountRequest {
            config: Some(to_struct(json!({
                "phone_number_id": format!("8{d}00001"),
                "waba_id": waba_id,
                "access_token": "EAAG-interop",
            }))),
            ..new_whatsapp(&format!("8{d}00001"), "EAAG-interop")
        },
    )
    .await;
    assert_eq!(
        whatsapp.setup_state,
        i32::from(proto::SetupState::Done),
        "the stand-in Meta set the number up: {}",
        whatsapp.setup_error
    );
    let page_id = crate::meta::page_id(tag, 1);
    let page = create(
        &admin,
        new_account(
            Channel::Messenger,
            &page_id,
            json!({"page_id": page_id, "page_access_token": format!("EAAP-1-{tag}")}),
        ),
    )
    .await;
    let connected = admin
        .accounts()
        .connect_messenger(proto::ConnectMessengerRequest {
            code: format!("fb-{tag}"),
            redirect_uri: crate::REDIRECT.into(),
        })
        .await
        .expect("ConnectMessenger through the SDK")
        .into_inner();
    let integration = |name: &str| proto::CreateIntegrationRequest {
        provider: "sendgrid".into(),
        name: name.into(),
        config: Some(to_struct(
            json!({"api_key": "SG.interop", "from_email": "hello@acme.test"}),
        )),
        ..Default::default()
    };
    let mut integrations = admin.integrations();
    let mut made = Vec::new();
    for name in ["Mail", "Old mail"] {
        made.push(
            integrations
                .create_integration(integration(name))
                .await
                .expect("integration created")
                .into_inner()
                .integration
                .expect("integration")
                .id,
        );
    }
    Fixture {
        tag: tag.to_owned(),
        service: token("service", &workspace, None),
        supervisor: token("supervisor", &workspace, None),
        gateway: token("gateway", "", None),
        pruned_service: pruned_workspace(app, tag).await,
        admin: admin_token,
        default_email: default_email.id,
        other_email: other_email.id,
        doomed_account: doomed.id,
        whatsapp: whatsapp.id,
        waba_id,
        signup_phone: format!("8{d}00002"),
        page_account: page.id,
        page_key: page.account_key,
        page_verify_token: page.verify_token,
        messenger_handle: connected.user_token,
        doomed_integration: made.pop().expect("two integrations"),
        integration: made.pop().expect("two integrations"),
    }
}

/// A workspace with three accounts whose first two events are gone, as the retention
/// task leaves them: a watch from revision 0 can no longer be resumed.
async fn pruned_workspace(app: &TestApp, tag: &str) -> String {
    let workspace = format!("interop-{tag}-pruned");
    let admin = app.with_token(&token("admin", &workspace, None));
    for key in ["a", "b", "c"] {
        create(&admin, new_account(Channel::Sms, key, json!({}))).await;
    }
    app.database()
        .await
        .execute_unprepared(&format!(
            "DELETE FROM account_events WHERE workspace_id = '{workspace}' AND revision < 3"
        ))
        .await
        .expect("events pruned");
    token("service", &workspace, None)
}

/// A Messenger webhook signed with the Meta app secret, as Meta signs it.
/// https://developers.facebook.com/docs/messenger-platform/webhooks#validate-payloads
pub fn signed_meta_webhook(page_key: &str) -> proto::VerifyWebhookSignatureRequest {
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"{page_key}","time":1458692752478,"messaging":[]}}]}}"#
    );
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(patchbay_e2e::META_APP_SECRET.as_bytes())
            .expect("any key length");
    mac.update(body.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    proto::VerifyWebhookSignatureRequest {
        channel: Channel::Messenger.into(),
        account_key: page_key.to_owned(),
        headers: HashMap::from([(
            "X-Hub-Signature-256".to_owned(),
            format!("sha256={signature}"),
        )]),
        raw_body: body.into_bytes(),
        url: String::new(),
    }
}
