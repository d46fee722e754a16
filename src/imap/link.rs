//! Where a run's IMAP bytes go (temporary: live only until the transcript lands).

use super::{
    ImapError,
    transport::{self, ConnectOptions, TransportInfo, Wire},
};

/// How the run reaches its IMAP server.
#[derive(Clone, Default, Debug)]
pub enum Link {
    /// Talk to the server.
    #[default]
    Live,
}

impl Link {
    /// Temporary.
    pub fn record(_: &std::path::Path) -> Result<Link, String> {
        Err("recording is being wired".into())
    }
    /// Temporary.
    pub fn replay(_: &std::path::Path) -> Result<Link, String> {
        Err("replay is being wired".into())
    }
    /// True when no server is contacted.
    pub fn is_replay(&self) -> bool {
        false
    }
    /// Open one connection.
    pub fn open(&self, options: &ConnectOptions) -> Result<(Wire, TransportInfo, bool), ImapError> {
        transport::open(options, None)
    }
    /// TLS facts.
    pub fn probe_tls(&self, options: &ConnectOptions) -> Option<(String, String)> {
        transport::probe_tls(options)
    }
    /// End of run.
    pub fn finish(&self) -> Result<(), String> {
        Ok(())
    }
}
