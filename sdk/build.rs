//! Generates the Rust types, clients and servers from `proto/` with protox, so that no
//! `protoc` is needed on the machine, and writes the file descriptor set served by
//! server reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTO_ROOT: &str = "../proto";
const PROTO_FILES: &[&str] = &[
    "patchbay/v1/channel.proto",
    "patchbay/v1/account.proto",
    "patchbay/v1/account_service.proto",
    "patchbay/v1/channel_settings.proto",
    "patchbay/v1/provider.proto",
    "patchbay/v1/integration.proto",
    "patchbay/v1/integration_service.proto",
    "patchbay/v1/audit.proto",
    "patchbay/v1/audit_service.proto",
    "patchbay/v1/webhook_service.proto",
];

const REDACTED_DEBUG: &[&str] = &[
    ".patchbay.v1.Account",
    ".patchbay.v1.CreateAccountRequest",
    ".patchbay.v1.UpdateAccountRequest",
    ".patchbay.v1.GetAccountCredentialsResponse",
    ".patchbay.v1.ChannelSettings",
    ".patchbay.v1.UpsertChannelSettingsRequest",
    ".patchbay.v1.CompleteWhatsAppSignupRequest",
    ".patchbay.v1.ConnectInstagramRequest",
    ".patchbay.v1.ConnectMessengerRequest",
    ".patchbay.v1.ConnectMessengerResponse",
    ".patchbay.v1.SubscribeMessengerPagesRequest",
    ".patchbay.v1.VerifyWebhookSubscriptionRequest",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let file_descriptors = protox::Compiler::new([PROTO_ROOT])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTO_FILES)?
        .file_descriptor_set();

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("patchbay_descriptor.bin"),
        file_descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        // Messages that carry configs or tokens get a redacting Debug (src/redacted.rs).
        .skip_debug(REDACTED_DEBUG)
        .build_server(env::var_os("CARGO_FEATURE_SERVER").is_some())
        .build_client(true)
        .build_transport(true)
        .codec_path("crate::codec::PatchbayCodec")
        .compile_fds(file_descriptors)?;
    Ok(())
}
