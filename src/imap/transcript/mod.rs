//! Record and replay of IMAP conversations (SPEC §6).
//!
//! `--record FILE` tees every connection of a run into a readable transcript
//! ([`Recorder`], [`Recording`]); `--replay FILE` runs the same action against it with no
//! server ([`Replay`], [`ReplayStream`]): the recorded server bytes are served byte for
//! byte, and every line the client sends is checked against the transcript, failing at
//! the first difference with the transcript line, what it expects and what was sent.
//! Only plaintext is recorded: under TLS the tee sits above the TLS stream, and for
//! STARTTLS the same connection goes on from the plain to the secured stream.
//!
//! # Format
//!
//! ```text
//! # soar-imap IMAP transcript, format 1
//! # (more "#" comment lines: ignored, and not covered by the digests)
//! == connection 1: implicit TLS
//! @ certificate MIIC...base64 DER...
//! S: * OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot ready.
//! C: a1 LOGIN \<redacted>
//! S: a1 OK Logged in
//! C: a2 UID FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[])
//! S: * 1 FETCH (UID 1 RFC822.SIZE 27 BODY[] {27}
//! S: Subject: caf\xe9 \\o/
//! S- bare LF line\n
//! S: )
//! S: a2 OK Fetch completed.
//! @ tls TLSv1.3 TLS_AES_256_GCM_SHA384
//! S! EOF
//! == digests
//! 3fa2c1d0 77b0e1aa ...
//! ```
//!
//! - Each direction's bytes are cut after every `\n`. A piece ending in CRLF is written
//!   `S: ` / `C: ` and its content without the CRLF; any other piece (ending in a bare LF,
//!   or bytes without a line end yet when the direction switched or the connection
//!   ended) is written `S- ` / `C- ` and its exact content.
//! - Content escapes: `\\`, `\r`, `\n`, `\t`, and `\xNN` for other control bytes, for
//!   bytes that are not valid UTF-8, for invisible or line-breaking characters (C1
//!   controls, U+2028/2029, bidi controls, BOM) and for a final space (so editors that
//!   trim trailing blanks change nothing). Valid UTF-8 text stays as is. No line ends in a
//!   blank (an empty line is written `S:`). Reading also accepts upper-case hex, raw
//!   bytes and CRLF line ends (a Windows checkout).
//! - `S! EOF`: a read found the connection closed (repeated reads at the end are
//!   written once); `S! error <Kind>: <message>`: a read failed. Replay reproduces both,
//!   so a run that lost its connection replays to the same response.
//! - `@ <key> <value>`: a note on the current connection (`certificate`: base64 DER of
//!   the server certificate; `tls`: protocol and cipher), so replayed diagnostics match.
//!   Notes are not part of the conversation: they may stand anywhere in the connection.
//! - `== connection N: <mode>` opens each connection (`implicit TLS`, `STARTTLS`,
//!   `plain text`); connections are numbered from 1 in order.
//! - Credentials never reach the file (see `redact`): in a client line they are
//!   replaced by `\<redacted>`, which matches any bytes up to the end of that client
//!   line on replay. Content backslashes are always escaped, so the marker cannot come
//!   from real content. Server lines are kept verbatim.
//! - `== digests` ends the file: 8 hex digits (the first 4 bytes of SHA-256) of each
//!   covered line as it stands in the file (`S:`, `S-`, `C:`, `C-`, `S!`, `@`,
//!   `== connection`), in order, 16 per line. A transcript whose covered lines do not
//!   match is refused, naming the first changed, added or removed line. Without the
//!   block a transcript is taken as is, so users can anonymise or hand-write one. The
//!   digests catch accidental edits; they are not a signature.
//!
//! # Not recorded
//!
//! A failed write to the server is not recorded (the run stops at it anyway, and replay
//! accepts the bytes). Interrupted reads are retried by the reader and leave no trace.

mod format;
mod record;
mod redact;
mod replay;

#[cfg(test)]
mod tests;

pub use record::{Recorder, Recording};
pub use replay::{Replay, ReplayStream};
