//! `AUTHENTICATE XOAUTH2` (Gmail, Microsoft 365): the bearer token framed as
//! `user=<name>\x01auth=Bearer <token>\x01\x01`, sent with the command itself when the
//! server offers SASL-IR, and tried once more with a fresh token after a refusal.

use std::io::{Read, Write};

use base64::Engine as _;

use super::{Client, ImapError, LiveSession, server_words};
use crate::secret::Secret;

/// The client side of the exchange. The first (empty) challenge is answered with the
/// token; any later challenge is the server's JSON error report, which RFC 7628 says to
/// answer with an empty line so the server can send its tagged NO.
struct Bearer(Vec<u8>);

impl ::imap::Authenticator for Bearer {
    type Response = Vec<u8>;

    fn process(&self, challenge: &[u8]) -> Self::Response {
        if challenge.is_empty() {
            self.0.clone()
        } else {
            Vec::new()
        }
    }
}

/// The SASL message for `username` and `token`.
fn payload(username: &str, token: &Secret) -> Vec<u8> {
    format!("user={username}\x01auth=Bearer {}\x01\x01", token.expose()).into_bytes()
}

/// The capabilities in the greeting's `[CAPABILITY ...]` code, upper-cased, if any.
fn greeting_capabilities(greeting: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(greeting);
    let upper = text.to_ascii_uppercase();
    let start = upper.find("[CAPABILITY ")? + "[CAPABILITY ".len();
    let end = start + upper[start..].find(']')?;
    Some(
        upper[start..end]
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// Log in with XOAUTH2 on a client whose greeting has been read (`greeting` is empty
/// when it was consumed before STARTTLS).
pub(super) fn login<S: Read + Write>(
    client: Client<S>,
    greeting: &[u8],
    username: &str,
    token: &mut dyn FnMut(bool) -> Result<Secret, String>,
) -> Result<LiveSession<S>, ImapError> {
    let Client {
        imap: mut client,
        feed,
    } = client;
    if username.contains(['\x01', '\r', '\n']) {
        return Err(ImapError::Login(
            "config.username contains a control character that XOAUTH2 cannot carry".into(),
        ));
    }
    let capabilities = match greeting_capabilities(greeting) {
        Some(capabilities) => capabilities,
        None => client
            .capabilities()
            .map_err(|e| ImapError::Protocol {
                step: "CAPABILITY",
                reason: server_words(&e),
            })?
            .iter()
            .map(|c| match c {
                imap_proto::Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
                imap_proto::Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
                imap_proto::Capability::Atom(a) => a.to_ascii_uppercase(),
            })
            .collect(),
    };
    if !capabilities.iter().any(|c| c == "AUTH=XOAUTH2") {
        let offered: Vec<&str> = capabilities
            .iter()
            .filter(|c| c.starts_with("AUTH="))
            .map(String::as_str)
            .collect();
        return Err(ImapError::Login(format!(
            "the server does not offer AUTH=XOAUTH2 (it offers {}); check config.server and that the account allows OAuth for IMAP",
            if offered.is_empty() {
                "no AUTH= mechanism".to_owned()
            } else {
                offered.join(" ")
            }
        )));
    }
    let initial_response = capabilities.iter().any(|c| c == "SASL-IR");
    let mut refreshed = false;
    loop {
        let bearer = Bearer(payload(
            username,
            &token(refreshed).map_err(ImapError::OAuth)?,
        ));
        // With SASL-IR the token rides on the command line and saves a round trip; the
        // imap crate formats `AUTHENTICATE <argument>`, so the argument carries both.
        let command = if initial_response {
            format!(
                "XOAUTH2 {}",
                base64::engine::general_purpose::STANDARD.encode(&bearer.0)
            )
        } else {
            "XOAUTH2".to_owned()
        };
        match client.authenticate(command, &bearer) {
            Ok(session) => {
                return Ok(LiveSession {
                    session,
                    feed,
                    streaming: None,
                });
            }
            Err((::imap::Error::No(no), returned)) if !refreshed => {
                tracing::warn!(
                    "The server refused the OAuth access token ({}); getting a new one",
                    no.information
                );
                client = returned;
                refreshed = true;
            }
            Err((error, _)) => {
                let words = server_words(&error);
                return Err(ImapError::Login(if refreshed {
                    format!("{words} (also with a freshly issued access token)")
                } else {
                    words
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::{cell::RefCell, rc::Rc};

    use crate::imap::script::Script;

    fn client(replies: &str) -> (Client<Script>, Rc<RefCell<Vec<u8>>>) {
        let (script, written) = Script::new(replies);
        (Client::new(script), written)
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    const SASL_IR: &[u8] = b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2] ready\r\n";

    #[test]
    fn token_goes_on_the_command_line_with_sasl_ir() {
        let (client, written) = client("a1 OK Logged in\r\n");
        let mut asked = Vec::new();
        let mut token = |fresh| {
            asked.push(fresh);
            Ok(Secret::new("tok-1".into()))
        };
        login(client, SASL_IR, "soc@example.com", &mut token).unwrap();
        let sent = String::from_utf8(written.borrow().clone()).unwrap();
        let expected = b64("user=soc@example.com\x01auth=Bearer tok-1\x01\x01");
        assert_eq!(sent, format!("a1 AUTHENTICATE XOAUTH2 {expected}\r\n"));
        assert_eq!(asked, [false]);
    }

    #[test]
    fn without_sasl_ir_the_token_answers_the_empty_challenge() {
        let (client, written) = client(concat!(
            "* CAPABILITY IMAP4rev1 AUTH=XOAUTH2\r\n",
            "a1 OK done\r\n",
            "+ \r\n",
            "a2 OK Logged in\r\n"
        ));
        let mut token = |_| Ok(Secret::new("tok-1".into()));
        login(client, b"* OK ready\r\n", "soc", &mut token).unwrap();
        let sent = String::from_utf8(written.borrow().clone()).unwrap();
        let expected = b64("user=soc\x01auth=Bearer tok-1\x01\x01");
        assert_eq!(
            sent,
            format!("a1 CAPABILITY\r\na2 AUTHENTICATE XOAUTH2\r\n{expected}\r\n")
        );
    }

    #[test]
    fn a_refused_token_is_replaced_once_on_the_same_connection() {
        let error = b64(r#"{"status":"401","schemes":"bearer","scope":"mail"}"#);
        let (client, written) = client(&format!(
            "+ {error}\r\na1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\na2 OK Logged in\r\n"
        ));
        let mut asked = Vec::new();
        let mut token = |fresh: bool| {
            asked.push(fresh);
            Ok(Secret::new(if fresh { "tok-2" } else { "tok-1" }.into()))
        };
        login(client, SASL_IR, "soc", &mut token).unwrap();
        assert_eq!(asked, [false, true]);
        let sent = String::from_utf8(written.borrow().clone()).unwrap();
        let lines: Vec<&str> = sent.split("\r\n").collect();
        assert!(lines[0].starts_with("a1 AUTHENTICATE XOAUTH2 "));
        assert_eq!(
            lines[1], "",
            "the error challenge is answered with an empty line"
        );
        assert!(lines[2].ends_with(&b64("user=soc\x01auth=Bearer tok-2\x01\x01")));
    }

    #[test]
    fn a_second_refusal_is_reported_with_the_servers_words() {
        let (client, _) = client(concat!(
            "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
            "a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        ));
        let mut token = |_| Ok(Secret::new("ya29.distinctive".into()));
        let Err(error) = login(client, SASL_IR, "soc", &mut token) else {
            panic!("login should fail")
        };
        let message = error.to_string();
        assert!(
            message.contains("[AUTHENTICATIONFAILED] Authentication failed."),
            "{message}"
        );
        assert!(message.contains("freshly issued"), "{message}");
        assert!(!message.contains("ya29"), "{message}");
    }

    #[test]
    fn a_server_without_xoauth2_is_named_before_any_token_is_sent() {
        let (client, written) = client("");
        let mut token = |_| -> Result<Secret, String> { panic!("no token should be asked for") };
        let Err(error) = login(
            client,
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN] hi\r\n",
            "soc",
            &mut token,
        ) else {
            panic!("login should fail")
        };
        assert!(
            error.to_string().contains("AUTH=PLAIN AUTH=LOGIN"),
            "{error}"
        );
        assert!(written.borrow().is_empty());
    }

    #[test]
    fn a_token_failure_stops_the_login() {
        let (client, _) = client("");
        let mut token = |_| Err("the refresh token was rejected (invalid_grant)".to_owned());
        let Err(error) = login(client, SASL_IR, "soc", &mut token) else {
            panic!("login should fail")
        };
        assert_eq!(
            error.to_string(),
            "cannot log in with OAuth: the refresh token was rejected (invalid_grant)"
        );
    }
}
