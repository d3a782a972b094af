//! The interop suite's third client: `buf curl` (connect-go), as an operator debugs
//! Patchbay, with the schema from the server's reflection and requests as JSON.
//! Each case is one `buf curl` process; its answers (JSON documents on stdout) and
//! its error (a JSON document on stderr) become the same outcome lines the Python
//! and Node runners print.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Outcome;
use crate::plan::Call;

pub const CLIENT: &str = "buf-curl 1.75.0";

pub struct Buf {
    pub binary: PathBuf,
    pub target: String,
    pub pool: DescriptorPool,
}

impl Buf {
    fn method(&self, path: &str) -> prost_reflect::MethodDescriptor {
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .expect("a method path");
        self.pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
            .unwrap_or_else(|| panic!("{path} is not in the descriptor set"))
    }

    /// The request as proto3 JSON, as an operator would type it.
    fn json_of(&self, call: &Call) -> String {
        let input = self.method(&call.method).input();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&call.request)
            .expect("base64");
        let message = DynamicMessage::decode(input, bytes.as_slice()).expect("request decodes");
        serde_json::to_string(&message).expect("request as JSON")
    }

    pub fn command(&self, call: &Call, protocol: &str) -> Command {
        let mut command = Command::new(&self.binary);
        command.args(["curl", "--protocol", protocol]);
        if protocol == "grpc" {
            command.arg("--http2-prior-knowledge");
        }
        if let Some(token) = &call.token {
            command.args(["-H", &format!("authorization: Bearer {token}")]);
        }
        if call.timeout_ms > 0 && (!call.stream || call.take.is_none()) {
            // buf curl's own deadline, sent as grpc-timeout.
            command.args(["--timeout", &format!("{}ms", call.timeout_ms)]);
        }
        command
            .args(["-v", "-d", &self.json_of(call)])
            .arg(format!("http://{}{}", self.target, call.method))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs one case to its end (or, for a stream with `take`, until that many answers
    /// came, then kills the process: the client going away).
    pub async fn run(&self, call: &Call, protocol: &str) -> Outcome {
        let mut child = self
            .command(call, protocol)
            .spawn()
            .expect("buf curl starts");
        let output = self.method(&call.method).output();
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let mut text = String::new();
        if let Some(take) = call.take {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            // Documents are printed pretty, one field a line: take whole documents.
            while answers(&text, &output).len() < take {
                line.clear();
                if reader.read_line(&mut line).await.expect("read") == 0 {
                    break;
                }
                text.push_str(&line);
            }
            let got = answers(&text, &output);
            if got.len() >= take {
                let _ = child.kill().await;
                return outcome(call, "OK", String::new(), got, None, None);
            }
            stdout = reader.into_inner();
        }
        stdout.read_to_string(&mut text).await.expect("stdout");
        let mut errors = String::new();
        stderr.read_to_string(&mut errors).await.expect("stderr");
        let _ = child.wait().await;
        finished(call, &text, &errors, &output)
    }

    /// Opens a watch and waits for its first answer; `Err` is the finished outcome.
    pub async fn open(&self, call: &Call) -> Result<Child, Outcome> {
        let mut child = self.command(call, "grpc").spawn().expect("buf curl starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut first)).await;
        if matches!(read, Ok(Ok(n)) if n > 0) {
            // Keep reading so that buf never blocks on a full pipe.
            tokio::spawn(async move {
                let mut rest = String::new();
                let _ = reader.read_to_string(&mut rest).await;
            });
            return Ok(child);
        }
        let mut errors = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut errors).await;
        }
        let _ = child.wait().await;
        Err(finished(
            call,
            "",
            &errors,
            &self.method(&call.method).output(),
        ))
    }

    /// Waits for a watch opened with [`open`](Self::open) to end.
    pub async fn ended(&self, call: &Call, mut child: Child) -> Outcome {
        let mut errors = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut errors).await;
        }
        let _ = child.wait().await;
        finished(call, "", &errors, &self.method(&call.method).output())
    }
}

/// The JSON documents printed so far, as the answer type's bytes.
fn answers(text: &str, output: &MessageDescriptor) -> Vec<Vec<u8>> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .filter_map(|doc| DynamicMessage::deserialize(output.clone(), doc).ok())
        .map(|message| prost::Message::encode_to_vec(&message))
        .collect()
}

fn finished(call: &Call, stdout: &str, stderr: &str, output: &MessageDescriptor) -> Outcome {
    let got = answers(stdout, output);
    // `-v` prints each header of the call's answer as `buf: < (#2) Name: value`.
    let request_id = stderr.lines().find_map(|line| {
        let (_, header) = line.strip_prefix("buf: < (#")?.split_once(") ")?;
        let (name, value) = header.split_once(':')?;
        name.eq_ignore_ascii_case("x-request-id")
            .then(|| value.trim().to_owned())
    });
    // The error, when there is one, is a JSON document among the verbose lines.
    let error = stderr
        .match_indices("\n{")
        .filter_map(|(at, _)| {
            serde_json::Deserializer::from_str(&stderr[at + 1..])
                .into_iter::<Value>()
                .next()?
                .ok()
        })
        .find(|doc| doc.get("code").is_some());
    let Some(error) = error else {
        return outcome(call, "OK", String::new(), got, request_id, None);
    };
    let code = error["code"].as_str().unwrap_or("unknown").to_uppercase();
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    let violations = error["details"].as_array().map(|details| {
        details
            .iter()
            .filter(|d| d["type"] == "google.rpc.BadRequest")
            .filter_map(|d| {
                // buf curl hands the detail over as its type and bytes.
                let value = d["value"].as_str()?.trim_end_matches('=');
                let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(value)
                    .ok()?;
                prost::Message::decode(bytes.as_slice()).ok()
            })
            .flat_map(|bad: patchbay_sdk::tonic_types::pb::BadRequest| bad.field_violations)
            .map(|v| (v.field, v.description))
            .collect()
    });
    outcome(call, &code, message, got, request_id, violations)
}

fn outcome(
    call: &Call,
    code: &str,
    message: String,
    answers: Vec<Vec<u8>>,
    request_id: Option<String>,
    violations: Option<Vec<(String, String)>>,
) -> Outcome {
    Outcome {
        case: Some(call.name.clone()),
        client: CLIENT.to_owned(),
        code: Some(code.to_owned()),
        message,
        responses: answers
            .iter()
            .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes))
            .collect(),
        request_id,
        violations,
        ready: None,
        typed: None,
    }
}
