//! The project's own recorded IMAP sessions, `fixtures/imap/NAME.transcript`: each one
//! replays with no server (`--replay`) to `NAME.response.json`, the reviewed response of
//! the run that recorded it, for the request in `NAME.request.json`.
//!
//! `BLESS=1 cargo test --test it -- --ignored record_imap_fixtures` records them again
//! against a fresh Dovecot (and the OAuth stub); review the diff before committing.
//! `BLESS=1 cargo test --test it imap_fixtures` rewrites only the responses, by replaying
//! the committed transcripts: for a change to what emails become, not to the session.

use std::path::Path;

use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD, USER},
    oauth_server::{CLIENT_ID, CLIENT_SECRET, OAuthStub},
    support::{comparable_in, root, run_with},
};

/// Stand-ins for the credentials in the committed requests: a replay never sends them.
const PASSWORD_STAND_IN: &str = "replay-sends-no-password";
const SECRET_STAND_IN: &str = "replay-requests-no-token";

fn dir() -> std::path::PathBuf {
    root().join("fixtures/imap")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[test]
fn every_recorded_session_replays_to_its_recorded_response() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".transcript").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 3, "fixtures/imap has only {names:?}");
    for name in names {
        let transcript = dir().join(format!("{name}.transcript"));
        let request = read_json(&dir().join(format!("{name}.request.json")));
        let expected = read_json(&dir().join(format!("{name}.response.json")));
        let home = tempfile::tempdir().unwrap();
        let run = run_with(
            &["--replay", transcript.to_str().unwrap()],
            request.to_string().as_bytes(),
            home.path(),
        );
        assert_eq!(run.code, 0, "{name}: {}\n{}", run.stdout, run.stderr);
        let actual = comparable_in(&run, home.path());
        if std::env::var("BLESS").as_deref() == Ok("1") && actual != expected {
            // The email-to-container pipeline changed, the IMAP session did not: the
            // response is rewritten from the committed transcript, to be reviewed.
            let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            std::fs::write(dir().join(format!("{name}.response.json")), pretty).unwrap();
            continue;
        }
        assert_eq!(
            actual, expected,
            "{name}: the replay answered differently from the recorded run"
        );
        let text = std::fs::read_to_string(&transcript).unwrap();
        for secret in [PASSWORD, CLIENT_SECRET] {
            assert!(!text.contains(secret), "{name} holds a credential");
        }
        assert!(text.contains("\\<redacted>"), "{name} shows no redaction");
    }
}

/// Record one case: run `request` live with `--record`, then write the transcript, the
/// request with its credentials replaced by stand-ins, and the response.
fn record_case(name: &str, request: &Value, stand_ins: &[(&str, &str)]) {
    let home = tempfile::tempdir().unwrap();
    let transcript = dir().join(format!("{name}.transcript"));
    let run = run_with(
        &["--record", transcript.to_str().unwrap()],
        request.to_string().as_bytes(),
        home.path(),
    );
    assert_eq!(run.code, 0, "{name}: {}\n{}", run.stdout, run.stderr);
    let mut committed = request.clone();
    // The CA file is gone after the run; a replay makes no TLS handshake.
    committed["config"]
        .as_object_mut()
        .unwrap()
        .remove("ca_cert");
    for (key, value) in stand_ins {
        committed["config"][*key] = json!(value);
    }
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap() + "\n";
    std::fs::write(
        dir().join(format!("{name}.request.json")),
        pretty(&committed),
    )
    .unwrap();
    std::fs::write(
        dir().join(format!("{name}.response.json")),
        pretty(&comparable_in(&run, home.path())),
    )
    .unwrap();
}

fn seed(server: &Dovecot) {
    for name in [
        "phishing/001-reported-attached-eml.eml",
        "phishing/003-invoice-html-attachment.eml",
        "charset/012-raw-latin1-header.eml",
        "basic/008-blank-subject-lf.eml",
    ] {
        server.save(
            "INBOX",
            &std::fs::read(root().join("fixtures/eml").join(name)).unwrap(),
        );
    }
}

#[test]
#[ignore = "records fixtures/imap again; run with BLESS=1"]
fn record_imap_fixtures() {
    assert_eq!(
        std::env::var("BLESS").as_deref(),
        Ok("1"),
        "set BLESS=1 to record"
    );
    std::fs::create_dir_all(dir()).unwrap();

    let server = Dovecot::start();
    seed(&server);
    let basic = |port: u16, use_ssl: bool| {
        json!({
            "server": "localhost", "port": port, "use_ssl": use_ssl,
            "ca_cert": server.ca_pem(), "username": USER, "password": PASSWORD,
            "timeout_secs": 10,
        })
    };
    record_case(
        "poll-implicit-tls",
        &json!({"identifier": "on_poll", "asset_id": "fixture",
                "config": basic(server.imaps_port, true),
                "parameters": [{"container_count": 4_294_967_295_u64}]}),
        &[("password", PASSWORD_STAND_IN)],
    );
    record_case(
        "get-email-starttls",
        &json!({"identifier": "get_email", "asset_id": "fixture",
                "config": basic(server.imap_port, false),
                "parameters": [{"id": 3, "ingest_email": true}]}),
        &[("password", PASSWORD_STAND_IN)],
    );
    drop(server);

    let stub = OAuthStub::start();
    let server = Dovecot::start_with_oauth(&stub.url("/introspect"));
    seed(&server);
    let refresh_token = stub.new_refresh_token(USER);
    record_case(
        "connectivity-oauth",
        &json!({"identifier": "test_asset_connectivity", "asset_id": "fixture",
        "config": {
            "server": "localhost", "port": server.imaps_port, "use_ssl": true,
            "ca_cert": server.ca_pem(), "timeout_secs": 10,
            "auth_type": "OAuth", "username": USER,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "token_url": stub.url("/token"), "refresh_token": refresh_token,
        }}),
        &[
            ("client_secret", SECRET_STAND_IN),
            ("refresh_token", SECRET_STAND_IN),
        ],
    );
}
