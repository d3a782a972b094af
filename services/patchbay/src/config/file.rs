//! The configuration file: a flat TOML table whose keys are the long flag names of
//! `patchbay serve` (`listen = "0.0.0.0:50051"`, `request-timeout-seconds = 10`), given
//! with `--config FILE` or `PATCHBAY_CONFIG`. A value from the file is used only where
//! neither the command line nor the environment sets that option: flags win over
//! `PATCHBAY_*` variables, which win over the file.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::CommandFactory;

use crate::config::{Cli, ConfigError};

/// The command line with the file's settings appended as flags, for those the command
/// line and the environment leave unset.
pub fn apply(args: Vec<OsString>) -> Result<Vec<OsString>, ConfigError> {
    let Some(path) = config_path(&args) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path).map_err(|err| {
        ConfigError(format!(
            "PATCHBAY_CONFIG (--config): cannot read {}: {err}",
            path.display()
        ))
    })?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|err| ConfigError(format!("{}: not a valid TOML table: {err}", path.display())))?;

    let command = Cli::command();
    let Some(serve) = command.find_subcommand("serve") else {
        return Ok(args);
    };
    let given: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // The command being run (`keys rotate` nests one level deeper).
    // The words that are not flags, leaving out the value of `--config FILE`.
    let mut running = &command;
    let words = given
        .iter()
        .skip(1)
        .zip(given.iter())
        .filter(|(word, before)| !word.starts_with('-') && before.as_str() != "--config")
        .map(|(word, _)| word);
    for word in words {
        match running.find_subcommand(word) {
            Some(sub) => running = sub,
            None => break,
        }
    }
    let mut extended = args.clone();
    for (key, value) in &table {
        let known = key != "config"
            && serve
                .get_arguments()
                .chain(command.get_arguments())
                .any(|a| a.get_long() == Some(key.as_str()));
        if !known {
            return Err(ConfigError(format!(
                "{}: unknown key {key:?} (keys are the long flags of `patchbay serve --help`)",
                path.display()
            )));
        }
        // Settings another command does not take (the listen address, for `token`) are
        // left out.
        let Some(arg) = running
            .get_arguments()
            .chain(command.get_arguments())
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            continue;
        };
        let on_command_line = given
            .iter()
            .any(|a| a == &format!("--{key}") || a.starts_with(&format!("--{key}=")));
        let in_environment = arg
            .get_env()
            .is_some_and(|name| std::env::var_os(name).is_some());
        if on_command_line || in_environment {
            continue;
        }
        // An on/off flag (`allow-plaintext = true`) takes no value on the command line:
        // true is the flag itself, false is its absence.
        if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            match value {
                toml::Value::Boolean(true) => extended.push(format!("--{key}").into()),
                toml::Value::Boolean(false) => {}
                _ => {
                    return Err(ConfigError(format!(
                        "{}: {key} must be true or false",
                        path.display()
                    )));
                }
            }
            continue;
        }
        let scalar = |value: &toml::Value| match value {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(n) => Some(n.to_string()),
            toml::Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        };
        let text = match value {
            toml::Value::Array(items) => items
                .iter()
                .map(scalar)
                .collect::<Option<Vec<_>>>()
                .map(|v| v.join(",")),
            other => scalar(other),
        }
        .ok_or_else(|| {
            ConfigError(format!(
                "{}: {key} must be a string, a number, a boolean or a list of those",
                path.display()
            ))
        })?;
        extended.push(format!("--{key}={text}").into());
    }
    Ok(extended)
}

fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("PATCHBAY_CONFIG").map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On/off flags from the file become the bare flag (true) or nothing (false): clap
    /// takes no value after them.
    #[test]
    fn boolean_flags_from_the_file_parse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("patchbay.toml");
        std::fs::write(
            &file,
            "allow-plaintext = true\nallow-private-outbound = false\nlisten = \"0.0.0.0:50051\"\n",
        )
        .expect("write");
        let args: Vec<OsString> = ["patchbay", "--config", &file.display().to_string(), "serve"]
            .into_iter()
            .map(OsString::from)
            .collect();
        let extended = apply(args).expect("file applied");
        let cli = <Cli as clap::Parser>::try_parse_from(extended).expect("clap accepts them");
        let crate::config::Command::Serve(serve) = cli.command else {
            panic!("serve");
        };
        assert!(serve.tls.allow_plaintext);
        assert!(!serve.providers.allow_private_outbound);
    }
}
