//! OAuth 2.0 for XOAUTH2 logins: token grants, sealed token storage, interactive login.
//!
//! The pieces, from the wire up:
//!
//! - [`http`]: the one HTTP seam of token requests ([`HttpTransport`]), implemented over
//!   ureq 3 by [`UreqTransport`] with the asset's timeout, proxy and trust anchors. Plain
//!   `http://` endpoints are refused unless they are on a loopback host.
//! - [`grant`]: [`OAuthClient`] runs the three grants against `token_url` (refresh token,
//!   client credentials, authorization code with PKCE) and turns every failure into an
//!   [`OAuthError`] that names the endpoint and never a secret.
//! - [`seal`]: tokens at rest in the on-disk store are sealed with AES-256-GCM under a key
//!   derived from `<data_dir>/keys/oauth.key` and the asset's `client_secret`.
//! - [`cache`]: [`TokenCache`] reads and writes the `oauth_token` blob of a state store,
//!   sealed (on-disk store) or as plain JSON (stateless runs, where the platform owns and
//!   protects the state it hands back).
//! - [`tokens`]: [`TokenSource`] is the policy the IMAP login uses: reuse a stored token
//!   while it has time left, refresh early, store before returning, refresh once more
//!   when the server rejects the token.
//! - [`mod@login`]: the interactive authorization-code flow of `soar-imap oauth login`.
//!
//! # Provider settings
//!
//! | provider | `auth_url` | `token_url` | `scopes` |
//! |---|---|---|---|
//! | Gmail (default scope) | `https://accounts.google.com/o/oauth2/auth` | `https://oauth2.googleapis.com/token` | `https://mail.google.com/` |
//! | Microsoft 365, delegated (`oauth login`) | `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/authorize` | `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token` | `https://outlook.office.com/IMAP.AccessAsUser.All offline_access` |
//! | Microsoft 365, app-only (`oauth_grant: client_credentials`) | (not used) | `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token` | `https://outlook.office365.com/.default` |
//!
//! The configuration's default scope is Gmail's, so Microsoft 365 users must set
//! `scopes`. Microsoft only returns a refresh token when `offline_access` is among the
//! scopes; Google only with `access_type=offline`, which the login adds.

pub mod cache;
pub mod grant;
pub mod http;
pub mod login;
pub mod seal;
pub mod tokens;

use std::path::PathBuf;

pub use cache::{StoredTokens, TOKEN_BLOB_KEY, TokenCache};
pub use grant::OAuthClient;
pub use http::{HttpSettings, HttpTransport, TransportError, UreqTransport, choose_proxy};
pub use login::{LoginOptions, login};
pub use seal::{KEY_FILE, SealKey};
pub use tokens::TokenSource;

use crate::{config::ConfigError, secret::Secret, state::StateError};

/// What a grant returns: a fresh access token and what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The access token for XOAUTH2.
    pub access_token: Secret,
    /// The refresh token: the one the server returned, else (refresh grant) the one sent.
    pub refresh_token: Option<Secret>,
    /// When the access token expires, in Unix seconds (from `expires_in`), if the server said.
    pub expires_at: Option<u64>,
    /// The granted scopes, space-separated, if the server said.
    pub scope: Option<String>,
    /// The client the tokens belong to.
    pub client_id: String,
    /// The token endpoint that issued them.
    pub token_url: String,
}

/// Why an OAuth token could not be obtained, stored or used.
///
/// Messages name the endpoint (without user info or query) and the config key at fault,
/// and never contain a token, a client secret, an authorization code or a PKCE verifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// A configuration key the flow needs is missing or unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An endpoint URL that cannot be parsed or has an unsupported scheme.
    #[error("config.{key} must be an http or https URL ({problem}), got {url}")]
    InvalidUrl {
        /// The config key, e.g. `token_url`.
        key: &'static str,
        /// The URL, without user info, query or fragment.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A plain-http endpoint that is not on this machine: secrets would cross the network in clear.
    #[error(
        "config.{key} must be an https URL (plain http is only allowed to a loopback host such as 127.0.0.1 or localhost, because client secrets and tokens would cross the network in clear), got {url}"
    )]
    InsecureUrl {
        /// The config key.
        key: &'static str,
        /// The URL, without user info, query or fragment.
        url: String,
    },
    /// The proxy setting cannot be used.
    #[error("HTTPS_PROXY {url} cannot be used for OAuth token requests: {problem}")]
    InvalidProxy {
        /// The proxy URL without user info.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `config.ca_cert` could not be read as PEM certificates.
    #[error("cannot use config.ca_cert {}: {problem}", path.display())]
    CaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        problem: String,
    },
    /// The refresh-token grant has no refresh token to send.
    #[error(
        "no OAuth refresh token for this asset: set config.refresh_token or run `soar-imap oauth login`"
    )]
    NoRefreshToken,
    /// The token endpoint rejected the refresh token (or authorization code) as invalid,
    /// expired or revoked.
    #[error(
        "the refresh token was rejected by {token_url} (invalid_grant: {description}); run `soar-imap oauth login` again or set config.refresh_token"
    )]
    InvalidGrant {
        /// The token endpoint.
        token_url: String,
        /// The server's `error_description`, or `no description`.
        description: String,
    },
    /// The token endpoint answered with another OAuth error.
    #[error("the token endpoint {token_url} refused the request (HTTP {status}): {error}{}", describe(description.as_deref()))]
    Refused {
        /// The token endpoint.
        token_url: String,
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code, e.g. `invalid_client`.
        error: String,
        /// The server's `error_description`.
        description: Option<String>,
    },
    /// No answer within the configured timeout.
    #[error("no answer from {url} within config.timeout_secs ({secs} s)")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The timeout.
        secs: u64,
    },
    /// The request could not be sent or its answer not read.
    #[error("cannot reach the token endpoint {url}: {reason}")]
    Transport {
        /// The endpoint.
        url: String,
        /// The cause (connection refused, TLS failure, ...).
        reason: String,
    },
    /// The answer is not JSON (an HTML error page, a captive portal, a redirect).
    #[error("the token endpoint {url} answered HTTP {status} with {what}, not JSON{hint}")]
    NotJson {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What came instead, e.g. `Content-Type text/html`.
        what: String,
        /// A hint for redirects.
        hint: &'static str,
    },
    /// The answer is JSON but neither a token response nor an OAuth error.
    #[error(
        "the token endpoint {url} answered HTTP {status} with an unusable token response: {problem}"
    )]
    BadResponse {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong, e.g. `missing field access_token`.
        problem: String,
    },
    /// The seal key file could not be created or read.
    #[error("cannot {action} OAuth key file {}: {source}", path.display())]
    KeyFile {
        /// What was attempted.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The seal key file exists but is not a key.
    #[error(
        "OAuth key file {} holds {len} bytes, not a 32-byte key; restore it from a backup, or delete it to start over (stored tokens are then lost and `soar-imap oauth login` or config.refresh_token is needed again)",
        path.display()
    )]
    KeyFileCorrupt {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// OpenSSL failed to seal, derive a key or draw random bytes.
    #[error("cannot {action}: {reason}")]
    Crypto {
        /// What was attempted.
        action: &'static str,
        /// OpenSSL's reason.
        reason: String,
    },
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// `oauth login`: the redirect URI is not a loopback http URL.
    #[error("the redirect URI {uri} cannot be used for `oauth login`: {problem}")]
    InvalidRedirectUri {
        /// The URI, without query.
        uri: String,
        /// What is wrong.
        problem: String,
    },
    /// `oauth login`: the loopback listener could not be started.
    #[error("cannot listen for the OAuth redirect on {address}: {reason}")]
    Listener {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// `oauth login`: the authorization URL could not be written.
    #[error("cannot print the authorization URL: {0}")]
    Output(#[source] std::io::Error),
    /// `oauth login`: the redirect carries another `state` than the one sent.
    #[error("the redirect's state does not match (possible CSRF); nothing was stored")]
    StateMismatch,
    /// `oauth login`: the authorization server redirected with an error.
    #[error("the authorization server refused the login: {error}{}; nothing was stored", describe(description.as_deref()))]
    AuthorizationRefused {
        /// The OAuth `error` code, e.g. `access_denied`.
        error: String,
        /// The `error_description`.
        description: Option<String>,
    },
    /// `oauth login`: no redirect arrived in time.
    #[error("no redirect to {redirect_uri} arrived within {secs} s; nothing was stored")]
    LoginTimeout {
        /// The redirect URI listened on.
        redirect_uri: String,
        /// The wait.
        secs: u64,
    },
}

impl OAuthError {
    /// The rejected-refresh-token case, which needs a person (`oauth login`) to recover.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::InvalidGrant { .. })
    }
}

/// ` (description)` or nothing.
fn describe(description: Option<&str>) -> String {
    description.map_or_else(String::new, |d| format!(" ({d})"))
}

/// Text from a server or a redirect, made safe to quote in one line: control characters
/// become spaces and it is cut at 300 characters.
pub(crate) fn quote_remote(text: &str) -> String {
    const MAX: usize = 300;
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// The current time in Unix seconds (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests;
