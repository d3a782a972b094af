//! Creates a WhatsApp account, makes it the default and asks for the default the way a
//! sending service would: once with a call, then from a local copy (`DefaultAccounts`)
//! that the server keeps current, which answers every later question with no call.
//!
//! ```sh
//! cargo run -p patchbay -- serve &                      # the dev server
//! export PATCHBAY_TOKEN=$(cargo run -q -p patchbay -- token --role admin --workspace acme)
//! cargo run -p patchbay-sdk --example default_account
//! ```

use patchbay_sdk::prost_types::{Struct, Value, value::Kind};
use patchbay_sdk::proto::{Channel, CreateAccountRequest};
use std::time::Duration;

use patchbay_sdk::{Client, Error, WatchOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint =
        std::env::var("PATCHBAY_URL").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let token = std::env::var("PATCHBAY_TOKEN").map_err(
        |_| "set PATCHBAY_TOKEN to an admin token (patchbay token --role admin --workspace acme)",
    )?;
    let client = Client::connect(endpoint, &token).await?;

    // A phone number id of our own, so that running the example twice is fine.
    let phone_number_id = format!("1555{}", std::process::id());
    let config = Struct {
        fields: [
            ("phone_number_id", phone_number_id.as_str()),
            ("access_token", "EAAG-example-token-not-real"),
        ]
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_owned(),
                Value {
                    kind: Some(Kind::StringValue(v.to_owned())),
                },
            )
        })
        .collect(),
    };
    let created = client
        .create_account(CreateAccountRequest {
            channel: Channel::Whatsapp.into(),
            display_name: "Example sender".to_owned(),
            config: Some(config),
            ..Default::default()
        })
        .await?;
    println!("created {} ({})", created.account_key, created.id);

    client.set_default_account(&created.id).await?;
    match client.default_account(Channel::Whatsapp, None).await {
        Ok(sender) => println!(
            "default WhatsApp sender: {} (webhook {})",
            sender.account_key, sender.webhook_url
        ),
        Err(Error::NotFound(message)) => println!("no default: {message}"),
        Err(other) => return Err(other.into()),
    }

    // A sending service asks on every message: keep a local copy instead. It starts
    // from a snapshot, applies every change the server streams, and reconnects (and
    // resynchronises) by itself after any break.
    let defaults = client.watch_default_accounts(WatchOptions {
        channels: vec![Channel::Whatsapp],
        ..WatchOptions::default()
    });
    defaults.wait_synchronised(Duration::from_secs(5)).await?;
    match defaults.get(Channel::Whatsapp, Some("sales")) {
        Some(sender) => println!(
            "from the local copy (synchronised: {}, revision {}): {} for the sales division",
            defaults.is_synchronised(),
            defaults.status().revision,
            sender.account_key
        ),
        None => println!("the local copy knows no WhatsApp default"),
    }
    Ok(())
}
