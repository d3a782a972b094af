//! A webhook gateway for the whole installation: Meta and Twilio post here, Patchbay
//! says whether each request is genuine and whose it is, and the gateway hands each
//! entry to its tenant (here: prints it). It holds a `gateway` token, which can route
//! and nothing else — no account, no secret.
//!
//! ```sh
//! cargo run -p patchbay -- serve &                      # the dev server
//! export PATCHBAY_TOKEN=$(cargo run -q -p patchbay -- token --role gateway)
//! cargo run -p patchbay-sdk --example webhook_gateway   # listens on 127.0.0.1:8080
//! curl -i 'http://127.0.0.1:8080/webhooks/meta?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1'
//! ```
//!
//! `PUBLIC_BASE_URL` (default `http://localhost:8080`, the server's default) is what the
//! providers were given: the URL handed over is rebuilt from it and the request's path
//! and query, because Twilio signs the URL it requested, not the one a proxy forwards.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::any;
use patchbay_sdk::{Client, Error};

#[derive(Clone)]
struct Gateway {
    patchbay: Client,
    public_base_url: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let token = std::env::var("PATCHBAY_TOKEN")
        .map_err(|_| "set PATCHBAY_TOKEN to a gateway token (patchbay token --role gateway)")?;
    let gateway = Gateway {
        patchbay: Client::connect(env("PATCHBAY_URL", "http://127.0.0.1:50051"), &token).await?,
        public_base_url: env("PUBLIC_BASE_URL", "http://localhost:8080")
            .trim_end_matches('/')
            .to_owned(),
    };
    let listen: SocketAddr = env("GATEWAY_LISTEN", "127.0.0.1:8080").parse()?;
    let app = Router::new()
        .route("/webhooks/{*route}", any(webhook))
        .with_state(gateway);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("webhook gateway on http://{listen}/webhooks/…");
    axum::serve(listener, app).await?;
    Ok(())
}

/// One provider request: handed over as it arrived, answered as the verdict says.
async fn webhook(
    State(gateway): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path_and_query}", gateway.public_base_url);
    let headers = headers.iter().filter_map(|(name, value)| {
        Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
    });
    let answer = gateway
        .patchbay
        .route_webhook(method.as_str(), &url, headers, body.to_vec())
        .await;
    match answer {
        // Meta's handshake: echo the challenge.
        Ok(answer) if !answer.challenge.is_empty() => (StatusCode::OK, answer.challenge),
        Ok(answer) => {
            for delivery in &answer.deliveries {
                // A real gateway enqueues the entry for the tenant's pipeline here.
                println!(
                    "entry {} -> workspace {} account {} ({})",
                    delivery.entry_index,
                    delivery.workspace_id,
                    delivery.account_id,
                    delivery.account_key
                );
            }
            for entry in &answer.unrouted {
                println!("entry {} unrouted: {}", entry.entry_index, entry.reason);
            }
            // Acknowledged, unrouted entries too: Meta retries what is not.
            (StatusCode::OK, String::new())
        }
        // The caller is the internet: it gets a status, the reasons go to the log.
        Err(err) => {
            eprintln!("webhook refused: {err}");
            let status = match err {
                Error::PermissionDenied(_) => StatusCode::FORBIDDEN,
                Error::NotFound(_) => StatusCode::NOT_FOUND,
                Error::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
                // UNAVAILABLE and the rest: the provider retries later.
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, String::new())
        }
    }
}
