//! A small OAuth 2.0 provider for the tests: token endpoint, authorization endpoint and the
//! RFC 7662 introspection endpoint Dovecot's `passdb oauth2` calls.
//!
//! `OAuthStub::start()` listens on a free 127.0.0.1 port, serves HTTP/1.1 with
//! `Connection: close` from a background thread, and stops when dropped. Tests steer it with
//! knobs (token lifetime, refresh-token rotation, what `/authorize` answers, revocation) and
//! inspect what it was asked (every `/token` request with its parameters, every
//! `/authorize` and `/introspect` call) and every secret it issued.
//!
//! Endpoints:
//! - `POST /token`, form-encoded: `grant_type=refresh_token` (`refresh_token`),
//!   `client_credentials` (`scope`), `authorization_code` (`code`, `redirect_uri`,
//!   `code_verifier`, checked against the S256 `code_challenge` given to `/authorize`).
//!   The client authenticates with HTTP Basic or the `client_id`/`client_secret` form fields.
//!   Errors as RFC 6749 §5.2: 400 `invalid_grant`, 400 `invalid_request`,
//!   400 `unsupported_grant_type`, 401 `invalid_client`.
//! - `GET /authorize?response_type=code&client_id&redirect_uri&state&code_challenge&...`:
//!   the user consents at once: 302 to `redirect_uri?code=..&state=..` (or an error, or a
//!   wrong state, per [`AuthorizeOutcome`]).
//! - `POST /introspect`, form `token=...`: `{"active":true,"username":..}` for a live token
//!   this stub issued (or was given), else `{"active":false}`.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::Digest as _;

/// The client registered by default.
pub const CLIENT_ID: &str = "soar-imap-test-client";
/// Its secret (distinctive, so leak checks can look for it).
pub const CLIENT_SECRET: &str = "Cs-3b9d61f2-stub-client-secret";
/// The `error_description` of a denied consent.
pub const DENIED_DESCRIPTION: &str = "The user denied the request";

/// What `GET /authorize` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// The user consents: redirect with a fresh code and the client's state.
    Consent,
    /// The user refuses: redirect with `error=access_denied&error_description=...`.
    Deny,
    /// Redirect with a valid code but a state the client did not send (a forged callback).
    WrongState,
}

/// One request to `POST /token`, as the stub saw it.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// `grant_type` form field ("" if missing).
    pub grant_type: String,
    /// Every form field of the body (secrets included: this is a test stub).
    pub params: BTreeMap<String, String>,
    /// The client id, from Basic auth or the form.
    pub client_id: Option<String>,
    /// `"basic"`, `"form"` or `"none"`.
    pub client_auth: &'static str,
    /// The HTTP status answered.
    pub status: u16,
    /// The OAuth `error` answered, if any.
    pub error: Option<String>,
    /// The access token issued, if any.
    pub access_token: Option<String>,
    /// The refresh token issued, if any.
    pub refresh_token: Option<String>,
}

/// One call of `POST /introspect`.
#[derive(Clone, Debug)]
pub struct Introspection {
    pub token: String,
    pub active: bool,
}

#[derive(Debug)]
struct AccessToken {
    user: String,
    expires_at: Instant,
    revoked: bool,
}

#[derive(Debug)]
struct RefreshToken {
    user: String,
    scope: String,
    revoked: bool,
}

#[derive(Debug)]
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
    used: bool,
}

#[derive(Debug)]
struct State {
    clients: HashMap<String, String>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    codes: HashMap<String, Code>,
    expires_in: u64,
    rotate_refresh_tokens: bool,
    authorize_outcome: AuthorizeOutcome,
    client_credentials_user: String,
    authorize_user: String,
    token_requests: Vec<TokenRequest>,
    introspections: Vec<Introspection>,
    authorize_requests: Vec<BTreeMap<String, String>>,
    /// Every secret ever known: client secrets, refresh and access tokens.
    secrets: Vec<String>,
}

/// The running stub. Dropping it stops the server.
pub struct OAuthStub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// `prefix-` and 32 random hex digits.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0_u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    let mut token = format!("{prefix}-");
    for b in bytes {
        let _ = write!(token, "{b:02x}");
    }
    token
}

impl OAuthStub {
    /// Start the stub with one client ([`CLIENT_ID`]/[`CLIENT_SECRET`]), tokens that live
    /// an hour, and consent at `/authorize`.
    pub fn start() -> OAuthStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OAuth stub");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            clients: HashMap::from([(CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())]),
            access: HashMap::new(),
            refresh: HashMap::new(),
            codes: HashMap::new(),
            expires_in: 3600,
            rotate_refresh_tokens: false,
            authorize_outcome: AuthorizeOutcome::Consent,
            client_credentials_user: "soc".to_owned(),
            authorize_user: "soc".to_owned(),
            token_requests: Vec::new(),
            introspections: Vec::new(),
            authorize_requests: Vec::new(),
            secrets: vec![CLIENT_SECRET.to_owned()],
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || serve(&stream, &state));
                }
            })
        };
        OAuthStub {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The port the stub listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `expires_in` (seconds) of the access tokens issued from now on; they also stop being
    /// active (introspection) after that long.
    pub fn set_expires_in(&self, secs: u64) {
        self.state().expires_in = secs;
    }

    /// Whether a refresh grant also returns a new refresh token (the old one stays valid).
    pub fn set_rotate_refresh_tokens(&self, rotate: bool) {
        self.state().rotate_refresh_tokens = rotate;
    }

    /// What `/authorize` answers from now on.
    pub fn set_authorize_outcome(&self, outcome: AuthorizeOutcome) {
        self.state().authorize_outcome = outcome;
    }

    /// The user that client-credentials tokens introspect as (default "soc").
    pub fn set_client_credentials_user(&self, user: &str) {
        user.clone_into(&mut self.state().client_credentials_user);
    }

    /// Register a client.
    pub fn add_client(&self, id: &str, secret: &str) {
        let mut state = self.state();
        state.clients.insert(id.to_owned(), secret.to_owned());
        state.secrets.push(secret.to_owned());
    }

    /// Accept `token` as a refresh token of `user`.
    pub fn add_refresh_token(&self, token: &str, user: &str) {
        let mut state = self.state();
        state.refresh.insert(
            token.to_owned(),
            RefreshToken {
                user: user.to_owned(),
                scope: String::new(),
                revoked: false,
            },
        );
        state.secrets.push(token.to_owned());
    }

    /// Issue a fresh refresh token (`rt-<hex>`) for `user`.
    pub fn new_refresh_token(&self, user: &str) -> String {
        let token = random_token("rt");
        self.add_refresh_token(&token, user);
        token
    }

    /// Issue an access token (`at-<hex>`) for `user` directly, as if a grant had run.
    pub fn new_access_token(&self, user: &str) -> String {
        issue_access(&mut self.state(), user)
    }

    /// Revoke a refresh token: refresh grants with it get `invalid_grant`.
    pub fn revoke_refresh_token(&self, token: &str) {
        if let Some(t) = self.state().refresh.get_mut(token) {
            t.revoked = true;
        }
    }

    /// Revoke every access token issued so far: introspection says inactive, although the
    /// clients still think they are valid.
    pub fn revoke_access_tokens(&self) {
        for t in self.state().access.values_mut() {
            t.revoked = true;
        }
    }

    /// Every `/token` request so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state().token_requests.clone()
    }

    /// How many `/token` requests used `grant_type`.
    pub fn token_request_count(&self, grant_type: &str) -> usize {
        self.state()
            .token_requests
            .iter()
            .filter(|r| r.grant_type == grant_type)
            .count()
    }

    /// Every `/introspect` call so far.
    pub fn introspections(&self) -> Vec<Introspection> {
        self.state().introspections.clone()
    }

    /// The query parameters of every `/authorize` request so far.
    pub fn authorize_requests(&self) -> Vec<BTreeMap<String, String>> {
        self.state().authorize_requests.clone()
    }

    /// Every access token issued so far.
    pub fn access_tokens(&self) -> Vec<String> {
        self.state().access.keys().cloned().collect()
    }

    /// Every secret the stub knows: client secrets, refresh tokens, access tokens.
    pub fn secrets(&self) -> Vec<String> {
        self.state().secrets.clone()
    }
}

impl Drop for OAuthStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn issue_access(state: &mut State, user: &str) -> String {
    let token = random_token("at");
    state.access.insert(
        token.clone(),
        AccessToken {
            user: user.to_owned(),
            expires_at: Instant::now() + Duration::from_secs(state.expires_in),
            revoked: false,
        },
    );
    state.secrets.push(token.clone());
    token
}

fn issue_refresh(state: &mut State, user: &str, scope: &str) -> String {
    let token = random_token("rt");
    state.refresh.insert(
        token.clone(),
        RefreshToken {
            user: user.to_owned(),
            scope: scope.to_owned(),
            revoked: false,
        },
    );
    state.secrets.push(token.clone());
    token
}

// ---- HTTP plumbing --------------------------------------------------------------------

/// A parsed HTTP request.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP response to send.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body: body.to_string().into_bytes(),
        }
    }

    fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
        let mut reply = Reply::json(
            status,
            &json!({"error": error, "error_description": description}),
        );
        if status == 401 {
            reply
                .headers
                .push(("WWW-Authenticate".into(), "Basic realm=\"stub\"".into()));
        }
        reply
    }

    fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn redirect(location: &str) -> Reply {
        Reply {
            status: 302,
            headers: vec![("Location".into(), location.to_owned())],
            body: Vec::new(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Status",
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn write_reply(mut stream: &TcpStream, reply: &Reply) {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(
        head,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
}

fn serve(stream: &TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(stream) else {
        return;
    };
    let reply = {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        route(&request, &mut state)
    };
    write_reply(stream, &reply);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Decode `application/x-www-form-urlencoded` (also a query string).
pub fn form_decode(input: &str) -> BTreeMap<String, String> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Percent-decoding with `+` as space.
pub fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encoding of everything but unreserved characters.
pub fn percent_encode(input: &str) -> String {
    input
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn route(request: &Request, state: &mut State) -> Reply {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    match (request.method.as_str(), path) {
        ("POST", "/token") => token(request, state),
        ("GET", "/authorize") => authorize(&form_decode(query), state),
        ("POST" | "GET", "/introspect") => introspect(request, query, state),
        (_, "/token" | "/authorize" | "/introspect") => Reply::text(405, "method not allowed"),
        _ => Reply::text(404, "not found"),
    }
}

fn introspect(request: &Request, query: &str, state: &mut State) -> Reply {
    let mut form = form_decode(&String::from_utf8_lossy(&request.body));
    form.extend(form_decode(query));
    let token = form
        .get("token")
        .cloned()
        .or_else(|| {
            request
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let user = state
        .access
        .get(&token)
        .filter(|t| !t.revoked && Instant::now() < t.expires_at)
        .map(|t| t.user.clone());
    state.introspections.push(Introspection {
        token,
        active: user.is_some(),
    });
    match user {
        Some(user) => Reply::json(200, &json!({"active": true, "username": user})),
        None => Reply::json(200, &json!({"active": false})),
    }
}

fn authorize(query: &BTreeMap<String, String>, state: &mut State) -> Reply {
    state.authorize_requests.push(query.clone());
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    let (client_id, redirect_uri, state_param) =
        (get("client_id"), get("redirect_uri"), get("state"));
    if !state.clients.contains_key(&client_id) {
        return Reply::text(400, "unknown client_id");
    }
    if redirect_uri.is_empty() {
        return Reply::text(400, "missing redirect_uri");
    }
    let join = if redirect_uri.contains('?') { '&' } else { '?' };
    let redirect_error = |error: &str, description: &str| {
        Reply::redirect(&format!(
            "{redirect_uri}{join}error={error}&error_description={}&state={}",
            percent_encode(description),
            percent_encode(&state_param)
        ))
    };
    if get("response_type") != "code" {
        return redirect_error("unsupported_response_type", "response_type must be code");
    }
    if get("code_challenge").is_empty() || get("code_challenge_method") != "S256" {
        return redirect_error(
            "invalid_request",
            "PKCE with code_challenge_method=S256 is required",
        );
    }
    match state.authorize_outcome {
        AuthorizeOutcome::Deny => redirect_error("access_denied", DENIED_DESCRIPTION),
        outcome => {
            let code = random_token("code");
            state.codes.insert(
                code.clone(),
                Code {
                    client_id,
                    redirect_uri: redirect_uri.clone(),
                    challenge: get("code_challenge"),
                    scope: get("scope"),
                    used: false,
                },
            );
            let returned_state = if outcome == AuthorizeOutcome::WrongState {
                random_token("forged-state")
            } else {
                state_param
            };
            Reply::redirect(&format!(
                "{redirect_uri}{join}code={}&state={}",
                percent_encode(&code),
                percent_encode(&returned_state)
            ))
        }
    }
}

fn token(request: &Request, state: &mut State) -> Reply {
    let params = form_decode(&String::from_utf8_lossy(&request.body));
    let grant_type = params.get("grant_type").cloned().unwrap_or_default();
    let basic = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (percent_decode(id), percent_decode(secret)))
        });
    let (client_id, client_secret, client_auth) = match basic {
        Some((id, secret)) => (Some(id), Some(secret), "basic"),
        None => match params.get("client_id") {
            Some(id) => (
                Some(id.clone()),
                params.get("client_secret").cloned(),
                "form",
            ),
            None => (None, None, "none"),
        },
    };
    let mut record = TokenRequest {
        grant_type: grant_type.clone(),
        params: params.clone(),
        client_id: client_id.clone(),
        client_auth,
        status: 200,
        error: None,
        access_token: None,
        refresh_token: None,
    };
    let reply = grant(
        state,
        &params,
        &grant_type,
        client_id.as_deref(),
        client_secret.as_deref(),
    );
    match &reply {
        Ok(body) => {
            record.access_token = body["access_token"].as_str().map(str::to_owned);
            record.refresh_token = body["refresh_token"].as_str().map(str::to_owned);
        }
        Err((status, error, _)) => {
            record.status = *status;
            record.error = Some((*error).to_owned());
        }
    }
    state.token_requests.push(record);
    match reply {
        Ok(body) => Reply::json(200, &body),
        Err((status, error, description)) => Reply::oauth_error(status, error, &description),
    }
}

type GrantResult = Result<Value, (u16, &'static str, String)>;

fn grant(
    state: &mut State,
    params: &BTreeMap<String, String>,
    grant_type: &str,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> GrantResult {
    let invalid_grant = |d: &str| Err((400, "invalid_grant", d.to_owned()));
    let Some(client_id) = client_id else {
        return Err((
            401,
            "invalid_client",
            "client authentication required".into(),
        ));
    };
    match state.clients.get(client_id) {
        Some(secret) if Some(secret.as_str()) == client_secret => {}
        Some(_) => return Err((401, "invalid_client", "wrong client secret".into())),
        None => return Err((401, "invalid_client", "unknown client".into())),
    }
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let expires_in = state.expires_in;
    match grant_type {
        "refresh_token" => {
            let token = get("refresh_token");
            let (user, scope) = match state.refresh.get(&token) {
                None => return invalid_grant("unknown refresh token"),
                Some(t) if t.revoked => {
                    return invalid_grant("Token has been expired or revoked.");
                }
                Some(t) => (t.user.clone(), t.scope.clone()),
            };
            let scope = params.get("scope").cloned().unwrap_or(scope);
            let access = issue_access(state, &user);
            let mut body = json!({"access_token": access, "token_type": "Bearer",
                "expires_in": expires_in, "scope": scope});
            if state.rotate_refresh_tokens {
                body["refresh_token"] = json!(issue_refresh(state, &user, &scope));
            }
            Ok(body)
        }
        "client_credentials" => {
            let scope = get("scope");
            let user = state.client_credentials_user.clone();
            let access = issue_access(state, &user);
            Ok(json!({"access_token": access, "token_type": "Bearer",
                "expires_in": expires_in, "scope": scope}))
        }
        "authorization_code" => {
            let code = get("code");
            let verifier = get("code_verifier");
            let Some(entry) = state.codes.get_mut(&code) else {
                return invalid_grant("unknown authorization code");
            };
            if entry.used {
                return invalid_grant("authorization code already used");
            }
            entry.used = true;
            if entry.client_id != client_id {
                return invalid_grant("code issued to another client");
            }
            if entry.redirect_uri != get("redirect_uri") {
                return invalid_grant("redirect_uri does not match the authorization request");
            }
            let computed = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
            if verifier.is_empty() || computed != entry.challenge {
                return invalid_grant("PKCE verification failed");
            }
            let scope = entry.scope.clone();
            let user = state.authorize_user.clone();
            let access = issue_access(state, &user);
            let refresh = issue_refresh(state, &user, &scope);
            Ok(json!({"access_token": access, "token_type": "Bearer",
                "expires_in": expires_in, "refresh_token": refresh, "scope": scope}))
        }
        "" => Err((400, "invalid_request", "missing grant_type".into())),
        _ => Err((
            400,
            "unsupported_grant_type",
            format!("grant_type {grant_type} is not supported"),
        )),
    }
}

// ---- A tiny HTTP client for the tests -------------------------------------------------

/// An HTTP response as a test sees it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request to an `http://host:port/...` URL (no redirects followed).
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other(format!("not an http:// URL: {url}")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(
        head,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    // A server that closes without reading everything may reset: keep what arrived.
    if let Err(e) = stream.read_to_end(&mut raw)
        && raw.is_empty()
    {
        return Err(e);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status line in {text:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// `POST url` with a form body and optional Basic client authentication.
pub fn post_form(url: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> HttpResponse {
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let auth = basic.map(|(id, secret)| {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", percent_encode(id), percent_encode(secret)))
        )
    });
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    http("POST", url, &headers, body.as_bytes()).expect("POST to the stub")
}

// ---- Tests of the stub itself, and of Dovecot's passdb oauth2 against it ----------------

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use super::*;
    use crate::dovecot::{Dovecot, PASSWORD, USER};

    fn refresh(stub: &OAuthStub, token: &str) -> HttpResponse {
        post_form(
            &stub.url("/token"),
            Some((CLIENT_ID, CLIENT_SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
    }

    fn introspect(stub: &OAuthStub, token: &str) -> Value {
        post_form(&stub.url("/introspect"), None, &[("token", token)]).json()
    }

    #[test]
    fn refresh_grant_issues_live_tokens_and_rejects_revoked_ones() {
        let stub = OAuthStub::start();
        let rt = stub.new_refresh_token("soc");
        let response = refresh(&stub, &rt);
        assert_eq!(response.status, 200, "{response:?}");
        let body = response.json();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert!(
            body.get("refresh_token").is_none(),
            "no rotation by default"
        );
        let at = body["access_token"].as_str().unwrap().to_owned();
        assert!(at.starts_with("at-") && at.len() == 35, "{at}");
        assert_eq!(
            introspect(&stub, &at),
            json!({"active": true, "username": "soc"})
        );
        assert_eq!(introspect(&stub, "at-not-issued"), json!({"active": false}));

        // Form-field client authentication works too.
        let form = post_form(
            &stub.url("/token"),
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        );
        assert_eq!(form.status, 200, "{form:?}");
        let requests = stub.token_requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].client_auth, "basic");
        assert_eq!(requests[1].client_auth, "form");
        assert_eq!(requests[0].params["refresh_token"], rt);
        assert_eq!(stub.token_request_count("refresh_token"), 2);

        stub.revoke_access_tokens();
        assert_eq!(introspect(&stub, &at), json!({"active": false}));

        stub.revoke_refresh_token(&rt);
        let revoked = refresh(&stub, &rt);
        assert_eq!(revoked.status, 400);
        assert_eq!(revoked.json()["error"], "invalid_grant");
        let unknown = refresh(&stub, "rt-unknown");
        assert_eq!(unknown.json()["error"], "invalid_grant");

        let wrong_secret = post_form(
            &stub.url("/token"),
            Some((CLIENT_ID, "wrong")),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        );
        assert_eq!(wrong_secret.status, 401);
        assert_eq!(wrong_secret.json()["error"], "invalid_client");
        assert_eq!(
            stub.token_requests().last().unwrap().error.as_deref(),
            Some("invalid_client")
        );

        for secret in [CLIENT_SECRET, rt.as_str(), at.as_str()] {
            assert!(stub.secrets().iter().any(|s| s == secret), "{secret}");
        }
    }

    #[test]
    fn tokens_expire_and_rotation_is_a_knob() {
        let stub = OAuthStub::start();
        stub.set_expires_in(1);
        stub.set_rotate_refresh_tokens(true);
        let rt = stub.new_refresh_token("soc");
        let body = refresh(&stub, &rt).json();
        assert_eq!(body["expires_in"], 1);
        let rotated = body["refresh_token"].as_str().unwrap();
        assert!(rotated.starts_with("rt-"));
        assert_eq!(refresh(&stub, rotated).status, 200);
        let at = body["access_token"].as_str().unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(introspect(&stub, at), json!({"active": false}));
    }

    #[test]
    fn client_credentials_tokens_introspect_as_the_mapped_user() {
        let stub = OAuthStub::start();
        stub.add_client("m365-app", "Cs-app-secret-0042");
        let scope = "https://outlook.office365.com/.default";
        let response = post_form(
            &stub.url("/token"),
            Some(("m365-app", "Cs-app-secret-0042")),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        );
        assert_eq!(response.status, 200, "{response:?}");
        let body = response.json();
        assert_eq!(body["scope"], scope);
        assert!(body.get("refresh_token").is_none());
        assert_eq!(
            introspect(&stub, body["access_token"].as_str().unwrap())["username"],
            "soc"
        );
        let request = &stub.token_requests()[0];
        assert_eq!(request.grant_type, "client_credentials");
        assert_eq!(request.client_id.as_deref(), Some("m365-app"));
        assert_eq!(request.params["scope"], scope);
        let missing = post_form(
            &stub.url("/token"),
            None,
            &[("grant_type", "client_credentials")],
        );
        assert_eq!(missing.status, 401);
    }

    fn authorize_url(stub: &OAuthStub, redirect: &str, state: &str, challenge: &str) -> String {
        format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&state={}&code_challenge={}&code_challenge_method=S256&scope={}",
            stub.url("/authorize"),
            percent_encode(CLIENT_ID),
            percent_encode(redirect),
            percent_encode(state),
            challenge,
            percent_encode("https://mail.google.com/ offline"),
        )
    }

    fn location_params(response: &HttpResponse, redirect: &str) -> BTreeMap<String, String> {
        assert_eq!(response.status, 302, "{response:?}");
        let location = response.header("location").unwrap();
        let query = location
            .strip_prefix(redirect)
            .and_then(|q| q.strip_prefix('?'))
            .unwrap_or_else(|| panic!("{location} does not go to {redirect}"));
        form_decode(query)
    }

    #[test]
    fn authorization_code_flow_checks_pkce_state_and_redirect() {
        let stub = OAuthStub::start();
        let redirect = "http://127.0.0.1:1/callback";
        let verifier = "v3r1f1er-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG";
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        let get = |url: &str| http("GET", url, &[], b"").unwrap();

        let consent = get(&authorize_url(&stub, redirect, "st-1", &challenge));
        let params = location_params(&consent, redirect);
        assert_eq!(params["state"], "st-1");
        let code = params["code"].clone();
        let asked = &stub.authorize_requests()[0];
        assert_eq!(asked["code_challenge"], challenge);
        assert_eq!(asked["scope"], "https://mail.google.com/ offline");

        let exchange = |code: &str, verifier: &str, redirect: &str| {
            post_form(
                &stub.url("/token"),
                Some((CLIENT_ID, CLIENT_SECRET)),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect),
                    ("code_verifier", verifier),
                ],
            )
        };
        let good = exchange(&code, verifier, redirect);
        assert_eq!(good.status, 200, "{good:?}");
        let body = good.json();
        assert!(body["refresh_token"].as_str().unwrap().starts_with("rt-"));
        let at = body["access_token"].as_str().unwrap();
        assert_eq!(introspect(&stub, at)["username"], "soc");
        // A code works once.
        assert_eq!(
            exchange(&code, verifier, redirect).json()["error"],
            "invalid_grant"
        );

        // A wrong verifier or redirect URI: invalid_grant.
        let code = location_params(
            &get(&authorize_url(&stub, redirect, "st-2", &challenge)),
            redirect,
        )["code"]
            .clone();
        assert_eq!(
            exchange(
                &code,
                "another-verifier-0123456789-0123456789-012345",
                redirect
            )
            .json()["error"],
            "invalid_grant"
        );
        let code = location_params(
            &get(&authorize_url(&stub, redirect, "st-3", &challenge)),
            redirect,
        )["code"]
            .clone();
        assert_eq!(
            exchange(&code, verifier, "http://127.0.0.1:2/other").json()["error"],
            "invalid_grant"
        );

        stub.set_authorize_outcome(AuthorizeOutcome::Deny);
        let denied = location_params(
            &get(&authorize_url(&stub, redirect, "st-4", &challenge)),
            redirect,
        );
        assert_eq!(denied["error"], "access_denied");
        assert_eq!(denied["error_description"], DENIED_DESCRIPTION);
        assert_eq!(denied["state"], "st-4");
        assert!(!denied.contains_key("code"));

        stub.set_authorize_outcome(AuthorizeOutcome::WrongState);
        let forged = location_params(
            &get(&authorize_url(&stub, redirect, "st-5", &challenge)),
            redirect,
        );
        assert_ne!(forged["state"], "st-5");
        assert!(forged.contains_key("code"));

        // No PKCE: refused.
        stub.set_authorize_outcome(AuthorizeOutcome::Consent);
        let no_pkce = get(&format!(
            "{}?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&state=s",
            stub.url("/authorize"),
            percent_encode(redirect)
        ));
        assert_eq!(
            location_params(&no_pkce, redirect)["error"],
            "invalid_request"
        );
    }

    // ---- Dovecot's passdb oauth2 against the stub -------------------------------------

    /// XOAUTH2 per Google's spec: the token on the empty initial challenge, an empty reply
    /// to the `+ <base64 JSON error>` continuation Dovecot sends on failure.
    struct XOAuth2 {
        user: String,
        token: String,
    }

    impl imap::Authenticator for XOAuth2 {
        type Response = Vec<u8>;
        fn process(&self, challenge: &[u8]) -> Vec<u8> {
            if challenge.is_empty() {
                xoauth2_payload(&self.user, &self.token).into_bytes()
            } else {
                Vec::new()
            }
        }
    }

    fn xoauth2_payload(user: &str, token: &str) -> String {
        format!("user={user}\x01auth=Bearer {token}\x01\x01")
    }

    type TlsClient = imap::Client<native_tls::TlsStream<TcpStream>>;

    fn tls_client(server: &Dovecot) -> TlsClient {
        let ca =
            native_tls::Certificate::from_pem(&std::fs::read(server.ca_pem()).unwrap()).unwrap();
        let connector = native_tls::TlsConnector::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", server.imaps_port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let tls = connector.connect("localhost", tcp).unwrap();
        let mut client = imap::Client::new(tls);
        client.read_greeting().unwrap();
        client
    }

    fn xoauth2_login(server: &Dovecot, mechanism: &str, token: &str) -> Result<(), String> {
        let auth = XOAuth2 {
            user: USER.to_owned(),
            token: token.to_owned(),
        };
        match tls_client(server).authenticate(mechanism, &auth) {
            Ok(mut session) => {
                let inbox = session.examine("INBOX").map_err(|e| e.to_string())?;
                assert_eq!(inbox.exists, 1);
                let _ = session.logout();
                Ok(())
            }
            Err((imap::Error::No(no), _)) => Err(format!("NO {}", no.information)),
            Err((e, _)) => panic!("unexpected XOAUTH2 failure: {e:?}\n{}", server.log()),
        }
    }

    #[test]
    fn harness_dovecot_advertises_xoauth2_and_sasl_ir() {
        let stub = OAuthStub::start();
        let server = Dovecot::start_with_oauth(&stub.url("/introspect"));
        let mut client = tls_client(&server);
        let capabilities = client.capabilities().unwrap();
        for capability in ["AUTH=XOAUTH2", "AUTH=OAUTHBEARER", "AUTH=PLAIN", "SASL-IR"] {
            assert!(
                capabilities.has_str(capability),
                "{capability} not advertised: {:?}",
                capabilities.iter().collect::<Vec<_>>()
            );
        }
        // Password logins still work next to the oauth2 passdb.
        let mut session = client.login(USER, PASSWORD).map_err(|(e, _)| e).unwrap();
        session.examine("INBOX").unwrap();
        let _ = session.logout();
        // And the plain harness offers no XOAUTH2.
        let plain = Dovecot::start();
        let capabilities = tls_client(&plain).capabilities().unwrap();
        assert!(!capabilities.has_str("AUTH=XOAUTH2"));
    }

    #[test]
    fn harness_dovecot_accepts_a_live_stub_token_and_refuses_a_revoked_one() {
        let stub = OAuthStub::start();
        let server = Dovecot::start_with_oauth(&stub.url("/introspect"));
        server.save("INBOX", b"From: a@example.com\r\nSubject: hi\r\n\r\nhi\r\n");
        let rt = stub.new_refresh_token(USER);
        let at = refresh(&stub, &rt).json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();

        // Two round trips: empty challenge, then the token.
        xoauth2_login(&server, "XOAUTH2", &at).unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
        assert!(
            stub.introspections()
                .iter()
                .any(|i| i.token == at && i.active),
            "Dovecot did not introspect the token: {:?}",
            stub.introspections()
        );

        // SASL-IR: the initial response on the AUTHENTICATE line itself.
        let initial = STANDARD.encode(xoauth2_payload(USER, &at));
        xoauth2_login(&server, &format!("XOAUTH2 {initial}"), &at)
            .unwrap_or_else(|e| panic!("SASL-IR: {e}\n{}", server.log()));

        // A token the provider does not know, and a revoked one: NO, no hang.
        let unknown = xoauth2_login(&server, "XOAUTH2", "at-never-issued").unwrap_err();
        assert!(unknown.contains("AUTHENTICATIONFAILED"), "{unknown}");
        stub.revoke_access_tokens();
        let revoked = xoauth2_login(&server, "XOAUTH2", &at).unwrap_err();
        assert!(revoked.contains("AUTHENTICATIONFAILED"), "{revoked}");
        let initial = STANDARD.encode(xoauth2_payload(USER, &at));
        let revoked_ir = xoauth2_login(&server, &format!("XOAUTH2 {initial}"), &at).unwrap_err();
        assert!(revoked_ir.contains("AUTHENTICATIONFAILED"), "{revoked_ir}");

        // A fresh token works again after the revocation.
        let fresh = refresh(&stub, &rt).json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        xoauth2_login(&server, "XOAUTH2", &fresh)
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));

        // Client-credential tokens log in as the mapped user.
        let cc = post_form(
            &stub.url("/token"),
            Some((CLIENT_ID, CLIENT_SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "https://outlook.office365.com/.default"),
            ],
        )
        .json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        xoauth2_login(&server, "XOAUTH2", &cc).unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    }
}
