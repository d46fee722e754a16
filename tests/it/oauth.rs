//! OAuth (XOAUTH2) end to end: the binary against a real Dovecot whose `passdb oauth2`
//! introspects tokens at the stub provider of `oauth_server.rs`.
//!
//! Every test also checks that no secret the stub knows (client secrets, refresh tokens,
//! every access token it issued) shows up in any output or any file the runs wrote.

use std::{
    cell::RefCell,
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, USER},
    oauth_server::{
        AuthorizeOutcome, CLIENT_ID, CLIENT_SECRET, DENIED_DESCRIPTION, HttpResponse, OAuthStub,
        form_decode, http, random_token,
    },
    support::{Run, files_under, root, wait_bounded},
};

const GMAIL_SCOPE: &str = "https://mail.google.com/";
const M365_SCOPE: &str = "https://outlook.office365.com/.default";
const FIXTURES: [&str; 2] = ["001-reported-attached-eml.eml", "004-qr-code-lure.eml"];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures/eml/phishing").join(name)).unwrap()
}

fn small_email(n: u32) -> Vec<u8> {
    format!(
        "From: reporter{n}@example.com\r\nTo: soc@example.org\r\nSubject: oauth report {n}\r\nMessage-ID: <oauth-{n}@example.com>\r\n\r\nSee https://lure{n}.example.net/login\r\n"
    )
    .into_bytes()
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A stub provider, a Dovecot that trusts it, a data directory, and everything the runs
/// printed (for the leak check).
struct Setup {
    stub: OAuthStub,
    server: Dovecot,
    home: tempfile::TempDir,
    outputs: RefCell<Vec<(String, String)>>,
    /// Other files to check (transcripts).
    extra_files: RefCell<Vec<PathBuf>>,
}

impl Setup {
    /// Stub, Dovecot with the oauth2 passdb and two phishing reports in INBOX.
    fn new() -> Setup {
        let stub = OAuthStub::start();
        let server = Dovecot::start_with_oauth(&stub.url("/introspect"));
        for name in FIXTURES {
            server.save("INBOX", &fixture(name));
        }
        Setup {
            stub,
            server,
            home: tempfile::tempdir().unwrap(),
            outputs: RefCell::new(Vec::new()),
            extra_files: RefCell::new(Vec::new()),
        }
    }

    /// The OAuth config of the refresh-token grant, without a refresh token.
    fn config(&self) -> Value {
        json!({
            "server": "127.0.0.1", "port": self.server.imaps_port, "use_ssl": true,
            "ca_cert": self.server.ca_pem(), "timeout_secs": 10,
            "auth_type": "OAuth", "username": USER,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "token_url": self.stub.url("/token"), "auth_url": self.stub.url("/authorize"),
            "scopes": [GMAIL_SCOPE],
            "data_dir": self.home.path(), "folder": "inbox",
        })
    }

    /// The config with `refresh_token` set.
    fn config_with(&self, refresh_token: &str) -> Value {
        let mut config = self.config();
        config["refresh_token"] = json!(refresh_token);
        config
    }

    /// Run the binary with `args`, `stdin` and extra environment; keep the output.
    fn run_env(&self, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_soar-imap"));
        command
            .args(args)
            .env("SOAR_IMAP_HOME", self.home.path())
            .env_remove("SOAR_IMAP_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn soar-imap");
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let output = child.wait_with_output().unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        self.keep(&run);
        run
    }

    fn keep(&self, run: &Run) {
        assert!(
            !run.stderr.contains("panicked"),
            "the binary panicked:\n{}",
            run.stderr
        );
        self.outputs
            .borrow_mut()
            .push((run.stdout.clone(), run.stderr.clone()));
    }

    fn run(
        &self,
        identifier: &str,
        asset: &str,
        config: &Value,
        parameters: &Value,
    ) -> (Run, Value) {
        let request = json!({"identifier": identifier, "asset_id": asset, "config": config,
            "parameters": [parameters]});
        let run = self.run_env(&[], request.to_string().as_bytes(), &[]);
        let response = run.json();
        (run, response)
    }

    /// A scheduled poll.
    fn poll(&self, asset: &str, config: &Value) -> (Run, Value) {
        self.run(
            "on_poll",
            asset,
            config,
            &json!({"container_count": 4_294_967_295_u64, "artifact_count": 4_294_967_295_u64}),
        )
    }

    fn connectivity(&self, asset: &str, config: &Value) -> (Run, Value) {
        self.run("test_asset_connectivity", asset, config, &json!({}))
    }

    fn token_requests(&self) -> usize {
        self.stub.token_requests().len()
    }

    fn context(&self, run: &Run) -> String {
        format!(
            "exit {}\nstdout: {}\nstderr: {}\ntoken requests: {:?}\ndovecot log:\n{}",
            run.code,
            run.stdout,
            run.stderr,
            self.stub.token_requests(),
            self.server.log()
        )
    }

    /// No secret the stub knows in any output kept so far, in any file under the data
    /// directory, or in the extra files.
    fn assert_no_secrets(&self) {
        let secrets = self.stub.secrets();
        assert!(!secrets.is_empty(), "the stub knows no secret: {secrets:?}");
        let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
        for secret in &secrets {
            needles.push((secret.clone(), secret.clone().into_bytes()));
            // A recognisable prefix (`at-` and 16 hex digits).
            if secret.len() > 24 {
                needles.push((
                    format!("{secret} (prefix)"),
                    secret.as_bytes()[..19].to_vec(),
                ));
            }
            let b64 = base64::engine::general_purpose::STANDARD;
            needles.push((
                format!("{secret} (base64)"),
                b64.encode(secret).into_bytes(),
            ));
            let sasl = format!("user={USER}\x01auth=Bearer {secret}\x01\x01");
            needles.push((format!("{secret} (XOAUTH2)"), b64.encode(sasl).into_bytes()));
        }
        for (i, (stdout, stderr)) in self.outputs.borrow().iter().enumerate() {
            for (what, text) in [("stdout", stdout), ("stderr", stderr)] {
                for (name, needle) in &needles {
                    assert!(
                        !contains_bytes(text.as_bytes(), needle),
                        "run {i}: {what} contains {name}:\n{text}"
                    );
                }
            }
        }
        let mut files = files_under(self.home.path());
        assert!(!files.is_empty(), "the runs wrote nothing under data_dir");
        files.extend(self.extra_files.borrow().iter().cloned());
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            for (name, needle) in &needles {
                assert!(
                    !contains_bytes(&bytes, needle),
                    "{} contains {name}",
                    file.display()
                );
            }
        }
    }
}

fn summary(response: &Value) -> &Value {
    &response["action_results"][0]["summary"]
}

fn new_containers(response: &Value) -> usize {
    response["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("duplicate").is_none())
        .count()
}

fn message(response: &Value) -> String {
    response["message"].as_str().unwrap_or_default().to_owned()
}

/// The message of a run whose refresh token was refused: names the error and the cure.
fn assert_invalid_grant_message(message: &str) {
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(message.contains("soar-imap oauth login"), "{message}");
    assert!(message.contains("refresh_token"), "{message}");
}

#[test]
fn a_refresh_token_logs_in_with_xoauth2_and_the_access_token_is_reused() {
    let setup = Setup::new();
    let rt = setup.stub.new_refresh_token(USER);
    let config = setup.config_with(&rt);

    let (run, response) = setup.poll("gmail", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(new_containers(&response), FIXTURES.len(), "{}", run.stdout);
    assert_eq!(summary(&response)["emails_ingested"], FIXTURES.len());
    let requests = setup.stub.token_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].grant_type, "refresh_token");
    assert_eq!(requests[0].params["refresh_token"], rt);
    assert_eq!(requests[0].client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(requests[0].status, 200);
    // Dovecot really checked the token the connector got.
    let issued = requests[0].access_token.clone().unwrap();
    assert!(
        setup
            .stub
            .introspections()
            .iter()
            .any(|i| i.token == issued && i.active),
        "{:?}",
        setup.stub.introspections()
    );
    assert!(
        setup.server.log().contains("method=XOAUTH2"),
        "{}",
        setup.server.log()
    );

    // The stored access token is reused: no more token requests.
    let (run, response) = setup.connectivity("gmail", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    let report = &response["action_results"][0]["data"][0];
    assert_eq!(report["auth_mechanism"], "XOAUTH2", "{report}");
    assert_eq!(report["message_count"], FIXTURES.len());
    assert_eq!(response["message"], "Connectivity test passed");

    setup.server.save("INBOX", &small_email(1));
    let (run, response) = setup.poll("gmail", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(new_containers(&response), 1);
    assert_eq!(
        setup.token_requests(),
        1,
        "the stored access token was not reused: {:?}",
        setup.stub.token_requests()
    );

    // The scopes may also come as a JSON-formatted string list (as platforms send them).
    let mut string_scopes = config.clone();
    string_scopes["scopes"] = json!(format!("[\"{GMAIL_SCOPE}\"]"));
    let (run, _) = setup.connectivity("gmail-string-scopes", &string_scopes);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(setup.token_requests(), 2);

    setup.assert_no_secrets();
}

#[test]
fn an_expired_access_token_is_refreshed_before_login() {
    let setup = Setup::new();
    let rt = setup.stub.new_refresh_token(USER);
    let config = setup.config_with(&rt);
    setup.stub.set_expires_in(1);
    let (run, _) = setup.poll("expiring", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    let before = setup.token_requests();
    assert!(before >= 1);

    std::thread::sleep(Duration::from_secs(2));
    setup.stub.set_expires_in(3600);
    setup.server.save("INBOX", &small_email(2));
    let seen = setup.stub.introspections().len();
    let (run, response) = setup.poll("expiring", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(new_containers(&response), 1);
    let requests = setup.stub.token_requests();
    assert_eq!(
        requests.len(),
        before + 1,
        "one refresh before the login: {requests:?}"
    );
    assert_eq!(requests[before].grant_type, "refresh_token");
    // Refreshed before login, so Dovecot only ever saw the new token in this run.
    let new_token = requests[before].access_token.clone().unwrap();
    let introspections = setup.stub.introspections();
    assert!(introspections.len() > seen, "{introspections:?}");
    assert!(
        introspections[seen..]
            .iter()
            .all(|i| i.token == new_token && i.active),
        "the expired token was tried first: {introspections:?}"
    );

    // And the new one is reused again.
    let (run, _) = setup.poll("expiring", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(setup.token_requests(), before + 1);
    setup.assert_no_secrets();
}

#[test]
fn an_access_token_refused_at_login_is_refreshed_once_and_the_retry_succeeds() {
    let setup = Setup::new();
    let rt = setup.stub.new_refresh_token(USER);
    let config = setup.config_with(&rt);
    let (run, _) = setup.poll("revoked-at", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(setup.token_requests(), 1);

    // The provider revoked the token; the connector still thinks it is valid for an hour.
    setup.stub.revoke_access_tokens();
    setup.server.save("INBOX", &small_email(3));
    let (run, response) = setup.poll("revoked-at", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(new_containers(&response), 1, "{}", run.stdout);
    let requests = setup.stub.token_requests();
    assert_eq!(requests.len(), 2, "exactly one refresh: {requests:?}");
    assert_eq!(requests[1].grant_type, "refresh_token");
    let introspections = setup.stub.introspections();
    assert!(
        introspections.iter().any(|i| !i.active),
        "the first login did fail: {introspections:?}"
    );
    assert!(introspections.last().unwrap().active);

    // test connectivity recovers the same way.
    setup.stub.revoke_access_tokens();
    let (run, response) = setup.connectivity("revoked-at", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(
        response["action_results"][0]["data"][0]["auth_mechanism"],
        "XOAUTH2"
    );
    assert_eq!(setup.token_requests(), 3);
    setup.assert_no_secrets();
}

#[test]
fn a_revoked_refresh_token_is_reported_clearly() {
    let setup = Setup::new();

    // Revoked before the first run: nothing stored, the refresh fails.
    let dead = setup.stub.new_refresh_token(USER);
    setup.stub.revoke_refresh_token(&dead);
    let config = setup.config_with(&dead);
    let (run, response) = setup.poll("dead", &config);
    assert_eq!(run.code, 1, "{}", setup.context(&run));
    assert_eq!(response["status"], "failed");
    assert_invalid_grant_message(&message(&response));
    assert_eq!(setup.token_requests(), 1, "no retry loop");
    let (run, response) = setup.connectivity("dead", &config);
    assert_eq!(run.code, 1, "{}", setup.context(&run));
    assert_invalid_grant_message(&message(&response));

    // Revoked after a good run; the access token is refused at login, the refresh fails.
    let rt = setup.stub.new_refresh_token(USER);
    let config = setup.config_with(&rt);
    let (run, _) = setup.poll("revoked-rt", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    setup.stub.revoke_refresh_token(&rt);
    setup.stub.revoke_access_tokens();
    let before = setup.token_requests();
    let (run, response) = setup.poll("revoked-rt", &config);
    assert_eq!(run.code, 1, "{}", setup.context(&run));
    assert_invalid_grant_message(&message(&response));
    assert_eq!(setup.token_requests(), before + 1, "one refresh attempt");

    // Revoked while the stored access token expired.
    setup.stub.set_expires_in(1);
    let rt = setup.stub.new_refresh_token(USER);
    let config = setup.config_with(&rt);
    let (run, _) = setup.poll("expired-rt", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    setup.stub.revoke_refresh_token(&rt);
    std::thread::sleep(Duration::from_secs(2));
    let (run, response) = setup.poll("expired-rt", &config);
    assert_eq!(run.code, 1, "{}", setup.context(&run));
    assert_invalid_grant_message(&message(&response));

    // A wrong client secret is named as such.
    let mut wrong = setup.config_with(&setup.stub.new_refresh_token(USER));
    wrong["client_secret"] = json!("Cs-wrong-secret-for-the-stub");
    let (run, response) = setup.poll("wrong-secret", &wrong);
    assert_eq!(run.code, 1, "{}", setup.context(&run));
    assert!(
        message(&response).contains("invalid_client"),
        "{}",
        message(&response)
    );
    assert!(!run.stdout.contains("Cs-wrong-secret") && !run.stderr.contains("Cs-wrong-secret"));

    setup.assert_no_secrets();
}

#[test]
fn client_credentials_log_in_as_the_configured_user() {
    let setup = Setup::new();
    let secret = random_token("Cs-app");
    setup.stub.add_client("m365-app", &secret);
    let mut config = setup.config();
    for key in ["auth_url", "refresh_token"] {
        config.as_object_mut().unwrap().remove(key);
    }
    config["oauth_grant"] = json!("client_credentials");
    config["client_id"] = json!("m365-app");
    config["client_secret"] = json!(secret);
    config["scopes"] = json!(format!("[\"{M365_SCOPE}\"]"));

    let (run, response) = setup.connectivity("m365", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(
        response["action_results"][0]["data"][0]["auth_mechanism"],
        "XOAUTH2"
    );
    let requests = setup.stub.token_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].grant_type, "client_credentials");
    assert_eq!(requests[0].client_id.as_deref(), Some("m365-app"));
    assert_eq!(requests[0].params["scope"], M365_SCOPE);
    assert!(!requests[0].params.contains_key("refresh_token"));

    let (run, response) = setup.poll("m365", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(new_containers(&response), FIXTURES.len());
    assert_eq!(setup.token_requests(), 1, "the app token is reused");

    // An expired app token is simply fetched again (there is no refresh token).
    setup.stub.revoke_access_tokens();
    setup.server.save("INBOX", &small_email(4));
    let (run, response) = setup.poll("m365", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(new_containers(&response), 1);
    assert_eq!(setup.token_request_grants(), ["client_credentials"; 2]);

    setup.assert_no_secrets();
}

impl Setup {
    fn token_request_grants(&self) -> Vec<String> {
        self.stub
            .token_requests()
            .into_iter()
            .map(|r| r.grant_type)
            .collect()
    }
}

/// How `soar-imap oauth login` went.
struct Login {
    run: Run,
    /// The authorization URL's query, if the binary printed one.
    authorize: Option<BTreeMap<String, String>>,
    /// What the connector's loopback listener answered the browser.
    listener: Option<std::io::Result<HttpResponse>>,
}

impl Setup {
    /// Run `soar-imap oauth login ARGS` with `request` (on stdin, or as `--request FILE`)
    /// and play the browser: open the printed authorization URL at the stub, follow its
    /// redirect to the connector's listener.
    fn oauth_login(&self, request: &Value, args: &[&str], as_file: bool) -> Login {
        let request_dir = tempfile::tempdir().unwrap();
        let request_file = request_dir.path().join("login-request.json");
        let mut all_args = vec!["oauth", "login", "--timeout-secs", "20"];
        all_args.extend_from_slice(args);
        if as_file {
            std::fs::write(&request_file, request.to_string()).unwrap();
            all_args.extend_from_slice(&["--request", request_file.to_str().unwrap()]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_soar-imap"))
            .args(&all_args)
            .env("SOAR_IMAP_HOME", self.home.path())
            .env_remove("SOAR_IMAP_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn soar-imap oauth login");
        let mut stdin = child.stdin.take().unwrap();
        if !as_file {
            let _ = stdin.write_all(request.to_string().as_bytes());
        }
        drop(stdin);
        let mut stdout = child.stdout.take().unwrap();
        let stdout_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = lines_tx.send(line);
            }
            all
        });

        // Wait for the authorization URL on stderr.
        let prefix = self.stub.url("/authorize");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut url = None;
        while url.is_none() && Instant::now() < deadline {
            match lines_rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    url = line
                        .split_whitespace()
                        .map(|t| {
                            t.trim_matches(|c| matches!(c, '"' | '\'' | '<' | '>' | '(' | ')'))
                        })
                        .find(|t| t.starts_with(&prefix))
                        .map(str::to_owned);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }

        let mut authorize = None;
        let mut listener = None;
        if let Some(url) = url {
            authorize = url.split_once('?').map(|(_, query)| form_decode(query));
            let consent = http("GET", &url, &[], b"").expect("GET the authorization URL");
            assert_eq!(consent.status, 302, "{consent:?}");
            let location = consent.header("location").unwrap().to_owned();
            listener = Some(http("GET", &location, &[], b""));
        }

        // Wait for the binary (bounded: kill it rather than hang the suite).
        let Some(status) = wait_bounded(&mut child, Duration::from_mins(1)) else {
            panic!(
                "oauth login did not finish; stderr so far:\n{}",
                stderr_reader.join().unwrap()
            );
        };
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: stdout_reader.join().unwrap(),
            stderr: stderr_reader.join().unwrap(),
        };
        self.keep(&run);
        Login {
            run,
            authorize,
            listener,
        }
    }
}

#[test]
fn oauth_login_stores_tokens_a_poll_then_uses() {
    let setup = Setup::new();
    let config = setup.config();
    let request = json!({"asset_id": "interactive", "config": config});
    let login = setup.oauth_login(&request, &[], false);
    assert_eq!(login.run.code, 0, "{}", setup.context(&login.run));
    let response = login.run.json();
    assert_eq!(response["status"], "success", "{response}");
    assert!(!message(&response).is_empty());

    // The authorization request: code flow, PKCE S256, a random state, a loopback redirect.
    let authorize = login.authorize.expect("an authorization URL on stderr");
    assert_eq!(authorize["response_type"], "code");
    assert_eq!(authorize["client_id"], CLIENT_ID);
    assert_eq!(authorize["code_challenge_method"], "S256");
    assert_eq!(authorize["code_challenge"].len(), 43, "{authorize:?}");
    assert!(authorize["state"].len() >= 16, "{authorize:?}");
    assert!(authorize["scope"].contains(GMAIL_SCOPE), "{authorize:?}");
    let redirect = &authorize["redirect_uri"];
    assert!(
        ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
            .iter()
            .any(|p| redirect.starts_with(p)),
        "{redirect}"
    );
    let listener = login.listener.unwrap().expect("the listener answered");
    assert_eq!(listener.status, 200, "{listener:?}");

    // One code exchange, PKCE verified by the stub, same redirect URI.
    let requests = setup.stub.token_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].grant_type, "authorization_code");
    assert_eq!(requests[0].status, 200, "{requests:?}");
    assert_eq!(&requests[0].params["redirect_uri"], redirect);
    assert!(requests[0].params.contains_key("code_verifier"));
    let login_refresh_token = requests[0].refresh_token.clone().unwrap();

    // A poll with no refresh token in the config uses the stored access token.
    let (run, response) = setup.poll("interactive", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(new_containers(&response), FIXTURES.len());
    assert_eq!(setup.token_requests(), 1, "no token request");

    // And refreshes with the stored refresh token when the access token is refused.
    setup.stub.revoke_access_tokens();
    let (run, _) = setup.connectivity("interactive", &config);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    let requests = setup.stub.token_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].grant_type, "refresh_token");
    assert_eq!(requests[1].params["refresh_token"], login_refresh_token);

    setup.assert_no_secrets();
}

#[test]
fn oauth_login_with_a_forged_state_or_a_refusal_fails_and_stores_nothing() {
    let setup = Setup::new();
    let config = setup.config();

    // A redirect with another state (a forged callback) carrying a valid code.
    setup
        .stub
        .set_authorize_outcome(AuthorizeOutcome::WrongState);
    let request = json!({"identifier": "on_poll", "asset_id": "forged", "config": config});
    let login = setup.oauth_login(&request, &[], true);
    assert_eq!(login.run.code, 1, "{}", setup.context(&login.run));
    let response = login.run.json();
    assert_eq!(response["status"], "failed");
    assert!(message(&response).contains("state"), "{response}");
    let forged_state = login.authorize.expect("an authorization URL")["state"].clone();
    assert_eq!(
        setup.stub.token_request_count("authorization_code"),
        0,
        "the forged code was exchanged"
    );
    // Nothing was stored: a poll has no refresh token to use.
    let (run, response) = setup.poll("forged", &config);
    assert_eq!(run.code, 1, "{}", setup.context(&run));
    let text = message(&response);
    assert!(
        text.to_lowercase().contains("refresh token") || text.contains("refresh_token"),
        "{text}"
    );
    assert!(text.contains("oauth login"), "{text}");
    assert_eq!(setup.token_requests(), 0);

    // The user refuses consent; a given redirect URI is used as is.
    setup.stub.set_authorize_outcome(AuthorizeOutcome::Deny);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let request = json!({"asset_id": "denied", "config": config});
    let login = setup.oauth_login(&request, &["--redirect-uri", &redirect], false);
    assert_eq!(login.run.code, 1, "{}", setup.context(&login.run));
    let response = login.run.json();
    assert_eq!(response["status"], "failed");
    let text = message(&response);
    assert!(text.contains("access_denied"), "{text}");
    assert!(text.contains(DENIED_DESCRIPTION), "{text}");
    let authorize = login.authorize.expect("an authorization URL");
    assert_eq!(authorize["redirect_uri"], redirect);
    assert_ne!(authorize["state"], forged_state, "the state is random");
    assert_eq!(setup.token_requests(), 0);
    let (run, _) = setup.poll("denied", &config);
    assert_eq!(run.code, 1, "{}", setup.context(&run));

    setup.assert_no_secrets();
}

#[test]
fn no_token_or_secret_in_any_output_file_or_transcript_of_oauth_runs() {
    let setup = Setup::new();
    setup.stub.set_rotate_refresh_tokens(true);
    let config = setup.config();
    let transcripts = tempfile::tempdir().unwrap();

    // Interactive login, then a recorded poll and a recorded connectivity test.
    let login = setup.oauth_login(&json!({"asset_id": "leaks", "config": config}), &[], false);
    assert_eq!(login.run.code, 0, "{}", setup.context(&login.run));
    for (name, identifier, parameters) in [
        (
            "poll.transcript",
            "on_poll",
            json!({"container_count": 4_294_967_295_u64}),
        ),
        (
            "connectivity.transcript",
            "test_asset_connectivity",
            json!({}),
        ),
    ] {
        let path = transcripts.path().join(name);
        let request = json!({"identifier": identifier, "asset_id": "leaks", "config": config,
            "parameters": [parameters]});
        let run = setup.run_env(
            &["--record", path.to_str().unwrap()],
            request.to_string().as_bytes(),
            &[],
        );
        assert_eq!(run.code, 0, "{}", setup.context(&run));
        let text = std::fs::read_to_string(&path).expect("a transcript");
        assert!(text.contains("\\<redacted>"), "{text}");
        assert!(text.contains("AUTHENTICATE"), "{text}");
        setup.extra_files.borrow_mut().push(path);
    }

    // Refreshes (with rotation) under trace logging, in both log formats, with a
    // config refresh token and a client secret that the stub knows.
    let rt = setup.stub.new_refresh_token(USER);
    let with_rt = setup.config_with(&rt);
    for format in ["text", "json"] {
        setup.stub.revoke_access_tokens();
        let request = json!({"identifier": "on_poll", "asset_id": "leaks", "config": config,
            "parameters": [{}]});
        let run = setup.run_env(
            &["--log-format", format],
            request.to_string().as_bytes(),
            &[("SOAR_IMAP_LOG", "trace")],
        );
        assert_eq!(run.code, 0, "{}", setup.context(&run));
        let request = json!({"identifier": "test_asset_connectivity", "asset_id": format!("trace-{format}"),
            "config": with_rt});
        let run = setup.run_env(
            &["--log-format", format],
            request.to_string().as_bytes(),
            &[("SOAR_IMAP_LOG", "trace")],
        );
        assert_eq!(run.code, 0, "{}", setup.context(&run));
    }
    // Failures: a revoked refresh token, a wrong client secret.
    let dead = setup.stub.new_refresh_token(USER);
    setup.stub.revoke_refresh_token(&dead);
    let (run, _) = setup.poll("revoked", &setup.config_with(&dead));
    assert_eq!(run.code, 1, "{}", setup.context(&run));
    let mut wrong = setup.config_with(&rt);
    let wrong_secret = random_token("Cs-wrong");
    wrong["client_secret"] = json!(wrong_secret);
    let (run, _) = setup.poll("wrong-secret", &wrong);
    assert_eq!(run.code, 1, "{}", setup.context(&run));
    assert!(!run.stdout.contains(&wrong_secret) && !run.stderr.contains(&wrong_secret));
    let issued = setup.stub.access_tokens().len();
    assert!(issued >= 4, "{issued} access tokens issued");
    setup.assert_no_secrets();
}

#[test]
fn a_stateless_run_hands_the_tokens_back_to_the_platform_and_writes_nothing() {
    let setup = Setup::new();
    let rt = setup.stub.new_refresh_token(USER);
    let untouched = tempfile::tempdir().unwrap();
    let mut config = setup.config_with(&rt);
    config["data_dir"] = json!(untouched.path());
    let request = |state: &Value| {
        json!({"identifier": "on_poll", "asset_id": "platform-owned", "config": config,
               "parameters": [{"container_count": 4_294_967_295_u64}], "state": state})
    };
    let run = setup.run_env(&[], request(&json!({})).to_string().as_bytes(), &[]);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    let response = run.json();
    assert_eq!(new_containers(&response), FIXTURES.len());
    // The platform owns the state, tokens included: they come back in it, in plain JSON.
    let state = response["state"].clone();
    let blob = state["secrets"]["oauth_token"]
        .as_str()
        .expect("tokens in the state");
    let issued = setup.stub.token_requests()[0].access_token.clone().unwrap();
    assert!(blob.contains(&issued), "the state holds the access token");
    // ...and nowhere else in the response.
    let mut without_state = response.clone();
    without_state.as_object_mut().unwrap().remove("state");
    assert!(!without_state.to_string().contains(&issued));
    assert!(!without_state.to_string().contains(&rt));
    assert_eq!(
        std::fs::read_dir(untouched.path()).unwrap().count(),
        0,
        "a stateless run wrote under data_dir"
    );

    // The next run with that state reuses the access token: no new token request.
    setup.server.save("INBOX", &small_email(7));
    let run = setup.run_env(&[], request(&state).to_string().as_bytes(), &[]);
    assert_eq!(run.code, 0, "{}", setup.context(&run));
    assert_eq!(new_containers(&run.json()), 1);
    assert_eq!(
        setup.token_requests(),
        1,
        "{:?}",
        setup.stub.token_requests()
    );
    assert!(!run.stderr.contains(&issued) && !run.stderr.contains(&rt));
}
