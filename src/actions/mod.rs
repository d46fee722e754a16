//! The actions, one small orchestrator each.

pub mod parse_email;

use serde_json::{Map, Value};

use crate::protocol::{Action, ActionResult};

/// The parameter names each action accepts, as app.json declares them.
pub fn parameters(action: Action) -> &'static [&'static str] {
    match action {
        Action::TestConnectivity => &[],
        Action::GetEmail => &["id", "container_id", "folder", "ingest_email"],
        Action::OnPoll => &[
            "start_time",
            "end_time",
            "container_id",
            "container_count",
            "artifact_count",
        ],
        Action::ParseEmail => parse_email::PARAMETERS,
    }
}

/// The answer of the IMAP actions until the IMAP layer lands.
pub fn not_available(action: Action, parameter: &Map<String, Value>) -> ActionResult {
    ActionResult::failed(
        crate::dispatch::echo_parameter(parameter),
        format!(
            "{} is not available before IMAP support: this build can only run \"parse email\"",
            action.name()
        ),
    )
}
