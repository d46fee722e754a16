//! The byte stream under an IMAP session: TCP with timeouts, then implicit TLS,
//! STARTTLS, or (only when allowed) plain text.

use std::{
    io::{self, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    path::PathBuf,
    time::Duration,
};

use native_tls::{Certificate, TlsConnector, TlsStream};

use super::ImapError;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (port 993).
    ImplicitTls,
    /// Plain connection upgraded with STARTTLS before anything else is sent.
    StartTls,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name or IP.
    pub server: String,
    /// TCP port.
    pub port: u16,
    /// Implicit TLS or STARTTLS.
    pub security: Security,
    /// Verify the certificate chain and host name.
    pub verify_server_cert: bool,
    /// An extra trust anchor (PEM).
    pub ca_cert: Option<PathBuf>,
    /// Allow continuing in plain text when the server offers no STARTTLS.
    pub allow_plaintext_auth: bool,
    /// Connect, read and write timeout.
    pub timeout: Duration,
}

/// The negotiated transport, for the diagnostic report.
#[derive(Debug, Clone, Default)]
pub struct TransportInfo {
    /// `implicit TLS`, `STARTTLS` or `plain text`.
    pub mode: &'static str,
    /// The server certificate (DER), when TLS is used.
    pub certificate_der: Option<Vec<u8>>,
}

/// Anything a session can run over: a live socket, a recording tee, a replayed
/// transcript.
pub trait Stream: Read + Write {}

impl<T: Read + Write> Stream for T {}

/// The byte stream under a session, whatever it is.
pub struct Wire(Box<dyn Stream>);

impl Wire {
    /// Wrap a stream.
    pub fn new(stream: Box<dyn Stream>) -> Self {
        Self(stream)
    }
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wire")
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Something that watches the plaintext of each connection (the `--record` transcript).
pub trait Tap {
    /// A new connection starts, secured as `mode` says.
    fn begin(&self, mode: &str);
    /// A fact about the connection (certificate, TLS parameters).
    fn note(&self, key: &str, value: &str);
    /// The stream, with everything read and written seen by the tap.
    fn wrap<'a>(&self, stream: Box<dyn Stream + 'a>) -> Box<dyn Stream + 'a>;
}

/// The label of a connection mode, as reports and transcripts show it.
pub fn mode_label(security: Security) -> &'static str {
    match security {
        Security::ImplicitTls => "implicit TLS",
        Security::StartTls => "STARTTLS",
    }
}

/// Open the transport, with `tap` (when recording) seeing the plaintext. For STARTTLS
/// the greeting has been consumed (the `bool` is true); otherwise the caller reads it.
pub fn open(
    options: &ConnectOptions,
    tap: Option<&dyn Tap>,
) -> Result<(Wire, TransportInfo, bool), ImapError> {
    let tcp = connect_tcp(options)?;
    if let Some(tap) = tap {
        tap.begin(mode_label(options.security));
    }
    let (transport, info, greeted) = match options.security {
        Security::ImplicitTls => {
            let tls = handshake(options, tcp)?;
            let info = tls_info("implicit TLS", &tls);
            (Transport::Tls(Box::new(tls)), info, false)
        }
        Security::StartTls => starttls(options, tcp, tap)?,
    };
    let stream: Box<dyn Stream> = Box::new(transport);
    let stream = match tap {
        Some(tap) => {
            if let Some(der) = &info.certificate_der {
                use base64::Engine as _;
                tap.note(
                    "certificate",
                    &base64::engine::general_purpose::STANDARD.encode(der),
                );
            }
            tap.wrap(stream)
        }
        None => stream,
    };
    Ok((Wire::new(stream), info, greeted))
}

/// A TCP stream, secured or not.
#[derive(Debug)]
enum Transport {
    /// Plain TCP (only with `allow_plaintext_auth`).
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

fn connect_tcp(options: &ConnectOptions) -> Result<TcpStream, ImapError> {
    let target = format!("{}:{}", options.server, options.port);
    let connect_error = |source: io::Error| ImapError::Connect {
        target: target.clone(),
        source,
    };
    let addresses = (options.server.as_str(), options.port)
        .to_socket_addrs()
        .map_err(connect_error)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, options.timeout) {
            Ok(stream) => {
                // Timeouts on the socket carry through TLS: every later read and write is bounded.
                stream
                    .set_read_timeout(Some(options.timeout))
                    .map_err(connect_error)?;
                stream
                    .set_write_timeout(Some(options.timeout))
                    .map_err(connect_error)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(connect_error(last))
}

fn handshake(options: &ConnectOptions, tcp: TcpStream) -> Result<TlsStream<TcpStream>, ImapError> {
    let target = format!("{}:{}", options.server, options.port);
    let mut builder = TlsConnector::builder();
    builder.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
    if let Some(path) = &options.ca_cert {
        let pem = std::fs::read(path).map_err(|e| ImapError::CaCert {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let certificate = Certificate::from_pem(&pem).map_err(|e| ImapError::CaCert {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        builder.add_root_certificate(certificate);
    }
    if !options.verify_server_cert {
        builder
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    let connector = builder.build().map_err(|e| ImapError::Tls {
        target: target.clone(),
        reason: e.to_string(),
        hint: "",
    })?;
    connector.connect(&options.server, tcp).map_err(|e| {
        let reason = match e {
            native_tls::HandshakeError::Failure(e) => e.to_string(),
            native_tls::HandshakeError::WouldBlock(_) => "the handshake timed out".to_owned(),
        };
        // Only a verification failure is about trust; a hang-up or a timeout is not.
        let hint = match (reason.contains("certificate verify failed"), &options.ca_cert) {
            (false, _) => "",
            (true, None) => {
                " (set config.ca_cert to trust a private CA; config.verify_server_cert false skips the check, which is unsafe)"
            }
            (true, Some(_)) => {
                " (the certificate is signed neither by config.ca_cert nor by a system CA, or does not name this server)"
            }
        };
        ImapError::Tls { target, reason, hint }
    })
}

fn tls_info(mode: &'static str, tls: &TlsStream<TcpStream>) -> TransportInfo {
    let certificate_der = tls
        .peer_certificate()
        .ok()
        .flatten()
        .and_then(|c| c.to_der().ok());
    TransportInfo {
        mode,
        certificate_der,
    }
}

/// Read one line (up to CRLF) a byte at a time, so no byte after it is consumed: after
/// STARTTLS the next bytes belong to the TLS handshake.
fn read_line(stream: &mut dyn Read) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        line.push(byte[0]);
        if line.len() > 64 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "line longer than 64 KiB",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

/// What the server said to STARTTLS.
pub enum StartTlsAnswer {
    /// Go ahead with the handshake.
    Accepted,
    /// Refused, with the server's line.
    Refused(String),
}

/// The plain-text part of STARTTLS: read the greeting, ask, read the answer. Reads a
/// byte at a time so the TLS handshake finds its first byte unread.
pub fn starttls_exchange(
    stream: &mut dyn Stream,
    target: &str,
) -> Result<StartTlsAnswer, ImapError> {
    let protocol = |reason: String| ImapError::Protocol {
        step: "STARTTLS",
        reason,
    };
    let greeting =
        read_line(stream).map_err(|e| protocol(format!("no greeting from {target}: {e}")))?;
    if !greeting.starts_with("* OK") && !greeting.starts_with("* PREAUTH") {
        return Err(protocol(format!(
            "unexpected greeting from {target}: {greeting}"
        )));
    }
    stream
        .write_all(b"s0 STARTTLS\r\n")
        .and_then(|()| stream.flush())
        .map_err(|e| protocol(e.to_string()))?;
    let answer = loop {
        let line = read_line(stream).map_err(|e| protocol(e.to_string()))?;
        if line.starts_with("s0 ") {
            break line;
        }
    };
    if answer.starts_with("s0 OK") {
        Ok(StartTlsAnswer::Accepted)
    } else {
        Ok(StartTlsAnswer::Refused(answer))
    }
}

/// After a refused STARTTLS: go on in plain text only when the configuration allows it.
pub fn refused_starttls(
    options: &ConnectOptions,
    answer: String,
) -> Result<TransportInfo, ImapError> {
    let target = format!("{}:{}", options.server, options.port);
    if options.allow_plaintext_auth {
        tracing::warn!(
            "{target} refused STARTTLS ({answer}); continuing in plain text as config.allow_plaintext_auth allows"
        );
        return Ok(TransportInfo {
            mode: "plain text",
            certificate_der: None,
        });
    }
    Err(ImapError::NoTls { target, answer })
}

fn starttls(
    options: &ConnectOptions,
    mut tcp: TcpStream,
    tap: Option<&dyn Tap>,
) -> Result<(Transport, TransportInfo, bool), ImapError> {
    let target = format!("{}:{}", options.server, options.port);
    let answer = match tap {
        Some(tap) => starttls_exchange(tap.wrap(Box::new(&mut tcp)).as_mut(), &target)?,
        None => starttls_exchange(&mut tcp, &target)?,
    };
    match answer {
        StartTlsAnswer::Accepted => {
            let tls = handshake(options, tcp)?;
            let info = tls_info("STARTTLS", &tls);
            Ok((Transport::Tls(Box::new(tls)), info, true))
        }
        StartTlsAnswer::Refused(answer) => {
            let info = refused_starttls(options, answer)?;
            Ok((Transport::Plain(tcp), info, true))
        }
    }
}

/// The TLS protocol and cipher the server negotiates, read on a second, short
/// connection that sends no credentials (diagnostics only: native-tls does not expose
/// them on the session's own connection).
pub fn probe_tls(options: &ConnectOptions) -> Option<(String, String)> {
    use openssl::ssl::{Ssl, SslContext, SslMethod, SslVerifyMode, SslVersion};
    let mut tcp = connect_tcp(options).ok()?;
    if options.security == Security::StartTls {
        read_line(&mut tcp).ok()?;
        tcp.write_all(b"p0 STARTTLS\r\n").ok()?;
        loop {
            let line = read_line(&mut tcp).ok()?;
            if line.starts_with("p0 ") {
                if !line.starts_with("p0 OK") {
                    return None;
                }
                break;
            }
        }
    }
    // The session's own connection verified the server; this one carries nothing, so
    // it skips loading the system's CA bundle too (most of its cost on a fast link).
    let mut context = SslContext::builder(SslMethod::tls_client()).ok()?;
    context.set_verify(SslVerifyMode::NONE);
    // What the session offered (native-tls's cipher list, TLS 1.2 at least), so the
    // server picks what it picked for the session.
    context
        .set_cipher_list("DEFAULT:!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!IDEA:!SEED:!aDSS:!SRP:!PSK")
        .ok()?;
    context
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .ok()?;
    let mut ssl = Ssl::new(&context.build()).ok()?;
    // SNI, so a server with several certificates answers as it did the session.
    if options.server.parse::<std::net::IpAddr>().is_err() {
        ssl.set_hostname(&options.server).ok()?;
    }
    let ssl = ssl.connect(tcp).ok()?;
    let cipher = ssl
        .ssl()
        .current_cipher()
        .map(|c| c.name().to_owned())
        .unwrap_or_default();
    Some((ssl.ssl().version_str().to_owned(), cipher))
}
