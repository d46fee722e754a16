//! The access-token policy of XOAUTH2 logins.
//!
//! A stored access token is reused while it has more than a safety margin left (five
//! minutes, or a tenth of its lifetime for short-lived tokens), so a poll never starts
//! with a token that dies mid-login. Otherwise a new one comes from `token_url` by the
//! configured grant and is stored before it is returned, so a rotated refresh token
//! (Microsoft rotates them) is never lost. When the server refuses a token anyway
//! (revoked, clock skew), [`TokenSource::refresh_after_rejection`] forgets it and gets
//! another; the caller allows that once per run.
//!
//! Which refresh token: the stored one (from `oauth login` or an earlier rotation), unless
//! `config.refresh_token` has changed since it was stored, in which case the user's new
//! one wins. If the stored one is rejected with `invalid_grant` and the config holds a
//! different one, that one is tried before giving up. Stored tokens of another
//! `client_id` or `token_url` are ignored (the reference app nulls tokens when the client
//! id changes).

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{
    OAuthError, TokenSet,
    cache::{StoredTokens, TokenCache},
    grant::OAuthClient,
    http::{HttpSettings, HttpTransport, UreqTransport},
    now_unix,
    seal::SealKey,
};
use crate::{
    config::{Config, OAuthGrant},
    secret::Secret,
    state::StateStore,
};

/// The longest safety margin before expiry at which a token is refreshed.
const MAX_MARGIN_SECS: u64 = 300;
/// The grant recorded for tokens from `oauth login`.
const LOGIN_GRANT: &str = "authorization_code";

/// Access tokens for one asset: stored, refreshed, rotated.
pub struct TokenSource<'a> {
    client: OAuthClient,
    grant: OAuthGrant,
    config_refresh_token: Option<Secret>,
    cache: TokenCache<'a>,
    http: Box<dyn HttpTransport + 'a>,
    clock: Box<dyn Fn() -> u64 + 'a>,
}

impl<'a> TokenSource<'a> {
    /// The asset's token source over `store`.
    ///
    /// `seal_dir` is `Some(data_dir)` for the on-disk store: tokens are sealed with
    /// `<data_dir>/keys/oauth.key` (created on first use) and `config.client_secret`.
    /// It is `None` for a stateless run, whose tokens go back to the platform as plain
    /// JSON in the response state. `proxy` is the resolved `HTTPS_PROXY` (see
    /// [`super::choose_proxy`]).
    pub fn from_config(
        config: &Config,
        store: &'a mut dyn StateStore,
        seal_dir: Option<&Path>,
        proxy: Option<String>,
    ) -> Result<Self, OAuthError> {
        // Check the configuration before creating anything on disk.
        OAuthClient::from_config(config)?;
        let seal = seal_dir
            .map(|dir| SealKey::load_or_create(dir, config.client_secret.as_ref()))
            .transpose()?;
        let http = UreqTransport::new(&HttpSettings::from_config(config, proxy))?;
        Self::new(config, TokenCache::new(store, seal), Box::new(http))
    }

    /// A token source with a given cache and transport (tests, replays).
    pub fn new(
        config: &Config,
        cache: TokenCache<'a>,
        http: Box<dyn HttpTransport + 'a>,
    ) -> Result<Self, OAuthError> {
        Ok(Self {
            client: OAuthClient::from_config(config)?,
            grant: config.oauth_grant,
            config_refresh_token: config.refresh_token.clone(),
            cache,
            http,
            clock: Box::new(now_unix),
        })
    }

    /// Replaces the clock (Unix seconds), for tests.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + 'a) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The asset's OAuth client (for `oauth login`).
    pub fn client(&self) -> &OAuthClient {
        &self.client
    }

    /// A usable access token: the stored one while it has more than the safety margin
    /// left, else a new one from `token_url`, stored before it is returned.
    pub fn access_token(&mut self) -> Result<Secret, OAuthError> {
        let now = (self.clock)();
        let stored = self.stored()?;
        if let Some(tokens) = &stored
            && let Some(access) = &tokens.access_token
            && is_fresh(tokens, now)
        {
            if let Some(at) = tokens.expires_at {
                let left = at.saturating_sub(now);
                tracing::debug!("Using the stored OAuth access token (expires in {left} s)");
            } else {
                tracing::debug!("Using the stored OAuth access token (expiry unknown)");
            }
            return Ok(access.clone());
        }
        self.obtain(stored, now)
    }

    /// After the server refused the access token: forget it (durably, so the next run
    /// does not offer it again) and get a new one. The caller does this once per run.
    pub fn refresh_after_rejection(&mut self) -> Result<Secret, OAuthError> {
        let now = (self.clock)();
        let mut stored = self.stored()?;
        if let Some(tokens) = &mut stored
            && tokens.access_token.take().is_some()
        {
            tokens.expires_at = None;
            self.cache.save(tokens)?;
        }
        tracing::info!("The server refused the OAuth access token; requesting a new one");
        self.obtain(stored, now)
    }

    /// Stores the tokens of an `oauth login`, replacing what was stored.
    pub fn store_login(&mut self, tokens: &TokenSet) -> Result<(), OAuthError> {
        let now = (self.clock)();
        self.save(tokens, LOGIN_GRANT, now)
    }

    /// Whether a refresh token is stored for this client (from a login or rotation), for
    /// [`Config::require_refresh_token`].
    pub fn has_stored_refresh_token(&self) -> Result<bool, OAuthError> {
        Ok(self
            .stored()?
            .is_some_and(|tokens| tokens.refresh_token.is_some()))
    }

    /// The stored tokens that belong to this client, endpoint and refresh token.
    fn stored(&self) -> Result<Option<StoredTokens>, OAuthError> {
        let Some(mut tokens) = self.cache.load()? else {
            return Ok(None);
        };
        // A blob without these fields is the reference app's: it belongs to this asset.
        if tokens
            .client_id
            .as_deref()
            .is_some_and(|id| id != self.client.client_id())
        {
            tracing::info!("Ignoring the stored OAuth token: it was issued to another client_id");
            return Ok(None);
        }
        if tokens
            .token_url
            .as_deref()
            .is_some_and(|url| url != self.client.token_url())
        {
            tracing::info!("Ignoring the stored OAuth token: it was issued by another token_url");
            return Ok(None);
        }
        if self.grant == OAuthGrant::RefreshToken
            && let Some(configured) = &self.config_refresh_token
            && tokens.config_refresh_token_sha256.as_deref() != Some(&fingerprint(configured))
        {
            tracing::info!(
                "config.refresh_token changed since the stored OAuth token was obtained; using config.refresh_token"
            );
            return Ok(None);
        }
        if !grant_matches(tokens.grant.as_deref(), self.grant) {
            // An app-only token is not a user's token, nor the reverse.
            tokens.access_token = None;
        }
        Ok(Some(tokens))
    }

    /// A new access token by the configured grant, stored, then returned.
    fn obtain(&mut self, stored: Option<StoredTokens>, now: u64) -> Result<Secret, OAuthError> {
        let tokens = match self.grant {
            OAuthGrant::ClientCredentials => {
                tracing::info!("Requesting an OAuth access token (client_credentials grant)");
                self.client.client_credentials(&*self.http, now)?
            }
            OAuthGrant::RefreshToken => {
                let from_store = stored.and_then(|t| t.refresh_token);
                let from_config = self.config_refresh_token.clone();
                let (refresh_token, fallback) = match (from_store, from_config) {
                    (Some(stored), config) => {
                        let fallback = config.filter(|c| *c != stored);
                        (stored, fallback)
                    }
                    (None, Some(config)) => (config, None),
                    (None, None) => return Err(OAuthError::NoRefreshToken),
                };
                tracing::info!("Refreshing OAuth access token");
                match self.client.refresh(&*self.http, &refresh_token, now) {
                    Err(e) if e.is_invalid_grant() && fallback.is_some() => {
                        tracing::warn!("{e}; trying config.refresh_token instead");
                        let config = fallback.unwrap_or(refresh_token);
                        self.client.refresh(&*self.http, &config, now)?
                    }
                    result => result?,
                }
            }
        };
        self.save(&tokens, self.grant.as_str(), now)?;
        Ok(tokens.access_token)
    }

    fn save(&mut self, tokens: &TokenSet, grant: &str, now: u64) -> Result<(), OAuthError> {
        let stored = StoredTokens {
            access_token: Some(tokens.access_token.clone()),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
            obtained_at: Some(now),
            scope: tokens.scope.clone(),
            client_id: Some(tokens.client_id.clone()),
            token_url: Some(tokens.token_url.clone()),
            grant: Some(grant.to_owned()),
            config_refresh_token_sha256: self.config_refresh_token.as_ref().map(fingerprint),
        };
        self.cache.save(&stored)
    }
}

/// Whether the stored token still has more than the safety margin left. A token
/// without an expiry is used until the server refuses it.
fn is_fresh(tokens: &StoredTokens, now: u64) -> bool {
    let Some(expires_at) = tokens.expires_at else {
        return true;
    };
    let margin = match tokens.obtained_at {
        Some(obtained) if expires_at > obtained => {
            ((expires_at - obtained) / 10).min(MAX_MARGIN_SECS)
        }
        _ => MAX_MARGIN_SECS,
    };
    expires_at > now.saturating_add(margin)
}

/// Whether an access token obtained by `stored` serves the configured grant.
fn grant_matches(stored: Option<&str>, current: OAuthGrant) -> bool {
    match (stored, current) {
        (None, _) => true,
        (Some(g), OAuthGrant::RefreshToken) => g == "refresh_token" || g == LOGIN_GRANT,
        (Some(g), OAuthGrant::ClientCredentials) => g == "client_credentials",
    }
}

/// SHA-256 hex of a refresh token: recognises it later without storing it twice.
fn fingerprint(token: &Secret) -> String {
    format!("{:x}", Sha256::digest(token.expose().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(expires_at: Option<u64>, obtained_at: Option<u64>) -> StoredTokens {
        StoredTokens {
            access_token: Some(Secret::new("a".into())),
            expires_at,
            obtained_at,
            ..StoredTokens::default()
        }
    }

    #[test]
    fn margin_is_five_minutes_or_a_tenth_of_the_lifetime() {
        // One hour token: refreshed in its last five minutes.
        let hour = stored(Some(10_000 + 3600), Some(10_000));
        assert!(is_fresh(&hour, 10_000 + 3600 - 301));
        assert!(!is_fresh(&hour, 10_000 + 3600 - 300));
        // Two-minute token: refreshed in its last 12 seconds.
        let short = stored(Some(1120), Some(1000));
        assert!(is_fresh(&short, 1107));
        assert!(!is_fresh(&short, 1108));
        // Unknown issue time: five minutes.
        assert!(!is_fresh(&stored(Some(1000), None), 750));
        assert!(is_fresh(&stored(None, None), u64::MAX));
        assert!(!is_fresh(&stored(Some(5), Some(0)), u64::MAX));
    }

    #[test]
    fn grants_match() {
        assert!(grant_matches(None, OAuthGrant::ClientCredentials));
        assert!(grant_matches(
            Some("authorization_code"),
            OAuthGrant::RefreshToken
        ));
        assert!(grant_matches(
            Some("refresh_token"),
            OAuthGrant::RefreshToken
        ));
        assert!(!grant_matches(
            Some("client_credentials"),
            OAuthGrant::RefreshToken
        ));
        assert!(!grant_matches(
            Some("refresh_token"),
            OAuthGrant::ClientCredentials
        ));
    }
}
