//! Where a run's IMAP bytes go: to the server, to the server with the conversation
//! recorded (`--record`), or to a recorded transcript instead of a server (`--replay`).

use std::path::Path;

use base64::Engine as _;

use super::{
    ImapError,
    transcript::{Recorder, Replay},
    transport::{
        self, ConnectOptions, Security, StartTlsAnswer, Stream, Tap, TransportInfo, Wire,
        mode_label,
    },
};

/// How the run reaches its IMAP server.
#[derive(Clone, Default)]
pub enum Link {
    /// Talk to the server.
    #[default]
    Live,
    /// Talk to the server and write the conversation to a transcript.
    Record(Recorder),
    /// Talk to a transcript: no network at all.
    Replay(Replay),
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Link::Live => "Live",
            Link::Record(_) => "Record",
            Link::Replay(_) => "Replay",
        })
    }
}

impl Link {
    /// Record every connection of the run into a new transcript at `path`.
    pub fn record(path: &Path) -> Result<Link, String> {
        Recorder::create(path)
            .map(Link::Record)
            .map_err(|e| format!("cannot write the transcript {}: {e}", path.display()))
    }

    /// Replay the transcript at `path` instead of connecting.
    pub fn replay(path: &Path) -> Result<Link, String> {
        Replay::open(path).map(Link::Replay)
    }

    /// True when no server is contacted.
    pub fn is_replay(&self) -> bool {
        matches!(self, Link::Replay(_))
    }

    /// Open one connection: the stream, what secures it, and whether the greeting was
    /// already read (STARTTLS reads it before the handshake).
    pub fn open(&self, options: &ConnectOptions) -> Result<(Wire, TransportInfo, bool), ImapError> {
        match self {
            Link::Live => transport::open(options, None),
            Link::Record(recorder) => transport::open(options, Some(recorder)),
            Link::Replay(replay) => open_replayed(replay, options),
        }
    }

    /// The TLS protocol and cipher, for the diagnostic report: probed on the server, or
    /// read back from the transcript.
    pub fn probe_tls(&self, options: &ConnectOptions) -> Option<(String, String)> {
        match self {
            Link::Live => transport::probe_tls(options),
            Link::Record(recorder) => {
                let probed = transport::probe_tls(options);
                if let Some((protocol, cipher)) = &probed {
                    recorder.note("tls", &format!("{protocol} {cipher}"));
                }
                probed
            }
            Link::Replay(replay) => replay.note("tls").and_then(|value| {
                let (protocol, cipher) = value.split_once(' ')?;
                Some((protocol.to_owned(), cipher.to_owned()))
            }),
        }
    }

    /// End of the run: write out the transcript, or check the replay used all of it and
    /// met no difference (also one the action itself swallowed).
    pub fn finish(&self) -> Result<(), String> {
        match self {
            Link::Live => Ok(()),
            Link::Record(recorder) => recorder
                .finish()
                .map_err(|e| format!("cannot finish the transcript: {e}")),
            Link::Replay(replay) => replay.finish(),
        }
    }
}

impl Tap for Recorder {
    fn begin(&self, mode: &str) {
        self.begin_connection(mode);
    }

    fn note(&self, key: &str, value: &str) {
        Recorder::note(self, key, value);
    }

    fn wrap<'a>(&self, stream: Box<dyn Stream + 'a>) -> Box<dyn Stream + 'a> {
        Box::new(Recorder::wrap(self, stream))
    }
}

/// The next recorded connection, negotiated as the configuration asks: a transcript of
/// another mode is refused up front rather than failing obscurely later.
fn open_replayed(
    replay: &Replay,
    options: &ConnectOptions,
) -> Result<(Wire, TransportInfo, bool), ImapError> {
    let (mode, mut stream) = replay.next_connection().map_err(ImapError::Replay)?;
    let wanted = mode_label(options.security);
    if mode != wanted {
        return Err(ImapError::Replay(format!(
            "the transcript's connection was made with {mode}, the configuration asks for {wanted}"
        )));
    }
    let certificate_der = replay
        .note("certificate")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok());
    let info = TransportInfo {
        mode: wanted,
        certificate_der,
    };
    match options.security {
        Security::ImplicitTls => Ok((Wire::new(Box::new(stream)), info, false)),
        Security::StartTls => {
            let target = format!("{}:{}", options.server, options.port);
            let info = match transport::starttls_exchange(&mut stream, &target)? {
                StartTlsAnswer::Accepted => info,
                StartTlsAnswer::Refused(answer) => transport::refused_starttls(options, answer)?,
            };
            Ok((Wire::new(Box::new(stream)), info, true))
        }
    }
}
