//! The IMAP session layer: a narrow seam over the `imap` crate.
//!
//! Actions talk to [`MailSession`]; [`LiveSession`] implements it over any
//! `Read + Write` stream (a real server through [`transport`], or a scripted stream in
//! tests). Folder names go out in modified UTF-7 (RFC 3501 §5.1.3) and quoted; folders
//! are opened with EXAMINE only, so nothing the connector does changes the mailbox.

pub mod transport;

use std::{
    io::{Read, Write},
    path::PathBuf,
};

pub use transport::{ConnectOptions, Security, Transport, TransportInfo};

/// Something that failed while talking to the server; the message names the step and
/// quotes the server's words. Never contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// TCP connect (or name resolution) failed.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// `server:port`.
        target: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (untrusted certificate, wrong host name, old protocol).
    #[error(
        "TLS handshake with {target} failed: {reason} (set config.ca_cert to trust a private CA; config.verify_server_cert false skips the check, which is unsafe)"
    )]
    Tls {
        /// `server:port`.
        target: String,
        /// What OpenSSL said.
        reason: String,
    },
    /// `config.ca_cert` could not be used.
    #[error("cannot use config.ca_cert {}: {reason}", path.display())]
    CaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// STARTTLS refused and plain text not allowed.
    #[error(
        "{target} refused STARTTLS ({answer}); refusing to send credentials in clear text (set config.use_ssl for implicit TLS, or config.allow_plaintext_auth to allow this)"
    )]
    NoTls {
        /// `server:port`.
        target: String,
        /// The server's answer.
        answer: String,
    },
    /// LOGIN or AUTHENTICATE was refused.
    #[error("cannot log in: {0}")]
    Login(String),
    /// A command failed; `step` says which.
    #[error("cannot {step}: {reason}")]
    Command {
        /// e.g. `list folders`, `examine folder "x"`.
        step: String,
        /// The server's words or the I/O error.
        reason: String,
    },
    /// The conversation went wrong outside a command.
    #[error("IMAP {step} failed: {reason}")]
    Protocol {
        /// The step.
        step: &'static str,
        /// What happened.
        reason: String,
    },
}

/// What EXAMINE reports about a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderStatus {
    /// Number of messages.
    pub exists: u32,
    /// UIDVALIDITY, when the server sent it.
    pub uid_validity: Option<u32>,
    /// UIDNEXT, when the server sent it.
    pub uid_next: Option<u32>,
}

/// The IMAP operations the actions need.
pub trait MailSession {
    /// CAPABILITY.
    fn capabilities(&mut self) -> Result<Vec<String>, ImapError>;
    /// `LIST "" *`: every folder name, decoded from modified UTF-7.
    fn list_folders(&mut self) -> Result<Vec<String>, ImapError>;
    /// EXAMINE (read-only select) the folder named as the user typed it.
    fn examine(&mut self, folder: &str) -> Result<FolderStatus, ImapError>;
    /// LOGOUT.
    fn logout(&mut self) -> Result<(), ImapError>;
}

/// The folder name as it goes on the wire: modified UTF-7 (`Entwürfe` is
/// `Entw&APw-rfe`, `a&b` is `a&-b`). The imap crate quotes it and rejects CR and LF.
pub fn wire_folder_name(folder: &str) -> String {
    utf7_imap::encode_utf7_imap(folder.to_owned())
}

/// The server's words from an imap crate error, without the crate's wrapping.
fn server_words(error: &::imap::Error) -> String {
    match error {
        ::imap::Error::No(no) => no.information.clone(),
        ::imap::Error::Bad(bad) => bad.information.clone(),
        ::imap::Error::Bye(bye) => format!("the server closed the session: {}", bye.information),
        ::imap::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            "the server did not answer in time (config.timeout_secs)".to_owned()
        }
        other => other.to_string(),
    }
}

/// A logged-in session over a stream.
pub struct LiveSession<S: Read + Write> {
    session: ::imap::Session<S>,
}

impl<S: Read + Write> std::fmt::Debug for LiveSession<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveSession")
    }
}

impl<S: Read + Write> LiveSession<S> {
    /// Log in with LOGIN on a client whose greeting has been read.
    pub fn login(
        client: ::imap::Client<S>,
        username: &str,
        password: &str,
    ) -> Result<Self, ImapError> {
        match client.login(username, password) {
            Ok(session) => Ok(Self { session }),
            Err((error, _client)) => Err(ImapError::Login(match &error {
                // The crate's validation error quotes the offending character, never the
                // value; still, say only what is wrong.
                ::imap::Error::Validate(_) => {
                    "the username or password contains a line break".to_owned()
                }
                other => server_words(other),
            })),
        }
    }
}

impl<S: Read + Write> MailSession for LiveSession<S> {
    fn capabilities(&mut self) -> Result<Vec<String>, ImapError> {
        let caps = self
            .session
            .capabilities()
            .map_err(|e| command("read capabilities", &e))?;
        let mut names: Vec<String> = caps
            .iter()
            .map(|c| match c {
                imap_proto::Capability::Imap4rev1 => "IMAP4rev1".to_owned(),
                imap_proto::Capability::Auth(mechanism) => format!("AUTH={mechanism}"),
                imap_proto::Capability::Atom(atom) => atom.to_string(),
            })
            .collect();
        names.sort();
        Ok(names)
    }

    fn list_folders(&mut self) -> Result<Vec<String>, ImapError> {
        let names = self
            .session
            .list(Some(""), Some("*"))
            .map_err(|e| command("list folders", &e))?;
        Ok(names
            .iter()
            .map(|n| utf7_imap::decode_utf7_imap(n.name().to_owned()))
            .collect())
    }

    fn examine(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        let mailbox = self
            .session
            .examine(wire_folder_name(folder))
            .map_err(|e| command(&format!("examine folder {folder:?}"), &e))?;
        Ok(FolderStatus {
            exists: mailbox.exists,
            uid_validity: mailbox.uid_validity,
            uid_next: mailbox.uid_next,
        })
    }

    fn logout(&mut self) -> Result<(), ImapError> {
        self.session.logout().map_err(|e| command("log out", &e))
    }
}

fn command(step: &str, error: &::imap::Error) -> ImapError {
    ImapError::Command {
        step: step.to_owned(),
        reason: server_words(error),
    }
}

/// Connect, read the greeting when needed, and log in with LOGIN.
pub fn connect_and_login(
    options: &ConnectOptions,
    username: &str,
    password: &str,
) -> Result<(LiveSession<Transport>, TransportInfo), ImapError> {
    let (transport, info, greeted) = transport::open(options)?;
    let mut client = ::imap::Client::new(transport);
    if !greeted {
        client.read_greeting().map_err(|e| ImapError::Protocol {
            step: "greeting",
            reason: server_words(&e),
        })?;
    }
    tracing::info!("Initiated connection to server");
    let session = LiveSession::login(client, username, password)?;
    tracing::info!("User logged in");
    Ok((session, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_go_out_in_modified_utf7() {
        assert_eq!(wire_folder_name("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(wire_folder_name("a&b"), "a&-b");
        assert_eq!(wire_folder_name("inbox"), "inbox");
    }
}
