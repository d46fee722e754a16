//! In-process stand-ins for a token endpoint, an HTTP proxy and a browser.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::Duration,
};

use openssl::{
    asn1::Asn1Time,
    bn::BigNum,
    hash::MessageDigest,
    pkey::{PKey, Private},
    rsa::Rsa,
    ssl::{SslAcceptor, SslMethod},
    x509::{
        X509, X509NameBuilder,
        extension::{BasicConstraints, SubjectAlternativeName},
    },
};

/// One request the stub token endpoint received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// The form fields of the body.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    /// A header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the stub answers.
pub struct Reply {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: String,
    pub delay: Duration,
    pub location: Option<&'static str>,
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: Some("application/json; charset=utf-8"),
            body: body.to_string(),
            delay: Duration::ZERO,
            location: None,
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: &str) -> Self {
        Self {
            status,
            content_type: Some(content_type),
            body: body.to_owned(),
            delay: Duration::ZERO,
            location: None,
        }
    }

    /// A token response.
    pub fn token(access: &str, refresh: Option<&str>, expires_in: u64) -> Self {
        let mut body = serde_json::json!({
            "access_token": access, "token_type": "Bearer", "expires_in": expires_in,
            "scope": "https://mail.google.com/",
        });
        if let Some(refresh) = refresh {
            body["refresh_token"] = refresh.into();
        }
        Self::json(200, &body)
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// A token endpoint on 127.0.0.1 that records requests and answers with `handler`
/// (given the request and its 0-based index).
pub struct StubServer {
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    server: Arc<tiny_http::Server>,
}

impl StubServer {
    pub fn start(handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let server = Arc::clone(&server);
            let requests = Arc::clone(&requests);
            thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let mut body = String::new();
                    let _ = request.as_reader().read_to_string(&mut body);
                    let recorded = Recorded {
                        method: request.method().to_string(),
                        path: request.url().to_owned(),
                        headers: request
                            .headers()
                            .iter()
                            .map(|h| (h.field.to_string(), h.value.to_string()))
                            .collect(),
                        body,
                    };
                    let index = {
                        let mut all = requests.lock().unwrap();
                        all.push(recorded.clone());
                        all.len() - 1
                    };
                    let handler = Arc::clone(&handler);
                    // Each answer on its own thread, so a slow one does not hold up others.
                    thread::spawn(move || {
                        let reply = handler(&recorded, index);
                        thread::sleep(reply.delay);
                        let mut response = tiny_http::Response::from_string(reply.body)
                            .with_status_code(reply.status);
                        if let Some(ct) = reply.content_type {
                            response = response.with_header(
                                tiny_http::Header::from_bytes("Content-Type", ct).unwrap(),
                            );
                        }
                        if let Some(location) = reply.location {
                            response = response.with_header(
                                tiny_http::Header::from_bytes("Location", location).unwrap(),
                            );
                        }
                        let _ = request.respond(response);
                    });
                }
            });
        }
        Self {
            base: format!("http://127.0.0.1:{port}"),
            requests,
            server,
        }
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A CA and a leaf certificate for `host`, signed by it.
pub struct TestPki {
    pub ca_pem: Vec<u8>,
    pub leaf: X509,
    pub leaf_key: PKey<Private>,
}

pub fn test_pki(host: &str) -> TestPki {
    fn name(cn: &str) -> openssl::x509::X509Name {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        name.build()
    }
    fn builder(
        subject: &str,
        issuer: &str,
        key: &PKey<Private>,
        serial: u32,
    ) -> openssl::x509::X509Builder {
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name(subject)).unwrap();
        b.set_issuer_name(&name(issuer)).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b
    }
    let ca_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut ca = builder("soar-imap test CA", "soar-imap test CA", &ca_key, 1);
    ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let ca = ca.build();

    let leaf_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut leaf = builder(host, "soar-imap test CA", &leaf_key, 2);
    let san = SubjectAlternativeName::new()
        .dns(host)
        .build(&leaf.x509v3_context(Some(&ca), None))
        .unwrap();
    leaf.append_extension(san).unwrap();
    leaf.sign(&ca_key, MessageDigest::sha256()).unwrap();
    TestPki {
        ca_pem: ca.to_pem().unwrap(),
        leaf: leaf.build(),
        leaf_key,
    }
}

/// What the stub proxy saw.
#[derive(Debug, Clone, Default)]
pub struct ProxyLog {
    /// The request line of the CONNECT.
    pub connect_line: String,
    /// The request tunnelled through it (head and body), after TLS.
    pub tunnelled: String,
}

/// An HTTP CONNECT proxy on 127.0.0.1 for one connection: it accepts the tunnel, plays
/// the TLS server for the target with `pki`, reads one request and answers `body` as JSON.
pub fn start_connect_proxy(pki: &TestPki, body: String) -> (String, mpsc::Receiver<ProxyLog>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_certificate(&pki.leaf).unwrap();
    acceptor.set_private_key(&pki.leaf_key).unwrap();
    let acceptor = acceptor.build();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut log = ProxyLog::default();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        reader.read_line(&mut log.connect_line).unwrap();
        // The rest of the CONNECT head.
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut raw = stream;
        raw.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .unwrap();
        let mut tls = acceptor.accept(raw).unwrap();
        let head = read_head(&mut tls);
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut request_body = vec![0; length];
        tls.read_exact(&mut request_body).unwrap();
        log.tunnelled = format!("{head}{}", String::from_utf8_lossy(&request_body));
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(answer.as_bytes()).unwrap();
        let _ = tls.shutdown();
        tx.send(log).unwrap();
    });
    (format!("http://127.0.0.1:{port}"), rx)
}

/// Reads a request or response head (through the blank line), byte by byte.
fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A browser's GET: status and body.
pub fn browser_get(url: &str) -> (u16, String) {
    let url = url::Url::parse(url).unwrap();
    let host = url.host_str().unwrap();
    let address = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let mut stream = TcpStream::connect((address, url.port_or_known_default().unwrap())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A `Write` that hands each flushed text to a channel (the login's output, read by a
/// test browser while the login blocks).
pub struct ChannelWriter {
    pub sender: mpsc::Sender<String>,
    pub buffer: Vec<u8>,
}

impl ChannelWriter {
    pub fn new() -> (Self, mpsc::Receiver<String>) {
        let (sender, receiver) = mpsc::channel();
        (
            Self {
                sender,
                buffer: Vec::new(),
            },
            receiver,
        )
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(&std::mem::take(&mut self.buffer)).into_owned();
        let _ = self.sender.send(text);
        Ok(())
    }
}

/// The authorization URL in the login's output.
pub fn printed_url(output: &str) -> url::Url {
    let line = output
        .lines()
        .find(|l| l.starts_with("http"))
        .expect("an authorization URL");
    url::Url::parse(line.trim()).unwrap()
}

/// The query parameters of a URL.
pub fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}
