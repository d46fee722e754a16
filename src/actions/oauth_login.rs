//! `soar-imap oauth login`: a person at a terminal authorizes the asset's OAuth client
//! in a browser (authorization code with PKCE), and the tokens are stored for the asset
//! so that later runs log in with XOAUTH2 unattended.

use std::io::Write;

use serde_json::{Map, Value, json};

use crate::{
    config::Config,
    dispatch::{Opened, RunEnv, https_proxy, open_store},
    oauth::{self, HttpSettings, LoginOptions, OAuthClient, TokenSource, UreqTransport},
    protocol::{Action, ActionResult, ErrorBody, Response, RunSummary, Status, parse_request_or},
};

/// Run the login for the asset described by the request in `bytes`; the URL to open is
/// written to `prompt` (stderr).
pub fn run(bytes: &[u8], env: &RunEnv, options: &LoginOptions, prompt: &mut dyn Write) -> Response {
    let request = match parse_request_or(bytes, Some(Action::TestConnectivity)) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!("{error}");
            return Response::bad_request(&error);
        }
    };
    let outcome = Config::from_json(&request.config)
        .map_err(|e| e.to_string())
        .and_then(|config| {
            config.require_oauth_login().map_err(|e| e.to_string())?;
            let mut opened = open_store(&request, &config, env)?;
            let proxy = https_proxy(&request, env);
            let message = login(&config, &mut opened, proxy, options, prompt)?;
            let message = format!("{message} (asset \"{}\")", request.asset_id);
            Ok((message, opened.finish().0))
        });
    let (status, message, state) = match outcome {
        Ok((message, state)) => (Status::Success, message, state),
        Err(message) => (
            Status::Failed,
            format!("OAuth login failed: {message}"),
            None,
        ),
    };
    match status {
        Status::Success => tracing::info!("{message}"),
        Status::Failed => tracing::error!("{message}"),
    }
    let result = ActionResult {
        status,
        message: message.clone(),
        parameter: Value::Object(Map::new()),
        data: Vec::new(),
        summary: Map::new(),
    };
    Response {
        identifier: Some("oauth_login"),
        action: Some("oauth login"),
        status,
        error: (status == Status::Failed).then(|| ErrorBody {
            kind: "action",
            message: message.clone(),
        }),
        message,
        summary: RunSummary {
            total_objects: 1,
            total_objects_successful: usize::from(status == Status::Success),
        },
        action_results: vec![result],
        containers: Vec::new(),
        state: state.or_else(|| request.state.clone()).map(|s| json!(s)),
    }
}

/// The flow itself: browser, code exchange, tokens stored for the asset.
fn login(
    config: &Config,
    opened: &mut Opened,
    proxy: Option<String>,
    options: &LoginOptions,
    prompt: &mut dyn Write,
) -> Result<String, String> {
    let client = OAuthClient::from_config(config).map_err(|e| e.to_string())?;
    let http = UreqTransport::new(&HttpSettings::from_config(config, proxy.clone()))
        .map_err(|e| e.to_string())?;
    let auth_url = config.auth_url.as_deref().unwrap_or_default();
    let tokens =
        oauth::login(&client, auth_url, options, &http, prompt).map_err(|e| e.to_string())?;
    if tokens.refresh_token.is_none() {
        tracing::warn!(
            "The provider returned no refresh token: later runs can log in only until the access token expires (Google returns one with access_type=offline and prompt=consent)"
        );
    }
    let key_dir = opened.data_dir();
    let (store, _) = opened.parts();
    TokenSource::from_config(config, store, key_dir.as_deref(), proxy)
        .and_then(|mut source| source.store_login(&tokens))
        .map_err(|e| e.to_string())?;
    let until = tokens
        .expires_at
        .map(|at| {
            format!(
                ", access token valid for {} s",
                at.saturating_sub(oauth::now_unix())
            )
        })
        .unwrap_or_default();
    Ok(format!(
        "OAuth login succeeded: tokens stored for the asset{until}{}",
        if key_dir.is_some() {
            " (sealed)"
        } else {
            " (in the returned state)"
        }
    ))
}
