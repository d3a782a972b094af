//! The `patchbay` binary: `serve`, `migrate`, `token`.

use std::process::ExitCode;

use clap::Parser;
use patchbay::auth::{self, TokenRequest};
use patchbay::config::{self, Cli, Command, KeysCommand, LogFormat, Settings};
use patchbay::sealing;
use patchbay::startup::{self, Application};
use patchbay::store::{self, Store};
use patchbay::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match patchbay::config::file::apply(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("patchbay: {err}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Serve(args) => serve(&cli.data_dir, &args).await,
        Command::Migrate(args) => migrate(&cli.data_dir, &args).await,
        Command::Token(args) => token(&cli.data_dir, &args),
        Command::Keys(KeysCommand::Generate) => generate_key(),
        Command::Keys(KeysCommand::Rotate(args)) => rotate_keys(&cli.data_dir, &args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("patchbay: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(data_dir: &std::path::Path, args: &config::ServeArgs) -> Result<(), String> {
    let exporter = args
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| telemetry::Exporter {
            endpoint,
            ca_file: args.otlp_ca_file.as_deref(),
        });
    let _telemetry = telemetry::init(args.log_format, exporter)?;
    let settings = Settings::from_serve_args(data_dir, args).map_err(|e| e.to_string())?;
    // Listening for signals before the start: one sent while it runs (a migration
    // waiting on a lock, a database not up yet) stops the start; once serving, the
    // server drains.
    let mut shutdown = Box::pin(startup::shutdown_signal());
    let app = tokio::select! {
        built = Application::build(settings) => built.map_err(|e| e.to_string())?,
        () = &mut shutdown => {
            tracing::info!("stopped by a signal before serving");
            return Ok(());
        }
    };
    app.run_until_stopped(shutdown)
        .await
        .map_err(|e| e.to_string())
}

async fn migrate(data_dir: &std::path::Path, args: &config::DatabaseArgs) -> Result<(), String> {
    let _telemetry = telemetry::init(LogFormat::Pretty, None)?;
    let settings = config::database_settings(data_dir, args).map_err(|e| e.to_string())?;
    store::migrate_database(&settings)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    eprintln!("patchbay: database schema is up to date");
    Ok(())
}

/// Prints a new key as a key ring entry, for an operator to add and activate.
fn generate_key() -> Result<(), String> {
    let (id, key) = sealing::generate_key().map_err(|e| e.to_string())?;
    println!("{}", serde_json::json!({ "id": id, "key": key }));
    eprintln!(
        "patchbay: add it to the \"keys\" of your key ring, make {id:?} \"active\", restart the \
         servers, then run `patchbay keys rotate`"
    );
    Ok(())
}

async fn rotate_keys(data_dir: &std::path::Path, args: &config::RotateArgs) -> Result<(), String> {
    let _telemetry = telemetry::init(LogFormat::Pretty, None)?;
    let database =
        config::database_settings(data_dir, &args.database).map_err(|e| e.to_string())?;
    let keys = config::key_ring(
        data_dir,
        &args.encryption,
        config::dev_keys_for_database(&args.database),
    )
    .map_err(|e| e.to_string())?;
    let active = keys.active_key_id().to_owned();
    let store = Store::connect(&database, keys)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let report = store
        .rotate_keys(args.batch_size)
        .await
        .map_err(|e| e.to_string());
    store.close().await;
    let report = report?;
    println!(
        "rotated to key {active}: {} records checked, {} rewritten, {} secrets re-encrypted",
        report.records_checked, report.records_rewritten, report.secrets_resealed
    );
    if report.unreadable.is_empty() {
        return Ok(());
    }
    for record in &report.unreadable {
        println!("could not open {record}");
    }
    Err(format!(
        "{} records could not be opened and were left as they are; every other record \
         was rotated (is a key missing from the ring?)",
        report.unreadable.len()
    ))
}

/// Prints only the token on stdout, so that `TOKEN=$(patchbay token …)` works.
fn token(data_dir: &std::path::Path, args: &config::TokenArgs) -> Result<(), String> {
    // `token` signs with the development secret when no key is given: it is how the
    // embedded default's tokens are made (a server elsewhere refuses to start without keys).
    let jwt = config::jwt_settings(data_dir, &args.jwt, config::DevKeys::Allowed)
        .map_err(|e| e.to_string())?;
    let ttl = auth::parse_ttl(&args.ttl).map_err(|e| format!("--ttl: {e}"))?;
    let workspace_id = match (args.role.as_str(), args.workspace.as_deref()) {
        ("gateway", None) if args.division.is_none() => None,
        ("gateway", _) => {
            return Err(
                "--role gateway acts for the whole installation: leave out --workspace and --division"
                    .to_owned(),
            );
        }
        ("admin" | "supervisor" | "service", Some(workspace)) if !workspace.is_empty() => {
            Some(workspace.to_owned())
        }
        ("admin" | "supervisor" | "service", _) => {
            return Err(format!("--role {} needs a --workspace", args.role));
        }
        (other, _) => {
            return Err(format!(
                "--role must be admin, supervisor, service or gateway, got {other:?}"
            ));
        }
    };
    let token = auth::mint(
        &jwt,
        &TokenRequest {
            subject: args.sub.clone(),
            role: args.role.clone(),
            workspace_id,
            division_id: args.division.clone(),
            ttl,
        },
    )
    .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}
