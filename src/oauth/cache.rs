//! The stored tokens of an asset: the `oauth_token` blob of its state store.
//!
//! The blob is JSON: `{access_token, refresh_token, expires_at, obtained_at, scope,
//! client_id, token_url, grant, config_refresh_token_sha256}` (times in Unix seconds).
//! In the on-disk store it is sealed ([`super::seal`]). In a stateless run it is kept as
//! plain JSON: the state goes back to the platform in the response, and the platform
//! owns and protects it (as it does the asset's client secret); a key file on the
//! machine that happened to run the action could not open it on the next run anyway.
//!
//! A blob that cannot be read (sealed under another key or client secret, damaged,
//! sealed where plain JSON is expected or the reverse) is treated as "no stored token",
//! with a warning that says why and never shows the value.

use serde_json::{Map, Value, json};

use super::{OAuthError, seal::SealKey};
use crate::{secret::Secret, state::StateStore};

/// The state key of the token blob (the reference app's key).
pub const TOKEN_BLOB_KEY: &str = "oauth_token";

/// The stored tokens and what they belong to. Every field may be missing in a blob
/// carried over from the reference app, which stored the raw token response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredTokens {
    /// The access token; `None` after the server rejected it.
    pub access_token: Option<Secret>,
    /// The refresh token.
    pub refresh_token: Option<Secret>,
    /// When the access token expires (Unix seconds).
    pub expires_at: Option<u64>,
    /// When the access token was obtained (Unix seconds), for the refresh margin.
    pub obtained_at: Option<u64>,
    /// The granted scopes.
    pub scope: Option<String>,
    /// The client the tokens belong to.
    pub client_id: Option<String>,
    /// The token endpoint that issued them.
    pub token_url: Option<String>,
    /// The grant (`refresh_token`, `client_credentials`) that produced the access token.
    pub grant: Option<String>,
    /// SHA-256 hex of the `config.refresh_token` in force when these tokens were stored:
    /// a different one in the config now means the user replaced it, and it wins.
    pub config_refresh_token_sha256: Option<String>,
}

impl StoredTokens {
    fn to_json(&self) -> Value {
        let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_owned());
        json!({
            "access_token": secret(&self.access_token),
            "refresh_token": secret(&self.refresh_token),
            "expires_at": self.expires_at,
            "obtained_at": self.obtained_at,
            "scope": self.scope,
            "client_id": self.client_id,
            "token_url": self.token_url,
            "grant": self.grant,
            "config_refresh_token_sha256": self.config_refresh_token_sha256,
        })
    }

    /// Reads the fields it knows, skipping ones of the wrong type; `None` if `value` is
    /// not an object.
    fn from_json(value: &Value) -> Option<Self> {
        let object: &Map<String, Value> = value.as_object()?;
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let number = |key: &str| object.get(key).and_then(Value::as_u64);
        Some(Self {
            access_token: text("access_token").map(Secret::new),
            refresh_token: text("refresh_token").map(Secret::new),
            expires_at: number("expires_at"),
            obtained_at: number("obtained_at"),
            scope: text("scope"),
            client_id: text("client_id"),
            token_url: text("token_url"),
            grant: text("grant"),
            config_refresh_token_sha256: text("config_refresh_token_sha256"),
        })
    }
}

/// Reads and writes the token blob of one asset's state store.
pub struct TokenCache<'a> {
    store: &'a mut dyn StateStore,
    seal: Option<SealKey>,
}

impl<'a> TokenCache<'a> {
    /// `seal`: `Some` for the on-disk store (tokens sealed at rest), `None` for a
    /// stateless run's [`crate::state::MemoryStore`] (plain JSON; the platform owns it).
    pub fn new(store: &'a mut dyn StateStore, seal: Option<SealKey>) -> Self {
        Self { store, seal }
    }

    /// Whether tokens are sealed at rest.
    pub fn is_sealed(&self) -> bool {
        self.seal.is_some()
    }

    /// The stored tokens; `None` when there are none or they cannot be read (warned).
    pub fn load(&self) -> Result<Option<StoredTokens>, OAuthError> {
        let Some(blob) = self.store.get_secret_blob(TOKEN_BLOB_KEY)? else {
            return Ok(None);
        };
        let unusable = |why: &str| {
            tracing::warn!(
                "The stored OAuth token cannot be used ({why}); continuing as if none were stored"
            );
            Ok(None)
        };
        let text = blob.expose();
        let plain = match &self.seal {
            Some(key) => match key.open(TOKEN_BLOB_KEY, text) {
                Ok(bytes) => bytes,
                Err(e) => return unusable(&e.to_string()),
            },
            None if super::seal::is_sealed(text) => {
                return unusable(
                    "it is sealed with a key file of an on-disk state store, and this run is stateless",
                );
            }
            None => text.as_bytes().to_vec(),
        };
        // serde's message is not shown: it may quote part of a token.
        let Ok(value) = serde_json::from_slice::<Value>(&plain) else {
            return unusable("it is not valid JSON");
        };
        match StoredTokens::from_json(&value) {
            Some(tokens) => Ok(Some(tokens)),
            None => unusable("it is not a JSON object"),
        }
    }

    /// Stores `tokens` durably (sealed when this cache seals).
    pub fn save(&mut self, tokens: &StoredTokens) -> Result<(), OAuthError> {
        let plain = tokens.to_json().to_string();
        let blob = match &self.seal {
            Some(key) => key.seal(TOKEN_BLOB_KEY, plain.as_bytes())?,
            None => plain,
        };
        self.store
            .put_secret_blob(TOKEN_BLOB_KEY, Some(&Secret::new(blob)))?;
        Ok(())
    }

    /// Deletes the stored tokens.
    pub fn clear(&mut self) -> Result<(), OAuthError> {
        self.store.put_secret_blob(TOKEN_BLOB_KEY, None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStore;

    fn tokens() -> StoredTokens {
        StoredTokens {
            access_token: Some(Secret::new("AT-cache-1".into())),
            refresh_token: Some(Secret::new("RT-cache-1".into())),
            expires_at: Some(2000),
            obtained_at: Some(1000),
            scope: Some("https://mail.google.com/".into()),
            client_id: Some("cid".into()),
            token_url: Some("https://oauth2.googleapis.com/token".into()),
            grant: Some("refresh_token".into()),
            config_refresh_token_sha256: None,
        }
    }

    fn key(secret: &str) -> SealKey {
        SealKey::derive(&[3; 32], Some(&Secret::new(secret.into()))).unwrap()
    }

    #[test]
    fn sealed_round_trip_and_nothing_in_clear() {
        let mut store = MemoryStore::new("f");
        TokenCache::new(&mut store, Some(key("cs")))
            .save(&tokens())
            .unwrap();
        let raw = store.get_secret_blob(TOKEN_BLOB_KEY).unwrap().unwrap();
        assert!(raw.expose().starts_with("sealed:v1:"));
        assert!(!raw.expose().contains("AT-cache-1") && !raw.expose().contains("cid"));
        let cache = TokenCache::new(&mut store, Some(key("cs")));
        assert_eq!(cache.load().unwrap(), Some(tokens()));
    }

    #[test]
    fn another_client_secret_reads_as_absent() {
        let mut store = MemoryStore::new("f");
        TokenCache::new(&mut store, Some(key("cs")))
            .save(&tokens())
            .unwrap();
        assert_eq!(
            TokenCache::new(&mut store, Some(key("changed")))
                .load()
                .unwrap(),
            None
        );
        // Stateless runs never open sealed blobs, and sealed stores refuse plain ones.
        assert_eq!(TokenCache::new(&mut store, None).load().unwrap(), None);
        TokenCache::new(&mut store, None).save(&tokens()).unwrap();
        assert_eq!(
            TokenCache::new(&mut store, Some(key("cs"))).load().unwrap(),
            None
        );
    }

    #[test]
    fn stateless_blob_is_plain_json_and_clear_removes_it() {
        let mut store = MemoryStore::new("f");
        let mut cache = TokenCache::new(&mut store, None);
        cache.save(&tokens()).unwrap();
        assert_eq!(cache.load().unwrap(), Some(tokens()));
        cache.clear().unwrap();
        assert_eq!(cache.load().unwrap(), None);
        assert!(store.get_secret_blob(TOKEN_BLOB_KEY).unwrap().is_none());
    }

    #[test]
    fn reference_app_token_is_read() {
        // The reference stored Google's raw token response (imported by MemoryStore).
        let state = json!({"oauth_token": {"access_token": "ya29.x", "refresh_token": "1//r",
            "expires_in": 3599, "token_type": "Bearer", "scope": "https://mail.google.com/"}});
        let mut store = MemoryStore::from_json(&state, "f").unwrap();
        let loaded = TokenCache::new(&mut store, None).load().unwrap().unwrap();
        assert_eq!(loaded.access_token, Some(Secret::new("ya29.x".into())));
        assert_eq!(loaded.refresh_token, Some(Secret::new("1//r".into())));
        assert_eq!((loaded.expires_at, loaded.client_id), (None, None));
    }

    #[test]
    fn garbage_reads_as_absent() {
        let mut store = MemoryStore::new("f");
        for junk in ["not json", "[1,2]", "sealed:v1:!!"] {
            store
                .put_secret_blob(TOKEN_BLOB_KEY, Some(&Secret::new(junk.into())))
                .unwrap();
            assert_eq!(
                TokenCache::new(&mut store, None).load().unwrap(),
                None,
                "{junk}"
            );
        }
    }
}
