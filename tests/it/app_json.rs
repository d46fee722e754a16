//! app.json describes exactly what the binary accepts and produces.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use soar_imap::{
    actions,
    config::CONFIG_KEYS,
    dispatch::{RunEnv, run},
    protocol::Action,
};

use crate::support::root;

fn app_json() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("app.json")).unwrap()).unwrap()
}

fn action<'a>(app: &'a Value, identifier: &str) -> &'a Value {
    app["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["identifier"] == identifier)
        .unwrap_or_else(|| panic!("app.json lacks {identifier}"))
}

#[test]
fn declares_every_action_with_both_names() {
    let app = app_json();
    let declared: Vec<(String, String)> = app["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["identifier"].as_str().unwrap().to_owned(),
                a["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let binary: Vec<(String, String)> = Action::ALL
        .iter()
        .map(|a| (a.identifier().to_owned(), a.name().to_owned()))
        .collect();
    assert_eq!(declared, binary);
    assert_eq!(app["app_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        app["appid"], "9f2e9f72-b0e5-45d6-92a7-09ef820476c1",
        "the reference's appid, for drop-in compatibility"
    );
}

#[test]
fn declares_exactly_the_parameters_each_action_reads() {
    let app = app_json();
    for a in Action::ALL {
        let declared: Vec<&str> = action(&app, a.identifier())["parameters"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let declared: BTreeSet<&str> = declared.into_iter().collect();
        let binary: BTreeSet<&str> = actions::parameters(a).iter().copied().collect();
        assert_eq!(declared, binary, "parameters of {}", a.identifier());
        // Every parameter has its echo among the output data paths.
        let paths = output_paths(&app, a.identifier());
        for p in &binary {
            if !paths.is_empty() {
                assert!(
                    paths.contains(&format!("action_result.parameter.{p}")),
                    "{}: no output path for parameter {p}",
                    a.identifier()
                );
            }
        }
    }
}

#[test]
fn declares_exactly_the_config_keys_the_binary_validates() {
    let app = app_json();
    let declared: Vec<&str> = app["configuration"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut binary: Vec<&str> = CONFIG_KEYS.to_vec();
    let mut declared_sorted = declared.clone();
    declared_sorted.sort_unstable();
    binary.sort_unstable();
    assert_eq!(declared_sorted, binary);
    // The orders place each field once on the platform's form: 0..n, no gaps or repeats.
    let mut orders: Vec<i64> = app["configuration"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["order"].as_i64().unwrap())
        .collect();
    orders.sort_unstable();
    assert_eq!(
        orders,
        (0..i64::try_from(CONFIG_KEYS.len()).unwrap()).collect::<Vec<_>>()
    );
}

fn output_paths(app: &Value, identifier: &str) -> BTreeSet<String> {
    action(app, identifier)["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["data_path"].as_str().unwrap().to_owned())
        .collect()
}

/// Every data path a real response has, in app.json's notation.
fn produced_paths(response: &Value) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for key in response["summary"].as_object().unwrap().keys() {
        paths.insert(format!("summary.{key}"));
    }
    for result in response["action_results"].as_array().unwrap() {
        for key in ["status", "message"] {
            assert!(result.get(key).is_some());
            paths.insert(format!("action_result.{key}"));
        }
        for key in result["parameter"].as_object().unwrap().keys() {
            paths.insert(format!("action_result.parameter.{key}"));
        }
        for item in result["data"].as_array().unwrap() {
            for key in item.as_object().unwrap().keys() {
                paths.insert(format!("action_result.data.*.{key}"));
            }
        }
        for key in result["summary"].as_object().unwrap().keys() {
            paths.insert(format!("action_result.summary.{key}"));
        }
    }
    paths
}

#[test]
fn parse_email_output_paths_match_a_real_response() {
    let home = tempfile::tempdir().unwrap();
    let eml = root().join("fixtures/eml");
    let first = crate::support::emails_under(&eml)
        .into_iter()
        .next()
        .unwrap();
    let request = json!({"identifier": "parse_email", "config": {"data_dir": home.path()},
        "parameters": [{"path": first, "id": 3, "folder": "inbox"}, {"raw_email": "From: a@example.com\r\n\r\nhi\r\n"}]});
    let response =
        serde_json::to_value(run(request.to_string().as_bytes(), &RunEnv::default())).unwrap();
    assert_eq!(response["status"], "success", "{response}");
    let produced = produced_paths(&response);
    // An object in data (the headers) is declared by the leaves playbooks use most,
    // `data.*.headers.Subject`; a real response has it as `data.*.headers`.
    let declared: BTreeSet<String> = output_paths(&app_json(), "parse_email")
        .into_iter()
        .map(|path| match path.strip_prefix("action_result.data.*.") {
            Some(rest) => format!(
                "action_result.data.*.{}",
                rest.split('.').next().unwrap_or(rest)
            ),
            None => path,
        })
        .collect();
    let undeclared: Vec<&String> = produced.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "produced but not in app.json: {undeclared:?}"
    );
    let unproduced: Vec<&String> = declared.difference(&produced).collect();
    assert!(
        unproduced.is_empty(),
        "in app.json but never produced: {unproduced:?}"
    );
}

#[test]
fn on_poll_summary_paths_are_declared_for_a_real_poll() {
    // The response of a real poll, recorded against Dovecot (fixtures/imap/); its timing
    // (`elapsed_ms`) is left out of the reviewed file, so it is checked by name.
    let text =
        std::fs::read_to_string(root().join("fixtures/imap/poll-implicit-tls.response.json"))
            .unwrap();
    let response: Value = serde_json::from_str(&text).unwrap();
    let declared = output_paths(&app_json(), "on_poll");
    let mut produced: BTreeSet<String> = produced_paths(&response)
        .into_iter()
        .filter(|path| path.starts_with("action_result.summary."))
        .collect();
    produced.insert("action_result.summary.elapsed_ms".into());
    // A list (`failed`) is declared by its items' fields (`failed.*.uid`).
    let undeclared: Vec<&String> = produced
        .iter()
        .filter(|path| {
            let items = format!("{path}.*.");
            !declared.contains(*path) && !declared.iter().any(|d| d.starts_with(&items))
        })
        .collect();
    assert!(
        undeclared.is_empty(),
        "produced but not in app.json: {undeclared:?}"
    );
}
