//! `soar-imap oauth login`: the authorization-code flow with PKCE on a loopback redirect.
//!
//! The user opens the printed authorization URL in a browser, signs in as the mailbox
//! user and consents; the authorization server redirects the browser to a one-shot
//! listener on this machine with a code, which is exchanged for tokens at `token_url`.
//! PKCE (S256) binds the code to this process, and a random `state` binds the redirect to
//! this login (the reference app used the asset id as `state`, and no PKCE). Nothing is
//! stored here: the caller stores the returned [`TokenSet`] (see
//! [`super::TokenSource::store_login`]), so nothing is stored when anything fails.
//!
//! The listener answers only its redirect path: other requests (the browser's
//! `/favicon.ico`) get a 404 and the wait goes on, until the redirect or the timeout.

use std::{
    collections::HashMap,
    io::Write,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use oauth2::{
    AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope, basic::BasicClient,
};
use tiny_http::{Header, Method, Response, Server};
use url::{Host, Url};

use super::{
    OAuthError, TokenSet,
    grant::OAuthClient,
    http::{HttpTransport, display_url, endpoint_url, is_loopback_host},
    now_unix, quote_remote,
};
use crate::secret::Secret;

/// How `oauth login` listens for the redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    /// The redirect URI registered with the provider, e.g. `http://localhost:8400/callback`:
    /// plain http on a loopback host (127.0.0.0/8, `::1`, `localhost`, which listens on
    /// 127.0.0.1). `None`: `http://127.0.0.1:<free port>/`, which Google's "desktop app"
    /// clients and Microsoft's `http://localhost`-style registrations accept.
    pub redirect_uri: Option<String>,
    /// How long to wait for the browser's redirect.
    pub timeout: Duration,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            redirect_uri: None,
            timeout: Duration::from_mins(5),
        }
    }
}

/// Runs the interactive login and returns the tokens; stores nothing.
///
/// The authorization URL and what to do with it are written to `out` (stderr in
/// production: stdout is the JSON protocol).
pub fn login(
    client: &OAuthClient,
    auth_url: &str,
    options: &LoginOptions,
    http: &dyn HttpTransport,
    out: &mut dyn Write,
) -> Result<TokenSet, OAuthError> {
    let auth_endpoint = endpoint_url("auth_url", auth_url)?;
    let listener = Listener::bind(options.redirect_uri.as_deref())?;
    let redirect = RedirectUrl::new(listener.redirect_uri.clone()).map_err(|e| {
        OAuthError::InvalidRedirectUri {
            uri: display_url(&listener.redirect_uri),
            problem: e.to_string(),
        }
    })?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize, state) = BasicClient::new(ClientId::new(client.client_id().to_owned()))
        .set_auth_uri(AuthUrl::from_url(auth_endpoint))
        .set_redirect_uri(redirect)
        .authorize_url(CsrfToken::new_random)
        .add_scopes(client.scopes().iter().map(|s| Scope::new(s.clone())))
        .set_pkce_challenge(challenge)
        // Google returns a refresh token only for offline access, and on a repeated
        // consent only with prompt=consent; Microsoft ignores access_type.
        .add_extra_param("access_type", "offline")
        .add_extra_param("prompt", "consent")
        .url();
    let secs = options.timeout.as_secs();
    writeln!(
        out,
        "Open this URL in a browser and sign in as the mailbox user:\n\n{authorize}\n\n\
         Waiting up to {secs} s for the redirect to {} ...",
        listener.redirect_uri
    )
    .and_then(|()| out.flush())
    .map_err(OAuthError::Output)?;

    let code = listener.wait(state.secret(), options.timeout)?;
    let verifier = Secret::new(verifier.secret().clone());
    let result = client.exchange_code(
        http,
        &code.code,
        &verifier,
        &listener.redirect_uri,
        now_unix(),
    );
    let page = match &result {
        Ok(_) => (
            200,
            "soar-imap: signed in. You can close this page and go back to the terminal.",
        ),
        Err(_) => (
            502,
            "soar-imap: the authorization code could not be exchanged for tokens (the terminal says why). Nothing was stored.",
        ),
    };
    respond(code.request, page.0, page.1);
    let tokens = result?;
    if tokens.refresh_token.is_none() {
        tracing::warn!(
            "The authorization server returned no refresh token: the access token works until it expires, then `soar-imap oauth login` is needed again (Microsoft: add offline_access to config.scopes)"
        );
    }
    Ok(tokens)
}

/// The one-shot loopback listener and the redirect URI it serves.
struct Listener {
    server: Server,
    redirect_uri: String,
    /// The path part of the redirect URI (percent-encoded, as browsers send it).
    path: String,
}

/// A redirect that carried a code with the right `state`; the browser still waits for
/// its answer.
struct Callback {
    request: tiny_http::Request,
    code: Secret,
}

/// The page for a redirect of another login.
const MISMATCH: &str = "soar-imap: this redirect does not belong to the login in progress (state mismatch). Nothing was stored.";

/// What to do with one request to the listener.
enum Verdict {
    /// Not the redirect: answer and keep waiting.
    Ignore(u16, &'static str),
    /// The redirect, and it ends the login with an error.
    Fail(OAuthError, &'static str),
    /// The redirect with a code.
    Code(Secret),
}

impl Listener {
    fn bind(redirect_uri: Option<&str>) -> Result<Self, OAuthError> {
        let Some(given) = redirect_uri else {
            let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
            let server = start(address)?;
            let port = server.server_addr().to_ip().map_or(0, |a| a.port());
            return Ok(Self {
                server,
                redirect_uri: format!("http://127.0.0.1:{port}/"),
                path: "/".into(),
            });
        };
        let given = given.trim();
        let invalid = |problem: &str| OAuthError::InvalidRedirectUri {
            uri: display_url(given),
            problem: problem.to_owned(),
        };
        let url = Url::parse(given).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(invalid(
                "it must be a plain http:// URL (the listener has no certificate)",
            ));
        }
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) if ip.is_loopback() => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) if ip.is_loopback() => IpAddr::V6(ip),
            // A browser may try ::1 first, but falls back to 127.0.0.1.
            Some(host @ Host::Domain(_)) if is_loopback_host(&host) => {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
            _ => return Err(invalid("its host must be 127.0.0.1, [::1] or localhost")),
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not have a query or fragment"));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(Self {
            server: start(SocketAddr::new(ip, port))?,
            redirect_uri: given.to_owned(),
            path: url.path().to_owned(),
        })
    }

    /// Waits for the redirect, answering everything else.
    fn wait(&self, state: &str, timeout: Duration) -> Result<Callback, OAuthError> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(OAuthError::LoginTimeout {
                    redirect_uri: self.redirect_uri.clone(),
                    secs: timeout.as_secs(),
                });
            }
            let request = match self.server.recv_timeout(remaining) {
                Ok(Some(request)) => request,
                Ok(None) => continue,
                Err(e) => {
                    return Err(OAuthError::Listener {
                        address: self.redirect_uri.clone(),
                        reason: e.to_string(),
                    });
                }
            };
            match self.judge(&request, state) {
                Verdict::Ignore(status, page) => respond(request, status, page),
                Verdict::Fail(error, page) => {
                    respond(request, 400, page);
                    return Err(error);
                }
                Verdict::Code(code) => return Ok(Callback { request, code }),
            }
        }
    }

    fn judge(&self, request: &tiny_http::Request, state: &str) -> Verdict {
        let target = request.url();
        // Absolute form (through a proxy) is unusual on loopback, but valid.
        let target = match target.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => target,
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path != self.path {
            return Verdict::Ignore(404, "Not found.");
        }
        if !matches!(request.method(), Method::Get | Method::Head) {
            return Verdict::Ignore(405, "Method not allowed.");
        }
        let mut params: HashMap<String, String> = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            params
                .entry(key.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        let param = |key: &str| params.get(key).filter(|v| !v.is_empty());
        let state_matches = param("state").is_some_and(|s| s == state);
        if let Some(error) = param("error") {
            // An error without any state cannot smuggle anything in; report it as is.
            if param("state").is_some() && !state_matches {
                return Verdict::Fail(OAuthError::StateMismatch, MISMATCH);
            }
            return Verdict::Fail(
                OAuthError::AuthorizationRefused {
                    error: quote_remote(error),
                    description: param("error_description").map(|d| quote_remote(d)),
                },
                "soar-imap: the authorization server reported an error (the terminal says which). Nothing was stored.",
            );
        }
        match param("code") {
            Some(_) if !state_matches => Verdict::Fail(OAuthError::StateMismatch, MISMATCH),
            Some(code) => Verdict::Code(Secret::new(code.clone())),
            None => Verdict::Ignore(
                400,
                "soar-imap: waiting for the authorization server's redirect; this request has no code.",
            ),
        }
    }
}

fn start(address: SocketAddr) -> Result<Server, OAuthError> {
    Server::http(address).map_err(|e| OAuthError::Listener {
        address: address.to_string(),
        reason: e.to_string(),
    })
}

/// Answers the browser with a short plain page; a browser that went away is no error.
fn respond(request: tiny_http::Request, status: u16, text: &str) {
    let mut response = Response::from_string(text).with_status_code(status);
    for (name, value) in [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
    ] {
        if let Ok(header) = Header::from_bytes(name, value) {
            response = response.with_header(header);
        }
    }
    if let Err(e) = request.respond(response) {
        tracing::debug!("could not answer the browser: {e}");
    }
}
