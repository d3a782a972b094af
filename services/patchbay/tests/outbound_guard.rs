//! The outbound guard as a provider call meets it: the real client, a local fake
//! (wiremock on 127.0.0.1) standing for the place a tenant would like Patchbay to call,
//! and an injected resolver standing for DNS. Every refusal happens before a connection:
//! the fake records no request.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use patchbay::outbound::{
    AddressPolicy, Destination, MAX_BODY_BYTES, NameResolver, OutboundClient, OutboundError,
    OutboundSettings,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GET: http::Method = http::Method::GET;

fn client(policy: AddressPolicy, resolver: Option<Arc<dyn NameResolver>>) -> OutboundClient {
    OutboundClient::new(&OutboundSettings { policy, resolver }).expect("client")
}

async fn fake() -> MockServer {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&fake)
        .await;
    fake
}

async fn requests(fake: &MockServer) -> usize {
    fake.received_requests().await.map_or(0, |r| r.len())
}

#[track_caller]
fn refused(result: Result<patchbay::outbound::Answer, OutboundError>, why: &str) -> String {
    match result {
        Err(OutboundError::Refused {
            destination,
            refusal,
        }) => {
            assert_eq!(destination, "config.chatwootURL");
            assert!(refusal.0.contains(why), "{why:?} in {refusal}");
            refusal.0
        }
        other => panic!("expected a refusal ({why}), got {other:?}"),
    }
}

const FIELD: &str = "config.chatwootURL";

/// Every numeric form of loopback, and the other refused ranges, are refused by their
/// literal form: the port is the fake's, so a connection would have reached it.
#[tokio::test]
async fn refused_address_forms_never_connect() {
    let fake = fake().await;
    let port = fake.address().port();
    let guard = client(AddressPolicy::PublicOnly, None);
    for (host, why) in [
        ("127.0.0.1", "loopback"),
        ("2130706433", "loopback"),
        ("0x7f000001", "loopback"),
        ("0177.0.0.1", "loopback"),
        ("127.1", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[64:ff9b::7f00:1]", "loopback"),
        ("localhost", "this machine"),
        ("10.0.0.1", "private"),
        ("192.168.0.1", "private"),
        ("172.16.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1]", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("[fd00::1]", "unique-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("255.255.255.255", "broadcast"),
    ] {
        // Operator origin: plain http is allowed, so only the address can refuse it.
        let url = format!("http://{host}:{port}/api/v1/profile");
        let result = guard
            .send(
                Destination {
                    name: FIELD,
                    origin: patchbay::outbound::Origin::Operator,
                },
                GET,
                &url,
                |r| r.header("api_access_token", "stored-secret"),
            )
            .await;
        refused(result, why);
    }
    assert_eq!(requests(&fake).await, 0, "no request reached the fake");
}

/// A name that resolves to loopback (a hosts-file entry, a tenant's DNS) is refused at
/// connect time, where the addresses are used.
#[tokio::test]
async fn names_resolving_to_refused_addresses_are_refused() {
    let fake = fake().await;
    let port = fake.address().port();
    let resolver = |host: &str| -> io::Result<Vec<IpAddr>> {
        assert_eq!(host, "chatwoot.tenant.example");
        Ok(vec![
            "157.240.1.35".parse().expect("ip"),
            "127.0.0.1".parse().expect("ip"),
        ])
    };
    let guard = client(AddressPolicy::PublicOnly, Some(Arc::new(resolver)));
    // Plain http (an operator URL may use it), so that a connection would reach the fake.
    let result = guard
        .send(
            Destination {
                name: FIELD,
                origin: patchbay::outbound::Origin::Operator,
            },
            GET,
            &format!("http://chatwoot.tenant.example:{port}/api/v1/profile"),
            |r| r,
        )
        .await;
    let reason = refused(result, "loopback");
    assert!(
        reason.contains("chatwoot.tenant.example resolves to 127.0.0.1"),
        "{reason}"
    );
    assert_eq!(requests(&fake).await, 0);
}

/// DNS rebinding: the name answers a public address first, then loopback. The guard
/// checks the addresses each connection uses, so the second answer is refused.
#[tokio::test]
async fn dns_rebinding_is_caught_at_connect_time() {
    let fake = fake().await;
    let port = fake.address().port();
    let lookups = Arc::new(AtomicUsize::new(0));
    let counter = lookups.clone();
    let resolver = move |_: &str| -> io::Result<Vec<IpAddr>> {
        let answer = if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            // Documentation range: public to the guard, unroutable here.
            "2001:db8::1"
        } else {
            "127.0.0.1"
        };
        Ok(vec![answer.parse().expect("ip")])
    };
    let guard = client(AddressPolicy::PublicOnly, Some(Arc::new(resolver)));
    let url = format!("https://rebind.tenant.example:{port}/api/v1/profile");
    let first = guard
        .send(Destination::tenant(FIELD), GET, &url, |r| r)
        .await;
    assert!(
        matches!(first, Err(OutboundError::Unreachable(_))),
        "the public answer passes the guard (and fails to connect here): {first:?}"
    );
    let second = guard
        .send(Destination::tenant(FIELD), GET, &url, |r| r)
        .await;
    refused(second, "loopback");
    assert_eq!(
        lookups.load(Ordering::SeqCst),
        2,
        "each connection resolves again"
    );
    assert_eq!(requests(&fake).await, 0);
}

/// With --allow-private-outbound the fake is reachable (over plain http too), but
/// link-local (cloud metadata) stays refused.
#[tokio::test]
async fn the_allow_flag_reaches_local_fakes_but_never_link_local() {
    let fake = fake().await;
    let guard = client(AddressPolicy::AllowPrivate, None);
    let answer = guard
        .send(Destination::tenant(FIELD), GET, &fake.uri(), |r| r)
        .await
        .expect("a local fake is reachable with the flag");
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body[..], b"ok");
    refused(
        guard
            .send(
                Destination::tenant(FIELD),
                GET,
                "http://169.254.169.254/latest/meta-data/",
                |r| r,
            )
            .await,
        "link-local",
    );
}

/// Tenant URLs must be https without the flag.
#[tokio::test]
async fn plain_http_is_refused_for_tenant_urls() {
    let guard = client(
        AddressPolicy::PublicOnly,
        Some(Arc::new(|_: &str| -> io::Result<Vec<IpAddr>> {
            Ok(vec!["157.240.1.35".parse().expect("ip")])
        })),
    );
    refused(
        guard
            .send(
                Destination::tenant(FIELD),
                GET,
                "http://chatwoot.tenant.example/api/v1/profile",
                |r| r,
            )
            .await,
        "https",
    );
}

/// A redirect is an answer, never followed (the credential would go along), and a body
/// is read up to the cap.
#[tokio::test]
async fn redirects_are_not_followed_and_bodies_are_capped() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/moved"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/elsewhere"))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/huge"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 4 * MAX_BODY_BYTES]))
        .mount(&fake)
        .await;
    let guard = client(AddressPolicy::AllowPrivate, None);
    let moved = guard
        .send(
            Destination::tenant(FIELD),
            GET,
            &format!("{}/moved", fake.uri()),
            |r| r.header("api_access_token", "stored-secret"),
        )
        .await
        .expect("an answer");
    assert_eq!(moved.status, 302);
    let huge = guard
        .send(
            Destination::tenant(FIELD),
            GET,
            &format!("{}/huge", fake.uri()),
            |r| r,
        )
        .await
        .expect("an answer");
    assert_eq!(huge.body.len(), MAX_BODY_BYTES);
    fake.verify().await;
}

/// A proxy in the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY) would connect for us
/// to wherever it is told, past the guard: the client ignores them. The test runs itself
/// again in a child process with the variables set (they cannot be set safely here).
#[tokio::test]
async fn proxies_in_the_environment_are_ignored() {
    const CHILD: &str = "PATCHBAY_TEST_PROXY_CHILD";
    if let Ok(fake_port) = std::env::var(CHILD) {
        let resolver =
            |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec!["127.0.0.1".parse().expect("ip")]) };
        let guard = client(AddressPolicy::AllowPrivate, Some(Arc::new(resolver)));
        let answer = guard
            .send(
                Destination::tenant(FIELD),
                GET,
                &format!("http://provider.example:{fake_port}/api/v1/profile"),
                |r| r,
            )
            .await
            .expect("answered directly");
        assert_eq!(answer.status, 200);
        return;
    }
    let fake = fake().await;
    let proxy = fake_proxy().await;
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "proxies_in_the_environment_are_ignored"])
        .env(CHILD, fake.address().port().to_string())
        .env("HTTP_PROXY", proxy.uri())
        .env("HTTPS_PROXY", proxy.uri())
        .env("ALL_PROXY", proxy.uri())
        .env("http_proxy", proxy.uri())
        .status()
        .expect("run the child");
    assert!(
        status.success(),
        "the child's request went straight to the provider"
    );
    assert_eq!(requests(&fake).await, 1, "the provider got it");
    assert_eq!(requests(&proxy).await, 0, "the proxy got nothing");
}

/// A proxy that answers anything, so that a proxied request would succeed too.
async fn fake_proxy() -> MockServer {
    let proxy = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&proxy)
        .await;
    proxy
}
