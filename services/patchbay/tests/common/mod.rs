//! What the binary tests share: explicit keys for a server that is not the embedded
//! default (keys fail closed there).

use std::path::Path;
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_patchbay");

/// Writes an encryption key ring (made by `patchbay keys generate`) and an HS256 secret
/// into `dir`, unless an earlier call did, and returns the variables that point a
/// `serve` or `token` at them.
pub fn explicit_keys(dir: &Path) -> Vec<(&'static str, String)> {
    let ring = dir.join("explicit-keys.json");
    let secret = dir.join("explicit-jwt.secret");
    let variables = vec![
        ("PATCHBAY_ENCRYPTION_KEYS_FILE", ring.display().to_string()),
        ("PATCHBAY_JWT_SECRET_FILE", secret.display().to_string()),
    ];
    if ring.exists() && secret.exists() {
        return variables;
    }
    let generate = || {
        let output = Command::new(BIN)
            .args(["keys", "generate"])
            .output()
            .expect("run patchbay keys generate");
        assert!(output.status.success(), "keys generate");
        let entry: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a key entry");
        (
            entry["id"].as_str().expect("id").to_owned(),
            entry["key"].as_str().expect("key").to_owned(),
        )
    };
    let (id, key) = generate();
    std::fs::write(
        &ring,
        serde_json::json!({"active": id, "keys": {id.clone(): key}}).to_string(),
    )
    .expect("write key ring");
    // Another random key serves as the HS256 secret (44 base64 characters).
    std::fs::write(&secret, generate().1).expect("write jwt secret");
    variables
}
