//! soar-imap: an IMAP connector for security automation.
//!
//! A SOAR platform runs the binary once per action with a JSON request on stdin; it
//! answers with one JSON response on stdout (`protocol`). `dispatch` routes the request
//! to an action in `actions`, after `config` has typed the asset configuration once.
//!
//! The email pipeline is pure and shared by every action: `mime` walks the raw message
//! (headers, bodies, attachments, attached messages; `outlook_msg` reads attached
//! Outlook `.msg` files for it), `extract` finds indicators in
//! text and HTML, `artifacts` shapes them into the reference app's artifacts, and
//! `container` assembles one container per email, with identifiers from `sdi` that are
//! byte-compatible with the Splunk SOAR IMAP app. Attachment bytes leave the pipeline
//! only through the `vault` seam.
//!
//! `cli` turns the subcommands for people (`parse`, `test`, `poll`, `get`) into the same
//! JSON requests, and `progress` draws a terminal's progress line for a long poll.
pub mod actions;
pub mod artifacts;
pub mod cli;
pub mod config;
pub mod container;
pub mod dispatch;
pub mod extract;
pub mod imap;
pub mod logging;
pub mod mime;
pub mod oauth;
pub mod outlook_msg;
pub mod progress;
pub mod protocol;
pub mod sdi;
pub mod secret;
pub mod state;
pub mod triage;
pub mod vault;
