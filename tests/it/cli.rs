//! The binary driven as a platform or a shell user would: stdin/--request, one JSON
//! response on stdout, exit 0/1/2, logs on stderr.

use serde_json::{Value, json};

use crate::support::{root, run_json, run_with};

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

const MAIL: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: Invoice =?utf-8?Q?f=C3=BCr?= you\r\nMessage-ID: <1@example.com>\r\n\r\nPay at http://evil-login.com/pay?x=1 from 203.0.113.7\r\n";

#[test]
fn unusable_requests_exit_2_with_a_json_error() {
    let home = home();
    for (input, expected) in [
        (&b"not json"[..], "request is not valid JSON"),
        (b"", "request is not valid JSON"),
        (b"[1, 2]", "request must be a JSON object, got an array"),
        (
            b"\"on_poll\"",
            "request must be a JSON object, got a string",
        ),
        (br#"{"identifier": "rm_rf"}"#, "unknown action \"rm_rf\""),
        (br#"{"config": {}}"#, "request names no action"),
        (
            br#"{"action": "parse email", "parameters": 5}"#,
            "request.parameters must be a list of objects",
        ),
    ] {
        let run = run_with(&[], input, home.path());
        assert_eq!(
            run.code,
            2,
            "input {:?}: {}",
            String::from_utf8_lossy(input),
            run.stdout
        );
        let response = run.json();
        assert_eq!(response["status"], "failed");
        assert_eq!(response["error"]["kind"], "bad_request");
        let message = response["message"].as_str().unwrap();
        assert!(
            message.starts_with(expected),
            "{message:?} should start with {expected:?}"
        );
        assert!(
            run.stderr.contains(expected),
            "stderr should say it too: {}",
            run.stderr
        );
    }
}

#[test]
fn bad_command_line_exits_2_with_a_json_error() {
    let run = run_with(&["--no-such-flag"], b"{}", home().path());
    assert_eq!(run.code, 2);
    assert_eq!(run.json()["error"]["kind"], "bad_request");
    assert!(
        run.json()["message"]
            .as_str()
            .unwrap()
            .contains("--no-such-flag")
    );
}

#[test]
fn help_and_version() {
    let run = run_with(&["--help"], b"", home().path());
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--request"));
    assert!(run.stdout.contains("--log-format"));
    let run = run_with(&["--version"], b"", home().path());
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stdout.trim(),
        format!("soar-imap {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn invalid_config_fails_the_action_naming_key_value_and_expectation() {
    let run = run_json(
        &json!({"identifier": "parse_email", "config": {"max_emails": "abc"}, "parameters": [{"raw_email": MAIL}]}),
        home().path(),
    );
    assert_eq!(run.code, 1);
    let response = run.json();
    assert_eq!(
        response["message"],
        "config.max_emails must be a positive integer, got \"abc\""
    );
    assert_eq!(response["error"]["kind"], "config");
    assert_eq!(response["action_results"][0]["status"], "failed");
    assert!(response["containers"].as_array().unwrap().is_empty());
}

#[test]
fn get_email_refuses_an_id_that_is_not_a_plain_uid() {
    for id in [json!("1:*"), json!("5 OR 6"), json!(0), json!(-1)] {
        let run = run_json(
            &json!({"identifier": "get_email", "config": {"server": "imap.example.com", "username": "u", "password": "p"},
                    "parameters": [{"id": id}]}),
            home().path(),
        );
        assert_eq!(run.code, 1, "{id}");
        let message = run.json()["message"].as_str().unwrap().to_owned();
        assert!(
            message.starts_with("parameters.id must be a positive integer, got "),
            "{message}"
        );
    }
}

#[test]
fn parse_email_from_raw_text_builds_the_container() {
    let home = home();
    let run = run_json(
        &json!({"action": "parse email", "config": {"folder": "Phish Reports"}, "parameters": [{"raw_email": MAIL, "id": "12"}]}),
        home.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let response = run.json();
    assert_eq!(response["status"], "success");
    assert_eq!(response["identifier"], "parse_email");
    assert_eq!(
        response["summary"],
        json!({"total_objects": 1, "total_objects_successful": 1})
    );
    assert_eq!(
        response["action_results"][0]["summary"]["container_count"],
        1
    );
    // The raw email is not echoed back twice.
    assert_eq!(
        response["action_results"][0]["parameter"]["raw_email"],
        format!("<{} bytes>", MAIL.len())
    );
    let container = &response["containers"][0];
    assert_eq!(container["name"], "Invoice für you");
    let folder_md5 = soar_imap::sdi::md5_hex(b"Phish Reports");
    assert_eq!(
        container["source_data_identifier"],
        format!("{folder_md5} : 12")
    );
    assert_eq!(container["data"]["raw_email"], MAIL);
    let names: Vec<&str> = container["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "IP Artifact",
            "URL Artifact",
            "Domain Artifact",
            "Domain Artifact",
            "Email Artifact"
        ]
    );
    assert_eq!(container["artifacts"][4]["cef"]["emailId"], 12);
    assert_eq!(container["artifacts"][4]["run_automation"], true);
    assert!(
        run.stderr.contains("Parsing email uid: 12"),
        "{}",
        run.stderr
    );
}

#[test]
fn many_parameter_objects_parse_many_emails_in_one_process() {
    let home = home();
    let eml_dir = root().join("fixtures/eml");
    let files = crate::support::emails_under(&eml_dir);
    let parameters: Vec<Value> = files.iter().take(5).map(|p| json!({"path": p})).collect();
    let mut with_bad = parameters.clone();
    with_bad.push(json!({"path": "/nonexistent/mail.eml"}));
    let run = run_json(
        &json!({"identifier": "parse_email", "parameters": with_bad}),
        home.path(),
    );
    assert_eq!(run.code, 1);
    let response = run.json();
    assert_eq!(
        response["summary"],
        json!({"total_objects": 6, "total_objects_successful": 5})
    );
    assert_eq!(response["containers"].as_array().unwrap().len(), 5);
    let last = &response["action_results"][5];
    assert_eq!(last["status"], "failed");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot read parameters.path \"/nonexistent/mail.eml\"")
    );
    assert!(
        response["message"]
            .as_str()
            .unwrap()
            .starts_with("5 of 6 succeeded; first failure: cannot read")
    );
}

#[test]
fn each_container_comes_on_a_line_of_its_own_for_wrappers_that_read_as_they_go() {
    let home = home();
    let eml_dir = root().join("fixtures/eml");
    let parameters: Vec<Value> = crate::support::emails_under(&eml_dir)
        .iter()
        .take(3)
        .map(|p| json!({"path": p}))
        .collect();
    let run = run_json(
        &json!({"identifier": "parse_email", "parameters": parameters}),
        home.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The Splunk SOAR app reads the response this way (integrations/splunk-soar).
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", run.stdout);
    assert_eq!(lines[0], "{\"containers\":[");
    let expected = &run.json()["containers"];
    for (i, line) in lines[1..4].iter().enumerate() {
        let text = if i == 0 {
            line
        } else {
            line.strip_prefix(',').unwrap()
        };
        let container: Value = serde_json::from_str(text).unwrap();
        assert_eq!(&container, &expected[i]);
    }
    let rest: Value =
        serde_json::from_str(&format!("{{{}", lines[4].strip_prefix("],").unwrap())).unwrap();
    assert_eq!(rest["status"], "success");
}

#[test]
fn request_file_and_json_logs() {
    let home = home();
    let request = home.path().join("request.json");
    std::fs::write(
        &request,
        json!({"identifier": "parse_email", "parameters": [{"raw_email": MAIL}]}).to_string(),
    )
    .unwrap();
    let run = run_with(
        &[
            "--request",
            request.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        b"",
        home.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["containers"].as_array().unwrap().len(), 1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["message"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn attachments_land_in_the_vault_by_content_never_by_name() {
    let home = home();
    let mail = "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream; name=\"../../escape.txt\"\r\nContent-Disposition: attachment; filename=\"../../escape.txt\"\r\n\r\nabc\r\n--b--\r\n";
    let run = run_json(
        &json!({"identifier": "parse_email", "parameters": [{"raw_email": mail}]}),
        home.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let container = &run.json()["containers"][0];
    let vault = container["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Vault Artifact")
        .unwrap()
        .clone();
    assert_eq!(vault["cef"]["fileName"], ".._.._escape.txt");
    let id = vault["cef"]["vaultId"].as_str().unwrap();
    let stored = home.path().join("vault").join(&id[..2]).join(id);
    assert_eq!(std::fs::read(stored).unwrap(), b"abc");
    assert!(!home.path().join("escape.txt").exists());
    assert!(!home.path().parent().unwrap().join("escape.txt").exists());
}

#[test]
fn parse_email_with_a_vault_dir_writes_attachments_there_and_returns_the_headers() {
    let home = home();
    let files = home.path().join("soar-vault-tmp");
    let mail = "From: =?utf-8?Q?J=C3=B6rg?= <j@example.com>\r\nSubject: scan\r\nReceived: from a\r\nReceived: from b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"scan.bin\"\r\n\r\nxyz\r\n--b--\r\n";
    let run = run_json(
        &json!({"identifier": "parse_email", "vault_dir": files,
                "parameters": [{"raw_email": mail}]}),
        home.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let response = run.json();
    let vault = response["containers"][0]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Vault Artifact")
        .unwrap()
        .clone();
    let id = vault["cef"]["vaultId"].as_str().unwrap();
    assert_eq!(
        std::fs::read(files.join(&id[..2]).join(id)).unwrap(),
        b"xyz"
    );
    assert!(
        !home.path().join("vault").exists(),
        "data_dir/vault was used"
    );
    // The decoded top-level headers, as get email gives them: the last Received wins.
    let headers = &response["action_results"][0]["data"][0]["headers"];
    assert_eq!(headers["From"], "Jörg <j@example.com>");
    assert_eq!(headers["Subject"], "scan");
    assert_eq!(headers["Received"], "from b");
}

#[test]
fn unwritable_vault_fails_the_action_clearly() {
    let home = home();
    std::fs::write(
        home.path().join("vault"),
        b"a file where the vault directory should be",
    )
    .unwrap();
    let mail =
        "From: a@example.com\r\nContent-Type: application/pdf; name=x.pdf\r\n\r\n%PDF-1.4\r\n";
    let run = run_json(
        &json!({"identifier": "parse_email", "parameters": [{"raw_email": mail}]}),
        home.path(),
    );
    assert_eq!(run.code, 1);
    let message = run.json()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("cannot store attachment"), "{message}");
}

#[test]
fn a_bulk_parse_built_on_every_core_answers_in_request_order_with_every_file_stored() {
    // More emails than one batch, failures among them: each result, container and vault
    // file must be the one the email gives on its own, in the order of the request.
    let home = home();
    let files = crate::support::emails_under(&root().join("fixtures/eml"));
    let mut parameters: Vec<Value> = Vec::new();
    for (i, file) in files.iter().cycle().take(150).enumerate() {
        parameters.push(json!({"path": file, "id": i}));
        if i % 37 == 0 {
            parameters.push(json!({"path": format!("/nonexistent/{i}.eml")}));
        }
    }
    let run = run_json(
        &json!({"identifier": "parse_email", "parameters": parameters}),
        home.path(),
    );
    let response = run.json();
    let results = response["action_results"].as_array().unwrap();
    assert_eq!(results.len(), parameters.len());
    let containers = response["containers"].as_array().unwrap();
    let mut next = containers.iter();
    for (parameter, result) in parameters.iter().zip(results) {
        assert_eq!(&result["parameter"]["path"], &parameter["path"]);
        if parameter["path"]
            .as_str()
            .unwrap()
            .starts_with("/nonexistent/")
        {
            assert_eq!(result["status"], "failed");
            continue;
        }
        assert_eq!(result["status"], "success", "{result}");
        let container = next.next().unwrap();
        assert_eq!(
            container["source_data_identifier"],
            result["data"][0]["source_data_identifier"]
        );
        let id = parameter["id"].as_u64().unwrap();
        assert!(
            container["source_data_identifier"]
                .as_str()
                .unwrap()
                .ends_with(&format!(" : {id}"))
        );
        for artifact in container["artifacts"].as_array().unwrap() {
            if artifact["name"] == "Vault Artifact" {
                let sha1 = artifact["cef"]["vaultId"].as_str().unwrap();
                let stored = home.path().join("vault").join(&sha1[..2]).join(sha1);
                assert!(stored.is_file(), "{} missing", stored.display());
            }
        }
    }
    assert!(next.next().is_none());
    // The same email alone gives the same container.
    let alone = run_json(
        &json!({"identifier": "parse_email", "parameters": [parameters[100].clone()]}),
        home.path(),
    )
    .json();
    let position = results[..100]
        .iter()
        .filter(|r| r["status"] == "success")
        .count();
    assert_eq!(alone["containers"][0], containers[position]);
}
