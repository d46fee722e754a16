//! The IMAP session layer: a narrow seam over the `imap` crate.
//!
//! Actions talk to [`MailSession`]; [`LiveSession`] implements it over any
//! `Read + Write` stream (a real server through [`transport`], or a scripted stream in
//! tests), through the `imap` crate except for reading FETCH answers (`fetch.rs`). Folder
//! names go out in modified UTF-7 (RFC 3501 §5.1.3) and quoted; folders are opened with
//! EXAMINE only, so nothing the connector does changes the mailbox.

mod feed;
mod fetch;
pub mod link;
#[cfg(test)]
mod script;
pub mod transcript;
pub mod transport;
pub mod uid_set;
pub mod xoauth2;

use std::{
    io::{Read, Write},
    path::PathBuf,
};

use feed::Feed;
pub use link::Link;
pub use transport::{ConnectOptions, Security, TransportInfo, Wire};
pub use uid_set::{MAX_UID_SET_LEN, decode_uid_set, encode_uid_set};

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
    #[error("TLS handshake with {target} failed: {reason}{hint}")]
    Tls {
        /// `server:port`.
        target: String,
        /// What OpenSSL said.
        reason: String,
        /// What to do about it, when the failure is about trust.
        hint: &'static str,
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
    /// No OAuth access token could be had for the login.
    #[error("cannot log in with OAuth: {0}")]
    OAuth(String),
    /// The replayed transcript and the run parted ways.
    #[error("{0}")]
    Replay(String),
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

/// One message as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    /// Its UID.
    pub uid: u32,
    /// `RFC822.SIZE`.
    pub size: u32,
    /// The whole message (`BODY.PEEK[]`), or only its header block.
    pub raw: Vec<u8>,
}

/// UIDs asked for in one `UID SEARCH`: a page of the UID space, so no answer line grows
/// past what clients accept (the reference's single SEARCH broke on large folders).
pub const SEARCH_PAGE: u32 = 10_000;

/// The IMAP operations the actions need.
pub trait MailSession {
    /// CAPABILITY.
    fn capabilities(&mut self) -> Result<Vec<String>, ImapError>;
    /// `LIST "" *`: every folder name, decoded from modified UTF-7.
    fn list_folders(&mut self) -> Result<Vec<String>, ImapError>;
    /// EXAMINE (read-only select) the folder named as the user typed it.
    fn examine(&mut self, folder: &str) -> Result<FolderStatus, ImapError>;
    /// `UID SEARCH UID from:to`: the UIDs in that range, ascending (never one below
    /// `from`, which RFC 3501 `n:*` semantics could return).
    fn search_uids(&mut self, from: u32, to: u32) -> Result<Vec<u32>, ImapError>;
    /// `UID FETCH <set> (UID RFC822.SIZE)`: sizes, to keep oversize mail from being
    /// downloaded.
    fn fetch_sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>, ImapError>;
    /// Send one `UID FETCH <set> (UID RFC822.SIZE BODY.PEEK[])` for these UIDs (PEEK, so
    /// nothing is marked read), whose messages are then read one at a time with
    /// [`MailSession::next_message`]: many messages cost one round trip, and what is not
    /// read yet waits in the connection, not in memory. Any other command first reads
    /// the rest of the answer.
    fn start_messages(&mut self, uids: &[u32]) -> Result<(), ImapError>;
    /// The next message of the fetch started last, in the order the server sends them
    /// (each UID asked for at most once), or `None` once the answer is complete. UIDs
    /// the server no longer has never come.
    fn next_message(&mut self) -> Result<Option<FetchedMessage>, ImapError>;
    /// The whole messages with these UIDs, in UID order: [`MailSession::start_messages`]
    /// read to the end.
    fn fetch_messages(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>, ImapError> {
        self.start_messages(uids)?;
        let mut messages = Vec::new();
        while let Some(message) = self.next_message()? {
            messages.push(message);
        }
        messages.sort_by_key(|m| m.uid);
        Ok(messages)
    }
    /// The header blocks only (`BODY.PEEK[HEADER]`), for oversize mail.
    fn fetch_headers(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>, ImapError>;
    /// LOGOUT.
    fn logout(&mut self) -> Result<(), ImapError>;

    // What after-ingest actions need (a read-write folder). Sessions that only poll (the
    // tests' fakes) need none of it.

    /// SELECT (read-write) the folder named as the user typed it: its status and the
    /// flags this session may change for good (PERMANENTFLAGS; none when the server
    /// opened it read-only).
    fn select(&mut self, folder: &str) -> Result<(FolderStatus, Vec<String>), ImapError> {
        Err(unsupported("select folder", folder))
    }
    /// `UID STORE <set> +FLAGS.SILENT (<flags>)` in the selected folder.
    fn add_flags(&mut self, uids: &[u32], flags: &str) -> Result<(), ImapError> {
        let _ = uids;
        Err(unsupported("store flags", flags))
    }
    /// `UID MOVE <set> <folder>` (RFC 6851) from the selected folder.
    fn move_messages(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        let _ = uids;
        Err(unsupported("move messages", folder))
    }
    /// `UID COPY <set> <folder>` from the selected folder.
    fn copy_messages(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        let _ = uids;
        Err(unsupported("copy messages", folder))
    }
    /// `UID EXPUNGE <set>` (UIDPLUS): removes exactly these messages (marked `\Deleted`),
    /// never another message someone else marked.
    fn expunge_messages(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        let _ = uids;
        Err(unsupported("expunge messages", ""))
    }
    /// CREATE the folder named as the user typed it.
    fn create_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        Err(unsupported("create folder", folder))
    }
}

/// The error of a command a session does not implement.
fn unsupported(step: &str, what: &str) -> ImapError {
    ImapError::Command {
        step: format!("{step} {what:?}"),
        reason: "this session cannot do that".to_owned(),
    }
}

/// Every UID from `from` up to (not including) `uid_next`, searched page by page.
pub fn search_all(
    session: &mut dyn MailSession,
    from: u32,
    uid_next: u32,
) -> Result<Vec<u32>, ImapError> {
    let mut uids = Vec::new();
    let mut start = from.max(1);
    while start < uid_next {
        let end = start.saturating_add(SEARCH_PAGE - 1).min(uid_next - 1);
        uids.extend(session.search_uids(start, end)?);
        start = end.saturating_add(1);
        if end == u32::MAX {
            break;
        }
    }
    Ok(uids)
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

/// A connection before login: the imap crate's client over a buffered stream (`Feed`),
/// and the handle on the same stream that the session reads FETCH answers with.
pub struct Client<S: Read + Write> {
    imap: ::imap::Client<Feed<S>>,
    feed: Feed<S>,
}

impl<S: Read + Write> Client<S> {
    /// A client over `stream`.
    pub fn new(stream: S) -> Self {
        let feed = Feed::new(stream);
        Self {
            imap: ::imap::Client::new(feed.handle()),
            feed,
        }
    }

    /// Read the server's greeting (not after STARTTLS, which read it already).
    pub fn read_greeting(&mut self) -> Result<Vec<u8>, ::imap::Error> {
        self.imap.read_greeting()
    }
}

/// A logged-in session over a stream.
pub struct LiveSession<S: Read + Write> {
    session: ::imap::Session<Feed<S>>,
    feed: Feed<S>,
    /// The `UID FETCH` of whole messages being read, if one is.
    streaming: Option<Streaming>,
}

/// A `UID FETCH` of whole messages read a message at a time.
struct Streaming {
    answer: fetch::Answer,
    /// The UIDs asked for and not received yet: a UID the server sends twice, or one
    /// not asked for, is not handed on.
    awaited: std::collections::HashSet<u32>,
}

impl<S: Read + Write> std::fmt::Debug for LiveSession<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveSession")
    }
}

impl<S: Read + Write> LiveSession<S> {
    /// Log in with LOGIN on a client whose greeting has been read.
    pub fn login(client: Client<S>, username: &str, password: &str) -> Result<Self, ImapError> {
        match client.imap.login(username, password) {
            Ok(session) => Ok(Self {
                session,
                feed: client.feed,
                streaming: None,
            }),
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
        self.finish_streaming()?;
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
        self.finish_streaming()?;
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
        self.finish_streaming()?;
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

    fn select(&mut self, folder: &str) -> Result<(FolderStatus, Vec<String>), ImapError> {
        self.finish_streaming()?;
        let mailbox = self
            .session
            .select(wire_folder_name(folder))
            .map_err(|e| command(&format!("select folder {folder:?} read-write"), &e))?;
        let permanent = mailbox
            .permanent_flags
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok((
            FolderStatus {
                exists: mailbox.exists,
                uid_validity: mailbox.uid_validity,
                uid_next: mailbox.uid_next,
            },
            permanent,
        ))
    }

    fn add_flags(&mut self, uids: &[u32], flags: &str) -> Result<(), ImapError> {
        self.finish_streaming()?;
        self.session
            .uid_store(encode_uid_set(uids), format!("+FLAGS.SILENT ({flags})"))
            .map(drop)
            .map_err(|e| command(&format!("set {flags}"), &e))
    }

    fn move_messages(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        self.finish_streaming()?;
        self.session
            .uid_mv(encode_uid_set(uids), wire_folder_name(folder))
            .map_err(|e| command(&format!("move messages to {folder:?}"), &e))
    }

    fn copy_messages(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        self.finish_streaming()?;
        self.session
            .uid_copy(encode_uid_set(uids), wire_folder_name(folder))
            .map_err(|e| command(&format!("copy messages to {folder:?}"), &e))
    }

    fn expunge_messages(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        self.finish_streaming()?;
        self.session
            .uid_expunge(encode_uid_set(uids))
            .map(drop)
            .map_err(|e| command("expunge the moved messages", &e))
    }

    fn create_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        self.finish_streaming()?;
        self.session
            .create(wire_folder_name(folder))
            .map_err(|e| command(&format!("create folder {folder:?}"), &e))
    }

    fn search_uids(&mut self, from: u32, to: u32) -> Result<Vec<u32>, ImapError> {
        self.finish_streaming()?;
        let found = self
            .session
            .uid_search(format!("UID {from}:{to}"))
            .map_err(|e| command("search UIDs", &e))?;
        let mut uids: Vec<u32> = found
            .into_iter()
            .filter(|&u| u >= from && u <= to)
            .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    fn fetch_sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>, ImapError> {
        let fetches = self.fetch(uids, "(UID RFC822.SIZE)", "fetch message sizes")?;
        Ok(fetches.into_iter().map(|m| (m.uid, m.size)).collect())
    }

    fn start_messages(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        self.finish_streaming()?;
        if uids.is_empty() {
            return Ok(());
        }
        let answer = fetch::Answer::start(
            &mut self.session,
            &self.feed,
            &encode_uid_set(uids),
            "(UID RFC822.SIZE BODY.PEEK[])",
        )
        .map_err(|e| fetch_failed(FETCH_MESSAGES, &e))?;
        self.streaming = Some(Streaming {
            answer,
            awaited: uids.iter().copied().collect(),
        });
        Ok(())
    }

    fn next_message(&mut self) -> Result<Option<FetchedMessage>, ImapError> {
        while let Some(Streaming { answer, awaited }) = &mut self.streaming {
            match answer.next(&self.feed) {
                Ok(Some(f)) => {
                    if let Some(uid) = f.uid.filter(|u| awaited.remove(u)) {
                        return Ok(Some(FetchedMessage {
                            uid,
                            size: f.size.unwrap_or(0),
                            raw: f.data.unwrap_or_default(),
                        }));
                    }
                }
                Ok(None) => self.streaming = None,
                Err(e) => {
                    self.streaming = None;
                    return Err(fetch_failed(FETCH_MESSAGES, &e));
                }
            }
        }
        Ok(None)
    }

    fn fetch_headers(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>, ImapError> {
        self.fetch(
            uids,
            "(UID RFC822.SIZE BODY.PEEK[HEADER])",
            "fetch message headers",
        )
    }

    fn logout(&mut self) -> Result<(), ImapError> {
        self.finish_streaming()?;
        self.session.logout().map_err(|e| command("log out", &e))
    }
}

/// The step named in the error of a fetch of whole messages.
const FETCH_MESSAGES: &str = "fetch messages";

fn fetch_failed(step: &str, failure: &fetch::Failure) -> ImapError {
    ImapError::Command {
        step: step.to_owned(),
        reason: failure.words(),
    }
}

impl<S: Read + Write> LiveSession<S> {
    /// Read what is left of a fetch of whole messages, so the next command finds the
    /// connection at its own answer; its messages are not wanted any more.
    fn finish_streaming(&mut self) -> Result<(), ImapError> {
        while self.next_message()?.is_some() {}
        Ok(())
    }

    /// One `UID FETCH` for the whole set. Responses may come in any attribute order and
    /// interleaved with unsolicited FETCH (flag changes) and EXISTS lines: only answers
    /// that carry a UID we asked for count.
    fn fetch(
        &mut self,
        uids: &[u32],
        query: &str,
        step: &str,
    ) -> Result<Vec<FetchedMessage>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        self.finish_streaming()?;
        let fetches = fetch::uid_fetch(&mut self.session, &self.feed, &encode_uid_set(uids), query)
            .map_err(|e| fetch_failed(step, &e))?;
        let mut out: Vec<FetchedMessage> = fetches
            .into_iter()
            .filter_map(|f| {
                let uid = f.uid.filter(|u| uids.contains(u))?;
                Some(FetchedMessage {
                    uid,
                    size: f.size.unwrap_or(0),
                    raw: f.data.unwrap_or_default(),
                })
            })
            .collect();
        out.sort_by_key(|m| m.uid);
        out.dedup_by_key(|m| m.uid);
        Ok(out)
    }
}

fn command(step: &str, error: &::imap::Error) -> ImapError {
    ImapError::Command {
        step: step.to_owned(),
        reason: server_words(error),
    }
}

/// How the session authenticates.
pub enum Auth<'a> {
    /// LOGIN with a password.
    Login {
        /// The login name.
        username: &'a str,
        /// The password.
        password: &'a str,
    },
    /// `AUTHENTICATE XOAUTH2` with a bearer token. `token(false)` gives the token to try;
    /// `token(true)` is asked once, after the server refused it, for a fresh one.
    XOAuth2 {
        /// The mailbox user.
        username: &'a str,
        /// Where tokens come from.
        token: &'a mut dyn FnMut(bool) -> Result<crate::secret::Secret, String>,
    },
}

/// A logged-in session and what the login found out.
pub struct Connected {
    /// The session.
    pub session: LiveSession<Wire>,
    /// How the connection is secured.
    pub transport: TransportInfo,
    /// The mechanism that logged in (`LOGIN`, `XOAUTH2`).
    pub mechanism: &'static str,
}

/// Connect through `link`, read the greeting when needed, and log in.
pub fn connect_and_login(
    link: &Link,
    options: &ConnectOptions,
    auth: Auth<'_>,
) -> Result<Connected, ImapError> {
    let (wire, transport, greeted) = link.open(options)?;
    let mut client = Client::new(wire);
    let greeting = if greeted {
        Vec::new()
    } else {
        client.read_greeting().map_err(|e| ImapError::Protocol {
            step: "greeting",
            reason: server_words(&e),
        })?
    };
    tracing::info!("Initiated connection to server");
    let (session, mechanism) = match auth {
        Auth::Login { username, password } => {
            (LiveSession::login(client, username, password)?, "LOGIN")
        }
        Auth::XOAuth2 { username, token } => {
            xoauth2::login(client, &greeting, username, token).map(|s| (s, "XOAUTH2"))?
        }
    };
    tracing::info!("User logged in");
    Ok(Connected {
        session,
        transport,
        mechanism,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::{cell::RefCell, rc::Rc};

    use super::script::Script;

    fn scripted(replies: &str) -> (LiveSession<Script>, Rc<RefCell<Vec<u8>>>) {
        let (script, written) = Script::new(&format!("a1 OK LOGIN completed\r\n{replies}"));
        let session = LiveSession::login(Client::new(script), "u", "p").unwrap();
        (session, written)
    }

    fn sent(written: &Rc<RefCell<Vec<u8>>>) -> Vec<String> {
        String::from_utf8(written.borrow().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn one_fetch_per_batch_in_any_attribute_order_ignoring_unsolicited_lines() {
        let (mut session, written) = scripted(concat!(
            "* 3 EXISTS\r\n",
            "* 1 FETCH (RFC822.SIZE 5 UID 7 BODY[] {5}\r\nhello)\r\n",
            "* 2 FETCH (FLAGS (\\Seen))\r\n",
            "* 3 FETCH (UID 9 BODY[] {3}\r\nabc RFC822.SIZE 3)\r\n",
            "a2 OK FETCH completed\r\n",
        ));
        let messages = session.fetch_messages(&[9, 7, 10]).unwrap();
        assert_eq!(
            sent(&written)[1],
            "a2 UID FETCH 7,9:10 (UID RFC822.SIZE BODY.PEEK[])"
        );
        assert_eq!(
            messages,
            [
                FetchedMessage {
                    uid: 7,
                    size: 5,
                    raw: b"hello".to_vec()
                },
                FetchedMessage {
                    uid: 9,
                    size: 3,
                    raw: b"abc".to_vec()
                },
            ]
        );
    }

    #[test]
    fn a_streamed_fetch_hands_on_each_asked_uid_once_and_the_next_command_reads_its_rest() {
        let (mut session, written) = scripted(concat!(
            "* 1 FETCH (UID 4 BODY[] {1}\r\na)\r\n",
            // Not asked for, then 4 again: neither is handed on.
            "* 2 FETCH (UID 99 BODY[] {1}\r\nz)\r\n",
            "* 3 FETCH (UID 4 BODY[] {1}\r\nb)\r\n",
            "* 4 FETCH (UID 5 BODY[] {1}\r\nc)\r\n",
            "* 5 FETCH (UID 6 BODY[] {1}\r\nd)\r\n",
            "a2 OK FETCH completed\r\n",
            "* SEARCH 8\r\na3 OK searched\r\n",
        ));
        session.start_messages(&[4, 5, 6]).unwrap();
        let first = session.next_message().unwrap().unwrap();
        assert_eq!((first.uid, first.raw), (4, b"a".to_vec()));
        let second = session.next_message().unwrap().unwrap();
        assert_eq!((second.uid, second.raw), (5, b"c".to_vec()));
        // A command before the answer is read to its end: the rest (UID 6 and the
        // tagged OK) is read first, and the search gets its own answer.
        assert_eq!(session.search_uids(1, 10).unwrap(), [8]);
        assert_eq!(session.next_message().unwrap(), None);
        assert_eq!(
            sent(&written)[1..],
            [
                "a2 UID FETCH 4:6 (UID RFC822.SIZE BODY.PEEK[])",
                "a3 UID SEARCH UID 1:10"
            ]
        );
    }

    #[test]
    fn a_streamed_fetch_refused_midway_fails_the_read_and_ends_the_stream() {
        let (mut session, _) = scripted(concat!(
            "* 1 FETCH (UID 4 BODY[] {1}\r\na)\r\n",
            "a2 NO [SERVERBUG] Internal error\r\n",
        ));
        session.start_messages(&[4, 5]).unwrap();
        assert_eq!(session.next_message().unwrap().unwrap().uid, 4);
        let error = session.next_message().unwrap_err().to_string();
        assert!(error.contains("Internal error"), "{error}");
        assert_eq!(session.next_message().unwrap(), None);
    }

    #[test]
    fn search_never_returns_a_uid_below_the_range() {
        // `UID 11:20` on a folder whose highest UID is 10 answers 10 (RFC 3501 n:* rule
        // and some servers' reading of ranges).
        let (mut session, written) = scripted("* SEARCH 10\r\na2 OK SEARCH completed\r\n");
        assert_eq!(session.search_uids(11, 20).unwrap(), Vec::<u32>::new());
        assert_eq!(sent(&written)[1], "a2 UID SEARCH UID 11:20");
    }

    /// Records the ranges searched; every UID in a range exists.
    struct Ranges(Vec<(u32, u32)>);

    impl MailSession for Ranges {
        fn capabilities(&mut self) -> Result<Vec<String>, ImapError> {
            Ok(Vec::new())
        }
        fn list_folders(&mut self) -> Result<Vec<String>, ImapError> {
            Ok(Vec::new())
        }
        fn examine(&mut self, _: &str) -> Result<FolderStatus, ImapError> {
            Ok(FolderStatus {
                exists: 0,
                uid_validity: None,
                uid_next: None,
            })
        }
        fn search_uids(&mut self, from: u32, to: u32) -> Result<Vec<u32>, ImapError> {
            self.0.push((from, to));
            Ok((from..=to).collect())
        }
        fn fetch_sizes(&mut self, _: &[u32]) -> Result<Vec<(u32, u32)>, ImapError> {
            Ok(Vec::new())
        }
        fn start_messages(&mut self, _: &[u32]) -> Result<(), ImapError> {
            Ok(())
        }
        fn next_message(&mut self) -> Result<Option<FetchedMessage>, ImapError> {
            Ok(None)
        }
        fn fetch_headers(&mut self, _: &[u32]) -> Result<Vec<FetchedMessage>, ImapError> {
            Ok(Vec::new())
        }
        fn logout(&mut self) -> Result<(), ImapError> {
            Ok(())
        }
    }

    #[test]
    fn search_walks_the_uid_space_in_bounded_pages() {
        let mut ranges = Ranges(Vec::new());
        let uids = search_all(&mut ranges, 5, 25_003).unwrap();
        assert_eq!(ranges.0, [(5, 10_004), (10_005, 20_004), (20_005, 25_002)]);
        assert_eq!(uids.len(), 24_998);
        let mut empty = Ranges(Vec::new());
        assert!(search_all(&mut empty, 7, 7).unwrap().is_empty());
        assert!(
            empty.0.is_empty(),
            "nothing to search when from == uid_next"
        );
    }

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(encode_uid_set(&[3, 1, 2, 7, 9, 10, 10]), "1:3,7,9:10");
        assert_eq!(encode_uid_set(&[5]), "5");
        assert_eq!(encode_uid_set(&[]), "");
    }

    #[test]
    fn folder_names_go_out_in_modified_utf7() {
        assert_eq!(wire_folder_name("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(wire_folder_name("a&b"), "a&-b");
        assert_eq!(wire_folder_name("inbox"), "inbox");
    }
}
