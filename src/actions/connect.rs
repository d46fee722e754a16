//! Opening a logged-in IMAP session for an asset: LOGIN with the password, or XOAUTH2
//! with an access token from the asset's token source, over the run's link (live,
//! recorded or replayed).

use std::path::PathBuf;

use crate::{
    config::{AuthType, Config},
    imap::{Auth, Connected, Link, MailSession, connect_and_login},
    oauth::TokenSource,
    secret::Secret,
    state::StateStore,
};

/// Opens sessions for the ingesting actions: [`Connector`] in production, a fake in
/// unit tests.
pub trait SessionSource {
    /// A logged-in session with the folder list read (the reference's progress lines).
    fn open(
        &self,
        config: &Config,
        store: &mut dyn StateStore,
    ) -> Result<Box<dyn MailSession>, String>;
}

/// What a run needs to reach the mailbox beyond the asset configuration.
#[derive(Debug, Clone, Default)]
pub struct Connector {
    /// Live, recording or replaying.
    pub link: Link,
    /// `HTTPS_PROXY` for token requests (from the request, else the environment).
    pub https_proxy: Option<String>,
    /// Where the key that seals stored tokens lives; `None` for stateless runs, whose
    /// state the platform keeps.
    pub key_dir: Option<PathBuf>,
}

impl Connector {
    /// Connect and log in as the configuration says; `store` keeps OAuth tokens and is
    /// needed only for OAuth.
    pub fn connect(
        &self,
        config: &Config,
        store: Option<&mut dyn StateStore>,
    ) -> Result<Connected, String> {
        let server = config.require_server().map_err(|e| e.to_string())?;
        config.require_credentials().map_err(|e| e.to_string())?;
        let options = super::connect_options(config, server);
        let username = config.username.as_deref().unwrap_or_default();
        let connected = match config.auth_type {
            AuthType::Basic => {
                let password = config.password.as_ref().map_or("", Secret::expose);
                connect_and_login(&self.link, &options, Auth::Login { username, password })
            }
            AuthType::OAuth => {
                // A replayed login sends a redacted token: any stand-in matches, and no
                // token endpoint is contacted.
                let mut tokens = if self.link.is_replay() {
                    None
                } else {
                    let store = store.ok_or("internal error: OAuth needs the state store")?;
                    Some(self.token_source(config, store)?)
                };
                let mut token = |rejected: bool| match tokens.as_mut() {
                    None => Ok(Secret::new("replayed-token".to_owned())),
                    Some(tokens) if rejected => {
                        tokens.refresh_after_rejection().map_err(|e| e.to_string())
                    }
                    Some(tokens) => tokens.access_token().map_err(|e| e.to_string()),
                };
                connect_and_login(
                    &self.link,
                    &options,
                    Auth::XOAuth2 {
                        username,
                        token: &mut token,
                    },
                )
            }
        };
        connected.map_err(|e| e.to_string())
    }
}

impl SessionSource for Connector {
    fn open(
        &self,
        config: &Config,
        store: &mut dyn StateStore,
    ) -> Result<Box<dyn MailSession>, String> {
        let mut session = self.connect(config, Some(store))?.session;
        session.list_folders().map_err(|e| e.to_string())?;
        tracing::info!("Got folder listing");
        Ok(Box::new(session))
    }
}

/// A plain function as a session source (unit tests).
impl<F: Fn(&Config) -> Result<Box<dyn MailSession>, String>> SessionSource for F {
    fn open(
        &self,
        config: &Config,
        _: &mut dyn StateStore,
    ) -> Result<Box<dyn MailSession>, String> {
        self(config)
    }
}

impl Connector {
    /// The asset's OAuth token source: tokens kept in `store`, sealed with the key under
    /// `key_dir` (none for stateless runs, whose state the platform keeps).
    fn token_source<'s>(
        &self,
        config: &Config,
        store: &'s mut dyn StateStore,
    ) -> Result<TokenSource<'s>, String> {
        TokenSource::from_config(
            config,
            store,
            self.key_dir.as_deref(),
            self.https_proxy.clone(),
        )
        .map_err(|e| e.to_string())
    }
}
