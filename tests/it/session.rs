//! The IMAP session layer against a real Dovecot: search, size probe and batched fetch.

use std::time::Duration;

use soar_imap::imap::{
    Auth, ConnectOptions, Link, MailSession, Security, connect_and_login, search_all,
};

use crate::dovecot::{Dovecot, PASSWORD, USER};

fn message(n: u32) -> Vec<u8> {
    format!("From: sender{n}@example.com\r\nTo: soc@example.org\r\nSubject: message {n}\r\nMessage-ID: <{n}@example.com>\r\n\r\nBody {n}: https://site{n}.example.com/x\r\n").into_bytes()
}

#[test]
fn batched_peek_fetch_returns_exact_bytes_and_marks_nothing_read() {
    let server = Dovecot::start();
    for n in 1..=12 {
        server.save("INBOX", &message(n));
    }
    let options = ConnectOptions {
        server: "localhost".into(),
        port: server.imaps_port,
        security: Security::ImplicitTls,
        verify_server_cert: true,
        ca_cert: Some(server.ca_pem()),
        allow_plaintext_auth: false,
        timeout: Duration::from_secs(10),
    };
    let auth = Auth::Login {
        username: USER,
        password: PASSWORD,
    };
    let mut session = connect_and_login(&Link::Live, &options, auth)
        .unwrap()
        .session;
    let status = session.examine("INBOX").unwrap();
    assert_eq!(status.exists, 12);
    let uids = search_all(&mut session, 5, status.uid_next.unwrap()).unwrap();
    assert_eq!(uids, (5..=12).collect::<Vec<u32>>());
    // Above the highest UID: nothing (not the last message, as `13:*` would give).
    assert!(session.search_uids(13, 20).unwrap().is_empty());

    let sizes = session.fetch_sizes(&uids).unwrap();
    assert_eq!(sizes.len(), 8);
    assert!(
        sizes
            .iter()
            .all(|&(uid, size)| size as usize == message(uid).len())
    );
    let fetched = session.fetch_messages(&[3, 4, 99]).unwrap();
    assert_eq!(
        fetched.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [3, 4],
        "UID 99 does not exist"
    );
    for m in &fetched {
        assert_eq!(m.raw, message(m.uid));
    }
    let headers = session.fetch_headers(&[5]).unwrap();
    assert!(headers[0].raw.starts_with(b"From: sender5@example.com"));
    assert!(!headers[0].raw.windows(4).any(|w| w == b"Body"));
    session.logout().unwrap();
    assert!(
        server
            .flags("INBOX")
            .iter()
            .all(|(_, f)| !f.contains("\\Seen")),
        "{:?}",
        server.flags("INBOX")
    );
}
