//! A client that makes the server reset its streams is cut off. Each DATA frame past a
//! request's `content-length` is a stream error that h2 answers with RST_STREAM; such a
//! stream no longer counts as open, while the handler it started may still run
//! ("MadeYouReset", CVE-2025-8671). h2 closes a connection after 1,024 of them, but
//! tonic's `Server` turns that guard off unless told; the server sets it again.
//!
//! The client here is the h2 crate itself (hyper's), sending frames a careless or hostile
//! client sends: it does not check what it sends against its own `content-length`.

use bytes::Bytes;
use patchbay_e2e::{Backend, TestApp, WORKSPACE, token};

/// More than the streams h2 may reset for a client's errors over a connection (1,024).
const PROVOKED_RESETS: usize = 1_100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_provoking_stream_errors_is_told_to_calm_down() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let (mut client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let authorization = format!("Bearer {}", token("service", WORKSPACE, None));

    let mut refused = None;
    for sent in 0..PROVOKED_RESETS {
        let request = http::Request::post(format!(
            "http://{}/patchbay.v1.AccountService/GetAccount",
            app.addr
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", authorization.as_str())
        // Five bytes announced, sixteen sent.
        .header("content-length", "5")
        .body(())
        .expect("request");
        let ready = match client.clone().ready().await {
            Ok(ready) => ready,
            Err(error) => {
                refused = Some((sent, error));
                break;
            }
        };
        client = ready;
        let (response, mut body) = match client.send_request(request, false) {
            Ok(sent) => sent,
            Err(error) => {
                refused = Some((sent, error));
                break;
            }
        };
        let _ = body.send_data(Bytes::from_static(&[0; 16]), true);
        // The stream's own end: the server's reset of it, or the connection's end.
        let _ = response.await;
    }

    let (sent, error) = refused.expect("the connection is closed before 1,100 provoked resets");
    assert!(
        sent > 1_000,
        "closed after {sent} streams: not by this guard?"
    );
    // The GOAWAY reaches the stream that found the connection closed, or the
    // connection's own task (which may instead see the socket's end after it).
    let closed = connection.await.expect("connection task").err();
    let calmed = |e: &h2::Error| {
        e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
    };
    assert!(
        calmed(&error) || closed.as_ref().is_some_and(calmed),
        "the server's GOAWAY ENHANCE_YOUR_CALM: {error:?} / {closed:?}"
    );

    // Other connections are served as before.
    app.service()
        .list_all_accounts(None)
        .await
        .expect("another client is served");
}
