//! The `patchbay` binary: `serve`, `migrate`, `token`.

use std::process::ExitCode;

use clap::Parser;
use patchbay::auth::{self, TokenRequest};
use patchbay::config::{self, Cli, Command, LogFormat, Settings};
use patchbay::startup::{self, Application};
use patchbay::store::Store;
use patchbay::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(&cli.data_dir, &args).await,
        Command::Migrate(args) => migrate(&cli.data_dir, &args).await,
        Command::Token(args) => token(&cli.data_dir, &args),
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
    telemetry::init(args.log_format);
    let settings = Settings::from_serve_args(data_dir, args).map_err(|e| e.to_string())?;
    let app = Application::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    app.run_until_stopped(startup::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn migrate(data_dir: &std::path::Path, args: &config::DatabaseArgs) -> Result<(), String> {
    telemetry::init(LogFormat::Pretty);
    let settings = config::database_settings(data_dir, args).map_err(|e| e.to_string())?;
    let store = Store::connect(&settings)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    store.close().await;
    eprintln!("patchbay: database schema is up to date");
    Ok(())
}

/// Prints only the token on stdout, so that `TOKEN=$(patchbay token …)` works.
fn token(data_dir: &std::path::Path, args: &config::TokenArgs) -> Result<(), String> {
    let jwt = config::jwt_settings(data_dir, &args.jwt).map_err(|e| e.to_string())?;
    let ttl = auth::parse_ttl(&args.ttl).map_err(|e| format!("--ttl: {e}"))?;
    if !matches!(args.role.as_str(), "admin" | "supervisor" | "service") {
        return Err(format!(
            "--role must be admin, supervisor or service, got {:?}",
            args.role
        ));
    }
    if args.workspace.is_empty() {
        return Err("--workspace must not be empty".to_owned());
    }
    let token = auth::mint(
        &jwt,
        &TokenRequest {
            subject: args.sub.clone(),
            role: args.role.clone(),
            workspace_id: args.workspace.clone(),
            division_id: args.division.clone(),
            ttl,
        },
    )
    .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}
