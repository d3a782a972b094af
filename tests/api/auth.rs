//! Authentication (every bad token is UNAUTHENTICATED) and the role table of the spec.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    AUDIENCE, Backend, ISSUER, JWT_SECRET, TestApp, WORKSPACE, backend_tests, create, expect_code,
    new_account,
};
use patchbay_sdk::Client;
use patchbay_sdk::tonic::{Code, Status};
use serde_json::{Value, json};

backend_tests!(
    bad_tokens_are_unauthenticated,
    unknown_role_is_denied,
    roles_follow_the_spec
);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn claims() -> Value {
    json!({
        "sub": "u1",
        "role": "admin",
        "workspace_id": WORKSPACE,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 600,
    })
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    if let Some(object) = claims.as_object_mut() {
        object.remove(key);
    }
    claims
}

/// An unsigned token, as an attacker would send it: the library refuses to make one.
fn alg_none(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

async fn list(client: &Client) -> Result<(), Status> {
    client
        .accounts()
        .list_accounts(proto::ListAccountsRequest::default())
        .await
        .map(|_| ())
}

async fn bad_tokens_are_unauthenticated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let good = sign(&claims(), JWT_SECRET);
    list(&app.with_token(&good))
        .await
        .expect("the well-formed token works");

    let cases = [
        ("garbage", "not-a-jwt".to_owned()),
        (
            "bad signature",
            sign(&claims(), "another-secret-another-secret-0123456789"),
        ),
        (
            "expired",
            sign(&with(claims(), "exp", json!(now() - 3600)), JWT_SECRET),
        ),
        (
            "not yet valid",
            sign(&with(claims(), "nbf", json!(now() + 3600)), JWT_SECRET),
        ),
        (
            "wrong issuer",
            sign(&with(claims(), "iss", json!("someone-else")), JWT_SECRET),
        ),
        (
            "wrong audience",
            sign(&with(claims(), "aud", json!("another-api")), JWT_SECRET),
        ),
        ("alg none", alg_none(&claims())),
        (
            "no workspace_id",
            sign(&without(claims(), "workspace_id"), JWT_SECRET),
        ),
        ("no exp", sign(&without(claims(), "exp"), JWT_SECRET)),
        ("no sub", sign(&without(claims(), "sub"), JWT_SECRET)),
    ];
    for (case, token) in cases {
        let status = list(&app.with_token(&token)).await.expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert!(
            !status.message().contains(&token),
            "{case}: the token is not echoed"
        );
    }

    // No authorization header at all.
    let mut bare = proto::account_service_client::AccountServiceClient::new(app.channel());
    let status = bare
        .list_accounts(proto::ListAccountsRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
}

async fn unknown_role_is_denied(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = sign(&with(claims(), "role", json!("owner")), JWT_SECRET);
    let status = list(&app.with_token(&token))
        .await
        .expect_err("unknown role");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[derive(Clone, Copy, Debug)]
enum Rpc {
    ListAccounts,
    GetAccount,
    GetDefaultAccount,
    CreateAccount,
    UpdateAccount,
    SetDefaultAccount,
    DeleteAccount,
    ListChannelSettings,
    GetChannelSettings,
    UpsertChannelSettings,
    GetAccountCredentials,
    ListAuditEvents,
}

/// Which roles the spec lets call each RPC.
fn allowed(rpc: Rpc) -> &'static [&'static str] {
    match rpc {
        Rpc::ListAccounts | Rpc::GetAccount | Rpc::GetDefaultAccount => {
            &["admin", "supervisor", "service"]
        }
        Rpc::ListChannelSettings | Rpc::GetChannelSettings => &["admin", "supervisor"],
        Rpc::GetAccountCredentials => &["service"],
        Rpc::ListAuditEvents => &["admin"],
        Rpc::CreateAccount
        | Rpc::UpdateAccount
        | Rpc::SetDefaultAccount
        | Rpc::DeleteAccount
        | Rpc::UpsertChannelSettings => &["admin"],
    }
}

async fn call(client: &Client, rpc: Rpc, target: &str, role: &str) -> Result<(), Status> {
    let mut accounts = client.accounts();
    let mut integrations = client.integrations();
    match rpc {
        Rpc::ListAccounts => accounts
            .list_accounts(proto::ListAccountsRequest::default())
            .await
            .map(|_| ()),
        Rpc::GetAccount => accounts
            .get_account(proto::GetAccountRequest { id: target.into() })
            .await
            .map(|_| ()),
        Rpc::GetDefaultAccount => accounts
            .get_default_account(proto::GetDefaultAccountRequest {
                channel: Channel::Sms.into(),
                division_id: String::new(),
                no_fallback: false,
            })
            .await
            .map(|_| ()),
        Rpc::CreateAccount => accounts
            .create_account(new_account(Channel::Sms, &format!("new-{role}"), json!({})))
            .await
            .map(|_| ()),
        Rpc::UpdateAccount => accounts
            .update_account(proto::UpdateAccountRequest {
                id: target.into(),
                display_name: Some(format!("renamed by {role}")),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Rpc::SetDefaultAccount => accounts
            .set_default_account(proto::SetDefaultAccountRequest {
                id: target.into(),
                expected_revision: None,
            })
            .await
            .map(|_| ()),
        Rpc::DeleteAccount => {
            // Admins delete an account of their own making; others try the shared one.
            let id = if role == "admin" {
                create(client, new_account(Channel::Sms, "doomed", json!({})))
                    .await
                    .id
            } else {
                target.to_owned()
            };
            accounts
                .delete_account(proto::DeleteAccountRequest {
                    id,
                    expected_revision: None,
                })
                .await
                .map(|_| ())
        }
        Rpc::ListChannelSettings => integrations
            .list_channel_settings(proto::ListChannelSettingsRequest {})
            .await
            .map(|_| ()),
        Rpc::GetChannelSettings => integrations
            .get_channel_settings(proto::GetChannelSettingsRequest {
                channel: Channel::Email.into(),
            })
            .await
            .map(|_| ()),
        Rpc::GetAccountCredentials => accounts
            .get_account_credentials(proto::GetAccountCredentialsRequest { id: target.into() })
            .await
            .map(|_| ()),
        Rpc::ListAuditEvents => client
            .audit()
            .list_audit_events(proto::ListAuditEventsRequest::default())
            .await
            .map(|_| ()),
        Rpc::UpsertChannelSettings => integrations
            .upsert_channel_settings(proto::UpsertChannelSettingsRequest {
                channel: Channel::Email.into(),
                is_active: Some(true),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    }
}

async fn roles_follow_the_spec(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let target = create(&app.admin(), new_account(Channel::Sms, "shared", json!({}))).await;
    app.admin()
        .set_default_account(&target.id)
        .await
        .expect("default");

    let rpcs = [
        Rpc::ListAccounts,
        Rpc::GetAccount,
        Rpc::GetDefaultAccount,
        Rpc::CreateAccount,
        Rpc::UpdateAccount,
        Rpc::SetDefaultAccount,
        Rpc::DeleteAccount,
        Rpc::ListChannelSettings,
        Rpc::GetChannelSettings,
        Rpc::UpsertChannelSettings,
        Rpc::GetAccountCredentials,
        Rpc::ListAuditEvents,
    ];
    for role in ["admin", "supervisor", "service"] {
        let client = app.client(role, WORKSPACE, None);
        for rpc in rpcs {
            let result = call(&client, rpc, &target.id, role).await;
            if allowed(rpc).contains(&role) {
                result.unwrap_or_else(|status| panic!("{role} may call {rpc:?}: {status:?}"));
            } else {
                let status = expect_code(result, Code::PermissionDenied);
                assert!(status.message().contains(role), "{status:?}");
            }
        }
    }
    // The denied writes changed nothing.
    let after = app.admin().get_account(&target.id).await.expect("get");
    assert_eq!(after.display_name, "renamed by admin");
}
