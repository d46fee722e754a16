//! No secret in anything any action writes, on success and on failure, with Basic and
//! with OAuth, against a real Dovecot and the OAuth stub: every run recorded with
//! `--record`, logged at trace level in text and in JSON, and then stdout, stderr, the
//! transcripts and every file under the data directory (database, write-ahead log,
//! vault, key and lock files) searched for the password, the client secret, the refresh
//! tokens and every access token the stub issued, raw, in base64, and as the base64
//! XOAUTH2 and PLAIN payloads that carry them.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD, USER},
    oauth_server::{AuthorizeOutcome, OAuthStub, http, random_token},
    support::{files_under, root, wait_bounded},
};

/// No run may take longer (every config has `timeout_secs: 10`).
const RUN_LIMIT: Duration = Duration::from_mins(1);

/// The log settings every run is made with, by `--log-format`: trace everywhere, and in
/// JSON also the HTTP layer's own trace output asked for by name.
const LOG: [(&str, &str); 2] = [
    ("text", "trace"),
    ("json", "trace,ureq=trace,ureq_proto=trace,imap=trace"),
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures/eml/phishing").join(name)).unwrap()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every run of the binary, in one data directory, with what it printed.
struct Runs {
    home: tempfile::TempDir,
    transcripts: tempfile::TempDir,
    outputs: Vec<(String, String, String)>,
}

impl Runs {
    fn new() -> Runs {
        Runs {
            home: tempfile::tempdir().unwrap(),
            transcripts: tempfile::tempdir().unwrap(),
            outputs: Vec::new(),
        }
    }

    /// Run `request` once per log format, recorded when `record`, expecting exit status
    /// `code`; the first response (the run that did the work, for a poll).
    fn run(&mut self, label: &str, request: &Value, record: bool, code: i32) -> Value {
        let mut first = None;
        for (format, filter) in LOG {
            let mut args = vec!["--log-format".to_owned(), format.to_owned()];
            if record {
                let path = self
                    .transcripts
                    .path()
                    .join(format!("{}.transcript", self.outputs.len()));
                args.extend(["--record".to_owned(), path.display().to_string()]);
            }
            let (status, stdout, stderr) =
                self.spawn(&args, filter, request.to_string().as_bytes(), None);
            let context = format!("{label} ({format}): exit {status}\n{stdout}\n{stderr}");
            assert!(!stderr.contains("panicked"), "{context}");
            assert_eq!(status, code, "{context}");
            let response: Value = serde_json::from_str(stdout.trim_end())
                .unwrap_or_else(|e| panic!("stdout is not one JSON response ({e}): {context}"));
            first.get_or_insert(response);
            self.outputs
                .push((format!("{label} ({format})"), stdout, stderr));
        }
        first.unwrap_or_default()
    }

    /// Run the binary; with `browser`, play the user's browser for `oauth login`: open
    /// the authorization URL it prints (it must start with the given prefix) and follow
    /// the provider's redirect to the connector's listener.
    fn spawn(
        &self,
        args: &[String],
        filter: &str,
        stdin: &[u8],
        browser: Option<&str>,
    ) -> (i32, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_soar-imap"))
            .args(args)
            .env("SOAR_IMAP_HOME", self.home.path())
            .env("SOAR_IMAP_LOG", filter)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn soar-imap");
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let mut stdout = child.stdout.take().unwrap();
        let out = thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let (lines, seen) = mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let err = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = lines.send(line);
            }
            all
        });
        if let Some(prefix) = browser {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                match seen.recv_timeout(Duration::from_millis(200)) {
                    Ok(line) => {
                        let url = line
                            .split(|c: char| c.is_whitespace() || c == '"')
                            .find(|t| t.starts_with(prefix));
                        if let Some(url) = url {
                            let consent = http("GET", url, &[], b"").expect("authorize");
                            if let Some(location) = consent.header("location") {
                                let _ = http("GET", location, &[], b"");
                            }
                            break;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        let Some(status) = wait_bounded(&mut child, RUN_LIMIT) else {
            panic!("soar-imap {args:?} did not finish within {RUN_LIMIT:?}");
        };
        (
            status.code().unwrap_or(-1),
            out.join().unwrap(),
            err.join().unwrap(),
        )
    }

    /// `soar-imap oauth login` for `request`, the browser answered as `stub` is set to.
    fn oauth_login(&mut self, label: &str, stub: &OAuthStub, request: &Value, code: i32) {
        for (format, filter) in LOG {
            let args = [
                "oauth",
                "login",
                "--timeout-secs",
                "20",
                "--log-format",
                format,
            ]
            .map(str::to_owned);
            let (status, stdout, stderr) = self.spawn(
                &args,
                filter,
                request.to_string().as_bytes(),
                Some(&stub.url("/authorize")),
            );
            let context = format!("{label} ({format}): exit {status}\n{stdout}\n{stderr}");
            assert!(!stderr.contains("panicked"), "{context}");
            assert_eq!(status, code, "{context}");
            self.outputs
                .push((format!("{label} ({format})"), stdout, stderr));
        }
    }

    /// Every file the runs wrote: the data directory's and the transcripts.
    fn files(&self) -> Vec<PathBuf> {
        let mut files = files_under(self.home.path());
        files.extend(files_under(self.transcripts.path()));
        files
    }
}

/// Each secret in every form that could carry it: raw, base64, the XOAUTH2 and PLAIN
/// SASL payloads (base64), and a recognisable prefix of a long one.
fn needles(secrets: &[String]) -> Vec<(String, Vec<u8>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut needles = Vec::new();
    for secret in secrets {
        needles.push((secret.clone(), secret.clone().into_bytes()));
        needles.push((
            format!("{secret} (base64)"),
            b64.encode(secret).into_bytes(),
        ));
        let xoauth2 = format!("user={USER}\x01auth=Bearer {secret}\x01\x01");
        needles.push((
            format!("{secret} (XOAUTH2)"),
            b64.encode(xoauth2).into_bytes(),
        ));
        let plain = format!("\0{USER}\0{secret}");
        needles.push((format!("{secret} (PLAIN)"), b64.encode(plain).into_bytes()));
        if secret.len() > 24 {
            needles.push((
                format!("{secret} (prefix)"),
                secret.as_bytes()[..19].to_vec(),
            ));
        }
    }
    needles
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_nothing_leaked(runs: &Runs, secrets: &[String]) {
    let needles = needles(secrets);
    for (label, stdout, stderr) in &runs.outputs {
        for (what, text) in [("stdout", stdout), ("stderr", stderr)] {
            for (name, needle) in &needles {
                assert!(
                    !contains(text.as_bytes(), needle),
                    "{label}: {what} holds {name}:\n{text}"
                );
            }
        }
    }
    let files = runs.files();
    let has = |part: &str| files.iter().any(|f| f.to_string_lossy().contains(part));
    // The search covered what it claims to.
    for part in [
        "state.sqlite3",
        "/vault/",
        "/keys/",
        "/locks/",
        ".transcript",
    ] {
        assert!(has(part), "no {part} file among {files:?}");
    }
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for (name, needle) in &needles {
            assert!(!contains(&bytes, needle), "{} holds {name}", file.display());
        }
    }
}

#[test]
#[allow(clippy::too_many_lines)]
fn no_secret_in_any_output_transcript_or_file_of_any_action_success_or_failure() {
    let stub = OAuthStub::start();
    let server = Dovecot::start_with_oauth(&stub.url("/introspect"));
    for name in [
        "001-reported-attached-eml.eml",
        "003-invoice-html-attachment.eml",
    ] {
        server.save("INBOX", &fixture(name));
    }
    let wrong_password = random_token("Wp");
    let client_id = "soar-imap-secrets-client";
    let client_secret = random_token("Cs");
    stub.add_client(client_id, &client_secret);
    let wrong_client_secret = random_token("Cx");
    let refresh_token = stub.new_refresh_token(USER);
    let revoked_refresh_token = stub.new_refresh_token(USER);
    stub.revoke_refresh_token(&revoked_refresh_token);
    let mut runs = Runs::new();

    // ---- Basic authentication ----
    let basic = json!({
        "server": "localhost", "port": server.imaps_port, "use_ssl": true,
        "ca_cert": server.ca_pem(), "timeout_secs": 10, "folder": "inbox",
        "username": USER, "password": PASSWORD,
        // Secrets of other kinds in the same config must not leak either.
        "client_secret": client_secret, "refresh_token": refresh_token,
    });
    let with = |config: &Value, key: &str, value: Value| {
        let mut config = config.clone();
        config[key] = value;
        config
    };
    let request = |identifier: &str, asset: &str, config: &Value, parameter: Value| {
        json!({"identifier": identifier, "asset_id": asset, "config": config,
               "parameters": [parameter]})
    };
    let scheduled = json!({"container_count": 4_294_967_295_u64});

    runs.run(
        "basic test connectivity",
        &request("test_asset_connectivity", "basic", &basic, json!({})),
        true,
        0,
    );
    let polled = runs.run(
        "basic on poll",
        &request(
            "on_poll",
            "basic",
            &with(&basic, "max_emails", json!(1)),
            scheduled.clone(),
        ),
        true,
        0,
    );
    runs.run(
        "basic get email by id, ingested",
        &request(
            "get_email",
            "basic",
            &basic,
            json!({"id": 2, "ingest_email": true}),
        ),
        true,
        0,
    );
    let container_id = polled["containers"][0]["id"].clone();
    assert!(container_id.is_i64(), "the poll ingested mail: {polled}");
    runs.run(
        "basic get email by container_id",
        &request(
            "get_email",
            "basic",
            &basic,
            json!({"container_id": container_id}),
        ),
        true,
        0,
    );
    runs.run(
        "parse email",
        &request(
            "parse_email",
            "basic",
            &basic,
            json!({"raw_email": String::from_utf8_lossy(&fixture("001-reported-attached-eml.eml"))}),
        ),
        false,
        0,
    );
    let wrong = with(&basic, "password", json!(wrong_password));
    for (identifier, parameter) in [
        ("test_asset_connectivity", json!({})),
        ("on_poll", scheduled.clone()),
        ("get_email", json!({"id": 1, "ingest_email": true})),
    ] {
        let response = runs.run(
            &format!("basic {identifier}, wrong password"),
            &request(identifier, "basic-wrong", &wrong, parameter),
            true,
            1,
        );
        let message = response["message"].as_str().unwrap();
        assert!(message.contains("AUTHENTICATIONFAILED"), "{message}");
    }
    let no_folder = with(&basic, "folder", json!("No Such Folder"));
    runs.run(
        "basic test connectivity, bad folder",
        &request("test_asset_connectivity", "basic", &no_folder, json!({})),
        true,
        1,
    );
    runs.run(
        "basic on poll, bad folder",
        &request("on_poll", "basic", &no_folder, scheduled.clone()),
        true,
        1,
    );
    runs.run(
        "basic get email, bad folder",
        &request(
            "get_email",
            "basic",
            &basic,
            json!({"id": 1, "folder": "No Such Folder"}),
        ),
        true,
        1,
    );
    let down = with(&basic, "port", json!(closed_port()));
    for (identifier, parameter) in [
        ("test_asset_connectivity", json!({})),
        ("on_poll", scheduled.clone()),
        ("get_email", json!({"id": 1})),
    ] {
        runs.run(
            &format!("basic {identifier}, server down"),
            &request(identifier, "basic", &down, parameter),
            true,
            1,
        );
    }
    for identifier in [
        "test_asset_connectivity",
        "on_poll",
        "get_email",
        "parse_email",
    ] {
        // A config error found after the secrets were read.
        runs.run(
            &format!("{identifier}, bad config"),
            &request(
                identifier,
                "basic",
                &with(&basic, "max_emails", json!("many")),
                json!({}),
            ),
            true,
            1,
        );
        // A secret of the wrong type is refused without being echoed.
        runs.run(
            &format!("{identifier}, password of the wrong type"),
            &request(
                identifier,
                "basic",
                &with(
                    &basic,
                    "password",
                    json!({"nested": [PASSWORD, client_secret]}),
                ),
                json!({}),
            ),
            true,
            1,
        );
    }

    // ---- OAuth ----
    let oauth = json!({
        "server": "127.0.0.1", "port": server.imaps_port, "use_ssl": true,
        "ca_cert": server.ca_pem(), "timeout_secs": 10, "folder": "inbox",
        "auth_type": "OAuth", "username": USER,
        "client_id": client_id, "client_secret": client_secret,
        "token_url": stub.url("/token"), "auth_url": stub.url("/authorize"),
        "scopes": ["https://mail.google.com/"],
        // The Basic password is set too: it must not leak through the OAuth paths.
        "password": PASSWORD,
    });
    // oauth login: the stub consents, then refuses, then answers a forged state.
    stub.set_rotate_refresh_tokens(true);
    runs.oauth_login(
        "oauth login",
        &stub,
        &json!({"asset_id": "oauth-login", "config": oauth}),
        0,
    );
    for (outcome, label) in [
        (AuthorizeOutcome::Deny, "oauth login, consent refused"),
        (AuthorizeOutcome::WrongState, "oauth login, forged state"),
    ] {
        stub.set_authorize_outcome(outcome);
        runs.oauth_login(
            label,
            &stub,
            &json!({"asset_id": "oauth-refused", "config": oauth}),
            1,
        );
    }
    stub.set_authorize_outcome(AuthorizeOutcome::Consent);
    // The tokens oauth login stored.
    runs.run(
        "oauth test connectivity, stored tokens",
        &request("test_asset_connectivity", "oauth-login", &oauth, json!({})),
        true,
        0,
    );
    let refreshing = with(&oauth, "refresh_token", json!(refresh_token));
    runs.run(
        "oauth on poll",
        &request(
            "on_poll",
            "oauth",
            &with(&refreshing, "max_emails", json!(1)),
            scheduled.clone(),
        ),
        true,
        0,
    );
    let got = runs.run(
        "oauth get email by id, ingested",
        &request(
            "get_email",
            "oauth",
            &refreshing,
            json!({"id": 2, "ingest_email": true}),
        ),
        true,
        0,
    );
    runs.run(
        "oauth get email by container_id",
        &request(
            "get_email",
            "oauth",
            &refreshing,
            json!({"container_id": got["action_results"][0]["summary"]["container_id"]}),
        ),
        true,
        0,
    );
    // The provider revokes the access token the connector holds: it is refused at
    // login, refreshed, and the login retried.
    stub.revoke_access_tokens();
    runs.run(
        "oauth test connectivity, revoked access token",
        &request("test_asset_connectivity", "oauth", &refreshing, json!({})),
        true,
        0,
    );
    let revoked = with(&oauth, "refresh_token", json!(revoked_refresh_token));
    for (identifier, parameter) in [
        ("test_asset_connectivity", json!({})),
        ("on_poll", scheduled.clone()),
        ("get_email", json!({"id": 1})),
    ] {
        let response = runs.run(
            &format!("oauth {identifier}, revoked refresh token"),
            &request(identifier, "oauth-revoked", &revoked, parameter),
            true,
            1,
        );
        let message = response["message"].as_str().unwrap();
        assert!(message.contains("invalid_grant"), "{message}");
    }
    let wrong_secret = with(&refreshing, "client_secret", json!(wrong_client_secret));
    let response = runs.run(
        "oauth on poll, wrong client secret",
        &request(
            "on_poll",
            "oauth-wrong-secret",
            &wrong_secret,
            scheduled.clone(),
        ),
        true,
        1,
    );
    assert!(
        response["message"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{response}"
    );
    let app_only = with(&wrong_secret, "oauth_grant", json!("client_credentials"));
    runs.run(
        "oauth client credentials, wrong client secret",
        &request("test_asset_connectivity", "oauth-app", &app_only, json!({})),
        true,
        1,
    );
    runs.run(
        "oauth on poll, server down",
        &request(
            "on_poll",
            "oauth",
            &with(&refreshing, "port", json!(closed_port())),
            scheduled,
        ),
        true,
        1,
    );
    runs.run(
        "oauth test connectivity, token endpoint down",
        &request(
            "test_asset_connectivity",
            "oauth-no-endpoint",
            &with(
                &refreshing,
                "token_url",
                json!(format!("http://127.0.0.1:{}/token", closed_port())),
            ),
            json!({}),
        ),
        true,
        1,
    );
    runs.run(
        "oauth test connectivity, bad config",
        &request(
            "test_asset_connectivity",
            "oauth",
            &with(&refreshing, "scopes", json!(42)),
            json!({}),
        ),
        true,
        1,
    );

    // Every secret: the password (right and wrong), the client secrets, both refresh
    // tokens, and every token the stub issued (access tokens, rotated refresh tokens).
    let mut secrets: Vec<String> = vec![
        PASSWORD.to_owned(),
        wrong_password,
        client_secret,
        wrong_client_secret,
        refresh_token,
        revoked_refresh_token,
    ];
    secrets.extend(stub.secrets());
    secrets.sort();
    secrets.dedup();
    assert!(
        stub.access_tokens().len() >= 3,
        "the runs got the access tokens the test means to look for: {:?}",
        stub.token_requests()
    );
    assert_nothing_leaked(&runs, &secrets);
}
