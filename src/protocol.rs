//! The wire protocol: the JSON request a SOAR platform hands a connector, and the one
//! JSON response written back (SPEC §1).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::container::Container;

/// The actions this binary knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `test_asset_connectivity` / `test connectivity`.
    TestConnectivity,
    /// `get_email` / `get email`.
    GetEmail,
    /// `on_poll` / `on poll`.
    OnPoll,
    /// `parse_email` / `parse email`.
    ParseEmail,
}

impl Action {
    /// Every action, in app.json order.
    pub const ALL: [Action; 4] = [
        Action::TestConnectivity,
        Action::GetEmail,
        Action::OnPoll,
        Action::ParseEmail,
    ];

    /// The identifier platforms dispatch on.
    pub fn identifier(self) -> &'static str {
        match self {
            Action::TestConnectivity => "test_asset_connectivity",
            Action::GetEmail => "get_email",
            Action::OnPoll => "on_poll",
            Action::ParseEmail => "parse_email",
        }
    }

    /// The human name (the request's `action` key).
    pub fn name(self) -> &'static str {
        match self {
            Action::TestConnectivity => "test connectivity",
            Action::GetEmail => "get email",
            Action::OnPoll => "on poll",
            Action::ParseEmail => "parse email",
        }
    }

    /// Look an action up by identifier or human name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|a| a.identifier() == name || a.name() == name)
    }
}

/// A request that passed the checks every action needs.
#[derive(Debug, Clone)]
pub struct Request {
    /// The action to run.
    pub action: Action,
    /// The raw asset configuration (validated by the action through `Config`).
    pub config: Value,
    /// One object per run of the action; `[{}]` when none were given.
    pub parameters: Vec<Map<String, Value>>,
    /// Scopes state and the ledger.
    pub asset_id: String,
    /// Present for stateless runs.
    pub state: Option<Value>,
    /// `{NAME: {"value": ...}}` from the platform.
    pub environment_variables: Map<String, Value>,
    /// Where this run writes attachment files instead of `data_dir/vault`; also in a
    /// stateless run, which otherwise writes none. A platform that moves files into its
    /// own vault (Splunk SOAR's vault temp dir) names a directory of its own here.
    pub vault_dir: Option<std::path::PathBuf>,
}

/// Why a request is unusable (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Not JSON at all.
    #[error("request is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("request must be a JSON object, got {0}")]
    NotObject(&'static str),
    /// Neither `identifier` nor `action`.
    #[error("request names no action: give \"identifier\" (one of {ids}) or \"action\" (one of {names})", ids = quoted(Action::identifier), names = quoted(Action::name))]
    NoAction,
    /// An action this binary does not have.
    #[error("unknown action {0}: expected one of {ids} (or {names})", ids = quoted(Action::identifier), names = quoted(Action::name))]
    UnknownAction(String),
    /// `identifier` and `action` name different actions.
    #[error(
        "request.identifier {identifier:?} and request.action {action:?} name different actions"
    )]
    Conflict {
        /// The identifier given.
        identifier: String,
        /// The action given.
        action: String,
    },
    /// A subcommand's arguments, or the files they name, make no request (`src/cli.rs`
    /// says what was wrong and what was expected).
    #[error("{0}")]
    CommandLine(String),
    /// A top-level field of the wrong type.
    #[error("request.{field} must be {expected}, got {got}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What was received (a JSON type name or a short value).
        got: String,
    },
}

fn quoted(f: fn(Action) -> &'static str) -> String {
    Action::ALL
        .iter()
        .map(|a| format!("{:?}", f(*a)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The JSON type name of a value, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a received value for error messages.
pub fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Parse and check a request.
pub fn parse_request(bytes: &[u8]) -> Result<Request, RequestError> {
    parse_request_or(bytes, None)
}

/// Parse and check a request that need not name an action (`oauth login` reads only the
/// asset's part): `default` stands in for a missing one.
pub fn parse_request_or(bytes: &[u8], default: Option<Action>) -> Result<Request, RequestError> {
    let value: Value = serde_json::from_slice(bytes).map_err(RequestError::NotJson)?;
    let Value::Object(mut object) = value else {
        return Err(RequestError::NotObject(json_type(&value)));
    };
    let name_of = |object: &Map<String, Value>, field: &'static str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(RequestError::BadField {
            field,
            expected: "a string naming the action",
            got: json_type(other).into(),
        }),
    };
    let identifier = name_of(&object, "identifier")?;
    let action_name = name_of(&object, "action")?;
    let lookup = |name: &str| {
        Action::from_name(name).ok_or_else(|| RequestError::UnknownAction(format!("{name:?}")))
    };
    let action = match (&identifier, &action_name) {
        (Some(id), Some(name)) => {
            let (a, b) = (lookup(id)?, lookup(name)?);
            if a != b {
                return Err(RequestError::Conflict {
                    identifier: id.clone(),
                    action: name.clone(),
                });
            }
            a
        }
        (Some(name), None) | (None, Some(name)) => lookup(name)?,
        (None, None) => default.ok_or(RequestError::NoAction)?,
    };

    let parameters = match object.remove("parameters") {
        None | Some(Value::Null) => vec![Map::new()],
        Some(Value::Array(items)) if items.is_empty() => vec![Map::new()],
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok(map),
                other => Err(RequestError::BadField {
                    field: "parameters",
                    expected: "a list of objects",
                    got: format!("{} at index {i}", json_type(&other)),
                }),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(RequestError::BadField {
                field: "parameters",
                expected: "a list of objects",
                got: json_type(&other).into(),
            });
        }
    };
    let asset_id = match object.remove("asset_id") {
        None | Some(Value::Null) => "default".to_owned(),
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        // Platforms send the asset id as a number as often as a string.
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(RequestError::BadField {
                field: "asset_id",
                expected: "a non-empty string",
                got: show(&other),
            });
        }
    };
    let state = match object.remove("state") {
        None => None,
        Some(Value::Object(map)) => Some(Value::Object(map)),
        // A platform with no state yet sends null or {}: a stateless run from scratch.
        Some(Value::Null) => Some(Value::Object(Map::new())),
        Some(other) => {
            return Err(RequestError::BadField {
                field: "state",
                expected: "an object",
                got: json_type(&other).into(),
            });
        }
    };
    let environment_variables = match object.remove("environment_variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(RequestError::BadField {
                field: "environment_variables",
                expected: "an object",
                got: json_type(&other).into(),
            });
        }
    };
    let vault_dir = vault_dir(object.remove("vault_dir"))?;
    Ok(Request {
        action,
        config: object.remove("config").unwrap_or(Value::Null),
        parameters,
        asset_id,
        state,
        environment_variables,
        vault_dir,
    })
}

/// The request's `vault_dir`: absent, or a directory path.
fn vault_dir(value: Option<Value>) -> Result<Option<std::path::PathBuf>, RequestError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && !s.contains('\0') => Ok(Some(s.into())),
        Some(other) => Err(RequestError::BadField {
            field: "vault_dir",
            expected: "a directory path (a non-empty string)",
            got: show(&other),
        }),
    }
}

/// `success` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The action did what was asked.
    Success,
    /// It did not; the message says why.
    Failed,
}

/// The result of one run of an action (one parameter object).
#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    /// success or failed.
    pub status: Status,
    /// What happened, or what failed and why.
    pub message: String,
    /// The parameter object, echoed.
    pub parameter: Value,
    /// The action's data items.
    pub data: Vec<Value>,
    /// The action's summary.
    pub summary: Map<String, Value>,
}

impl ActionResult {
    /// A failed result with `message`.
    pub fn failed(parameter: Value, message: impl Into<String>) -> Self {
        Self {
            status: Status::Failed,
            message: message.into(),
            parameter,
            data: Vec::new(),
            summary: Map::new(),
        }
    }
}

/// Counts over all action results.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// One per parameter object.
    pub total_objects: usize,
    /// How many succeeded.
    pub total_objects_successful: usize,
}

/// The machine-readable category of a failure.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// `bad_request` (exit 2), `config` or `action` (exit 1).
    pub kind: &'static str,
    /// The same text as the response message.
    pub message: String,
}

/// The one JSON object written to stdout.
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    /// The action identifier, when the request named a known one.
    pub identifier: Option<&'static str>,
    /// The action's human name.
    pub action: Option<&'static str>,
    /// success if every action result succeeded.
    pub status: Status,
    /// A one-line account of the run.
    pub message: String,
    /// One per parameter object.
    pub action_results: Vec<ActionResult>,
    /// Counts over the action results.
    pub summary: RunSummary,
    /// Containers created or found already ingested.
    pub containers: Vec<Container>,
    /// The new state, only for stateless runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// Set when the run failed as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    /// The response for a request that could not be used at all.
    pub fn bad_request(error: &RequestError) -> Self {
        let message = error.to_string();
        Self {
            identifier: None,
            action: None,
            status: Status::Failed,
            message: message.clone(),
            action_results: Vec::new(),
            summary: RunSummary {
                total_objects: 0,
                total_objects_successful: 0,
            },
            containers: Vec::new(),
            state: None,
            error: Some(ErrorBody {
                kind: "bad_request",
                message,
            }),
        }
    }

    /// The response for a run that could not start for a reason other than the request
    /// (e.g. an unusable `--replay` transcript): exit status 1.
    pub fn failed_to_start(kind: &'static str, message: String) -> Self {
        Self {
            error: Some(ErrorBody {
                kind,
                message: message.clone(),
            }),
            message,
            ..Self::bad_request(&RequestError::NoAction)
        }
    }

    /// The process exit status this response calls for: 0 success, 1 the action
    /// failed, 2 the request was unusable.
    pub fn exit_code(&self) -> u8 {
        match (&self.error, self.status) {
            (Some(e), _) if e.kind == "bad_request" => 2,
            (_, Status::Failed) => 1,
            (_, Status::Success) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_name_forms_and_defaults() {
        let r = parse_request(br#"{"action": "parse email"}"#).unwrap();
        assert_eq!(r.action, Action::ParseEmail);
        assert_eq!(r.parameters.len(), 1);
        assert_eq!(r.asset_id, "default");
        assert!(r.state.is_none());
        let r = parse_request(
            br#"{"identifier": "on_poll", "action": "on poll", "asset_id": 7, "parameters": []}"#,
        )
        .unwrap();
        assert_eq!(r.action, Action::OnPoll);
        assert_eq!(r.asset_id, "7");
    }

    #[test]
    fn rejects_unusable_requests_with_exact_reasons() {
        let msg = |b: &[u8]| parse_request(b).unwrap_err().to_string();
        assert!(msg(b"{nope").starts_with("request is not valid JSON"));
        assert_eq!(msg(b"[1]"), "request must be a JSON object, got an array");
        assert!(
            msg(br#"{"identifier": "delete_everything"}"#)
                .starts_with("unknown action \"delete_everything\": expected one of")
        );
        assert!(msg(br#"{"config": {}}"#).starts_with("request names no action"));
        assert!(
            msg(br#"{"identifier": "on_poll", "action": "get email"}"#)
                .contains("name different actions")
        );
        assert_eq!(
            msg(br#"{"identifier": "on_poll", "parameters": {"a": 1}}"#),
            "request.parameters must be a list of objects, got an object"
        );
        assert_eq!(
            msg(br#"{"identifier": "on_poll", "parameters": [{}, 3]}"#),
            "request.parameters must be a list of objects, got a number at index 1"
        );
    }

    #[test]
    fn bad_request_exits_2() {
        let response = Response::bad_request(&RequestError::NoAction);
        assert_eq!(response.exit_code(), 2);
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["status"], "failed");
        assert_eq!(json["error"]["kind"], "bad_request");
    }
}
