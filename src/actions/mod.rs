//! The actions, one small orchestrator each.

pub mod get_email;
pub mod ingest;
pub mod on_poll;
pub mod parse_email;
pub mod poll_plan;
pub mod test_connectivity;

use std::time::Duration;

use crate::{
    config::{AuthType, Config},
    imap::{ConnectOptions, Security},
    protocol::Action,
};

/// How to reach the server, from the asset configuration: implicit TLS with `use_ssl`
/// (and always for OAuth, as in the reference), else STARTTLS before anything is sent.
pub fn connect_options(config: &Config, server: &str) -> ConnectOptions {
    let implicit = config.use_ssl || config.auth_type == AuthType::OAuth;
    ConnectOptions {
        server: server.to_owned(),
        port: config.port,
        security: if implicit {
            Security::ImplicitTls
        } else {
            Security::StartTls
        },
        verify_server_cert: config.verify_server_cert,
        ca_cert: config.ca_cert.clone(),
        allow_plaintext_auth: config.allow_plaintext_auth,
        timeout: Duration::from_secs(config.timeout_secs),
    }
}

/// The parameter names each action accepts, as app.json declares them.
pub fn parameters(action: Action) -> &'static [&'static str] {
    match action {
        Action::TestConnectivity => &[],
        Action::GetEmail => &["id", "container_id", "folder", "ingest_email"],
        Action::OnPoll => &[
            "start_time",
            "end_time",
            "container_id",
            "container_count",
            "artifact_count",
        ],
        Action::ParseEmail => parse_email::PARAMETERS,
    }
}

/// Where to connect and with which credentials, after checking the configuration has
/// what a login needs.
pub struct Login<'a> {
    /// Server, port, TLS and timeouts.
    pub options: ConnectOptions,
    /// The login name.
    pub username: &'a str,
    /// The password (only ever sent over TLS unless `allow_plaintext_auth`).
    pub password: &'a str,
}

/// Check the asset configuration for a Basic login and say how to connect.
pub fn login_for(config: &Config) -> Result<Login<'_>, String> {
    let server = config.require_server().map_err(|e| e.to_string())?;
    if config.auth_type == AuthType::OAuth {
        return Err(
            "OAuth (XOAUTH2) login is not available in this build yet; use auth_type Basic".into(),
        );
    }
    config.require_credentials().map_err(|e| e.to_string())?;
    Ok(Login {
        options: connect_options(config, server),
        username: config.username.as_deref().unwrap_or_default(),
        password: config
            .password
            .as_ref()
            .map(crate::secret::Secret::expose)
            .unwrap_or_default(),
    })
}
