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

/// A TCP stream, secured or not.
#[derive(Debug)]
pub enum Transport {
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

/// Open the transport. For STARTTLS the greeting has been consumed; for the other modes
/// the caller reads it.
pub fn open(options: &ConnectOptions) -> Result<(Transport, TransportInfo, bool), ImapError> {
    let tcp = connect_tcp(options)?;
    match options.security {
        Security::ImplicitTls => {
            let tls = handshake(options, tcp)?;
            let info = tls_info("implicit TLS", &tls);
            Ok((Transport::Tls(Box::new(tls)), info, false))
        }
        Security::StartTls => starttls(options, tcp),
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
fn read_line(stream: &mut TcpStream) -> io::Result<String> {
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

fn starttls(
    options: &ConnectOptions,
    mut tcp: TcpStream,
) -> Result<(Transport, TransportInfo, bool), ImapError> {
    let target = format!("{}:{}", options.server, options.port);
    let protocol = |reason: String| ImapError::Protocol {
        step: "STARTTLS",
        reason,
    };
    let greeting =
        read_line(&mut tcp).map_err(|e| protocol(format!("no greeting from {target}: {e}")))?;
    if !greeting.starts_with("* OK") && !greeting.starts_with("* PREAUTH") {
        return Err(protocol(format!(
            "unexpected greeting from {target}: {greeting}"
        )));
    }
    tcp.write_all(b"s0 STARTTLS\r\n")
        .map_err(|e| protocol(e.to_string()))?;
    let answer = loop {
        let line = read_line(&mut tcp).map_err(|e| protocol(e.to_string()))?;
        if line.starts_with("s0 ") {
            break line;
        }
    };
    if answer.starts_with("s0 OK") {
        let tls = handshake(options, tcp)?;
        let info = tls_info("STARTTLS", &tls);
        return Ok((Transport::Tls(Box::new(tls)), info, true));
    }
    if options.allow_plaintext_auth {
        tracing::warn!(
            "{target} refused STARTTLS ({answer}); continuing in plain text as config.allow_plaintext_auth allows"
        );
        let info = TransportInfo {
            mode: "plain text",
            certificate_der: None,
        };
        return Ok((Transport::Plain(tcp), info, true));
    }
    Err(ImapError::NoTls { target, answer })
}

/// The TLS protocol and cipher the server negotiates, read on a second, short
/// connection that sends no credentials (diagnostics only: native-tls does not expose
/// them on the session's own connection).
pub fn probe_tls(options: &ConnectOptions) -> Option<(String, String)> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
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
    let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
    // The session's own connection verified the server; this one carries nothing.
    builder.set_verify(SslVerifyMode::NONE);
    let ssl = builder
        .build()
        .configure()
        .ok()?
        .verify_hostname(false)
        .connect(&options.server, tcp)
        .ok()?;
    let cipher = ssl
        .ssl()
        .current_cipher()
        .map(|c| c.name().to_owned())
        .unwrap_or_default();
    Some((ssl.ssl().version_str().to_owned(), cipher))
}
