//! Secrets never reach stdout, stderr, errors, or any file a run writes.

use serde_json::json;

use crate::support::{files_under, run_with};

const PASSWORD: &str = "Pw-7f3c9e1a-DO-NOT-LEAK";
const CLIENT_SECRET: &str = "Cs-91ab44e0-DO-NOT-LEAK";
const REFRESH: &str = "Rt-5d2e8c77-DO-NOT-LEAK";

fn assert_clean(haystack: &str, what: &str) {
    for secret in [PASSWORD, CLIENT_SECRET, REFRESH] {
        assert!(
            !haystack.contains(secret),
            "{what} contains a secret:\n{haystack}"
        );
        // Nor a recognisable piece of it.
        assert!(
            !haystack.contains(&secret[..12]),
            "{what} contains part of a secret:\n{haystack}"
        );
    }
}

#[test]
fn no_secret_in_any_output_of_any_action_or_failure() {
    let home = tempfile::tempdir().unwrap();
    let good = json!({"server": "imap.example.com", "username": "u", "password": PASSWORD,
        "client_secret": CLIENT_SECRET, "refresh_token": REFRESH, "data_dir": home.path()});
    let mut requests = Vec::new();
    for identifier in [
        "test_asset_connectivity",
        "get_email",
        "on_poll",
        "parse_email",
    ] {
        requests.push(json!({"identifier": identifier, "config": good, "parameters": [{"raw_email": "From: a@example.com\r\n\r\nhi\r\n"}]}));
        // Secrets of the wrong type must not be echoed in the error.
        for key in ["password", "client_secret", "refresh_token"] {
            let mut bad = good.clone();
            bad[key] = json!({"nested": [PASSWORD, CLIENT_SECRET, REFRESH]});
            requests.push(json!({"identifier": identifier, "config": bad}));
        }
        // A config error after the secrets were read.
        let mut bad = good.clone();
        bad["max_emails"] = json!("many");
        requests.push(json!({"identifier": identifier, "config": bad}));
    }
    for request in &requests {
        for format in ["text", "json"] {
            let run = run_with(
                &["--log-format", format],
                request.to_string().as_bytes(),
                home.path(),
            );
            assert!(run.code == 0 || run.code == 1, "{}", run.stdout);
            assert_clean(&run.stdout, "stdout");
            assert_clean(&run.stderr, "stderr");
        }
    }
    // Trace logging is where secrets usually slip out.
    for request in &requests {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_soar-imap"))
            .args(["--request", "-"])
            .env("SOAR_IMAP_LOG", "trace")
            .env("SOAR_IMAP_HOME", home.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(request.to_string().as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert_clean(&String::from_utf8_lossy(&output.stdout), "stdout (trace)");
        assert_clean(&String::from_utf8_lossy(&output.stderr), "stderr (trace)");
    }
    for file in files_under(home.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert_clean(
            &String::from_utf8_lossy(&bytes),
            &file.display().to_string(),
        );
    }
}

#[test]
fn no_password_in_anything_a_real_poll_writes() {
    use crate::dovecot::{Dovecot, PASSWORD as SERVER_PASSWORD, USER};

    let server = Dovecot::start();
    server.save(
        "INBOX",
        b"From: a@example.com\r\nSubject: with attachment\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee http://evil-login.com/x\r\n--b\r\nContent-Type: application/pdf; name=x.pdf\r\n\r\n%PDF-1.4\r\n--b--\r\n",
    );
    let home = tempfile::tempdir().unwrap();
    let config = json!({"server": "localhost", "port": server.imaps_port, "use_ssl": true, "username": USER,
        "password": SERVER_PASSWORD, "ca_cert": server.ca_pem(), "data_dir": home.path()});
    let mut outputs = String::new();
    for (identifier, parameter) in [
        ("test_asset_connectivity", json!({})),
        ("on_poll", json!({})),
        ("get_email", json!({"id": 1, "ingest_email": true})),
        ("on_poll", json!({"container_count": 5})),
    ] {
        for format in ["text", "json"] {
            let request =
                json!({"identifier": identifier, "config": config, "parameters": [parameter]});
            let run = run_with(
                &["--log-format", format],
                request.to_string().as_bytes(),
                home.path(),
            );
            assert_eq!(run.code, 0, "{identifier}: {}", run.stdout);
            outputs.push_str(&run.stdout);
            outputs.push_str(&run.stderr);
        }
    }
    assert!(
        !outputs.contains(SERVER_PASSWORD),
        "the password is in a run's output"
    );
    let files = files_under(home.path());
    assert!(
        files.iter().any(|f| f.ends_with("state.sqlite3")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("/vault/")),
        "{files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let needle = SERVER_PASSWORD.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the password is in {}",
            file.display()
        );
    }
}
