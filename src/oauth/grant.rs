//! The token grants against `token_url`, and what their failures mean.
//!
//! oauth2 5 builds the form and parses the answer; this module fixes the choices and
//! turns oauth2's errors into [`OAuthError`]s a SOC engineer can act on. Two traps of
//! oauth2 are handled here: a non-200 answer that is not an OAuth error comes back as a
//! "parse" error without its HTTP status (so the status is recorded on the way in), and
//! parse errors carry the body, which on a 200 holds the tokens (so it is never shown).

use std::cell::RefCell;

use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, HttpRequest, HttpResponse,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
    basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse},
    http,
};
use url::Url;

use super::{
    OAuthError, TokenSet,
    http::{HttpTransport, TransportError, display_url, endpoint_url},
    quote_remote,
};
use crate::{
    config::{Config, ConfigError},
    secret::Secret,
};

/// The OAuth client of an asset: who asks (`client_id`, `client_secret`), where
/// (`token_url`) and for what (`scopes`).
///
/// The client authenticates with `client_id` and `client_secret` in the form body
/// (`client_secret_post`), as the reference app did: Google, Microsoft and Dovecot's
/// test endpoint accept it, and unlike HTTP Basic it needs no URL-encoding of the secret
/// that some servers get wrong (Microsoft secrets contain `~`).
#[derive(Debug, Clone)]
pub struct OAuthClient {
    client_id: String,
    client_secret: Option<Secret>,
    /// As configured: stored tokens are matched against this exact text.
    token_url: String,
    token_endpoint: Url,
    scopes: Vec<String>,
}

/// What the closure saw of the last answer, for the errors oauth2 reports without it.
#[derive(Debug, Clone, Default)]
struct Seen {
    status: u16,
    json: bool,
    empty: bool,
    /// The media type (without parameters), quoted safely.
    content_type: Option<String>,
}

impl OAuthClient {
    /// A client; refuses a `token_url` that is not https (or plain http to loopback).
    pub fn new(
        client_id: &str,
        client_secret: Option<Secret>,
        token_url: &str,
        scopes: Vec<String>,
    ) -> Result<Self, OAuthError> {
        let token_endpoint = endpoint_url("token_url", token_url)?;
        Ok(Self {
            client_id: client_id.to_owned(),
            client_secret,
            token_url: token_url.trim().to_owned(),
            token_endpoint,
            scopes,
        })
    }

    /// The asset's client: `client_id` and `token_url` are required.
    pub fn from_config(config: &Config) -> Result<Self, OAuthError> {
        let missing = |key| ConfigError::Missing {
            key,
            purpose: "for OAuth authentication",
        };
        let client_id = config.client_id.as_deref().ok_or(missing("client_id"))?;
        let token_url = config.token_url.as_deref().ok_or(missing("token_url"))?;
        Self::new(
            client_id,
            config.client_secret.clone(),
            token_url,
            config.scopes.clone(),
        )
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The token endpoint, as configured.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// The scopes requested.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether a client secret is configured.
    pub fn has_client_secret(&self) -> bool {
        self.client_secret.is_some()
    }

    /// `grant_type=refresh_token`. When the server returns no new refresh token (Google
    /// does not rotate them; Microsoft does) the one sent is kept in the result.
    pub fn refresh(
        &self,
        http: &dyn HttpTransport,
        refresh_token: &Secret,
        now: u64,
    ) -> Result<TokenSet, OAuthError> {
        let seen = RefCell::new(Seen::default());
        let send = |request| record(http, request, &seen);
        let token = RefreshToken::new(refresh_token.expose().to_owned());
        let response = self
            .oauth2_client()
            .exchange_refresh_token(&token)
            .add_scopes(self.oauth2_scopes())
            .request(&send)
            .map_err(|e| self.error(e, &seen.take()))?;
        self.token_set(&response, now, Some(refresh_token))
    }

    /// `grant_type=client_credentials` (Microsoft 365 app-only access): needs a client
    /// secret; the scope is `config.scopes` (`https://outlook.office365.com/.default`).
    pub fn client_credentials(
        &self,
        http: &dyn HttpTransport,
        now: u64,
    ) -> Result<TokenSet, OAuthError> {
        if self.client_secret.is_none() {
            return Err(ConfigError::Missing {
                key: "client_secret",
                purpose: "for OAuth authentication with the client_credentials grant",
            }
            .into());
        }
        let seen = RefCell::new(Seen::default());
        let send = |request| record(http, request, &seen);
        let response = self
            .oauth2_client()
            .exchange_client_credentials()
            .add_scopes(self.oauth2_scopes())
            .request(&send)
            .map_err(|e| self.error(e, &seen.take()))?;
        self.token_set(&response, now, None)
    }

    /// `grant_type=authorization_code` with the PKCE verifier and the redirect URI the
    /// authorization request used.
    pub fn exchange_code(
        &self,
        http: &dyn HttpTransport,
        code: &Secret,
        pkce_verifier: &Secret,
        redirect_uri: &str,
        now: u64,
    ) -> Result<TokenSet, OAuthError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| {
            OAuthError::InvalidRedirectUri {
                uri: display_url(redirect_uri),
                problem: e.to_string(),
            }
        })?;
        let seen = RefCell::new(Seen::default());
        let send = |request| record(http, request, &seen);
        let response = self
            .oauth2_client()
            .set_redirect_uri(redirect)
            .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.expose().to_owned()))
            .request(&send)
            .map_err(|e| self.error(e, &seen.take()))?;
        self.token_set(&response, now, None)
    }

    /// The oauth2 client with the token endpoint set.
    fn oauth2_client(
        &self,
    ) -> BasicClient<
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::from_url(self.token_endpoint.clone()));
        match &self.client_secret {
            Some(secret) => client.set_client_secret(ClientSecret::new(secret.expose().to_owned())),
            None => client,
        }
    }

    fn oauth2_scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.scopes.iter().map(|s| Scope::new(s.clone()))
    }

    /// The endpoint as messages show it.
    fn shown_url(&self) -> String {
        display_url(&self.token_url)
    }

    fn token_set(
        &self,
        response: &BasicTokenResponse,
        now: u64,
        sent_refresh_token: Option<&Secret>,
    ) -> Result<TokenSet, OAuthError> {
        let access = response.access_token().secret();
        if access.is_empty() {
            return Err(OAuthError::BadResponse {
                url: self.shown_url(),
                status: 200,
                problem: "the access_token is empty".into(),
            });
        }
        let refresh_token = response
            .refresh_token()
            .map(RefreshToken::secret)
            .filter(|t| !t.is_empty())
            .map(|t| Secret::new(t.clone()))
            .or_else(|| sent_refresh_token.cloned());
        Ok(TokenSet {
            access_token: Secret::new(access.clone()),
            refresh_token,
            expires_at: response
                .expires_in()
                .map(|d| now.saturating_add(d.as_secs())),
            scope: response.scopes().map(|scopes| {
                scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
            client_id: self.client_id.clone(),
            token_url: self.token_url.clone(),
        })
    }

    /// oauth2's error as an [`OAuthError`]; `seen` is what the transport saw.
    fn error(
        &self,
        error: RequestTokenError<TransportError, BasicErrorResponse>,
        seen: &Seen,
    ) -> OAuthError {
        let url = self.shown_url();
        match error {
            RequestTokenError::ServerResponse(response) => {
                let description = response.error_description().map(|d| quote_remote(d));
                match response.error() {
                    BasicErrorResponseType::InvalidGrant => OAuthError::InvalidGrant {
                        token_url: url,
                        description: description.unwrap_or_else(|| "no description".into()),
                    },
                    other => OAuthError::Refused {
                        token_url: url,
                        status: seen.status,
                        error: quote_remote(other.as_ref()),
                        description,
                    },
                }
            }
            RequestTokenError::Request(TransportError::Timeout { secs }) => {
                OAuthError::Timeout { url, secs }
            }
            RequestTokenError::Request(TransportError::Failed(reason)) => {
                OAuthError::Transport { url, reason }
            }
            // The body is deliberately dropped: on a 200 it holds the tokens. serde's
            // message is replaced too, since "invalid type" messages quote values.
            RequestTokenError::Parse(parse, _body) => {
                if !seen.json {
                    not_json(url, seen)
                } else if seen.status == 200 {
                    OAuthError::BadResponse {
                        url,
                        status: seen.status,
                        problem: shape_problem(&parse),
                    }
                } else {
                    // oauth2 parses every non-200 answer as an OAuth error.
                    OAuthError::BadResponse {
                        url,
                        status: seen.status,
                        problem: "JSON that is not an OAuth error response (no `error` field)"
                            .into(),
                    }
                }
            }
            // oauth2 says "unexpected response Content-Type" or "empty response".
            RequestTokenError::Other(_) => {
                if seen.empty {
                    OAuthError::BadResponse {
                        url,
                        status: seen.status,
                        problem: "the body is empty".into(),
                    }
                } else if seen.json {
                    OAuthError::BadResponse {
                        url,
                        status: seen.status,
                        problem: format!(
                            "JSON sent as Content-Type {} instead of application/json",
                            seen.content_type.as_deref().unwrap_or("(none)")
                        ),
                    }
                } else {
                    not_json(url, seen)
                }
            }
        }
    }
}

/// Passes the request to the transport and notes what came back.
fn record(
    http: &dyn HttpTransport,
    request: HttpRequest,
    seen: &RefCell<Seen>,
) -> Result<HttpResponse, TransportError> {
    let response = http.execute(request)?;
    let body = response.body();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| quote_remote(v.split(';').next().unwrap_or(v).trim()));
    seen.replace(Seen {
        status: response.status().as_u16(),
        json: serde_json::from_slice::<serde_json::Value>(body).is_ok(),
        empty: body.is_empty(),
        content_type,
    });
    Ok(response)
}

fn not_json(url: String, seen: &Seen) -> OAuthError {
    OAuthError::NotJson {
        url,
        status: seen.status,
        what: match &seen.content_type {
            Some(media) => format!("a {media} body"),
            None => "a body without Content-Type".into(),
        },
        hint: if (300..400).contains(&seen.status) {
            " (redirects are not followed for token requests: check config.token_url)"
        } else {
            ""
        },
    }
}

/// What is wrong with a JSON answer, from the field path and serde's category only.
fn shape_problem(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let message = error.inner().to_string();
    // "missing field `x`" names a field, never a value; other data errors may quote one.
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = rest.split(" at line").next().unwrap_or(rest);
        return format!("missing field {field}");
    }
    let path = error.path().to_string();
    if path.is_empty() || path == "." {
        "not a JSON object of the expected shape".into()
    } else {
        format!("unexpected value in field `{path}`")
    }
}
