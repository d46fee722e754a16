//! Routes a request to its action and turns every outcome into one response.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{
    actions::{
        self,
        connect::{Connector, SessionSource as _},
    },
    config::{AfterIngest, AuthType, Config},
    container::{ContainerSink, Outgoing},
    imap::Link,
    protocol::{self, Action, ActionResult, ErrorBody, Request, Response, RunSummary, Status},
    state::{DEFAULT_LOCK_WAIT, MemoryStore, SqliteStore, StateStore},
    vault::{DirVault, NoVault, Vault},
};

/// What the run may know of its environment; `main` fills it so the core stays pure.
#[derive(Debug, Clone, Default)]
pub struct RunEnv {
    /// `$SOAR_IMAP_HOME`.
    pub soar_imap_home: Option<PathBuf>,
    /// `$XDG_DATA_HOME`.
    pub xdg_data_home: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$HTTPS_PROXY` (or `$https_proxy`), for OAuth token requests.
    pub https_proxy: Option<String>,
    /// Live, or recording or replaying a transcript (`--record`, `--replay`).
    pub link: Link,
}

impl RunEnv {
    /// Read the variables from the process environment.
    pub fn from_process() -> Self {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            soar_imap_home: var("SOAR_IMAP_HOME"),
            xdg_data_home: var("XDG_DATA_HOME"),
            home: var("HOME"),
            https_proxy: ["HTTPS_PROXY", "https_proxy"]
                .into_iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty())),
            link: Link::Live,
        }
    }

    /// Where the state store and the vault live: `config.data_dir`, else
    /// `$SOAR_IMAP_HOME`, else `$XDG_DATA_HOME/soar-imap`, else `~/.local/share/soar-imap`.
    pub fn data_dir(&self, config: &Config) -> Result<PathBuf, String> {
        if let Some(dir) = &config.data_dir {
            return Ok(dir.clone());
        }
        if let Some(dir) = &self.soar_imap_home {
            return Ok(dir.clone());
        }
        if let Some(dir) = &self.xdg_data_home {
            return Ok(dir.join("soar-imap"));
        }
        if let Some(home) = &self.home {
            return Ok(home.join(".local/share/soar-imap"));
        }
        Err("no data directory: set config.data_dir or $SOAR_IMAP_HOME".into())
    }

    /// Where a run's attachments go: the request's `vault_dir`, else `data_dir/vault`.
    pub fn vault(&self, config: &Config, vault_dir: Option<&Path>) -> Result<DirVault, String> {
        Ok(match vault_dir {
            Some(dir) => DirVault::at(dir.to_path_buf()),
            None => DirVault::new(&self.data_dir(config)?),
        })
    }
}

/// Run the request in `bytes` and build the response, containers included. The
/// response is in the caller's hands on return, so its containers count as delivered.
pub fn run(bytes: &[u8], env: &RunEnv) -> Response {
    let mut containers = Vec::new();
    let (mut response, delivery) =
        run_streaming(bytes, env, &mut |c: Outgoing| containers.push(c.container));
    if let Err(message) = delivery.confirm() {
        tracing::warn!("{message}");
    }
    response.containers = containers;
    response
}

/// Run the request in `bytes`, handing each container to `sink` as soon as it is
/// durable, so a poll of any size holds only one batch in memory. The response comes
/// back with no containers, with the [`Delivery`] to confirm once the caller has passed
/// the whole response on.
pub fn run_streaming(
    bytes: &[u8],
    env: &RunEnv,
    sink: &mut dyn ContainerSink,
) -> (Response, Delivery) {
    match protocol::parse_request(bytes) {
        Ok(request) => run_request(&request, env, sink),
        Err(error) => {
            tracing::error!("{error}");
            (Response::bad_request(&error), Delivery::none())
        }
    }
}

/// The containers a run committed or sent again, awaiting the end of its response.
///
/// They count as delivered only once the whole response that carries them has been
/// written: [`Delivery::confirm`] records that. A run whose response is cut off (killed,
/// crashed, stdout closed or full) never confirms, and the next poll of the asset's
/// folder sends them again (see [`crate::actions::redeliver`]). It holds the asset's
/// state store, and with it the asset's lock, until then: no other run can take the
/// containers over in between.
pub struct Delivery {
    store: Option<SqliteStore>,
    /// For a poll with `after_ingest`: how to reach the mailbox once the containers are
    /// delivered.
    after_ingest: Option<(Config, Connector)>,
}

impl Delivery {
    /// Nothing to deliver (a run with no state store, or a stateless one).
    pub fn none() -> Self {
        Delivery {
            store: None,
            after_ingest: None,
        }
    }

    /// For a live poll with `after_ingest`, do the due mailbox actions once delivered. (A
    /// recorded or replayed run ends with its transcript: they wait for the next poll.)
    fn then_after_ingest(mut self, action: Action, config: &Config, connector: &Connector) -> Self {
        if action == Action::OnPoll
            && config.after_ingest != AfterIngest::None
            && matches!(connector.link, Link::Live)
        {
            self.after_ingest = Some((config.clone(), connector.clone()));
        }
        self
    }

    /// The whole response was written: its containers are delivered, and then (for a
    /// poll with `after_ingest`) their mail is marked or moved. A failure of that last
    /// step leaves the actions due for the next poll.
    pub fn confirm(self) -> Result<u64, String> {
        let Some(mut store) = self.store else {
            return Ok(0);
        };
        let delivered = store.confirm_delivery().map_err(|e| {
            format!("{e}; the containers of this run will be delivered again by the next poll")
        })?;
        if let Some((config, connector)) = self.after_ingest {
            let due = store.due_actions().map_err(|e| e.to_string())?;
            if !due.is_empty() {
                let mut session = connector.open(&config, &mut store)?;
                crate::actions::after_ingest::run_due(session.as_mut(), &mut store)?;
                if let Err(e) = session.logout() {
                    tracing::warn!("{e}");
                }
            }
        }
        Ok(delivered)
    }
}

/// Run a parsed request.
pub fn run_request(
    request: &Request,
    env: &RunEnv,
    sink: &mut dyn ContainerSink,
) -> (Response, Delivery) {
    let action = request.action;
    tracing::info!(action = action.name(), asset = %request.asset_id, "starting {}", action.name());
    let config = match Config::from_json(&request.config) {
        Ok(config) => config,
        Err(error) => {
            let message = error.to_string();
            tracing::error!("{message}");
            return (
                whole_run_failed(request, "config", message),
                Delivery::none(),
            );
        }
    };
    let label = container_label(&request.config);
    // The poll opens its state once per run: the asset lock is held for the whole run.
    let mut opened = None;
    let needs_store = match action {
        Action::OnPoll | Action::GetEmail => true,
        Action::TestConnectivity => config.auth_type == AuthType::OAuth,
        Action::ParseEmail => false,
    };
    if needs_store {
        match open_store(request, &config, env) {
            Ok(store) => opened = Some(store),
            Err(message) => {
                tracing::error!("{message}");
                return (
                    whole_run_failed(request, "state", message),
                    Delivery::none(),
                );
            }
        }
    }
    let connector = Connector {
        link: env.link.clone(),
        https_proxy: https_proxy(request, env),
        key_dir: opened.as_ref().and_then(Opened::data_dir),
    };
    let run = Run {
        config: &config,
        label,
        env,
        connector: &connector,
        vault_dir: request.vault_dir.as_deref(),
    };
    let mut results = run.all(action, &request.parameters, opened.as_mut(), sink);
    // A replay that met a difference fails the run even where the action carried on
    // (a poll records a bad message and goes on).
    if let Err(message) = env.link.finish() {
        tracing::error!("{message}");
        for result in &mut results {
            if result.status == Status::Success {
                result.status = Status::Failed;
                result.message.clone_from(&message);
            }
        }
    }
    for result in &results {
        match result.status {
            Status::Success => tracing::info!("{}", result.message),
            Status::Failed => tracing::error!("{}", result.message),
        }
    }
    let successful = results
        .iter()
        .filter(|r| r.status == Status::Success)
        .count();
    let status = if successful == results.len() {
        Status::Success
    } else {
        Status::Failed
    };
    let message = match results.as_slice() {
        [only] => only.message.clone(),
        _ if status == Status::Success => format!("{} of {} succeeded", successful, results.len()),
        _ => {
            let first = results
                .iter()
                .find(|r| r.status == Status::Failed)
                .map_or("", |r| r.message.as_str());
            format!(
                "{successful} of {} succeeded; first failure: {first}",
                results.len()
            )
        }
    };
    let (state, delivery) = opened.map_or((None, Delivery::none()), Opened::finish);
    let delivery = delivery.then_after_ingest(action, &config, &connector);
    let response = Response {
        identifier: Some(action.identifier()),
        action: Some(action.name()),
        status,
        message,
        summary: RunSummary {
            total_objects: results.len(),
            total_objects_successful: successful,
        },
        action_results: results,
        containers: Vec::new(),
        state: state.or_else(|| request.state.clone()),
        error: None,
    };
    (response, delivery)
}

/// What every parameter object of a run shares.
struct Run<'a> {
    config: &'a Config,
    label: &'a str,
    env: &'a RunEnv,
    connector: &'a Connector,
    /// The request's `vault_dir`, for `parse email` (the others open theirs with the store).
    vault_dir: Option<&'a Path>,
}

impl Run<'_> {
    /// Run the action for every parameter object, in order.
    fn all(
        &self,
        action: Action,
        parameters: &[Map<String, Value>],
        mut opened: Option<&mut Opened>,
        sink: &mut dyn ContainerSink,
    ) -> Vec<ActionResult> {
        if action == Action::ParseEmail {
            // Emails are independent: built together on every core, their attachments
            // made durable once a batch.
            return actions::parse_email::run_all(
                parameters,
                self.config,
                self.label,
                self.env,
                self.vault_dir,
                sink,
            );
        }
        parameters
            .iter()
            .map(|parameter| self.one(action, parameter, opened.as_deref_mut(), sink))
            .collect()
    }

    /// Run the action for one parameter object.
    fn one(
        &self,
        action: Action,
        parameter: &Map<String, Value>,
        opened: Option<&mut Opened>,
        containers: &mut dyn ContainerSink,
    ) -> ActionResult {
        let config = self.config;
        match (action, opened) {
            (Action::ParseEmail, _) => actions::parse_email::run(
                parameter,
                config,
                self.label,
                self.env,
                self.vault_dir,
                containers,
            ),
            (Action::TestConnectivity, opened) => actions::test_connectivity::run(
                parameter,
                config,
                self.connector,
                opened.map(|o| o.parts().0),
            ),
            (Action::OnPoll | Action::GetEmail, Some(opened)) => {
                let (store, vault) = opened.parts();
                let mut ctx = actions::ingest::IngestContext {
                    config,
                    label: self.label,
                    store,
                    vault,
                    open: self.connector,
                };
                if action == Action::OnPoll {
                    actions::on_poll::run(parameter, &mut ctx, containers)
                } else {
                    actions::get_email::run(parameter, &mut ctx, containers)
                }
            }
            // The store is opened before the parameters run for these actions.
            (Action::GetEmail | Action::OnPoll, None) => ActionResult::failed(
                echo_parameter(parameter),
                "internal error: no state store was opened",
            ),
        }
    }
}

/// The state store and vault of a run: on disk under `data_dir`, or, for a stateless run
/// (`state` in the request), in memory with nothing written anywhere.
pub(crate) enum Opened {
    /// Stateful: the `SQLite` store and the vault under `data_dir`.
    Disk(SqliteStore, DirVault, PathBuf),
    /// Stateless: state from and back to the request; attachments are hashed, not kept,
    /// unless the request names a `vault_dir`.
    Memory(MemoryStore, Option<DirVault>),
}

impl Opened {
    pub(crate) fn parts(&mut self) -> (&mut dyn StateStore, &dyn Vault) {
        match self {
            Opened::Disk(store, vault, _) => (store, &*vault),
            Opened::Memory(store, Some(vault)) => (store, &*vault),
            Opened::Memory(store, None) => (store, &NoVault),
        }
    }

    /// The data directory, for a run that keeps state on disk.
    pub(crate) fn data_dir(&self) -> Option<PathBuf> {
        match self {
            Opened::Disk(_, _, dir) => Some(dir.clone()),
            Opened::Memory(..) => None,
        }
    }

    /// The end of the run: the new state to hand back, for a stateless run; the
    /// delivery to confirm, for a stateful one.
    pub(crate) fn finish(self) -> (Option<Value>, Delivery) {
        match self {
            Opened::Disk(store, ..) => (
                None,
                Delivery {
                    store: Some(store),
                    after_ingest: None,
                },
            ),
            Opened::Memory(store, _) => (Some(store.to_json()), Delivery::none()),
        }
    }
}

pub(crate) fn open_store(
    request: &Request,
    config: &Config,
    env: &RunEnv,
) -> Result<Opened, String> {
    if let Some(state) = &request.state {
        let folder_hash = crate::sdi::md5_hex(config.folder.as_bytes());
        let store = MemoryStore::from_json(state, &folder_hash).map_err(|e| e.to_string())?;
        let vault = request.vault_dir.clone().map(DirVault::at);
        return Ok(Opened::Memory(store, vault));
    }
    let data_dir = env.data_dir(config)?;
    let store = SqliteStore::open(&data_dir, &request.asset_id, DEFAULT_LOCK_WAIT)
        .map_err(|e| e.to_string())?;
    let vault = env.vault(config, request.vault_dir.as_deref())?;
    Ok(Opened::Disk(store, vault, data_dir))
}

/// The proxy for OAuth token requests: the request's `environment_variables`
/// (`{"HTTPS_PROXY": {"value": ...}}`, or a plain string), else the process environment.
pub(crate) fn https_proxy(request: &Request, env: &RunEnv) -> Option<String> {
    let from_request = ["HTTPS_PROXY", "https_proxy"].iter().find_map(|name| {
        let value = request.environment_variables.get(*name)?;
        value
            .get("value")
            .unwrap_or(value)
            .as_str()
            .map(str::to_owned)
    });
    crate::oauth::choose_proxy(from_request, env.https_proxy.clone())
}

/// The label platforms ask containers to carry (`config.ingest.container_label`), else
/// `email`.
fn container_label(config: &Value) -> &str {
    config
        .pointer("/ingest/container_label")
        .and_then(Value::as_str)
        .filter(|label| !label.trim().is_empty())
        .unwrap_or("email")
}

fn whole_run_failed(request: &Request, kind: &'static str, message: String) -> Response {
    let results: Vec<ActionResult> = request
        .parameters
        .iter()
        .map(|p| ActionResult::failed(Value::Object(p.clone()), message.clone()))
        .collect();
    Response {
        identifier: Some(request.action.identifier()),
        action: Some(request.action.name()),
        status: Status::Failed,
        message: message.clone(),
        summary: RunSummary {
            total_objects: results.len(),
            total_objects_successful: 0,
        },
        action_results: results,
        containers: Vec::new(),
        state: request.state.clone(),
        error: Some(ErrorBody { kind, message }),
    }
}

/// Echo a parameter object, shortening a raw email so the response does not carry the
/// message twice (it is in the container).
pub fn echo_parameter(parameter: &Map<String, Value>) -> Value {
    let mut echoed = parameter.clone();
    if let Some(Value::String(raw)) = echoed.get("raw_email") {
        let note = format!("<{} bytes>", raw.len());
        echoed.insert("raw_email".into(), Value::String(note));
    }
    Value::Object(echoed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(environment: &Value) -> Request {
        let mut request = protocol::parse_request(br#"{"action": "test connectivity"}"#).unwrap();
        request.environment_variables = environment.as_object().unwrap().clone();
        request
    }

    #[test]
    fn the_token_proxy_comes_from_the_request_then_the_environment() {
        let env = RunEnv {
            https_proxy: Some("http://env-proxy:3128".into()),
            ..RunEnv::default()
        };
        // The platform's shape, a plain string, then nothing (or empty): the environment.
        let platform = json!({"HTTPS_PROXY": {"type": "string", "value": "http://p:8080"}});
        assert_eq!(
            https_proxy(&request(&platform), &env).as_deref(),
            Some("http://p:8080")
        );
        let plain = json!({"https_proxy": "http://q:8080"});
        assert_eq!(
            https_proxy(&request(&plain), &env).as_deref(),
            Some("http://q:8080")
        );
        for unset in [json!({}), json!({"HTTPS_PROXY": {"value": ""}})] {
            assert_eq!(
                https_proxy(&request(&unset), &env).as_deref(),
                Some("http://env-proxy:3128")
            );
        }
        assert_eq!(https_proxy(&request(&json!({})), &RunEnv::default()), None);
    }
}
