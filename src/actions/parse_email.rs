//! `parse email`: an `.eml` file or raw text in, the container a poll would make out,
//! with no server. How fixtures, playbooks and users test extraction.

use std::{borrow::Cow, path::Path};

use serde_json::{Map, Value, json};

use crate::{
    artifacts::summary::triage_summary,
    config::Config,
    container::{Container, EmailSource, Outgoing, build_container},
    dispatch::{RunEnv, echo_parameter},
    mime::headers::decoded_header_map,
    protocol::{ActionResult, Status, json_type, show},
    vault::Vault as _,
};

/// The parameters this action accepts (kept in step with app.json by a test).
pub const PARAMETERS: &[&str] = &["path", "raw_email", "id", "folder"];

/// Parse one email per parameter object, appending its container to `containers`; its
/// attachments go to the request's `vault_dir`, else `data_dir/vault` ([`RunEnv::vault`]).
pub fn run(
    parameter: &Map<String, Value>,
    config: &Config,
    label: &str,
    env: &RunEnv,
    vault_dir: Option<&Path>,
    containers: &mut dyn FnMut(Outgoing),
) -> ActionResult {
    let echoed = echo_parameter(parameter);
    match parse_one(parameter, config, label, env, vault_dir) {
        Ok((container, headers)) => {
            let artifact_count = container.artifacts.len();
            let message = format!(
                "Parsed email into container {:?} with {artifact_count} artifacts",
                container.name
            );
            let mut data = json!({
                "container_name": container.name,
                "source_data_identifier": container.source_data_identifier,
                "artifact_count": artifact_count,
                "parse_warnings": container.data.parse_warnings,
                "headers": headers,
            });
            if let Value::Object(data) = &mut data {
                data.extend(triage_summary(&container.artifacts));
            }
            containers(container.into());
            ActionResult {
                status: Status::Success,
                message,
                parameter: echoed,
                data: vec![data],
                summary: Map::from_iter([
                    ("container_count".to_owned(), json!(1)),
                    ("artifact_count".to_owned(), json!(artifact_count)),
                ]),
            }
        }
        Err(message) => ActionResult::failed(echoed, message),
    }
}

fn parse_one(
    parameter: &Map<String, Value>,
    config: &Config,
    label: &str,
    env: &RunEnv,
    vault_dir: Option<&Path>,
) -> Result<(Container, Map<String, Value>), String> {
    let raw = read_email(parameter)?;
    let email_id = email_id(parameter)?;
    let folder = folder(parameter, config)?;
    tracing::info!("Parsing email uid: {email_id}");
    let options = super::ingest::build_options(config);
    let vault = env.vault(config, vault_dir)?;
    let source = EmailSource {
        raw: &raw,
        email_id,
        folder: &folder,
        container_id: None,
        label,
    };
    // The pipeline is built never to panic; should a bug prove otherwise, this email
    // fails with a clear message and the other emails of the request still parse.
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_container(&source, &options, &vault)
    }));
    match built {
        // The response names the vault files: they are durable before it is written.
        Ok(result) => {
            let container = result.map_err(|e| e.to_string())?;
            vault.flush().map_err(|e| e.to_string())?;
            Ok((container, decoded_header_map(&raw)))
        }
        Err(_) => Err(format!(
            "internal error while parsing email {email_id} (a bug: please report it with the email)"
        )),
    }
}

fn read_email(parameter: &Map<String, Value>) -> Result<Cow<'_, [u8]>, String> {
    let text = |key: &str| match parameter.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(format!(
            "parameters.{key} must be a string, got {}",
            json_type(other)
        )),
    };
    match (text("path")?, text("raw_email")?) {
        (Some(_), Some(_)) => Err("give either parameters.path or parameters.raw_email, not both".into()),
        (Some(path), None) => std::fs::read(path)
            .map(Cow::Owned)
            .map_err(|e| format!("cannot read parameters.path {path:?}: {e}")),
        (None, Some(raw)) => Ok(Cow::Borrowed(raw.as_bytes())),
        (None, None) => Err(
            "parse email needs parameters.path (an .eml file) or parameters.raw_email (the message text)"
                .into(),
        ),
    }
}

fn email_id(parameter: &Map<String, Value>) -> Result<u64, String> {
    let bad = |v: &Value| {
        format!(
            "parameters.id must be a non-negative integer, got {}",
            show(v)
        )
    };
    match parameter.get("id") {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(0),
        Some(v @ Value::Number(n)) => n.as_u64().ok_or_else(|| bad(v)),
        Some(v @ Value::String(s)) => {
            let s = s.trim();
            if s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().map_err(|_| bad(v))
            } else {
                Err(bad(v))
            }
        }
        Some(other) => Err(bad(other)),
    }
}

fn folder(parameter: &Map<String, Value>, config: &Config) -> Result<String, String> {
    match parameter.get("folder") {
        None | Some(Value::Null) => Ok(config.folder.clone()),
        Some(Value::String(s)) if s.is_empty() => Ok(config.folder.clone()),
        Some(Value::String(s)) if s.contains(['\r', '\n', '\0']) => Err(format!(
            "parameters.folder must not contain CR, LF or NUL, got {}",
            show(&Value::String(s.clone()))
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "parameters.folder must be a string, got {}",
            json_type(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::needless_pass_by_value)]
    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn id_must_be_a_non_negative_integer() {
        assert_eq!(email_id(&params(json!({"id": "42"}))), Ok(42));
        assert_eq!(email_id(&params(json!({"id": 7}))), Ok(7));
        assert_eq!(email_id(&params(json!({}))), Ok(0));
        assert_eq!(
            email_id(&params(json!({"id": "1:*"}))),
            Err("parameters.id must be a non-negative integer, got \"1:*\"".into())
        );
        assert!(email_id(&params(json!({"id": -1}))).is_err());
        assert!(email_id(&params(json!({"id": 1.5}))).is_err());
    }

    #[test]
    fn exactly_one_source_is_required() {
        assert!(
            read_email(&params(json!({})))
                .unwrap_err()
                .contains("needs parameters.path")
        );
        assert!(
            read_email(&params(json!({"path": "a", "raw_email": "b"})))
                .unwrap_err()
                .contains("not both")
        );
        let err = read_email(&params(json!({"path": "/nonexistent/x.eml"}))).unwrap_err();
        assert!(
            err.starts_with("cannot read parameters.path \"/nonexistent/x.eml\""),
            "{err}"
        );
    }
}
