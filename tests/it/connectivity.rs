//! `test connectivity` against a real Dovecot: every transport, and each way it fails.

use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD, USER},
    support::{Run, run_json},
};

fn config(server: &Dovecot, tls: bool) -> Value {
    json!({
        "server": "localhost",
        "port": if tls { server.imaps_port } else { server.imap_port },
        "use_ssl": tls,
        "username": USER,
        "password": PASSWORD,
        "ca_cert": server.ca_pem(),
        "timeout_secs": 10,
    })
}

fn test(config: &Value) -> (Run, Value) {
    let home = tempfile::tempdir().unwrap();
    let run = run_json(
        &json!({"identifier": "test_asset_connectivity", "config": config}),
        home.path(),
    );
    let response = run.json();
    // Whatever happened, the password is nowhere.
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "password leaked"
    );
    (run, response)
}

#[test]
fn passes_over_implicit_tls_and_starttls_with_a_diagnostic_report() {
    let server = Dovecot::start();
    server.save(
        "INBOX",
        b"From: a@example.com\r\nSubject: one\r\n\r\nhi\r\n",
    );
    server.save(
        "INBOX",
        b"From: b@example.com\r\nSubject: two\r\n\r\nhi\r\n",
    );
    for (tls, transport) in [(true, "implicit TLS"), (false, "STARTTLS")] {
        let (run, response) = test(&config(&server, tls));
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, server.log());
        assert_eq!(response["message"], "Connectivity test passed");
        let report = &response["action_results"][0]["data"][0];
        assert_eq!(report["transport"], transport);
        // The test server allows TLS 1.2 and later; OpenSSL 3 negotiates 1.3.
        assert!(
            matches!(report["tls_protocol"].as_str(), Some("TLSv1.3" | "TLSv1.2")),
            "{report}"
        );
        assert!(
            !report["tls_cipher"].as_str().unwrap().is_empty(),
            "{report}"
        );
        assert_eq!(report["message_count"], 2);
        assert!(report["uidvalidity"].as_u64().unwrap() > 0);
        assert_eq!(report["uidnext"], 3);
        assert_eq!(report["folder"], "inbox");
        assert_eq!(report["auth_mechanism"], "LOGIN");
        assert!(
            report["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "IMAP4rev1"),
            "{report}"
        );
        assert_eq!(report["certificate"]["subject"], "CN=localhost");
        assert_eq!(report["certificate"]["issuer"], "CN=soar-imap test CA");
        assert!(
            report["certificate"]["not_after"]
                .as_str()
                .unwrap()
                .ends_with("GMT")
        );
        for line in [
            "Initiated connection to server",
            "User logged in",
            "Got folder listing",
            "Selected folder 'inbox'",
        ] {
            assert!(
                run.stderr.contains(line),
                "progress line {line:?} missing:\n{}",
                run.stderr
            );
        }
    }
    // Nothing was marked read by examining the folder.
    assert!(
        server
            .flags("INBOX")
            .iter()
            .all(|(_, f)| !f.contains("\\Seen"))
    );
}

#[test]
fn each_failure_is_clear_exit_1_and_leaks_no_password() {
    let server = Dovecot::start();

    let mut wrong = config(&server, true);
    wrong["password"] = json!("not-the-password");
    let (run, response) = test(&wrong);
    assert_eq!(run.code, 1);
    assert_eq!(
        response["message"],
        "Connectivity test failed: cannot log in: [AUTHENTICATIONFAILED] Authentication failed."
    );

    let mut untrusted = config(&server, true);
    untrusted.as_object_mut().unwrap().remove("ca_cert");
    let (run, response) = test(&untrusted);
    assert_eq!(run.code, 1);
    let message = response["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Connectivity test failed: TLS handshake with localhost:{} failed: ",
            server.imaps_port
        )),
        "{message}"
    );
    assert!(message.contains("certificate verify failed"), "{message}");

    // The same over STARTTLS: the password is never sent before the certificate is checked.
    let mut untrusted_starttls = config(&server, false);
    untrusted_starttls
        .as_object_mut()
        .unwrap()
        .remove("ca_cert");
    let (run, _) = test(&untrusted_starttls);
    assert_eq!(run.code, 1);

    let refused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut refused = config(&server, true);
    refused["port"] = json!(refused_port);
    let (run, response) = test(&refused);
    assert_eq!(run.code, 1);
    let message = response["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Connectivity test failed: cannot connect to localhost:{refused_port}: "
        )),
        "{message}"
    );

    let mut missing = config(&server, true);
    missing["folder"] = json!("No Such Folder");
    let (run, response) = test(&missing);
    assert_eq!(run.code, 1);
    let message = response["message"].as_str().unwrap();
    assert!(
        message.starts_with("Connectivity test failed: cannot examine folder \"No Such Folder\": "),
        "{message}"
    );

    // Quotes and backslashes are escaped on the wire: a clean "no such folder", not a BAD.
    let mut quoted = config(&server, true);
    quoted["folder"] = json!("a\"b\\c");
    let (run, response) = test(&quoted);
    assert_eq!(run.code, 1);
    assert!(
        response["message"]
            .as_str()
            .unwrap()
            .contains("cannot examine folder \"a\\\"b\\\\c\""),
        "{}",
        response["message"]
    );

    let mut injected = config(&server, true);
    injected["folder"] = json!("INBOX\r\na2 DELETE INBOX");
    let (run, response) = test(&injected);
    assert_eq!(run.code, 1);
    assert!(
        response["message"]
            .as_str()
            .unwrap()
            .starts_with("config.folder must"),
        "{}",
        response["message"]
    );
}
