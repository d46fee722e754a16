//! The subcommands for people (`parse`, `test`, `poll`, `get`): the same response, exit
//! status and delivery as the JSON request each stands for, secrets from the environment
//! and never on the command line, clear errors for bad input, help with examples, and a
//! progress line only at a terminal.

use std::{
    io::{Read as _, Write as _},
    path::Path,
    process::{Command, Stdio},
    thread,
};

use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD},
    poll_faults::{RUN_LIMIT, append_all, config, ledger_count, message},
    support::{Run, collect, comparable, comparable_in, files_under, root, run_json, wait_bounded},
};

/// The variables a secret may come from, cleared in every run unless the test sets one.
const SECRET_VARIABLES: [&str; 3] = [
    "SOAR_IMAP_PASSWORD",
    "SOAR_IMAP_CLIENT_SECRET",
    "SOAR_IMAP_REFRESH_TOKEN",
];

/// Run `soar-imap ARGS` with `stdin`, `SOAR_IMAP_HOME` = `home` and `env`, killing it
/// and failing the test past [`RUN_LIMIT`]; checks the password reached neither stdout
/// nor stderr, and that no test passes it as an argument.
fn soar(args: &[&str], stdin: &[u8], home: &Path, env: &[(&str, &str)]) -> Run {
    assert!(
        args.iter().all(|a| !a.contains(PASSWORD)),
        "a secret on the command line"
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_soar-imap"));
    command
        .args(args)
        .env("SOAR_IMAP_HOME", home)
        .env_remove("SOAR_IMAP_LOG");
    for variable in SECRET_VARIABLES {
        command.env_remove(variable);
    }
    let mut child = command
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn soar-imap");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // The binary may exit before reading everything (--help, a bad argument).
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let run = collect(child, RUN_LIMIT, &format!("soar-imap {args:?}"));
    feeder.join().unwrap();
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "the password leaked:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run
}

fn fixture(name: &str) -> String {
    root()
        .join("fixtures/eml")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

const PHISH: &str = "phishing/003-invoice-html-attachment.eml";
const LURE: &str = "phishing/004-qr-code-lure.eml";
/// An email in ISO-8859-1: not UTF-8, so no JSON string can carry it as it is.
const LATIN1: &str = "charset/007-iso-8859-1-euro.eml";

/// The stdout lines' layout: the response is streamed a container a line, as the JSON
/// protocol streams it, whatever the contents.
fn layout(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .map(|line| line.chars().take(15).collect())
        .collect()
}

#[test]
fn parse_gives_the_response_of_the_json_request_naming_the_same_files() {
    let home = tempfile::tempdir().unwrap();
    let files = [fixture(PHISH), fixture(LURE)];
    let cli = soar(&["parse", &files[0], &files[1]], b"", home.path(), &[]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let wire = run_json(
        &json!({"identifier": "parse_email",
                "parameters": [{"path": files[0]}, {"path": files[1]}]}),
        home.path(),
    );
    assert_eq!(wire.code, 0, "{}", wire.stderr);
    assert_eq!(comparable(&cli), comparable(&wire));
    assert_eq!(layout(&cli), layout(&wire));
    let response = cli.json();
    assert_eq!(response["containers"].as_array().unwrap().len(), 2);
    assert_eq!(response["action_results"][1]["parameter"]["path"], files[1]);
    // The email's attachment is in the vault of the data directory, as the request's is.
    let vault = response["containers"][0]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Vault Artifact")
        .expect("a vault artifact")
        .clone();
    let id = vault["cef"]["vaultId"].as_str().unwrap();
    assert!(home.path().join("vault").join(&id[..2]).join(id).is_file());
}

#[test]
fn parse_with_folder_and_id_gives_every_email_those_identifiers() {
    let home = tempfile::tempdir().unwrap();
    let files = [fixture(PHISH), fixture(LURE)];
    let cli = soar(
        &[
            "parse",
            "--folder",
            "Phish Reports",
            "--id",
            "42",
            &files[0],
            &files[1],
        ],
        b"",
        home.path(),
        &[],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let wire = run_json(
        &json!({"identifier": "parse_email", "parameters": [
            {"path": files[0], "folder": "Phish Reports", "id": 42},
            {"path": files[1], "folder": "Phish Reports", "id": 42}]}),
        home.path(),
    );
    assert_eq!(comparable(&cli), comparable(&wire));
    let sdi = format!("{} : 42", soar_imap::sdi::md5_hex(b"Phish Reports"));
    for container in cli.json()["containers"].as_array().unwrap() {
        assert_eq!(container["source_data_identifier"], sdi);
    }
}

#[test]
fn parse_dash_reads_the_email_from_stdin_as_its_file_would_give_it() {
    let home = tempfile::tempdir().unwrap();
    let phish = fixture(PHISH);
    let raw = std::fs::read(&phish).unwrap();
    let cli = soar(&["parse", "-"], &raw, home.path(), &[]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    // As raw_email, as the JSON request would carry it.
    let wire = run_json(
        &json!({"identifier": "parse_email",
                "parameters": [{"raw_email": String::from_utf8(raw).unwrap()}]}),
        home.path(),
    );
    assert_eq!(comparable(&cli), comparable(&wire));
    let from_file = soar(&["parse", &phish], b"", home.path(), &[]);
    assert_eq!(cli.json()["containers"], from_file.json()["containers"]);

    // An email in ISO-8859-1 cannot be a JSON string: it goes in as a temporary file,
    // and gives the container its file gives, raw_email_encoding included.
    let latin1 = fixture(LATIN1);
    let cli = soar(
        &["parse", "-"],
        &std::fs::read(&latin1).unwrap(),
        home.path(),
        &[],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let from_file = soar(&["parse", &latin1], b"", home.path(), &[]);
    assert_eq!(cli.json()["containers"], from_file.json()["containers"]);
    assert_eq!(
        cli.json()["containers"][0]["data"]["raw_email_encoding"],
        "latin-1"
    );
    let spooled = cli.json()["action_results"][0]["parameter"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!Path::new(&spooled).exists(), "{spooled} was left behind");
}

#[test]
fn parse_pretty_prints_the_same_json_document_indented() {
    let home = tempfile::tempdir().unwrap();
    let files = [fixture(PHISH), fixture(LURE)];
    let plain = soar(&["parse", &files[0], &files[1]], b"", home.path(), &[]);
    let pretty = soar(
        &["parse", "--pretty", &files[0], &files[1]],
        b"",
        home.path(),
        &[],
    );
    assert_eq!(pretty.code, 0, "{}", pretty.stderr);
    // Run::json refuses anything after one document.
    assert_eq!(comparable(&pretty), comparable(&plain));
    assert!(pretty.stdout.starts_with("{\n  \""), "{}", pretty.stdout);
    assert!(pretty.stdout.lines().count() > 100);
    assert!(pretty.stdout.ends_with("}\n"));
}

#[test]
fn parse_of_a_missing_file_fails_as_the_json_request_does_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let phish = fixture(PHISH);
    let cli = soar(
        &["parse", &phish, "/nonexistent/report.eml"],
        b"",
        home.path(),
        &[],
    );
    let wire = run_json(
        &json!({"identifier": "parse_email",
                "parameters": [{"path": phish}, {"path": "/nonexistent/report.eml"}]}),
        home.path(),
    );
    // The email that could be read is parsed; the action fails for the other (exit 1).
    assert_eq!(cli.code, 1);
    assert_eq!(comparable(&cli), comparable(&wire));
    let response = cli.json();
    assert_eq!(response["containers"].as_array().unwrap().len(), 1);
    assert_eq!(
        response["action_results"][1]["message"],
        "cannot read parameters.path \"/nonexistent/report.eml\": No such file or directory (os error 2)"
    );
}

/// A Dovecot with `count` reports in `folder`, and the asset file of an asset reading it
/// (`password` in it, or none), in a directory of its own.
struct Asset {
    server: Dovecot,
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    /// The configuration, password included, for the equivalent JSON requests.
    config: Value,
}

const FOLDER: &str = "Phish Reports";

impl Asset {
    fn new(count: u32, password: Option<&str>) -> Asset {
        let server = Dovecot::start();
        server.create_mailbox(FOLDER);
        let messages: Vec<Vec<u8>> = (1..=count).map(|n| message("cli", n)).collect();
        append_all(&server, FOLDER, &messages);
        let config = config(&server, server.imaps_port, FOLDER, 2000, 100);
        let mut in_file = config.clone();
        match password {
            Some(password) => in_file["password"] = json!(password),
            None => {
                in_file.as_object_mut().unwrap().remove("password");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phish.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&in_file).unwrap()).unwrap();
        Asset {
            server,
            dir,
            path,
            config,
        }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

/// The right password, in the environment.
const ENV_PASSWORD: [(&str, &str); 1] = [("SOAR_IMAP_PASSWORD", PASSWORD)];

/// No file under `dir` holds the password.
fn no_password_under(dir: &Path) {
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "{} holds the password",
            file.display()
        );
    }
}

#[test]
fn poll_with_the_password_in_the_environment_ingests_the_folder_as_the_request_does() {
    let asset = Asset::new(7, None);
    let before = std::fs::read(&asset.path).unwrap();
    let home = tempfile::tempdir().unwrap();
    let cli = soar(
        &["poll", "--asset", asset.path()],
        b"",
        home.path(),
        &ENV_PASSWORD,
    );
    assert_eq!(cli.code, 0, "{}\n{}", cli.stdout, cli.stderr);
    let response = cli.json();
    assert_eq!(
        crate::poll::new_uids(&response, FOLDER),
        (1..=7).collect::<Vec<_>>()
    );
    assert_eq!(
        response["action_results"][0]["summary"]["emails_ingested"],
        7
    );
    // State is scoped by the asset file's name: "phish".
    assert_eq!(ledger_count(home.path(), "phish"), 7);
    assert!(cli.stderr.contains("asset=phish"), "{}", cli.stderr);

    // The JSON request of a scheduled poll of asset "phish", in a data directory of its
    // own, gives the same response and the same log lines.
    let other = tempfile::tempdir().unwrap();
    let wire = run_json(
        &json!({"identifier": "on_poll", "asset_id": "phish", "config": asset.config,
                "parameters": [{"container_count": 4_294_967_295_u64}]}),
        other.path(),
    );
    assert_eq!(wire.code, 0, "{}", wire.stderr);
    assert_eq!(
        comparable_in(&cli, home.path()),
        comparable_in(&wire, other.path())
    );
    let timeless = |run: &Run| -> Vec<String> {
        run.stderr
            .lines()
            .filter(|l| !l.contains("Time taken"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(timeless(&cli), timeless(&wire));
    assert!(!cli.stderr.contains('\r') && !cli.stderr.contains("emails/s"));

    // Nothing new the second time: the position is the asset's.
    let again = soar(
        &["poll", "--asset", asset.path()],
        b"",
        home.path(),
        &ENV_PASSWORD,
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(crate::poll::new_uids(&again.json(), FOLDER).is_empty());

    assert_eq!(
        std::fs::read(&asset.path).unwrap(),
        before,
        "asset file changed"
    );
    no_password_under(home.path());
    no_password_under(asset.dir.path());
}

#[test]
fn poll_limit_caps_each_run_and_asset_id_scopes_the_position() {
    let asset = Asset::new(5, Some(PASSWORD));
    let home = tempfile::tempdir().unwrap();
    let poll = |extra: &[&str]| {
        let mut args = vec!["poll", "--asset", asset.path()];
        args.extend_from_slice(extra);
        let run = soar(&args, b"", home.path(), &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        crate::poll::new_uids(&run.json(), FOLDER)
    };
    assert_eq!(poll(&["--limit", "2"]), [1, 2]);
    assert_eq!(poll(&["--limit", "2"]), [3, 4]);
    // Another asset id starts from the beginning of the folder.
    assert_eq!(poll(&["--asset-id", "other", "--limit", "1"]), [1]);
    assert_eq!(poll(&[]), [5]);
    assert_eq!(ledger_count(home.path(), "phish"), 5);
    assert_eq!(ledger_count(home.path(), "other"), 1);
}

#[test]
fn the_environment_password_wins_over_a_wrong_one_in_the_file() {
    const WRONG: &str = "Wrong-password-in-the-asset-file";
    let asset = Asset::new(1, Some(WRONG));
    let home = tempfile::tempdir().unwrap();
    let refused = soar(&["test", "--asset", asset.path()], b"", home.path(), &[]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Connectivity test failed: cannot log in"),
        "{message}"
    );
    assert!(!refused.stdout.contains(WRONG) && !refused.stderr.contains(WRONG));

    let passed = soar(
        &["test", "--asset", asset.path()],
        b"",
        home.path(),
        &ENV_PASSWORD,
    );
    assert_eq!(passed.code, 0, "{}", why(&passed, &asset));
    assert_eq!(passed.json()["message"], "Connectivity test passed");
}

/// What a failed run said, and the server's log, for failure messages.
fn why(run: &Run, asset: &Asset) -> String {
    format!("{}\n{}\n{}", run.stdout, run.stderr, asset.server.log())
}

#[test]
fn test_and_get_run_end_to_end() {
    let asset = Asset::new(2, None);
    let home = tempfile::tempdir().unwrap();

    let test = soar(
        &["test", "--asset", asset.path(), "--pretty"],
        b"",
        home.path(),
        &ENV_PASSWORD,
    );
    assert_eq!(test.code, 0, "{}", why(&test, &asset));
    let report = &test.json()["action_results"][0]["data"][0];
    assert_eq!(report["folder"], FOLDER);
    assert_eq!(report["message_count"], 2);
    assert!(test.stdout.starts_with("{\n"));

    let get = soar(
        &["get", "--asset", asset.path(), "--uid", "1", "--ingest"],
        b"",
        home.path(),
        &ENV_PASSWORD,
    );
    assert_eq!(get.code, 0, "{}", why(&get, &asset));
    let response = get.json();
    assert_eq!(response["identifier"], "get_email");
    assert_eq!(
        response["action_results"][0]["data"][0]["Subject"],
        "cli report 1"
    );
    let containers = response["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let sdi = format!("{} : 1", soar_imap::sdi::md5_hex(FOLDER.as_bytes()));
    assert_eq!(containers[0]["source_data_identifier"], sdi);
    let id = response["action_results"][0]["summary"]["container_id"]
        .as_i64()
        .expect("container_id");
    assert_eq!(ledger_count(home.path(), "phish"), 1);

    // The container again, from the ledger alone: no password needed.
    let by_id = soar(
        &[
            "get",
            "--asset",
            asset.path(),
            "--container-id",
            &id.to_string(),
            "--ingest",
        ],
        b"",
        home.path(),
        &[],
    );
    assert_eq!(by_id.code, 0, "{}", by_id.stderr);
    assert_eq!(by_id.json()["containers"][0]["source_data_identifier"], sdi);

    // Another folder by UID.
    let inbox = soar(
        &[
            "get",
            "--asset",
            asset.path(),
            "--uid",
            "1",
            "--folder",
            "INBOX",
        ],
        b"",
        home.path(),
        &ENV_PASSWORD,
    );
    assert_eq!(inbox.code, 1, "INBOX is empty: {}", inbox.stdout);
    no_password_under(home.path());
}

#[test]
fn bad_input_exits_2_with_a_json_error_saying_what_was_wrong_and_expected() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("assets");
    std::fs::create_dir(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let not_json = write("not-json.json", "server = imap.example.com\n");
    let array = write("array.json", "[{\"server\": \"imap.example.com\"}]");
    let request = write(
        "request.json",
        "{\"asset_id\": \"7\", \"config\": {\"server\": \"imap.example.com\"}}",
    );
    let good = write("good.json", "{\"server\": \"imap.example.com\"}");
    let directory = dir.to_str().unwrap().to_owned();
    let phish = fixture(PHISH);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["poll", "--asset", "/nonexistent/phish.json"],
            "cannot read the asset file \"/nonexistent/phish.json\" (--asset): No such file or directory (os error 2); expected a JSON file holding the asset's configuration",
        ),
        (
            vec!["test", "--asset", &directory],
            "(--asset): Is a directory (os error 21); expected a JSON file",
        ),
        (
            vec!["get", "--asset", &not_json, "--uid", "1"],
            "(--asset) is not valid JSON (expected value at line 1 column 1); expected the asset's configuration, a JSON object",
        ),
        (
            vec!["poll", "--asset", &array],
            "(--asset) must hold a JSON object (the asset's configuration), got an array",
        ),
        (
            vec!["poll", "--asset", &request],
            "holds a whole request (it has a \"config\" object); it must hold the asset's configuration itself",
        ),
        (
            vec!["get", "--asset", &good, "--uid", "0"],
            "invalid value '0' for '--uid <N>': expected an IMAP UID, a positive integer",
        ),
        (
            vec!["get", "--asset", &good, "--uid", "1:*"],
            "invalid value '1:*' for '--uid <N>': expected an IMAP UID, a positive integer",
        ),
        (
            vec!["get", "--asset", &good],
            "the following required arguments were not provided: --uid <N>",
        ),
        (
            vec!["poll", "--asset", &good, "--limit", "0"],
            "invalid value '0' for '--limit <N>': expected a positive number of emails",
        ),
        (
            vec!["poll", "--asset", &good, "--no-such-flag"],
            "unexpected argument '--no-such-flag' found",
        ),
        (
            vec!["poll"],
            "required arguments were not provided: --asset <ASSET.json>",
        ),
        (
            vec!["parse"],
            "required arguments were not provided: <FILE>...",
        ),
        (
            vec!["parse", "--request", &good, &phish],
            "--request does not go with `soar-imap parse`",
        ),
        (
            vec!["parse", "-", "-"],
            "`-` (the email on stdin) can be given only once",
        ),
    ];
    for (args, expected) in cases {
        let run = soar(&args, b"", home.path(), &[]);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        let response = run.json();
        assert_eq!(response["status"], "failed");
        assert_eq!(response["error"]["kind"], "bad_request", "{args:?}");
        let message = response["message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{args:?}: {message:?} should contain {expected:?}"
        );
        // clap lists the missing arguments on lines of their own.
        let stderr = run.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            stderr.contains(expected),
            "{args:?}: stderr should say it too: {}",
            run.stderr
        );
        assert!(response["containers"].as_array().unwrap().is_empty());
    }
    // Nothing was polled or stored.
    assert!(!home.path().join("state.sqlite3").exists());
}

#[test]
fn each_subcommand_has_help_with_an_example_and_the_top_level_lists_them() {
    let home = tempfile::tempdir().unwrap();
    let top = soar(&["--help"], b"", home.path(), &[]);
    assert_eq!(top.code, 0);
    for subcommand in ["parse", "test", "poll", "get", "oauth"] {
        assert!(
            top.stdout.contains(&format!("\n  {subcommand} ")),
            "{subcommand} missing from:\n{}",
            top.stdout
        );
    }
    for subcommand in ["parse", "test", "poll", "get"] {
        for flag in ["--help", "-h"] {
            let help = soar(&[subcommand, flag], b"", home.path(), &[]);
            assert_eq!(help.code, 0, "{subcommand} {flag}");
            assert!(
                help.stdout.contains("Examples:\n")
                    && help.stdout.contains(&format!("soar-imap {subcommand} ")),
                "{subcommand} {flag}:\n{}",
                help.stdout
            );
            assert!(help.stderr.is_empty(), "{}", help.stderr);
        }
    }
    let poll = soar(&["help", "poll"], b"", home.path(), &[]);
    assert_eq!(poll.code, 0);
    assert!(poll.stdout.contains("*/5 * * * *"), "{}", poll.stdout);
}

/// Run `command` (a shell command line) with stdin, stdout and stderr on a terminal of
/// its own (util-linux `script`); what the terminal showed.
fn at_a_terminal(command: &str, home: &Path) -> String {
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command", command, "/dev/null"])
        .env("SOAR_IMAP_HOME", home)
        .env("SOAR_IMAP_PASSWORD", PASSWORD)
        .env_remove("SOAR_IMAP_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script (util-linux) for a terminal");
    let mut stdout = child.stdout.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = Vec::new();
        stdout.read_to_end(&mut s).map(|_| s)
    });
    let Some(status) = wait_bounded(&mut child, RUN_LIMIT) else {
        panic!("{command} did not finish within {RUN_LIMIT:?}");
    };
    let shown = String::from_utf8_lossy(&out.join().unwrap().unwrap()).into_owned();
    assert!(status.success(), "{command}: {status}\n{shown}");
    assert!(!shown.contains(PASSWORD), "the password leaked:\n{shown}");
    shown
}

#[test]
fn a_poll_at_a_terminal_shows_a_progress_line_under_whole_log_lines() {
    // Three batches of 50.
    let asset = Asset::new(120, None);
    let home = tempfile::tempdir().unwrap();
    let response = home.path().join("response.json");
    let bin = env!("CARGO_BIN_EXE_soar-imap");
    let shown = at_a_terminal(
        &format!(
            "{bin} poll --asset '{}' > '{}'",
            asset.path(),
            response.display()
        ),
        home.path(),
    );
    let stdout = std::fs::read_to_string(&response).unwrap();
    let response: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(response["containers"].as_array().unwrap().len(), 120);
    // A terminal turns the line feeds into CR LF.
    let shown = shown.replace("\r\n", "\n");
    let last = "ingested 120 of 120 emails (0 already ingested, 0 failed), ";
    assert!(shown.contains(last), "{shown:?}");
    assert!(
        shown.contains("ingested 50 of 120 emails") && shown.contains("ingested 100 of 120 emails"),
        "{shown:?}"
    );
    // The last thing shown is the final progress line, ended.
    let tail = shown.trim_end_matches('\n').rsplit('\n').next().unwrap();
    assert!(
        tail.starts_with(&format!("\x1b[?7l{last}")) && tail.ends_with(" emails/s\x1b[?7h"),
        "{tail:?}"
    );
    assert!(shown.ends_with("\x1b[?7h\n"), "{shown:?}");
    // Every log line is whole, each on a line of its own.
    for uid in [1, 50, 51, 120] {
        let line = format!("Parsing email uid: {uid}\n");
        assert_eq!(shown.matches(&line).count(), 1, "{line:?} in {shown:?}");
    }
    // What the terminal keeps of each row: after the last carriage return (the progress
    // line is taken down with CR and erase-line before each log line).
    assert!(
        shown
            .split('\n')
            .map(|row| row.rsplit('\r').next().unwrap())
            .filter(|row| row.contains("INFO"))
            .all(|row| !row.contains("emails/s")),
        "{shown:?}"
    );

    // The JSON protocol at a terminal: log lines only, as before.
    let request = home.path().join("request.json");
    std::fs::write(
        &request,
        json!({"identifier": "on_poll", "asset_id": "wire", "config": asset.config,
               "parameters": [{"container_count": 4_294_967_295_u64}]})
        .to_string(),
    )
    .unwrap();
    let shown = at_a_terminal(
        &format!("{bin} --request '{}' > /dev/null", request.display()),
        home.path(),
    );
    assert!(shown.contains("Parsing email uid: 120"), "{shown:?}");
    assert!(
        !shown.contains("emails/s") && !shown.contains("\x1b[2K"),
        "{shown:?}"
    );
}
