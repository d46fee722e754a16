//! The subcommands for people (`parse`, `test`, `poll`, `get`): each turns its arguments,
//! an asset file and the secrets in the environment into the JSON request a platform would
//! send, so it runs through exactly the code path of the wire protocol.
//!
//! Everything here is pure except [`prepare`], which reads the asset file, stdin and the
//! environment and hands what it read to the pure builders.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::{
    actions::on_poll::SCHEDULED,
    protocol::{Action, json_type},
    secret::Secret,
};

/// The environment variables a secret may come from instead of the asset file, and the
/// config key each one sets. A secret never goes on the command line, where every user of
/// the host can read it (`ps`, `/proc/<pid>/cmdline`).
pub const SECRET_VARIABLES: [(&str, &str); 3] = [
    ("SOAR_IMAP_PASSWORD", "password"),
    ("SOAR_IMAP_CLIENT_SECRET", "client_secret"),
    ("SOAR_IMAP_REFRESH_TOKEN", "refresh_token"),
];

const PARSE_EXAMPLES: &str = "\
Examples:
  soar-imap parse suspicious.eml | jq '.containers[0]'
  soar-imap parse --pretty mails/*.eml
  curl -s https://example.com/sample.eml | soar-imap parse --folder 'Phish Reports' --id 42 -

Prints the response of the JSON request
  {\"identifier\": \"parse_email\", \"parameters\": [{\"path\": FILE}, ...]}
(an email read from stdin goes in as \"raw_email\"). Exit status: 0 every email parsed,
1 one failed (the JSON says which and why), 2 unusable arguments.";

const TEST_EXAMPLES: &str = "\
Examples:
  SOAR_IMAP_PASSWORD=... soar-imap test --asset /etc/soar-imap/phish.json
  soar-imap test --asset phish.json --pretty | jq '.action_results[0].data[0]'

ASSET.json holds the asset's configuration, the \"config\" object of a request:
  {\"server\": \"imap.example.com\", \"use_ssl\": true, \"username\": \"soc@example.com\",
   \"folder\": \"Phish Reports\"}
The password (client secret, refresh token) comes from the file or from SOAR_IMAP_PASSWORD
(SOAR_IMAP_CLIENT_SECRET, SOAR_IMAP_REFRESH_TOKEN), which win over the file.";

const POLL_EXAMPLES: &str = "\
Examples:
  SOAR_IMAP_PASSWORD=... soar-imap poll --asset /etc/soar-imap/phish.json > poll.json
  soar-imap poll --asset phish.json --limit 50 | jq -c '.containers[]'
  # crontab: every 5 minutes, each response in a file of its own
  */5 * * * * soar-imap poll --asset /etc/soar-imap/phish.json > /var/spool/soar-imap/poll-$(date +\\%s).json 2>> /var/log/soar-imap/poll.log

A scheduled poll (container_count 4294967295): the new mail of the asset's folder since
the last poll of the same asset id. At a terminal, stderr shows a progress line.";

const GET_EXAMPLES: &str = "\
Examples:
  soar-imap get --asset phish.json --uid 42 --pretty
  soar-imap get --asset phish.json --uid 7 --folder Archive --ingest | jq '.containers[0]'
  soar-imap get --asset phish.json --container-id 1234";

/// The actions as subcommands, beside the JSON request on stdin.
#[derive(Debug, Clone, Subcommand)]
pub enum ActionCommand {
    /// Parse .eml files into containers, offline (the `parse email` action).
    #[command(after_help = PARSE_EXAMPLES)]
    Parse(ParseArgs),
    /// Connect, log in and examine the asset's folder (the `test connectivity` action).
    #[command(after_help = TEST_EXAMPLES)]
    Test(TestArgs),
    /// Ingest the new mail of the asset's folder (a scheduled `on poll`).
    #[command(after_help = POLL_EXAMPLES)]
    Poll(PollArgs),
    /// Fetch one email by UID, or a container by id (the `get email` action).
    #[command(after_help = GET_EXAMPLES)]
    Get(GetArgs),
}

/// `soar-imap parse FILE...`.
#[derive(Debug, Clone, Args)]
pub struct ParseArgs {
    /// The emails: .eml files, or `-` for one read from stdin.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The folder hashed into the source data identifiers (default: the asset's folder,
    /// else `inbox`).
    #[arg(long, value_name = "F")]
    pub folder: Option<String>,
    /// The UID used in the identifiers, for every FILE (default 0).
    #[arg(long, value_name = "N")]
    pub id: Option<u64>,
    /// An asset file whose configuration applies (extraction flags, folder, `data_dir`).
    #[arg(long, value_name = "ASSET.json")]
    pub asset: Option<PathBuf>,
    /// Print the response indented (still one JSON document).
    #[arg(long)]
    pub pretty: bool,
}

/// The asset a subcommand talks to the mail server for.
#[derive(Debug, Clone, Args)]
pub struct AssetArgs {
    /// The asset's configuration: a JSON file holding the `config` object of a request.
    #[arg(long, value_name = "ASSET.json")]
    pub asset: PathBuf,
    /// The id that scopes the asset's state (poll position, ledger, OAuth tokens);
    /// default: the asset file's name without its extension.
    #[arg(long, value_name = "ID", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub asset_id: Option<String>,
}

/// `soar-imap test --asset ASSET.json`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The asset.
    #[command(flatten)]
    pub asset: AssetArgs,
    /// Print the response indented (still one JSON document).
    #[arg(long)]
    pub pretty: bool,
}

/// `soar-imap poll --asset ASSET.json`.
#[derive(Debug, Clone, Args)]
pub struct PollArgs {
    /// The asset.
    #[command(flatten)]
    pub asset: AssetArgs,
    /// At most N emails this run (instead of `first_run_max_emails` and `max_emails`).
    #[arg(long, value_name = "N", value_parser = positive::<u32>("a positive number of emails"))]
    pub limit: Option<u32>,
}

/// `soar-imap get --asset ASSET.json --uid N`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// The asset.
    #[command(flatten)]
    pub asset: AssetArgs,
    /// The email's IMAP UID.
    #[arg(long, value_name = "N", value_parser = positive::<u32>("an IMAP UID, a positive integer"),
          required_unless_present = "container_id", conflicts_with = "container_id")]
    pub uid: Option<u32>,
    /// The folder the UID is in (default: the asset's folder).
    // `requires` alone lets it pass beside --container-id, which conflicts with --uid.
    #[arg(
        long,
        value_name = "F",
        requires = "uid",
        conflicts_with = "container_id"
    )]
    pub folder: Option<String>,
    /// Instead of a UID: the id of a container already ingested (read from the ledger,
    /// no server needed).
    #[arg(long, value_name = "N", value_parser = positive::<i64>("a container id, a positive integer"))]
    pub container_id: Option<i64>,
    /// Ingest the email (or find it already ingested) and print its container.
    #[arg(long)]
    pub ingest: bool,
    /// Print the response indented (still one JSON document).
    #[arg(long)]
    pub pretty: bool,
}

/// A value parser for a positive integer that says what the number is for when it is not
/// one (clap's own range message names the range, not the meaning).
fn positive<T>(what: &'static str) -> impl Fn(&str) -> Result<T, String> + Clone
where
    T: std::str::FromStr + PartialOrd + Default,
{
    move |text| match text.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(format!("expected {what}")),
    }
}

/// Why a subcommand's arguments, or the files they name, make no request (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--request` names a request, which a subcommand builds itself.
    #[error(
        "--request does not go with `soar-imap {0}`: the subcommand builds the request from its own arguments (see soar-imap {0} --help)"
    )]
    RequestFlag(&'static str),
    /// `parse - -`: stdin holds one email.
    #[error("`-` (the email on stdin) can be given only once")]
    StdinTwice,
    /// stdin could not be read.
    #[error("cannot read the email from stdin (`-`): {0}")]
    Stdin(String),
    /// A file name a JSON request cannot carry.
    #[error("the file name {0:?} is not UTF-8, which a JSON request cannot carry; rename the file")]
    NotUtf8(String),
    /// The asset file could not be read.
    #[error(
        "cannot read the asset file {path:?} (--asset): {reason}; expected a JSON file holding the asset's configuration"
    )]
    AssetUnreadable {
        /// The path given.
        path: String,
        /// The system's words.
        reason: String,
    },
    /// The asset file is not JSON.
    #[error(
        "the asset file {path:?} (--asset) is not valid JSON ({reason}); expected the asset's configuration, a JSON object such as {{\"server\": \"imap.example.com\", \"username\": \"soc@example.com\"}}"
    )]
    AssetNotJson {
        /// The path given.
        path: String,
        /// Where the JSON broke (serde's words, which never quote the content).
        reason: String,
    },
    /// The asset file holds JSON that is not an object.
    #[error(
        "the asset file {path:?} (--asset) must hold a JSON object (the asset's configuration), got {got}"
    )]
    AssetNotObject {
        /// The path given.
        path: String,
        /// The JSON type found.
        got: &'static str,
    },
    /// The asset file holds a whole request (`{"config": {...}}`), not the configuration.
    #[error(
        "the asset file {0:?} (--asset) holds a whole request (it has a \"config\" object); it must hold the asset's configuration itself, the value of \"config\""
    )]
    AssetIsRequest(String),
    /// No asset id can be made from the file name.
    #[error("cannot make an asset id from the asset file name {0:?}; give --asset-id")]
    NoAssetId(String),
}

/// Secrets read from the environment ([`SECRET_VARIABLES`]), each winning over the asset
/// file's value. Held as [`Secret`]s, so no formatting of them can print one.
#[derive(Debug, Default, Clone)]
pub struct EnvSecrets(Vec<(&'static str, Secret)>);

impl EnvSecrets {
    /// The variables set (and not empty) in the process environment.
    pub fn from_process() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The variables `lookup` finds set and not empty.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self(
            SECRET_VARIABLES
                .iter()
                .filter_map(|&(variable, key)| {
                    lookup(variable)
                        .filter(|value| !value.is_empty())
                        .map(|value| (key, Secret::new(value)))
                })
                .collect(),
        )
    }

    /// Put the secrets into a configuration, over the file's values.
    fn apply(&self, config: &mut Map<String, Value>) {
        for (key, secret) in &self.0 {
            // The one place a secret from the environment goes: the request's config,
            // which the config layer types back into a `Secret`.
            config.insert((*key).to_owned(), Value::String(secret.expose().to_owned()));
        }
    }
}

/// An email for `parse`: a file the action reads, or the text read from stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Email {
    /// `{"path": ...}`.
    Path(String),
    /// `{"raw_email": ...}`.
    Raw(String),
}

/// The request a subcommand stands for, and what must live as long as its run. No
/// `Debug`: the request holds the asset's secrets.
pub struct Prepared {
    /// The JSON request, as the wire protocol takes it.
    pub request: Vec<u8>,
    /// `--pretty`: print the response indented.
    pub pretty: bool,
    /// A non-UTF-8 email from stdin, kept in a temporary file the request names (a JSON
    /// string cannot carry its bytes), removed when the run ends.
    pub spooled: Option<tempfile::NamedTempFile>,
}

/// Read what `command` needs (the asset file, stdin, the secrets in the environment) and
/// build its request. `request_flag`: `--request` was given too, which a subcommand refuses.
pub fn prepare(command: &ActionCommand, request_flag: bool) -> Result<Prepared, CliError> {
    if request_flag {
        return Err(CliError::RequestFlag(command.name()));
    }
    let secrets = EnvSecrets::from_process();
    let read_asset = |path: &Path| asset_config(path, std::fs::read(path), &secrets);
    let (request, pretty, spooled) = match command {
        ActionCommand::Parse(args) => {
            let config = match &args.asset {
                Some(path) => read_asset(path)?,
                None => Map::new(),
            };
            let (emails, spooled) = emails(&args.files)?;
            (parse_request(args, emails, config), args.pretty, spooled)
        }
        ActionCommand::Test(args) => {
            let config = read_asset(&args.asset.asset)?;
            (
                test_request(config, asset_id(&args.asset)?),
                args.pretty,
                None,
            )
        }
        ActionCommand::Poll(args) => {
            let config = read_asset(&args.asset.asset)?;
            let request = poll_request(config, asset_id(&args.asset)?, args.limit);
            (request, false, None)
        }
        ActionCommand::Get(args) => {
            let config = read_asset(&args.asset.asset)?;
            let request = get_request(config, asset_id(&args.asset)?, args);
            (request, args.pretty, None)
        }
    };
    Ok(Prepared {
        request: request.to_string().into_bytes(),
        pretty,
        spooled,
    })
}

/// The emails named by `parse`'s FILE arguments, stdin read for `-`: as text when it is
/// UTF-8 (as a platform would send it), else spooled to a temporary file, since a JSON
/// string cannot carry other bytes and a latin-1 email must parse as its file would.
fn emails(files: &[PathBuf]) -> Result<(Vec<Email>, Option<tempfile::NamedTempFile>), CliError> {
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return Err(CliError::StdinTwice);
    }
    let mut spooled = None;
    let mut emails = Vec::with_capacity(files.len());
    for file in files {
        if file.as_os_str() != "-" {
            emails.push(email_path(file)?);
            continue;
        }
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::Stdin(e.to_string()))?;
        match String::from_utf8(bytes) {
            Ok(text) => emails.push(Email::Raw(text)),
            Err(not_utf8) => {
                let spool = spool(not_utf8.as_bytes()).map_err(|e| {
                    CliError::Stdin(format!("cannot keep it in a temporary file: {e}"))
                })?;
                emails.push(email_path(spool.path())?);
                spooled = Some(spool);
            }
        }
    }
    Ok((emails, spooled))
}

fn spool(bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    use std::io::Write as _;
    // Readable by its owner only (tempfile's default): it is someone's email.
    let mut file = tempfile::Builder::new()
        .prefix("soar-imap-stdin-")
        .suffix(".eml")
        .tempfile()?;
    file.write_all(bytes)?;
    file.flush()?;
    Ok(file)
}

fn email_path(path: &Path) -> Result<Email, CliError> {
    path.to_str()
        .map(|p| Email::Path(p.to_owned()))
        .ok_or_else(|| CliError::NotUtf8(path.to_string_lossy().into_owned()))
}

impl ActionCommand {
    /// Whether the run shows a progress line on a terminal (a long poll).
    pub fn shows_progress(&self) -> bool {
        matches!(self, Self::Poll(_))
    }

    /// The subcommand's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Parse(_) => "parse",
            Self::Test(_) => "test",
            Self::Poll(_) => "poll",
            Self::Get(_) => "get",
        }
    }
}

/// The asset's configuration from the bytes of its file (`read`), with the secrets of the
/// environment over the file's. No message quotes the file's content: it holds secrets.
pub fn asset_config(
    path: &Path,
    read: std::io::Result<Vec<u8>>,
    secrets: &EnvSecrets,
) -> Result<Map<String, Value>, CliError> {
    let shown = || path.display().to_string();
    let bytes = read.map_err(|e| CliError::AssetUnreadable {
        path: shown(),
        reason: e.to_string(),
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| CliError::AssetNotJson {
        path: shown(),
        reason: e.to_string(),
    })?;
    let Value::Object(mut config) = value else {
        return Err(CliError::AssetNotObject {
            path: shown(),
            got: json_type(&value),
        });
    };
    // A request file (as `oauth login --request` takes) would pass as a configuration
    // with no known key and fail later as "config.server is required": say what it is.
    if config.get("config").is_some_and(Value::is_object) && !config.contains_key("server") {
        return Err(CliError::AssetIsRequest(shown()));
    }
    secrets.apply(&mut config);
    Ok(config)
}

/// `--asset-id`, else the asset file's name without its extension: two asset files of
/// different names never share a poll position by accident.
pub fn asset_id(args: &AssetArgs) -> Result<String, CliError> {
    if let Some(id) = &args.asset_id {
        return Ok(id.clone());
    }
    args.asset
        .file_stem()
        .map(|stem| stem.to_string_lossy().trim().to_owned())
        .filter(|stem| !stem.is_empty())
        .ok_or_else(|| CliError::NoAssetId(args.asset.display().to_string()))
}

/// `parse email` of `emails`, in order.
pub fn parse_request(args: &ParseArgs, emails: Vec<Email>, config: Map<String, Value>) -> Value {
    let parameters: Vec<Value> = emails
        .into_iter()
        .map(|email| {
            let mut parameter = Map::new();
            let (key, value) = match email {
                Email::Path(path) => ("path", path),
                Email::Raw(text) => ("raw_email", text),
            };
            parameter.insert(key.into(), Value::String(value));
            if let Some(id) = args.id {
                parameter.insert("id".into(), id.into());
            }
            if let Some(folder) = &args.folder {
                parameter.insert("folder".into(), Value::String(folder.clone()));
            }
            Value::Object(parameter)
        })
        .collect();
    request(Action::ParseEmail, None, config, Some(parameters))
}

/// `test connectivity` of the asset.
pub fn test_request(config: Map<String, Value>, asset_id: String) -> Value {
    request(Action::TestConnectivity, Some(asset_id), config, None)
}

/// A scheduled `on poll` of the asset; `limit` caps this run's emails, first run or not.
pub fn poll_request(mut config: Map<String, Value>, asset_id: String, limit: Option<u32>) -> Value {
    if let Some(limit) = limit {
        for key in ["first_run_max_emails", "max_emails"] {
            config.insert(key.into(), limit.into());
        }
    }
    let parameters = vec![json!({"container_count": SCHEDULED})];
    request(Action::OnPoll, Some(asset_id), config, Some(parameters))
}

/// `get email` of a UID (in `--folder`, else the asset's folder) or of a container id.
pub fn get_request(config: Map<String, Value>, asset_id: String, args: &GetArgs) -> Value {
    let mut parameter = Map::new();
    if let Some(id) = args.container_id {
        parameter.insert("container_id".into(), id.into());
    }
    if let Some(uid) = args.uid {
        parameter.insert("id".into(), uid.into());
    }
    if let Some(folder) = &args.folder {
        parameter.insert("folder".into(), Value::String(folder.clone()));
    }
    parameter.insert("ingest_email".into(), args.ingest.into());
    let parameters = vec![Value::Object(parameter)];
    request(Action::GetEmail, Some(asset_id), config, Some(parameters))
}

/// A request as a platform sends one: no `asset_id` means `"default"`, no `parameters`
/// one run with `{}`.
fn request(
    action: Action,
    asset_id: Option<String>,
    config: Map<String, Value>,
    parameters: Option<Vec<Value>>,
) -> Value {
    let mut request = Map::new();
    request.insert("identifier".into(), action.identifier().into());
    if let Some(asset_id) = asset_id {
        request.insert("asset_id".into(), Value::String(asset_id));
    }
    request.insert("config".into(), Value::Object(config));
    if let Some(parameters) = parameters {
        request.insert("parameters".into(), Value::Array(parameters));
    }
    Value::Object(request)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The subcommands alone, as `main` flattens them into its command line.
    #[derive(Debug, Parser)]
    struct Line {
        #[command(subcommand)]
        command: ActionCommand,
    }

    fn line(args: &[&str]) -> Result<ActionCommand, String> {
        Line::try_parse_from(std::iter::once("soar-imap").chain(args.iter().copied()))
            .map(|l| l.command)
            .map_err(|e| e.to_string())
    }

    const SECRET: &str = "Env-secret-5f1d";

    fn asset(text: &str, secrets: &EnvSecrets) -> Result<Map<String, Value>, String> {
        asset_config(
            Path::new("/etc/soar-imap/phish.json"),
            Ok(text.as_bytes().to_vec()),
            secrets,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn parse_names_each_file_and_gives_each_the_id_and_folder() {
        let ActionCommand::Parse(args) =
            line(&["parse", "a.eml", "--id", "7", "--folder", "Phish", "b.eml"]).unwrap()
        else {
            panic!("not parse");
        };
        let emails = vec![Email::Path("a.eml".into()), Email::Raw("Subject: x".into())];
        assert_eq!(
            parse_request(&args, emails, Map::new()),
            json!({"identifier": "parse_email", "config": {}, "parameters": [
                {"path": "a.eml", "id": 7, "folder": "Phish"},
                {"raw_email": "Subject: x", "id": 7, "folder": "Phish"},
            ]})
        );
        let ActionCommand::Parse(plain) = line(&["parse", "a.eml"]).unwrap() else {
            panic!("not parse");
        };
        assert_eq!(
            parse_request(&plain, vec![Email::Path("a.eml".into())], Map::new())["parameters"],
            json!([{"path": "a.eml"}])
        );
    }

    #[test]
    fn poll_is_scheduled_and_its_limit_caps_first_and_later_runs() {
        let config = asset(
            r#"{"server": "imap.example.com", "max_emails": 100}"#,
            &EnvSecrets::default(),
        )
        .unwrap();
        let request = poll_request(config.clone(), "phish".into(), None);
        assert_eq!(request["identifier"], "on_poll");
        assert_eq!(request["asset_id"], "phish");
        assert_eq!(
            request["parameters"],
            json!([{"container_count": 4_294_967_295_u64}])
        );
        assert_eq!(request["config"]["max_emails"], 100);
        let limited = poll_request(config, "phish".into(), Some(5));
        assert_eq!(limited["config"]["max_emails"], 5);
        assert_eq!(limited["config"]["first_run_max_emails"], 5);
        assert_eq!(limited["config"]["server"], "imap.example.com");
    }

    #[test]
    fn get_takes_a_uid_with_its_folder_or_a_container_id() {
        let ActionCommand::Get(args) = line(&[
            "get", "--asset", "a.json", "--uid", "42", "--folder", "Archive", "--ingest",
        ])
        .unwrap() else {
            panic!("not get");
        };
        assert_eq!(
            get_request(Map::new(), "a".into(), &args),
            json!({"identifier": "get_email", "asset_id": "a", "config": {},
                   "parameters": [{"id": 42, "folder": "Archive", "ingest_email": true}]})
        );
        let ActionCommand::Get(args) =
            line(&["get", "--asset", "a.json", "--container-id", "9"]).unwrap()
        else {
            panic!("not get");
        };
        assert_eq!(
            get_request(Map::new(), "a".into(), &args)["parameters"],
            json!([{"container_id": 9, "ingest_email": false}])
        );
    }

    #[test]
    fn test_runs_with_no_parameters() {
        assert_eq!(
            test_request(Map::new(), "a".into()),
            json!({"identifier": "test_asset_connectivity", "asset_id": "a", "config": {}})
        );
    }

    #[test]
    fn bad_numbers_and_missing_choices_are_refused_saying_what_was_expected() {
        for (args, expected) in [
            (
                &["get", "--asset", "a.json", "--uid", "0"][..],
                "expected an IMAP UID, a positive integer",
            ),
            (
                &["get", "--asset", "a.json", "--uid", "1:*"],
                "expected an IMAP UID, a positive integer",
            ),
            (
                &["get", "--asset", "a.json", "--uid", "4294967296"],
                "expected an IMAP UID",
            ),
            (
                &["get", "--asset", "a.json", "--container-id", "0"],
                "expected a container id",
            ),
            (
                &["poll", "--asset", "a.json", "--limit", "0"],
                "expected a positive number of emails",
            ),
            (&["get", "--asset", "a.json"], "--uid <N>"),
            (
                &[
                    "get",
                    "--asset",
                    "a.json",
                    "--uid",
                    "1",
                    "--container-id",
                    "2",
                ],
                "cannot be used with",
            ),
            (
                &[
                    "get",
                    "--asset",
                    "a.json",
                    "--container-id",
                    "2",
                    "--folder",
                    "x",
                ],
                "'--container-id <N>' cannot be used with '--folder <F>'",
            ),
            (&["poll"], "--asset <ASSET.json>"),
            (
                &["poll", "--asset", "a.json", "--asset-id", ""],
                "--asset-id <ID>",
            ),
            (&["parse"], "<FILE>"),
            (
                &["poll", "--asset", "a.json", "--password", "x"],
                "unexpected argument '--password'",
            ),
        ] {
            let error = line(args).unwrap_err();
            assert!(error.contains(expected), "{args:?}: {error}");
        }
    }

    #[test]
    fn the_asset_id_is_the_file_stem_unless_given() {
        let args = |asset: &str, id: Option<&str>| AssetArgs {
            asset: asset.into(),
            asset_id: id.map(str::to_owned),
        };
        assert_eq!(
            asset_id(&args("/etc/soar-imap/phish.json", None)).unwrap(),
            "phish"
        );
        assert_eq!(
            asset_id(&args("reports.v2.json", None)).unwrap(),
            "reports.v2"
        );
        assert_eq!(asset_id(&args("phish.json", Some("7"))).unwrap(), "7");
        assert!(asset_id(&args("/", None)).is_err());
    }

    #[test]
    fn environment_secrets_win_over_the_file_and_empty_ones_do_not_count() {
        let env = EnvSecrets::from_lookup(|name| match name {
            "SOAR_IMAP_PASSWORD" => Some(SECRET.to_owned()),
            "SOAR_IMAP_CLIENT_SECRET" => Some(String::new()),
            _ => None,
        });
        assert!(!format!("{env:?}").contains(SECRET));
        let config = asset(
            r#"{"server": "s", "password": "wrong", "client_secret": "cs"}"#,
            &env,
        )
        .unwrap();
        assert_eq!(config["password"], SECRET);
        assert_eq!(config["client_secret"], "cs");
        assert!(!config.contains_key("refresh_token"));
        // With no variables the file's values stand.
        let config = asset(r#"{"password": "p"}"#, &EnvSecrets::default()).unwrap();
        assert_eq!(config["password"], "p");
    }

    #[test]
    fn a_bad_asset_file_is_named_and_what_was_expected_said_without_its_content() {
        let secrets = EnvSecrets::default();
        for (text, expected) in [
            (
                "{\"password\": \"Hunter2-in-file\"",
                "is not valid JSON (EOF while parsing",
            ),
            (
                "[\"Hunter2-in-file\"]",
                "must hold a JSON object (the asset's configuration), got an array",
            ),
            ("\"Hunter2-in-file\"", "got a string"),
            (
                r#"{"asset_id": "7", "config": {"password": "Hunter2-in-file"}}"#,
                "holds a whole request",
            ),
        ] {
            let error = asset(text, &secrets).unwrap_err();
            assert!(error.contains("/etc/soar-imap/phish.json"), "{error}");
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("Hunter2"), "{error}");
        }
        let missing = asset_config(
            Path::new("/nonexistent/a.json"),
            Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            &secrets,
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.starts_with("cannot read the asset file \"/nonexistent/a.json\" (--asset): ")
                && missing.ends_with("expected a JSON file holding the asset's configuration"),
            "{missing}"
        );
    }

    #[test]
    fn only_poll_shows_progress() {
        assert!(
            line(&["poll", "--asset", "a.json"])
                .unwrap()
                .shows_progress()
        );
        assert!(
            !line(&["test", "--asset", "a.json"])
                .unwrap()
                .shows_progress()
        );
        assert!(!line(&["parse", "-"]).unwrap().shows_progress());
    }
}
