//! The actions, one small orchestrator each.

pub mod after_ingest;
pub mod build_pool;
pub mod connect;
pub mod get_email;
pub mod ingest;
pub mod oauth_login;
pub mod on_poll;
pub mod parse_email;
pub mod poll_batches;
pub mod poll_plan;
pub mod redeliver;
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
