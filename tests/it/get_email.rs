//! `get email` against a real Dovecot: by UID (any folder), ingesting, and by container id.

use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD, USER},
    support::{Run, run_json},
};

const PHISH: &[u8] = b"From: =?utf-8?Q?J=C3=B6rg?= <jorg@evil-login.com>\r\nTo: soc@example.org\r\nSubject: =?utf-8?Q?Konto_gesperrt?= now\r\nMessage-ID: <get-1@evil-login.com>\r\nReceived: from a\r\nReceived: from b\r\n\r\nLogin at https://evil-login.com/verify\r\n";

fn config(server: &Dovecot) -> Value {
    json!({"server": "localhost", "port": server.imaps_port, "use_ssl": true, "username": USER,
           "password": PASSWORD, "ca_cert": server.ca_pem(), "timeout_secs": 10})
}

fn get(config: &Value, parameter: &Value, home: &std::path::Path) -> (Run, Value) {
    let run = run_json(
        &json!({"identifier": "get_email", "asset_id": "phish", "config": config, "parameters": [parameter]}),
        home,
    );
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "password leaked"
    );
    let response = run.json();
    (run, response)
}

#[test]
fn by_uid_decodes_headers_ingests_once_and_finds_the_container_again() {
    let server = Dovecot::start();
    server.create_mailbox("Archive");
    server.save(
        "INBOX",
        b"From: a@example.com\r\nSubject: unrelated\r\n\r\nhi\r\n",
    );
    server.save("Archive", PHISH);
    let home = tempfile::tempdir().unwrap();
    let config = config(&server);

    let (run, response) = get(
        &config,
        &json!({"id": "1", "folder": "Archive"}),
        home.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(response["message"], "Email not ingested.");
    let headers = &response["action_results"][0]["data"][0];
    assert_eq!(headers["Subject"], "Konto gesperrt now");
    assert_eq!(headers["From"], "Jörg <jorg@evil-login.com>");
    assert_eq!(headers["Received"], "from b", "the last value wins");
    assert!(response["containers"].as_array().unwrap().is_empty());
    assert!(
        run.stderr.contains("Selected folder 'Archive'"),
        "{}",
        run.stderr
    );

    let (run, response) = get(
        &config,
        &json!({"id": 1, "folder": "Archive", "ingest_email": true}),
        home.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let container_id = response["action_results"][0]["summary"]["container_id"]
        .as_i64()
        .unwrap();
    assert_eq!(response["message"], format!("Container id: {container_id}"));
    let container = &response["containers"][0];
    assert_eq!(container["id"], container_id);
    assert_eq!(
        container["source_data_identifier"],
        format!("{} : 1", soar_imap::sdi::md5_hex(b"Archive"))
    );
    assert!(
        container["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["cef"]["requestURL"] == "https://evil-login.com/verify")
    );

    // Again: the ledger recognises it; same container id, flagged duplicate.
    let (_, again) = get(
        &config,
        &json!({"id": 1, "folder": "Archive", "ingest_email": true}),
        home.path(),
    );
    assert_eq!(
        again["action_results"][0]["summary"]["container_id"],
        container_id
    );
    assert_eq!(again["containers"][0]["duplicate"], true);

    // By container id: no server needed, same headers.
    let (run, by_id) = get(
        &json!({"data_dir": home.path()}),
        &json!({"container_id": container_id}),
        home.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        by_id["action_results"][0]["data"][0]["Subject"],
        "Konto gesperrt now"
    );

    let (run, missing) = get(&config, &json!({"container_id": 999}), home.path());
    assert_eq!(run.code, 1);
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .starts_with("container 999 is not in this asset's ledger")
    );
    assert!(
        server
            .flags("Archive")
            .iter()
            .all(|(_, f)| !f.contains("\\Seen"))
    );
}

#[test]
fn unknown_uid_and_bad_id_fail_clearly() {
    let server = Dovecot::start();
    server.save("INBOX", PHISH);
    let home = tempfile::tempdir().unwrap();
    let (run, response) = get(&config(&server), &json!({"id": 42}), home.path());
    assert_eq!(run.code, 1);
    assert_eq!(
        response["message"],
        "no email with UID 42 in folder \"inbox\""
    );
    let (run, response) = get(&config(&server), &json!({"id": "1:*"}), home.path());
    assert_eq!(run.code, 1);
    assert_eq!(
        response["message"],
        "parameters.id must be a positive integer, got \"1:*\""
    );
}
