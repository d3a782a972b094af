//! A full scenario with every log line captured at TRACE level (Patchbay's, tonic's,
//! h2's, sqlx's): no secret value, bearer token or key may appear in the output.
//!
//! Its own test binary, because it installs the process-wide log subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{
    Backend, JWT_SECRET, META_APP_SECRET, TestApp, TestOptions, all_providers_at, create,
    get_account, graph_path, new_account, new_whatsapp, test_meta, to_struct, token, update,
    upsert_settings,
};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SECRETS: [&str; 7] = [
    "EAAG-log-secret-token-0001",
    "smtp-password-log-0002",
    "EAAG-log-rotated-0003",
    "SG.log-sendgrid-0004",
    "masked-refusal-secret-0005",
    "EAAG-log-checked-dead-0006",
    "EAAG-log-checked-down-0007",
];

/// The token checker's paths: debug_token (both tokens in its query string) calling
/// one token invalid and failing with a 500 for another, recorded and logged.
async fn token_checks(backend: Backend) {
    use std::time::Duration;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let meta = MockServer::start().await;
    // WhatsApp numbers are set up as Meta does (the stand-in, under this test's mocks).
    patchbay_e2e::fake_meta().mount(&meta).await;
    Mock::given(method("GET"))
        .and(path(graph_path("debug_token")))
        .and(query_param("input_token", SECRETS[5]))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            // Meta quoting the token it refused: it must go no further.
            json!({"data": {"is_valid": false, "error": {"code": 190,
                "message": format!("Session invalidated for {}", SECRETS[5])}}}),
        ))
        .mount(&meta)
        .await;
    Mock::given(method("GET"))
        .and(path(graph_path("debug_token")))
        .and(query_param("input_token", SECRETS[6]))
        .respond_with(ResponseTemplate::new(503))
        .mount(&meta)
        .await;
    let options = |check_every| TestOptions {
        provider_urls: all_providers_at(&meta.uri()),
        meta: patchbay::meta::MetaSettings {
            check_every,
            ..test_meta()
        },
        ..TestOptions::default()
    };
    let writer = TestApp::spawn_with(backend, options(None)).await;
    let down = create(&writer.admin(), new_whatsapp("5007", SECRETS[6])).await;
    let dead = create(&writer.admin(), new_whatsapp("5006", SECRETS[5])).await;
    let checker = TestApp::spawn_with(
        backend,
        TestOptions {
            database_url: Some(writer.database_url.clone()),
            ..options(Some(Duration::from_secs(3600)))
        },
    )
    .await;
    let flagged = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let account = get_account(&checker.admin(), &dead.id).await;
            if account.reauthorization_required {
                return account;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the checker flags the dead token");
    assert!(
        flagged
            .reauthorization_reason
            .contains("Session invalidated")
    );
    assert!(
        !flagged.reauthorization_reason.contains(SECRETS[5]),
        "the quoted token is scrubbed from the reason"
    );
    assert!(
        !get_account(&checker.admin(), &down.id)
            .await
            .reauthorization_required
    );
    let _ = checker.stop().await;
    let _ = writer.stop().await;
}

async fn scenario(backend: Backend) -> Vec<String> {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin();
    let account = create(
        &admin,
        proto::CreateAccountRequest {
            config: Some(to_struct(json!({
                "phone_number_id": "4242",
                "access_token": SECRETS[0],
                "smtp": {"password": SECRETS[1]},
            }))),
            ..new_whatsapp("4242", SECRETS[0])
        },
    )
    .await;
    update(
        &admin,
        proto::UpdateAccountRequest {
            id: account.id.clone(),
            config: Some(to_struct(json!({"access_token": SECRETS[2]}))),
            ..Default::default()
        },
    )
    .await;
    admin
        .set_default_account(&account.id)
        .await
        .expect("default");
    app.service()
        .default_account(Channel::Whatsapp, None)
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
            config: Some(to_struct(json!({"api_key": SECRETS[3]}))),
            ..Default::default()
        },
    )
    .await;
    // Failures log too: a refused request carrying a secret, a bad token.
    let refused = admin
        .accounts()
        .create_account(new_account(
            Channel::Sms,
            "bad key",
            json!({"api_key": SECRETS[4], "token": "********"}),
        ))
        .await;
    assert!(refused.is_err());
    let mut traced = patchbay_sdk::tonic::Request::new(proto::GetAccountRequest {
        id: account.id.clone(),
    });
    traced
        .metadata_mut()
        .insert("x-request-id", "req-traced-0001".parse().expect("header"));
    admin.accounts().get_account(traced).await.expect("get");
    let forged = format!("{}x", token("admin", "acme", None));
    assert!(
        app.with_token(&forged)
            .list_all_accounts(None)
            .await
            .is_err()
    );
    admin
        .accounts()
        .delete_account(proto::DeleteAccountRequest {
            id: account.id.clone(),
            expected_revision: None,
        })
        .await
        .expect("delete");
    let _ = app.stop().await;
    vec![account.verify_token, forged]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_reaches_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let mut also_secret = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        also_secret.extend(scenario(backend).await);
        token_checks(backend).await;
    }
    also_secret.push(META_APP_SECRET.to_owned());
    also_secret.push(token("admin", "acme", None));
    also_secret.push(JWT_SECRET.to_owned());

    let logs = String::from_utf8_lossy(&capture.0.lock().expect("logs")).into_owned();
    assert!(
        logs.len() > 10_000,
        "TRACE output was captured ({} bytes)",
        logs.len()
    );
    assert!(
        logs.contains("patchbay"),
        "the server's own lines are there"
    );
    for secret in SECRETS.iter().map(|s| s.to_string()).chain(also_secret) {
        // A bearer token is checked by its signature part, which is what makes it usable.
        let needle = secret.rsplit('.').next().unwrap_or(&secret).to_owned();
        assert!(
            !logs.contains(&needle),
            "a secret ({}…) is in the logs",
            &needle[..needle.len().min(6)]
        );
    }
}
