//! TLS on the listener, with certificates made in the test: the SDK over TLS with a
//! given CA (both backends), health and reflection over TLS, mTLS that accepts only
//! clients of its CA, a certificate replaced while serving, and handshake places per
//! client network.

use std::time::{Duration, Instant};

use patchbay_e2e::certs::{TestCa, replace_server_files, write_listener_files};
use patchbay_e2e::proto::{self, Channel};
use patchbay_e2e::{Backend, TestApp, TestOptions, backend_tests, new_account, token};
use patchbay_sdk::{Client, ConnectOptions};
use serde_json::json;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

backend_tests!(the_sdk_speaks_tls_with_a_given_ca);

/// Whether a new connection with `options` gets a health answer from `url`.
async fn reaches(url: &str, options: &ConnectOptions) -> bool {
    let Ok(channel) = options.connect(url.to_owned()).await else {
        return false;
    };
    health(channel).await
}

async fn health(channel: patchbay_sdk::tonic::transport::Channel) -> bool {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

async fn the_sdk_speaks_tls_with_a_given_ca(backend: Backend) {
    let ca = TestCa::new("patchbay test CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = write_listener_files(dir.path(), &ca.server(), None, Duration::from_secs(30));
    let trusted = ConnectOptions::new().ca_certificate_pem(ca.pem());
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            tls: Some(tls),
            client_tls: Some(trusted.clone()),
            ..Default::default()
        },
    )
    .await;
    let url = format!("https://127.0.0.1:{}", app.addr.port());
    // Clients that connect and never say hello hold no one up: each handshake runs on
    // its own task (in the accept loop, ten of them would hold the next client 30 s).
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(
            tokio::net::TcpStream::connect(app.addr)
                .await
                .expect("an idle connection"),
        );
    }

    // The SDK's own connect, over TLS, for writes and reads.
    let admin = tokio::time::timeout(
        Duration::from_secs(8),
        Client::connect_with(url.clone(), &token("admin", "acme", None), &trusted),
    )
    .await
    .expect("idle connections do not hold the handshake up")
    .expect("the SDK connects over TLS");
    let created = admin
        .create_account(new_account(
            Channel::Sms,
            "tls-line",
            json!({"api_key": "k-tls-1"}),
        ))
        .await
        .expect("created over TLS");
    let service = Client::connect_with(url.clone(), &token("service", "acme", None), &trusted)
        .await
        .expect("connect");
    let revealed = service
        .account_credentials(&created.id)
        .await
        .expect("credentials over TLS");
    assert_eq!(
        patchbay_e2e::to_json(revealed.config.as_ref().expect("config"))["api_key"],
        json!("k-tls-1")
    );

    // Health and reflection work over TLS (what `buf curl --cacert` uses).
    assert!(health(app.channel()).await, "health over TLS");
    use tonic_reflection::pb::v1;
    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(app.channel());
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        }]))
        .await
        .expect("reflection over TLS")
        .into_inner();
    assert!(
        tokio_stream::StreamExt::next(&mut answers)
            .await
            .is_some_and(|answer| answer.is_ok()),
        "reflection answers"
    );

    // Neither plaintext nor a client that trusts another CA gets through.
    assert!(
        !reaches(
            &format!("http://127.0.0.1:{}", app.addr.port()),
            &ConnectOptions::new()
        )
        .await,
        "plaintext h2c is not served on a TLS listener"
    );
    let stranger = ConnectOptions::new().ca_certificate_pem(TestCa::new("another CA").pem());
    assert!(
        !reaches(&url, &stranger).await,
        "another CA's client refuses the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mtls_accepts_only_client_certificates_of_its_ca() {
    let server_ca = TestCa::new("server CA");
    let clients_ca = TestCa::new("clients CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = write_listener_files(
        dir.path(),
        &server_ca.server(),
        Some(&clients_ca),
        Duration::from_secs(30),
    );
    let ours = clients_ca.client("billing-service");
    let with_our_certificate = ConnectOptions::new()
        .ca_certificate_pem(server_ca.pem())
        .client_identity_pem(ours.cert_pem, ours.key_pem);
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        TestOptions {
            tls: Some(tls),
            client_tls: Some(with_our_certificate.clone()),
            ..Default::default()
        },
    )
    .await;
    let url = format!("https://127.0.0.1:{}", app.addr.port());
    assert!(
        reaches(&url, &with_our_certificate).await,
        "a client of the CA"
    );
    app.admin()
        .list_all_accounts(None)
        .await
        .expect("calls work with a client certificate");

    let without = ConnectOptions::new().ca_certificate_pem(server_ca.pem());
    assert!(!reaches(&url, &without).await, "no client certificate");
    let theirs = TestCa::new("someone else's CA").client("intruder");
    let foreign = ConnectOptions::new()
        .ca_certificate_pem(server_ca.pem())
        .client_identity_pem(theirs.cert_pem, theirs.key_pem);
    assert!(
        !reaches(&url, &foreign).await,
        "a certificate of another CA"
    );
    let client = Client::connect_with(url, &token("admin", "acme", None), &foreign).await;
    if let Ok(client) = client {
        client
            .list_all_accounts(None)
            .await
            .expect_err("no call gets through without a certificate of the CA");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_certificate_serves_new_connections_while_open_ones_keep_working() {
    let first_ca = TestCa::new("first CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = write_listener_files(dir.path(), &first_ca.server(), None, Duration::from_secs(1));
    let (cert_file, key_file) = (tls.cert_file.clone(), tls.key_file.clone());
    let trusts_first = ConnectOptions::new().ca_certificate_pem(first_ca.pem());
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        TestOptions {
            tls: Some(tls),
            client_tls: Some(trusts_first.clone()),
            ..Default::default()
        },
    )
    .await;
    let url = format!("https://127.0.0.1:{}", app.addr.port());
    // A connection opened under the first certificate.
    let open = trusts_first
        .connect(url.clone())
        .await
        .expect("connected under the first certificate");
    assert!(health(open.clone()).await);

    // cert-manager writes a certificate from another CA.
    let second_ca = TestCa::new("second CA");
    replace_server_files(&cert_file, &key_file, &second_ca.server());
    let trusts_second = ConnectOptions::new().ca_certificate_pem(second_ca.pem());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reaches(&url, &trusts_second).await {
        assert!(
            Instant::now() < deadline,
            "new connections never got the new certificate"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !reaches(&url, &trusts_first).await,
        "new connections no longer get the first certificate"
    );
    // The open connection still works: it cannot have reconnected, since a new
    // connection trusting the first CA is refused now.
    assert!(
        health(open.clone()).await,
        "the open connection keeps working"
    );
    let mut accounts = proto::account_service_client::AccountServiceClient::new(open);
    let mut request = patchbay_sdk::tonic::Request::new(proto::ListAccountsRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token("admin", "acme", None))
            .parse()
            .expect("header"),
    );
    accounts
        .list_accounts(request)
        .await
        .expect("calls on the open connection go on");
}

/// TLS handshake caps by network (#28, item 4): idle sockets from eight loopback
/// addresses of one /24 fill that network's 32 places only; a ninth address of it is
/// closed at once, while a client of another /24 is still taken in, and a real TLS
/// client of another network still connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_from_one_network_fill_only_its_places() {
    use tokio::io::AsyncReadExt;
    let ca = TestCa::new("patchbay test CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = write_listener_files(dir.path(), &ca.server(), None, Duration::from_secs(30));
    let trusted = ConnectOptions::new().ca_certificate_pem(ca.pem());
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        TestOptions {
            tls: Some(tls),
            client_tls: Some(trusted.clone()),
            ..Default::default()
        },
    )
    .await;
    let port = app.addr.port();
    let from = |source: [u8; 4]| async move {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind((std::net::Ipv4Addr::from(source), 0).into())
            .expect("bind a loopback source");
        socket
            .connect((std::net::Ipv4Addr::LOCALHOST, port).into())
            .await
            .expect("connect")
    };
    // Closed at once (the server refused it), or held waiting for a ClientHello.
    let refused = |mut stream: tokio::net::TcpStream| async move {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(700), stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    };
    let mut idle = Vec::new();
    for n in 1..=8u8 {
        for _ in 0..4 {
            idle.push(from([127, 0, 0, n]).await);
        }
    }
    // Let the accept loop take all 32.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        refused(from([127, 0, 0, 9]).await).await,
        "the /24 holds its 32 handshakes"
    );
    assert!(
        !refused(from([127, 0, 1, 1]).await).await,
        "another /24 is taken in"
    );
    // The places come back with the idle sockets: a real TLS client from 127.0.0.1
    // (of the full /24 until then) is served.
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        reaches(&format!("https://127.0.0.1:{port}"), &trusted).await,
        "places are given back when the idle sockets go"
    );
}
