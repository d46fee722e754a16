//! `--record` and `--replay` (SPEC §6): a run recorded against the real Dovecot replays
//! with no server to the same response; an edited transcript fails naming the line.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD, USER},
    support::{Run, comparable_in, root, run_with},
};

const FIXTURES: [&str; 3] = [
    "001-reported-attached-eml.eml",
    "003-invoice-html-attachment.eml",
    "005-m365-safelinks.eml",
];

/// A recorded run: the request, what the live run answered, the transcript.
struct Recording {
    /// Holds the copy of the CA (the server's own directory goes away with it) and the
    /// transcript.
    dir: tempfile::TempDir,
    request: Value,
    live: Run,
    /// The recorded run's data directory.
    live_home: tempfile::TempDir,
    transcript: PathBuf,
}

impl Recording {
    fn text(&self) -> String {
        std::fs::read_to_string(&self.transcript).expect("the transcript is UTF-8 text")
    }

    /// Write `text` as another transcript and return its path.
    fn variant(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures/eml/phishing").join(name)).unwrap()
}

/// Start Dovecot, seed it, record `identifier` with Basic auth, stop Dovecot.
fn record(identifier: &str, parameters: &Value) -> Recording {
    let server = Dovecot::start();
    for name in FIXTURES {
        server.save("INBOX", &fixture(name));
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::copy(server.ca_pem(), &ca).unwrap();
    let request = json!({
        "identifier": identifier,
        "asset_id": "replayed",
        "config": {
            "server": "localhost", "port": server.imaps_port, "use_ssl": true,
            "username": USER, "password": PASSWORD, "ca_cert": ca,
            "folder": "inbox", "timeout_secs": 10,
        },
        "parameters": [parameters],
    });
    let transcript = dir.path().join(format!("{identifier}.transcript"));
    let home = tempfile::tempdir().unwrap();
    let live = run_with(
        &["--record", transcript.to_str().unwrap()],
        request.to_string().as_bytes(),
        home.path(),
    );
    assert_eq!(
        live.code,
        0,
        "recorded run failed:\n{}\n{}\n{}",
        live.stdout,
        live.stderr,
        server.log()
    );
    assert!(
        transcript.is_file(),
        "--record wrote no transcript:\n{}",
        live.stderr
    );
    // No server from here on.
    drop(server);
    Recording {
        dir,
        request,
        live,
        live_home: home,
        transcript,
    }
}

fn scheduled_poll() -> Value {
    json!({"container_count": 4_294_967_295_u64, "artifact_count": 4_294_967_295_u64})
}

/// Replay `transcript` with the recorded request on a fresh data directory.
fn replay(recording: &Recording, transcript: &Path) -> (Run, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let run = run_with(
        &["--replay", transcript.to_str().unwrap()],
        recording.request.to_string().as_bytes(),
        home.path(),
    );
    assert!(
        !run.stderr.contains("panicked"),
        "replay panicked:\n{}",
        run.stderr
    );
    (run, home)
}

/// Whether `message` names `line N` (and not `line N0`).
fn names_line(message: &str, n: usize) -> bool {
    let needle = format!("line {n}");
    message.match_indices(&needle).any(|(i, _)| {
        !message[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// The transcript's lines, each with its own line terminator (edits must not change
/// the bytes of any other line).
fn raw_lines(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_owned).collect()
}

/// A line without its terminator.
fn content(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// The transcript's lines before the `== digests` block, and the index of that line.
fn body_lines(text: &str) -> (Vec<String>, Option<usize>) {
    let lines = raw_lines(text);
    let digests = lines
        .iter()
        .position(|l| content(l).trim_end() == "== digests");
    (lines[..digests.unwrap_or(lines.len())].to_vec(), digests)
}

fn is_client(line: &str) -> bool {
    line.starts_with("C:") || line.starts_with("C-")
}

/// A server line that is the inside of a message (a FETCH literal), not a response line.
fn is_body_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("S: ") else {
        return false;
    };
    let response = rest.starts_with("* ")
        || rest.starts_with('+')
        || rest.split_once(' ').is_some_and(|(tag, status)| {
            !tag.is_empty()
                && tag.chars().all(|c| c.is_ascii_alphanumeric())
                && ["OK", "NO", "BAD", "BYE"]
                    .iter()
                    .any(|s| status.starts_with(s))
        });
    !response && rest.len() > 20 && rest.chars().filter(char::is_ascii_alphabetic).count() > 10
}

/// `line` with one ASCII letter changed (the byte count, so literal sizes, stay the same).
fn with_one_letter_changed(line: &str) -> String {
    let prefix = 3; // "S: "
    let (i, c) = line
        .char_indices()
        .skip(prefix)
        .find(|(_, c)| c.is_ascii_alphabetic())
        .unwrap();
    let replacement = match c {
        'x' => 'y',
        'X' => 'Y',
        c if c.is_ascii_uppercase() => 'X',
        _ => 'x',
    };
    format!("{}{replacement}{}", &line[..i], &line[i + 1..])
}

fn join_lines(lines: &[String]) -> String {
    lines.concat()
}

#[test]
fn a_recorded_poll_replays_with_no_server_to_the_same_response() {
    let recording = record("on_poll", &scheduled_poll());
    let live = recording.live.json();
    assert_eq!(
        live["containers"].as_array().unwrap().len(),
        FIXTURES.len(),
        "{}",
        recording.live.stdout
    );

    let text = recording.text();
    assert!(
        !text.contains(PASSWORD),
        "the password is in the transcript"
    );
    assert!(
        text.contains("\\<redacted>"),
        "no redaction marker in the transcript:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("== connection 1")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("C: ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("S: * SEARCH")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("@ ")), "{text}");
    let (_, digests) = body_lines(&text);
    let digests = digests.expect("a == digests block");
    let digest_tokens: Vec<&str> = text
        .lines()
        .skip(digests + 1)
        .flat_map(str::split_whitespace)
        .collect();
    assert!(
        digest_tokens
            .iter()
            .any(|t| t.len() == 8 && t.chars().all(|c| c.is_ascii_hexdigit())),
        "no 8-hex-digit digests after == digests"
    );
    // Every message's text is in the transcript (literals included).
    assert!(text.contains("Password Expiry Notice"));

    let (replayed, home) = replay(&recording, &recording.transcript);
    assert_eq!(
        replayed.code, recording.live.code,
        "{}\n{}",
        replayed.stdout, replayed.stderr
    );
    // Each run has its own data directory: compare with its path blanked on both sides.
    let original_home_free = comparable_in(&recording.live, recording.live_home.path());
    let replayed_value = comparable_in(&replayed, home.path());
    let original_text = original_home_free.to_string();
    assert!(
        !original_text.contains("soar-imap-dovecot"),
        "the response names the server's temp directory"
    );
    assert_eq!(
        replayed_value["containers"], original_home_free["containers"],
        "the same containers, ids, SDIs and artifacts"
    );
    assert_eq!(replayed_value, original_home_free);
    assert!(
        !replayed.stdout.contains(PASSWORD) && !replayed.stderr.contains(PASSWORD),
        "password leaked by the replay"
    );
}

#[test]
fn an_edited_server_line_fails_the_replay_naming_its_line() {
    let recording = record("on_poll", &scheduled_poll());
    let text = recording.text();
    let (body, digests) = body_lines(&text);
    assert!(digests.is_some(), "no digests block:\n{text}");
    let candidates: Vec<usize> = (0..body.len())
        .filter(|&i| is_body_line(content(&body[i])))
        .collect();
    assert!(
        candidates.len() > 10,
        "no FETCH body lines found in the transcript:\n{text}"
    );
    let edited = candidates[candidates.len() / 2];
    let mut lines = raw_lines(&text);
    lines[edited] = with_one_letter_changed(&lines[edited]);
    assert_ne!(lines[edited], body[edited]);
    let path = recording.variant("edited.transcript", &join_lines(&lines));

    let (run, _home) = replay(&recording, &path);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let response = run.json();
    assert_eq!(response["status"], "failed");
    let message = response["message"].as_str().unwrap();
    assert!(
        names_line(message, edited + 1),
        "the message does not name line {} ({:?}): {message}",
        edited + 1,
        lines[edited]
    );
}

#[test]
fn without_digests_a_changed_server_answer_fails_at_the_first_differing_client_line() {
    let recording = record("on_poll", &scheduled_poll());
    let text = recording.text();
    let (body, digests) = body_lines(&text);
    assert!(digests.is_some(), "no digests block:\n{text}");
    let mut lines = body;
    let search = lines
        .iter()
        .position(|l| l.starts_with("S: * SEARCH "))
        .unwrap_or_else(|| panic!("no non-empty * SEARCH answer in:\n{text}"));
    // The server now reports one message fewer: the client fetches a different set.
    let original = lines[search].clone();
    let mut uids: Vec<&str> = content(&original)["S: * SEARCH ".len()..]
        .split_whitespace()
        .collect();
    assert_eq!(uids.len(), FIXTURES.len(), "{}", lines[search]);
    uids.pop();
    let terminator = &original[content(&original).len()..];
    lines[search] = format!("S: * SEARCH {}{terminator}", uids.join(" "));
    let first_client = (search + 1..lines.len())
        .find(|&i| is_client(&lines[i]))
        .expect("a client line after the SEARCH answer");
    let path = recording.variant("no-digests.transcript", &join_lines(&lines));

    let (run, _home) = replay(&recording, &path);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let response = run.json();
    let message = response["message"].as_str().unwrap();
    assert!(
        names_line(message, first_client + 1),
        "the message does not name line {} ({:?}): {message}",
        first_client + 1,
        lines[first_client]
    );
    // The server line itself is not what is reported without digests.
    assert!(!names_line(message, search + 1), "{message}");
}

#[test]
fn a_recorded_connectivity_test_replays_to_the_same_report() {
    let recording = record("test_asset_connectivity", &json!({}));
    let live = recording.live.json();
    let report = &live["action_results"][0]["data"][0];
    assert_eq!(report["auth_mechanism"], "LOGIN", "{report}");
    assert!(!recording.text().contains(PASSWORD));

    let (replayed, home) = replay(&recording, &recording.transcript);
    assert_eq!(replayed.code, 0, "{}\n{}", replayed.stdout, replayed.stderr);
    let value = comparable_in(&replayed, home.path());
    let replayed_report = &value["action_results"][0]["data"][0];
    for key in [
        "transport",
        "tls_protocol",
        "tls_cipher",
        "certificate",
        "capabilities",
        "message_count",
        "uidvalidity",
        "uidnext",
        "folder",
        "auth_mechanism",
    ] {
        assert_eq!(
            replayed_report[key], report[key],
            "{key} differs after replay"
        );
    }
    assert_eq!(replayed_report["certificate"]["subject"], "CN=localhost");
    assert_eq!(
        value,
        comparable_in(&recording.live, recording.live_home.path())
    );
}

#[test]
fn a_replay_with_an_unreadable_transcript_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let request = json!({"identifier": "test_asset_connectivity",
        "config": {"server": "localhost", "username": USER, "password": PASSWORD}});
    let missing = dir.path().join("missing.transcript");
    let run = run_with(
        &["--replay", missing.to_str().unwrap()],
        request.to_string().as_bytes(),
        home.path(),
    );
    assert!(run.code == 1 || run.code == 2, "{}", run.stdout);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let message = run.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("missing.transcript"), "{message}");
}
