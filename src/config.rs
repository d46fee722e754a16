//! The asset configuration: the request's `config` object, parsed once into typed values.
//!
//! Platforms hand every value over loosely typed (numbers as strings, blank UI fields as `""`)
//! and add keys of their own, so parsing is lenient about representation and unknown keys, and
//! strict about meaning: a value that is present must be valid, and the error names the key,
//! the value received and what was expected. Secrets never appear in an error.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::{
    protocol::{json_type, show},
    secret::Secret,
};

/// Every config key this binary reads, in the order they are validated.
///
/// The first invalid key in this order is the one reported, so errors are deterministic.
pub const CONFIG_KEYS: &[&str] = &[
    "server",
    "port",
    "auth_type",
    "username",
    "password",
    "client_id",
    "client_secret",
    "auth_url",
    "token_url",
    "scopes",
    "folder",
    "ingest_manner",
    "first_run_max_emails",
    "max_emails",
    "use_ssl",
    "verify_server_cert",
    "ca_cert",
    "allow_plaintext_auth",
    "timeout_secs",
    "max_email_size_mb",
    "data_dir",
    "refresh_token",
    "oauth_grant",
    "extract_attachments",
    "extract_urls",
    "extract_ips",
    "extract_domains",
    "extract_hashes",
    "add_body_to_header_artifacts",
    "after_ingest",
    "after_ingest_folder",
];

/// The folder polled when `folder` is not set (the reference's default).
pub const DEFAULT_FOLDER: &str = "inbox";

/// The OAuth scope used when `scopes` is not set (the reference's default, for Gmail).
pub const DEFAULT_SCOPE: &str = "https://mail.google.com/";

/// Port for implicit TLS (IMAPS).
const IMAPS_PORT: u16 = 993;
/// Port for plain IMAP, upgraded with STARTTLS.
const IMAP_PORT: u16 = 143;

/// How the connector authenticates to the IMAP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthType {
    /// LOGIN with `username` and `password`.
    #[default]
    Basic,
    /// SASL XOAUTH2 with an access token obtained from `token_url`.
    OAuth,
}

impl AuthType {
    /// The spelling used in the configuration and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "Basic",
            Self::OAuth => "OAuth",
        }
    }
}

/// What a poll does to a mail in the mailbox once its container is committed and
/// delivered (`after_ingest`). The reference never touches the mailbox; nor does the
/// default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AfterIngest {
    /// Leave the mailbox as it is.
    #[default]
    None,
    /// Set `\Seen`.
    MarkSeen,
    /// Set `\Flagged`.
    Flag,
    /// Move it to this folder (`after_ingest_folder`, as typed), created when missing.
    Move(String),
}

impl AfterIngest {
    /// The spelling used in the configuration and in messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            AfterIngest::None => "none",
            AfterIngest::MarkSeen => "mark_seen",
            AfterIngest::Flag => "flag",
            AfterIngest::Move(_) => "move",
        }
    }
}

/// Which end of the folder a poll takes emails from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IngestManner {
    /// Lowest UIDs first.
    #[default]
    OldestFirst,
    /// Highest UIDs first.
    LatestFirst,
}

impl IngestManner {
    /// The spelling used in the configuration and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OldestFirst => "oldest first",
            Self::LatestFirst => "latest first",
        }
    }
}

/// How an OAuth access token is obtained from `token_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OAuthGrant {
    /// Exchange a refresh token (from config or from an earlier `oauth login`).
    #[default]
    RefreshToken,
    /// App-only access with the client's own credentials (Microsoft 365).
    ClientCredentials,
}

impl OAuthGrant {
    /// The spelling used in the configuration and in messages (the OAuth `grant_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
}

/// Which artifact classes are extracted from an email (`extract_*` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent on/off switches that mirror the reference's configuration keys"
)]
pub struct ExtractFlags {
    /// Store attachments in the vault and add Vault Artifacts.
    pub attachments: bool,
    /// Extract URL artifacts.
    pub urls: bool,
    /// Extract IP artifacts.
    pub ips: bool,
    /// Extract domain artifacts.
    pub domains: bool,
    /// Extract hash artifacts.
    pub hashes: bool,
}

impl Default for ExtractFlags {
    fn default() -> Self {
        Self {
            attachments: true,
            urls: true,
            ips: true,
            domains: true,
            hashes: true,
        }
    }
}

/// The validated asset configuration.
///
/// Not `Serialize`: it holds secrets. Its `Debug` output is safe to log because every secret
/// is a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent on/off switches that mirror the configuration keys"
)]
pub struct Config {
    /// IMAP host name or address; required only by actions that connect ([`Config::require_server`]).
    pub server: Option<String>,
    /// IMAP port: 993 by default with `use_ssl` or OAuth, else 143.
    pub port: u16,
    /// How to authenticate.
    pub auth_type: AuthType,
    /// Login name, also the XOAUTH2 user.
    pub username: Option<String>,
    /// Password for Basic authentication.
    pub password: Option<Secret>,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// OAuth client secret.
    pub client_secret: Option<Secret>,
    /// OAuth authorization endpoint (used by `oauth login`).
    pub auth_url: Option<String>,
    /// OAuth token endpoint.
    pub token_url: Option<String>,
    /// OAuth scopes, never empty.
    pub scopes: Vec<String>,
    /// Folder to poll, exactly as typed: it is hashed byte for byte into container identifiers.
    pub folder: String,
    /// Which end of the folder a poll takes emails from.
    pub ingest_manner: IngestManner,
    /// Emails ingested by the first scheduled poll.
    pub first_run_max_emails: u32,
    /// Emails ingested by each later scheduled poll.
    pub max_emails: u32,
    /// Implicit TLS; without it the connector upgrades with STARTTLS.
    pub use_ssl: bool,
    /// Verify the server's certificate chain and host name.
    pub verify_server_cert: bool,
    /// Extra PEM trust anchor.
    pub ca_cert: Option<PathBuf>,
    /// Allow credentials over an unencrypted connection.
    pub allow_plaintext_auth: bool,
    /// Connect, read and write timeout of every network step, in seconds.
    pub timeout_secs: u64,
    /// Messages larger than this many MiB are not downloaded whole.
    pub max_email_size_mb: u64,
    /// Where the state store and vault live; `None` lets the caller pick its default.
    pub data_dir: Option<PathBuf>,
    /// OAuth refresh token given in the configuration.
    pub refresh_token: Option<Secret>,
    /// How an OAuth access token is obtained.
    pub oauth_grant: OAuthGrant,
    /// Which artifact classes are extracted.
    pub extract: ExtractFlags,
    /// Add the email body to the Email Artifact.
    pub add_body_to_header_artifacts: bool,
    /// What happens to a mail once its container is delivered.
    pub after_ingest: AfterIngest,
}

impl Default for Config {
    /// The configuration an empty `config` object gives.
    fn default() -> Self {
        Self {
            server: None,
            port: IMAP_PORT,
            auth_type: AuthType::Basic,
            username: None,
            password: None,
            client_id: None,
            client_secret: None,
            auth_url: None,
            token_url: None,
            scopes: vec![DEFAULT_SCOPE.to_owned()],
            folder: DEFAULT_FOLDER.to_owned(),
            ingest_manner: IngestManner::OldestFirst,
            first_run_max_emails: 2000,
            max_emails: 100,
            use_ssl: false,
            verify_server_cert: true,
            ca_cert: None,
            allow_plaintext_auth: false,
            timeout_secs: 60,
            max_email_size_mb: 50,
            data_dir: None,
            refresh_token: None,
            oauth_grant: OAuthGrant::RefreshToken,
            extract: ExtractFlags::default(),
            add_body_to_header_artifacts: false,
            after_ingest: AfterIngest::None,
        }
    }
}

/// An invalid or missing configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The `config` value is neither an object nor absent.
    #[error("config must be a JSON object, got {got}")]
    NotAnObject {
        /// The value received, rendered compactly.
        got: String,
    },
    /// A key holds a value of the wrong type, out of range or otherwise unusable.
    #[error("config.{key} must be {expected}, got {got}")]
    Invalid {
        /// The config key.
        key: &'static str,
        /// What the key accepts.
        expected: String,
        /// The value received, rendered compactly; for secrets only its JSON type.
        got: String,
    },
    /// A key the action needs is not set.
    #[error("config.{key} is required {purpose}")]
    Missing {
        /// The config key.
        key: &'static str,
        /// What needs it, e.g. "for Basic authentication".
        purpose: &'static str,
    },
}

impl ConfigError {
    /// The config key at fault, without the `config.` prefix; `config` when the whole value
    /// is not an object.
    pub fn key(&self) -> &'static str {
        match self {
            Self::NotAnObject { .. } => "config",
            Self::Invalid { key, .. } | Self::Missing { key, .. } => key,
        }
    }
}

impl Config {
    /// Parses the request's `config` value; absent (`null`) gives the defaults.
    pub fn from_json(value: &Value) -> Result<Self, ConfigError> {
        match value {
            Value::Null => Ok(Self::default()),
            Value::Object(map) => Self::from_map(&Fields(map)),
            other => Err(ConfigError::NotAnObject { got: show(other) }),
        }
    }

    /// Reads the keys in [`CONFIG_KEYS`] order, so the first error reported is deterministic.
    fn from_map(fields: &Fields<'_>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let server = fields.server("server")?;
        let port = fields.integer("port", PORT_RANGE)?;
        let auth_type = fields.choice(
            "auth_type",
            &[("Basic", AuthType::Basic), ("OAuth", AuthType::OAuth)],
        )?;
        let username = fields.username("username")?;
        let password = fields.secret("password")?;
        let client_id = fields.trimmed("client_id")?;
        let client_secret = fields.secret("client_secret")?;
        let auth_url = fields.url("auth_url")?;
        let token_url = fields.url("token_url")?;
        let scopes = fields.scopes("scopes")?;
        let folder = fields.folder("folder")?;
        let ingest_manner = fields.choice(
            "ingest_manner",
            &[
                ("oldest first", IngestManner::OldestFirst),
                ("latest first", IngestManner::LatestFirst),
            ],
        )?;
        let first_run_max_emails = fields.integer("first_run_max_emails", COUNT_RANGE)?;
        let max_emails = fields.integer("max_emails", COUNT_RANGE)?;
        let use_ssl = fields.boolean("use_ssl")?;
        let verify_server_cert = fields.boolean("verify_server_cert")?;
        let ca_cert = fields.path("ca_cert")?;
        let allow_plaintext_auth = fields.boolean("allow_plaintext_auth")?;
        let timeout_secs = fields.integer("timeout_secs", TIMEOUT_RANGE)?;
        let max_email_size_mb = fields.integer("max_email_size_mb", SIZE_RANGE)?;
        let data_dir = fields.path("data_dir")?;
        let refresh_token = fields.secret("refresh_token")?;
        let oauth_grant = fields.choice(
            "oauth_grant",
            &[
                ("refresh_token", OAuthGrant::RefreshToken),
                ("client_credentials", OAuthGrant::ClientCredentials),
            ],
        )?;
        let extract = ExtractFlags {
            attachments: fields.boolean("extract_attachments")?.unwrap_or(true),
            urls: fields.boolean("extract_urls")?.unwrap_or(true),
            ips: fields.boolean("extract_ips")?.unwrap_or(true),
            domains: fields.boolean("extract_domains")?.unwrap_or(true),
            hashes: fields.boolean("extract_hashes")?.unwrap_or(true),
        };
        let add_body_to_header_artifacts = fields.boolean("add_body_to_header_artifacts")?;
        let after_ingest = fields.after_ingest(folder.as_deref().unwrap_or(DEFAULT_FOLDER))?;

        let auth_type = auth_type.unwrap_or(defaults.auth_type);
        let use_ssl = use_ssl.unwrap_or(defaults.use_ssl);
        // OAuth servers (Gmail, Microsoft 365) only offer XOAUTH2 on implicit TLS, and the
        // reference forces TLS for OAuth, so the default port follows.
        let default_port = if use_ssl || auth_type == AuthType::OAuth {
            IMAPS_PORT
        } else {
            IMAP_PORT
        };
        Ok(Self {
            server,
            port: port.map_or(Ok(default_port), |n| narrow("port", n, PORT_RANGE))?,
            auth_type,
            username,
            password,
            client_id,
            client_secret,
            auth_url,
            token_url,
            scopes: scopes.unwrap_or(defaults.scopes),
            folder: folder.unwrap_or(defaults.folder),
            ingest_manner: ingest_manner.unwrap_or(defaults.ingest_manner),
            first_run_max_emails: first_run_max_emails
                .map_or(Ok(defaults.first_run_max_emails), |n| {
                    narrow("first_run_max_emails", n, COUNT_RANGE)
                })?,
            max_emails: max_emails.map_or(Ok(defaults.max_emails), |n| {
                narrow("max_emails", n, COUNT_RANGE)
            })?,
            use_ssl,
            verify_server_cert: verify_server_cert.unwrap_or(defaults.verify_server_cert),
            ca_cert,
            allow_plaintext_auth: allow_plaintext_auth.unwrap_or(defaults.allow_plaintext_auth),
            timeout_secs: timeout_secs.unwrap_or(defaults.timeout_secs),
            max_email_size_mb: max_email_size_mb.unwrap_or(defaults.max_email_size_mb),
            data_dir,
            refresh_token,
            oauth_grant: oauth_grant.unwrap_or(defaults.oauth_grant),
            extract,
            add_body_to_header_artifacts: add_body_to_header_artifacts
                .unwrap_or(defaults.add_body_to_header_artifacts),
            after_ingest,
        })
    }

    /// The server to connect to; actions that talk IMAP call this before connecting.
    pub fn require_server(&self) -> Result<&str, ConfigError> {
        self.server.as_deref().ok_or(ConfigError::Missing {
            key: "server",
            purpose: "to connect to the IMAP server",
        })
    }

    /// Checks that the keys the configured authentication needs are set.
    ///
    /// Basic needs `username` and `password`. OAuth needs `username` (the XOAUTH2 user),
    /// `client_id` and `token_url`, plus `client_secret` with the `client_credentials` grant.
    /// With the `refresh_token` grant the refresh token may come from the state store instead
    /// of the configuration, so it is checked by [`Config::require_refresh_token`], and the
    /// client secret stays optional because public clients (PKCE) have none.
    pub fn require_credentials(&self) -> Result<(), ConfigError> {
        match self.auth_type {
            AuthType::Basic => {
                let purpose = "for Basic authentication";
                require("username", self.username.is_some(), purpose)?;
                require("password", self.password.is_some(), purpose)
            }
            AuthType::OAuth => {
                let purpose = "for OAuth authentication";
                require("username", self.username.is_some(), purpose)?;
                require("client_id", self.client_id.is_some(), purpose)?;
                require("token_url", self.token_url.is_some(), purpose)?;
                match self.oauth_grant {
                    OAuthGrant::ClientCredentials => require(
                        "client_secret",
                        self.client_secret.is_some(),
                        "for OAuth authentication with the client_credentials grant",
                    ),
                    OAuthGrant::RefreshToken => Ok(()),
                }
            }
        }
    }

    /// Checks that a refresh token is available when the `refresh_token` grant needs one:
    /// `has_stored_token` says whether the state store holds one from an earlier login.
    pub fn require_refresh_token(&self, has_stored_token: bool) -> Result<(), ConfigError> {
        let needed = self.auth_type == AuthType::OAuth
            && self.oauth_grant == OAuthGrant::RefreshToken
            && !has_stored_token;
        require(
            "refresh_token",
            !needed || self.refresh_token.is_some(),
            "for OAuth authentication with the refresh_token grant (or run `soar-imap oauth login` first)",
        )
    }

    /// Checks the keys the interactive authorization-code flow (`oauth login`) needs.
    pub fn require_oauth_login(&self) -> Result<(), ConfigError> {
        let purpose = "for OAuth login";
        require("client_id", self.client_id.is_some(), purpose)?;
        require("auth_url", self.auth_url.is_some(), purpose)?;
        require("token_url", self.token_url.is_some(), purpose)
    }
}

/// `Ok` when `present`, else the "is required" error for `key`.
fn require(key: &'static str, present: bool, purpose: &'static str) -> Result<(), ConfigError> {
    if present {
        Ok(())
    } else {
        Err(ConfigError::Missing { key, purpose })
    }
}

/// Inclusive bounds of an integer key.
#[derive(Clone, Copy)]
struct Range {
    min: u32,
    max: u32,
}

const PORT_RANGE: Range = Range {
    min: 1,
    max: 65_535,
};
const COUNT_RANGE: Range = Range {
    min: 1,
    max: u32::MAX,
};
const TIMEOUT_RANGE: Range = Range { min: 1, max: 3600 };
const SIZE_RANGE: Range = Range { min: 1, max: 2048 };

impl Range {
    /// What the key accepts, in words.
    fn expected(self, too_large: bool) -> String {
        match (self.min, self.max) {
            (1, u32::MAX) if too_large => format!("a positive integer no larger than {}", u32::MAX),
            (1, u32::MAX) => "a positive integer".to_owned(),
            (min, max) => format!("an integer from {min} to {max}"),
        }
    }
}

/// Converts an already range-checked integer to the field's type.
fn narrow<T: TryFrom<u64>>(key: &'static str, n: u64, range: Range) -> Result<T, ConfigError> {
    T::try_from(n).map_err(|_| ConfigError::Invalid {
        key,
        expected: range.expected(true),
        got: n.to_string(),
    })
}

/// The config object, with one typed reader per kind of value.
///
/// Each reader returns `Ok(None)` for a key that is absent, `null` or `""` (platform UIs
/// send `""` for blank fields), and an error naming the key for anything unusable.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    /// The key's value unless it is absent, `null` or the empty string.
    fn get(&self, key: &str) -> Option<&Value> {
        match self.0.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(value) => Some(value),
        }
    }

    /// A string key, as typed.
    fn string(&self, key: &'static str) -> Result<Option<&str>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(key, "a string", other)),
        }
    }

    /// A string key with surrounding white space removed (pasted values often carry some).
    fn trimmed(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .string(key)?
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned))
    }

    /// A host name or address: no white space or control characters inside.
    fn server(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let server = self.trimmed(key)?;
        if let Some(s) = &server
            && s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                key,
                "a host name or IP address without spaces or control characters",
                &Value::String(s.clone()),
            ));
        }
        Ok(server)
    }

    /// A login name, as typed; control characters are refused because they would corrupt
    /// the IMAP LOGIN command or the XOAUTH2 string (which uses `\x01` as separator).
    fn username(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.string(key)? {
            Some(s) if s.chars().any(char::is_control) => Err(invalid(
                key,
                "a user name without control characters",
                &Value::String(s.to_owned()),
            )),
            other => Ok(other.map(str::to_owned)),
        }
    }

    /// An http or https URL (http is allowed for local test token servers).
    fn url(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let url = self.trimmed(key)?;
        if let Some(u) = &url {
            let lower = u.to_ascii_lowercase();
            let has_host = ["https://", "http://"].iter().any(|scheme| {
                lower
                    .strip_prefix(scheme)
                    .is_some_and(|rest| !rest.is_empty())
            });
            if !has_host || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid(
                    key,
                    "an http or https URL",
                    &Value::String(u.clone()),
                ));
            }
        }
        Ok(url)
    }

    /// The folder name, kept byte for byte because it is hashed into identifiers.
    fn folder(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.string(key)? {
            Some(s) if s.contains(['\r', '\n', '\0']) => Err(invalid(
                key,
                "a folder name without CR, LF or NUL",
                &Value::String(s.to_owned()),
            )),
            other => Ok(other.map(str::to_owned)),
        }
    }

    /// `after_ingest` with, for `move`, `after_ingest_folder`: required then, and another
    /// folder than the polled one (moving mail onto itself would re-poll it for ever).
    /// Set with another action, `after_ingest_folder` is ignored (forms keep old values).
    fn after_ingest(&self, polled: &str) -> Result<AfterIngest, ConfigError> {
        #[derive(Clone, Copy)]
        enum Kind {
            None,
            MarkSeen,
            Flag,
            Move,
        }
        let kind = self.choice(
            "after_ingest",
            &[
                ("none", Kind::None),
                ("mark_seen", Kind::MarkSeen),
                ("flag", Kind::Flag),
                ("move", Kind::Move),
            ],
        )?;
        let target = self.folder("after_ingest_folder")?;
        Ok(match kind.unwrap_or(Kind::None) {
            Kind::None => AfterIngest::None,
            Kind::MarkSeen => AfterIngest::MarkSeen,
            Kind::Flag => AfterIngest::Flag,
            Kind::Move => match target {
                None => {
                    return Err(ConfigError::Missing {
                        key: "after_ingest_folder",
                        purpose: "with after_ingest \"move\" (the folder processed mail goes to)",
                    });
                }
                Some(target) if target == polled => {
                    return Err(invalid(
                        "after_ingest_folder",
                        "a folder other than config.folder",
                        &Value::String(target),
                    ));
                }
                Some(target) => AfterIngest::Move(target),
            },
        })
    }

    /// A file system path; NUL cannot occur in any path the OS accepts.
    fn path(&self, key: &'static str) -> Result<Option<PathBuf>, ConfigError> {
        match self.string(key)? {
            Some(s) if s.contains('\0') => Err(invalid(
                key,
                "a path without NUL characters",
                &Value::String(s.to_owned()),
            )),
            other => Ok(other.map(PathBuf::from)),
        }
    }

    /// A secret string. Errors give only the JSON type received, never the value.
    fn secret(&self, key: &'static str) -> Result<Option<Secret>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(Secret::new(s.clone()))),
            Some(other) => Err(ConfigError::Invalid {
                key,
                expected: "a string".to_owned(),
                got: json_type(other).to_owned(),
            }),
        }
    }

    /// `true`/`false` as JSON booleans or strings (any case, surrounding spaces ignored).
    fn boolean(&self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value {
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) => match s.trim() {
                "" => Ok(None),
                t if t.eq_ignore_ascii_case("true") => Ok(Some(true)),
                t if t.eq_ignore_ascii_case("false") => Ok(Some(false)),
                _ => Err(invalid(key, "true or false", value)),
            },
            _ => Err(invalid(key, "true or false", value)),
        }
    }

    /// An integer within `range`, from a JSON number (`100.0` counts as 100) or a string of
    /// decimal digits with optional surrounding spaces.
    fn integer(&self, key: &'static str, range: Range) -> Result<Option<u64>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(whole)),
            Value::String(s) => {
                let t = s.trim();
                if t.is_empty() {
                    return Ok(None);
                }
                if t.bytes().all(|b| b.is_ascii_digit()) {
                    // All digits but too long for u64 is simply out of range.
                    Some(t.parse::<u64>().unwrap_or(u64::MAX))
                } else {
                    None
                }
            }
            _ => None,
        };
        match parsed {
            Some(n) if n > u64::from(range.max) => {
                Err(invalid_with(key, range.expected(true), value))
            }
            Some(n) if n >= u64::from(range.min) => Ok(Some(n)),
            _ => Err(invalid_with(key, range.expected(false), value)),
        }
    }

    /// One of `options`, matched case-insensitively after trimming.
    fn choice<T: Copy>(
        &self,
        key: &'static str,
        options: &[(&str, T)],
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        if let Value::String(s) = value {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            if let Some((_, choice)) = options
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(t))
            {
                return Ok(Some(*choice));
            }
        }
        let names: Vec<String> = options
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .collect();
        Err(invalid_with(key, names.join(" or "), value))
    }

    /// OAuth scopes: a JSON array of strings, a JSON-formatted list inside a string (the
    /// reference's form) or a space or comma separated string. Empty means the default.
    fn scopes(&self, key: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
        const EXPECTED: &str = "a list of scopes (a JSON array, a JSON-formatted list or a space or comma separated string)";
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let bad = || invalid(key, EXPECTED, value);
        let scopes = match value {
            Value::Array(items) => scope_list(items).ok_or_else(bad)?,
            Value::String(s) if s.trim_start().starts_with('[') => {
                match serde_json::from_str::<Value>(s) {
                    Ok(Value::Array(items)) => scope_list(&items).ok_or_else(bad)?,
                    _ => return Err(bad()),
                }
            }
            Value::String(s) => s
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => return Err(bad()),
        };
        Ok(if scopes.is_empty() {
            None
        } else {
            Some(scopes)
        })
    }
}

/// The scopes of a JSON list, or `None` when an element is not a single scope token.
fn scope_list(items: &[Value]) -> Option<Vec<String>> {
    let mut scopes = Vec::with_capacity(items.len());
    for item in items {
        let scope = item.as_str()?.trim();
        // RFC 6749 §3.3: a scope token never contains white space or control characters.
        if scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        if !scope.is_empty() {
            scopes.push(scope.to_owned());
        }
    }
    Some(scopes)
}

/// `f` as an integer when it is a non-negative whole number; whole numbers of 2^32 and
/// above all map to `u64::MAX`, which every range rejects as too large.
fn whole(f: f64) -> Option<u64> {
    if f.fract() != 0.0 || f < 0.0 {
        None
    } else if f > f64::from(u32::MAX) {
        Some(u64::MAX)
    } else {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked above: whole, non-negative and below 2^32"
        )]
        Some(f as u64)
    }
}

/// The "must be ..., got ..." error for a non-secret key.
fn invalid(key: &'static str, expected: &str, got: &Value) -> ConfigError {
    invalid_with(key, expected.to_owned(), got)
}

/// [`invalid`] with an owned description.
fn invalid_with(key: &'static str, expected: String, got: &Value) -> ConfigError {
    ConfigError::Invalid {
        key,
        expected,
        got: show(got),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: &Value) -> Config {
        Config::from_json(value).unwrap_or_else(|e| panic!("{value} should parse: {e}"))
    }

    fn error(value: &Value) -> String {
        match Config::from_json(value) {
            Ok(config) => panic!("{value} should fail, got {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn error_key(value: &Value) -> &'static str {
        match Config::from_json(value) {
            Ok(config) => panic!("{value} should fail, got {config:?}"),
            Err(e) => e.key(),
        }
    }

    // ---- defaults and shape ----

    #[test]
    fn empty_object_and_null_give_defaults() {
        let config = parse(&json!({}));
        assert_eq!(config, Config::default());
        assert_eq!(parse(&Value::Null), Config::default());
        assert_eq!(config.server, None);
        assert_eq!(config.port, 143);
        assert_eq!(config.auth_type, AuthType::Basic);
        assert_eq!(config.scopes, vec!["https://mail.google.com/".to_owned()]);
        assert_eq!(config.folder, "inbox");
        assert_eq!(config.ingest_manner, IngestManner::OldestFirst);
        assert_eq!(config.first_run_max_emails, 2000);
        assert_eq!(config.max_emails, 100);
        assert!(!config.use_ssl);
        assert!(config.verify_server_cert);
        assert!(!config.allow_plaintext_auth);
        assert_eq!(config.timeout_secs, 60);
        assert_eq!(config.max_email_size_mb, 50);
        assert_eq!(config.oauth_grant, OAuthGrant::RefreshToken);
        assert_eq!(config.extract, ExtractFlags::default());
        assert!(config.extract.attachments && config.extract.urls && config.extract.ips);
        assert!(config.extract.domains && config.extract.hashes);
        assert!(!config.add_body_to_header_artifacts);
    }

    #[test]
    fn non_object_config_is_rejected() {
        assert_eq!(
            error(&json!([1, 2])),
            "config must be a JSON object, got [1,2]"
        );
        assert_eq!(
            error(&json!("server")),
            "config must be a JSON object, got \"server\""
        );
        assert_eq!(error_key(&json!(3)), "config");
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let config = parse(&json!({
            "app_version": "3.3.2", "directory": "/opt/x", "main_module": "imap_connector.py",
            "ingest": {"container_label": "email", "interval_mins": 5}, "appname": "-",
            "ph": null, "server": "imap.example.com",
        }));
        assert_eq!(config.server.as_deref(), Some("imap.example.com"));
    }

    #[test]
    fn full_platform_style_config() {
        let config = parse(&json!({
            "server": " imap.example.com ", "auth_type": "Basic", "username": "soc@example.com",
            "password": "pw", "folder": "INBOX/Phish", "ingest_manner": "latest first",
            "first_run_max_emails": "2000", "max_emails": "100", "use_ssl": true,
            "extract_attachments": true, "extract_urls": "false", "extract_ips": false,
            "extract_domains": "TRUE", "extract_hashes": true,
            "add_body_to_header_artifacts": "true", "client_id": "", "client_secret": "",
            "auth_url": "", "token_url": "", "scopes": "",
        }));
        assert_eq!(config.server.as_deref(), Some("imap.example.com"));
        assert_eq!(config.port, 993);
        assert_eq!(config.username.as_deref(), Some("soc@example.com"));
        assert_eq!(config.password.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!(config.folder, "INBOX/Phish");
        assert_eq!(config.ingest_manner, IngestManner::LatestFirst);
        assert_eq!(
            config.extract,
            ExtractFlags {
                attachments: true,
                urls: false,
                ips: false,
                domains: true,
                hashes: true
            }
        );
        assert!(config.add_body_to_header_artifacts);
        assert_eq!(config.client_id, None);
        assert_eq!(config.client_secret, None);
        assert_eq!(config.token_url, None);
        assert_eq!(config.scopes, vec![DEFAULT_SCOPE.to_owned()]);
    }

    #[test]
    fn config_keys_are_unique() {
        let mut keys = CONFIG_KEYS.to_vec();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), CONFIG_KEYS.len());
    }

    #[test]
    fn every_key_is_checked_and_errors_follow_config_keys_order() {
        // An array of numbers is invalid for every key, so each one must be reported in turn.
        let mut config: Map<String, Value> = CONFIG_KEYS
            .iter()
            .map(|key| ((*key).to_owned(), json!([1])))
            .collect();
        for key in CONFIG_KEYS {
            assert_eq!(error_key(&Value::Object(config.clone())), *key);
            config.remove(*key);
        }
        assert_eq!(parse(&Value::Object(config)), Config::default());
    }

    // ---- integers ----

    #[test]
    fn integers_accept_numbers_and_numeric_strings() {
        for value in [json!(7), json!("7"), json!(" 7 "), json!(7.0), json!("007")] {
            assert_eq!(
                parse(&json!({ "max_emails": value })).max_emails,
                7,
                "{value}"
            );
        }
        assert_eq!(
            parse(&json!({ "first_run_max_emails": 4_294_967_295_u64 })).first_run_max_emails,
            u32::MAX
        );
        assert_eq!(parse(&json!({ "timeout_secs": "3600" })).timeout_secs, 3600);
        assert_eq!(
            parse(&json!({ "max_email_size_mb": 1 })).max_email_size_mb,
            1
        );
        // Blank means "not set".
        assert_eq!(parse(&json!({ "max_emails": "" })).max_emails, 100);
        assert_eq!(parse(&json!({ "max_emails": "  " })).max_emails, 100);
        assert_eq!(parse(&json!({ "max_emails": null })).max_emails, 100);
    }

    #[test]
    fn integers_reject_everything_else() {
        let cases = [
            (json!("abc"), r#""abc""#),
            (json!("1e3"), r#""1e3""#),
            (json!("1.5"), r#""1.5""#),
            (json!("-3"), r#""-3""#),
            (json!("+3"), r#""+3""#),
            (json!(-3), "-3"),
            (json!(100.5), "100.5"),
            (json!(0), "0"),
            (json!("0"), r#""0""#),
            (json!(true), "true"),
            (json!([100]), "[100]"),
            (json!({"n": 1}), r#"{"n":1}"#),
        ];
        for (value, shown) in cases {
            assert_eq!(
                error(&json!({ "max_emails": value })),
                format!("config.max_emails must be a positive integer, got {shown}")
            );
        }
        assert_eq!(
            error(&json!({ "max_emails": "abc" })),
            r#"config.max_emails must be a positive integer, got "abc""#
        );
    }

    #[test]
    fn integers_out_of_range() {
        assert_eq!(
            error(&json!({ "max_emails": 4_294_967_296_u64 })),
            "config.max_emails must be a positive integer no larger than 4294967295, got 4294967296"
        );
        assert_eq!(
            error(&json!({ "max_emails": "99999999999999999999999" })),
            "config.max_emails must be a positive integer no larger than 4294967295, \
             got \"99999999999999999999999\""
        );
        assert_eq!(
            error(&json!({ "timeout_secs": 3601 })),
            "config.timeout_secs must be an integer from 1 to 3600, got 3601"
        );
        assert_eq!(
            error(&json!({ "timeout_secs": 0 })),
            "config.timeout_secs must be an integer from 1 to 3600, got 0"
        );
        assert_eq!(
            error(&json!({ "max_email_size_mb": "2049" })),
            r#"config.max_email_size_mb must be an integer from 1 to 2048, got "2049""#
        );
        assert_eq!(
            error(&json!({ "first_run_max_emails": 1e30 })),
            "config.first_run_max_emails must be a positive integer no larger than 4294967295, \
             got 1e+30"
        );
    }

    // ---- port ----

    #[test]
    fn port_default_follows_tls_and_auth_type() {
        assert_eq!(parse(&json!({})).port, 143);
        assert_eq!(parse(&json!({ "use_ssl": true })).port, 993);
        assert_eq!(parse(&json!({ "use_ssl": "false" })).port, 143);
        assert_eq!(parse(&json!({ "auth_type": "OAuth" })).port, 993);
        assert_eq!(
            parse(&json!({ "auth_type": "OAuth", "use_ssl": false })).port,
            993
        );
    }

    #[test]
    fn explicit_port_wins() {
        assert_eq!(parse(&json!({ "port": 1143, "use_ssl": true })).port, 1143);
        assert_eq!(parse(&json!({ "port": "10993" })).port, 10993);
        assert_eq!(parse(&json!({ "port": 65535 })).port, 65535);
        assert_eq!(parse(&json!({ "port": "", "use_ssl": true })).port, 993);
    }

    #[test]
    fn bad_port() {
        assert_eq!(
            error(&json!({ "port": 70000 })),
            "config.port must be an integer from 1 to 65535, got 70000"
        );
        assert_eq!(
            error(&json!({ "port": 0 })),
            "config.port must be an integer from 1 to 65535, got 0"
        );
        assert_eq!(
            error(&json!({ "port": "imaps" })),
            r#"config.port must be an integer from 1 to 65535, got "imaps""#
        );
    }

    // ---- booleans ----

    #[test]
    fn booleans() {
        for (value, expected) in [
            (json!(true), true),
            (json!(false), false),
            (json!("true"), true),
            (json!("False"), false),
            (json!(" TRUE "), true),
        ] {
            assert_eq!(
                parse(&json!({ "use_ssl": value })).use_ssl,
                expected,
                "{value}"
            );
        }
        assert!(parse(&json!({ "verify_server_cert": "" })).verify_server_cert);
        assert!(!parse(&json!({ "verify_server_cert": false })).verify_server_cert);
        assert!(parse(&json!({ "allow_plaintext_auth": "true" })).allow_plaintext_auth);
        for (value, shown) in [
            (json!("yes"), r#""yes""#),
            (json!(1), "1"),
            (json!(0), "0"),
            (json!("1"), r#""1""#),
            (json!([]), "[]"),
        ] {
            assert_eq!(
                error(&json!({ "use_ssl": value })),
                format!("config.use_ssl must be true or false, got {shown}")
            );
        }
        assert_eq!(
            error(&json!({ "extract_hashes": "no" })),
            r#"config.extract_hashes must be true or false, got "no""#
        );
    }

    // ---- enums ----

    #[test]
    fn auth_type() {
        assert_eq!(
            parse(&json!({ "auth_type": "Basic" })).auth_type,
            AuthType::Basic
        );
        assert_eq!(
            parse(&json!({ "auth_type": "oauth" })).auth_type,
            AuthType::OAuth
        );
        assert_eq!(
            parse(&json!({ "auth_type": " OAUTH " })).auth_type,
            AuthType::OAuth
        );
        assert_eq!(
            parse(&json!({ "auth_type": "" })).auth_type,
            AuthType::Basic
        );
        assert_eq!(
            error(&json!({ "auth_type": "NTLM" })),
            r#"config.auth_type must be "Basic" or "OAuth", got "NTLM""#
        );
        assert_eq!(
            error(&json!({ "auth_type": 1 })),
            r#"config.auth_type must be "Basic" or "OAuth", got 1"#
        );
        assert_eq!(AuthType::OAuth.as_str(), "OAuth");
    }

    #[test]
    fn ingest_manner() {
        assert_eq!(
            parse(&json!({ "ingest_manner": "oldest first" })).ingest_manner,
            IngestManner::OldestFirst
        );
        assert_eq!(
            parse(&json!({ "ingest_manner": "  Latest First " })).ingest_manner,
            IngestManner::LatestFirst
        );
        assert_eq!(
            error(&json!({ "ingest_manner": "newest" })),
            r#"config.ingest_manner must be "oldest first" or "latest first", got "newest""#
        );
        assert_eq!(IngestManner::LatestFirst.as_str(), "latest first");
    }

    #[test]
    fn oauth_grant() {
        assert_eq!(
            parse(&json!({ "oauth_grant": "client_credentials" })).oauth_grant,
            OAuthGrant::ClientCredentials
        );
        assert_eq!(
            parse(&json!({ "oauth_grant": "REFRESH_TOKEN" })).oauth_grant,
            OAuthGrant::RefreshToken
        );
        assert_eq!(
            error(&json!({ "oauth_grant": "password" })),
            r#"config.oauth_grant must be "refresh_token" or "client_credentials", got "password""#
        );
        assert_eq!(OAuthGrant::ClientCredentials.as_str(), "client_credentials");
    }

    // ---- scopes ----

    #[test]
    fn scopes_forms() {
        let two = vec!["https://mail.google.com/".to_owned(), "openid".to_owned()];
        for value in [
            json!(["https://mail.google.com/", "openid"]),
            json!(r#"["https://mail.google.com/", "openid"]"#),
            json!(" [\"https://mail.google.com/\",\"openid\"] "),
            json!("https://mail.google.com/ openid"),
            json!("https://mail.google.com/,openid"),
            json!(" https://mail.google.com/ ,  openid\n"),
        ] {
            assert_eq!(parse(&json!({ "scopes": value })).scopes, two, "{value}");
        }
        assert_eq!(
            parse(&json!({ "scopes": "https://outlook.office365.com/.default" })).scopes,
            vec!["https://outlook.office365.com/.default".to_owned()]
        );
        // Empty in any form means the default.
        for value in [json!(""), json!([]), json!("[]"), json!(" , "), json!([""])] {
            assert_eq!(
                parse(&json!({ "scopes": value })).scopes,
                vec![DEFAULT_SCOPE.to_owned()],
                "{value}"
            );
        }
    }

    #[test]
    fn bad_scopes() {
        let expected = "config.scopes must be a list of scopes (a JSON array, a JSON-formatted \
                        list or a space or comma separated string), got";
        for (value, shown) in [
            (json!([1]), "[1]"),
            (json!(["a b"]), r#"["a b"]"#),
            (json!(r#"["unterminated"#), r#""[\"unterminated""#),
            (json!("[1, 2]"), r#""[1, 2]""#),
            (json!(42), "42"),
            (json!({"scope": "x"}), r#"{"scope":"x"}"#),
        ] {
            assert_eq!(
                error(&json!({ "scopes": value })),
                format!("{expected} {shown}")
            );
        }
    }

    // ---- strings ----

    #[test]
    fn folder_kept_as_typed() {
        assert_eq!(parse(&json!({ "folder": " Inbox " })).folder, " Inbox ");
        assert_eq!(
            parse(&json!({ "folder": "[Gmail]/All Mail" })).folder,
            "[Gmail]/All Mail"
        );
        assert_eq!(parse(&json!({ "folder": "Входящие" })).folder, "Входящие");
        assert_eq!(parse(&json!({ "folder": "" })).folder, "inbox");
        assert_eq!(parse(&json!({ "folder": null })).folder, "inbox");
    }

    #[test]
    fn after_ingest_is_none_by_default_and_move_needs_another_folder() {
        let parse = |v: Value| Config::from_json(&v).map(|c| c.after_ingest);
        assert_eq!(parse(json!({})), Ok(AfterIngest::None));
        assert_eq!(
            parse(json!({"after_ingest": "Mark_Seen"})),
            Ok(AfterIngest::MarkSeen)
        );
        // A form's leftover folder is ignored with another action.
        assert_eq!(
            parse(json!({"after_ingest": "flag", "after_ingest_folder": "Done"})),
            Ok(AfterIngest::Flag)
        );
        assert_eq!(
            parse(json!({"after_ingest": "move", "after_ingest_folder": "Done"})),
            Ok(AfterIngest::Move("Done".into()))
        );
        let missing = parse(json!({"after_ingest": "move"}))
            .unwrap_err()
            .to_string();
        assert!(
            missing
                .starts_with("config.after_ingest_folder is required with after_ingest \"move\""),
            "{missing}"
        );
        let same = parse(
            json!({"folder": "Phish", "after_ingest": "move", "after_ingest_folder": "Phish"}),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            same,
            "config.after_ingest_folder must be a folder other than config.folder, got \"Phish\""
        );
        let bad = parse(json!({"after_ingest": "delete"}))
            .unwrap_err()
            .to_string();
        assert_eq!(
            bad,
            "config.after_ingest must be \"none\" or \"mark_seen\" or \"flag\" or \"move\", got \"delete\""
        );
    }

    #[test]
    fn folder_with_line_breaks_or_nul_is_rejected() {
        assert_eq!(
            error(&json!({ "folder": "inbox\r\nA1 DELETE x" })),
            r#"config.folder must be a folder name without CR, LF or NUL, got "inbox\r\nA1 DELETE x""#
        );
        assert_eq!(error_key(&json!({ "folder": "a\nb" })), "folder");
        assert_eq!(error_key(&json!({ "folder": "a\rb" })), "folder");
        assert_eq!(error_key(&json!({ "folder": "a\u{0}b" })), "folder");
        assert_eq!(
            error(&json!({ "folder": 5 })),
            "config.folder must be a string, got 5"
        );
    }

    #[test]
    fn server_and_username() {
        assert_eq!(parse(&json!({ "server": "" })).server, None);
        assert_eq!(parse(&json!({ "server": "   " })).server, None);
        assert_eq!(
            parse(&json!({ "server": "::1" })).server.as_deref(),
            Some("::1")
        );
        assert_eq!(
            error(&json!({ "server": "imap example.com" })),
            "config.server must be a host name or IP address without spaces or control \
             characters, got \"imap example.com\""
        );
        assert_eq!(
            error(&json!({ "server": 10 })),
            "config.server must be a string, got 10"
        );
        assert_eq!(
            parse(&json!({ "username": " user@example.com" }))
                .username
                .as_deref(),
            Some(" user@example.com")
        );
        assert_eq!(
            error(&json!({ "username": "u\u{1}auth=Bearer x" })),
            r#"config.username must be a user name without control characters, got "u\u0001auth=Bearer x""#
        );
    }

    #[test]
    fn urls_and_client_id() {
        let config = parse(&json!({
            "auth_url": "https://accounts.google.com/o/oauth2/auth",
            "token_url": " http://127.0.0.1:8080/token ",
            "client_id": " abc.apps.googleusercontent.com\n",
        }));
        assert_eq!(
            config.auth_url.as_deref(),
            Some("https://accounts.google.com/o/oauth2/auth")
        );
        assert_eq!(
            config.token_url.as_deref(),
            Some("http://127.0.0.1:8080/token")
        );
        assert_eq!(
            config.client_id.as_deref(),
            Some("abc.apps.googleusercontent.com")
        );
        for bad in [
            "oauth2.googleapis.com/token",
            "ftp://x/token",
            "https://",
            "https://a b",
        ] {
            assert_eq!(
                error(&json!({ "token_url": bad })),
                format!("config.token_url must be an http or https URL, got \"{bad}\"")
            );
        }
    }

    #[test]
    fn paths() {
        let config = parse(&json!({ "ca_cert": "/etc/ssl/my ca.pem", "data_dir": "rel/dir" }));
        assert_eq!(config.ca_cert, Some(PathBuf::from("/etc/ssl/my ca.pem")));
        assert_eq!(config.data_dir, Some(PathBuf::from("rel/dir")));
        assert_eq!(parse(&json!({ "data_dir": "" })).data_dir, None);
        assert_eq!(error_key(&json!({ "ca_cert": "a\u{0}b" })), "ca_cert");
        assert_eq!(
            error(&json!({ "data_dir": false })),
            "config.data_dir must be a string, got false"
        );
    }

    #[test]
    fn long_values_are_truncated_in_errors() {
        let long = "x".repeat(500);
        let message = error(&json!({ "max_emails": long }));
        assert!(message.starts_with("config.max_emails must be a positive integer, got \"xxx"));
        assert!(message.ends_with("..."), "{message}");
        let shown = message.split(", got ").nth(1).unwrap_or_default();
        assert_eq!(shown.chars().count(), 60);
        // Multi-byte characters are cut on a character boundary.
        let message = error(&json!({ "port": "é".repeat(100) }));
        assert!(message.ends_with("..."), "{message}");
    }

    // ---- secrets ----

    #[test]
    fn secrets_are_parsed_as_typed() {
        let config = parse(&json!({
            "password": " pass word ", "client_secret": "cs", "refresh_token": "1//rt",
        }));
        assert_eq!(
            config.password.as_ref().map(Secret::expose),
            Some(" pass word ")
        );
        assert_eq!(
            config.client_secret.as_ref().map(Secret::expose),
            Some("cs")
        );
        assert_eq!(
            config.refresh_token.as_ref().map(Secret::expose),
            Some("1//rt")
        );
        assert_eq!(parse(&json!({ "password": "" })).password, None);
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let cases = [
            (json!(123_456_789), "a number"),
            (json!(true), "a boolean"),
            (json!(["hunter2"]), "an array"),
            (json!({"hunter2": "hunter2"}), "an object"),
        ];
        for key in ["password", "client_secret", "refresh_token"] {
            for (value, kind) in &cases {
                let message = error(&json!({ key: value }));
                assert_eq!(
                    message,
                    format!("config.{key} must be a string, got {kind}")
                );
                assert!(!message.contains("hunter2") && !message.contains("123456789"));
                let debug = format!("{:?}", Config::from_json(&json!({ key: value })));
                assert!(
                    !debug.contains("hunter2") && !debug.contains("123456789"),
                    "{debug}"
                );
            }
        }
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let config = parse(&json!({
            "password": "hunter2-pw", "client_secret": "cs-s3cr3t", "refresh_token": "rt-t0ken",
            "username": "soc@example.com",
        }));
        let debug = format!("{config:?} {config:#?}");
        for secret in ["hunter2-pw", "cs-s3cr3t", "rt-t0ken"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("soc@example.com"));
        assert!(debug.contains("<redacted>"));
    }

    // ---- requirements ----

    #[test]
    fn require_server() {
        assert_eq!(
            parse(&json!({ "server": "imap.example.com" })).require_server(),
            Ok("imap.example.com")
        );
        let err = parse(&json!({ "server": "" }))
            .require_server()
            .unwrap_err();
        assert_eq!(err.key(), "server");
        assert_eq!(
            err.to_string(),
            "config.server is required to connect to the IMAP server"
        );
    }

    #[test]
    fn require_basic_credentials() {
        let ok = parse(&json!({ "username": "u", "password": "p" }));
        assert_eq!(ok.require_credentials(), Ok(()));
        assert_eq!(
            parse(&json!({ "username": "u" }))
                .require_credentials()
                .unwrap_err()
                .to_string(),
            "config.password is required for Basic authentication"
        );
        assert_eq!(
            parse(&json!({ "password": "p" }))
                .require_credentials()
                .unwrap_err()
                .to_string(),
            "config.username is required for Basic authentication"
        );
    }

    #[test]
    fn require_oauth_credentials() {
        let base = json!({
            "auth_type": "OAuth", "username": "u@gmail.com", "client_id": "cid",
            "token_url": "https://oauth2.googleapis.com/token",
        });
        let config = parse(&base);
        assert_eq!(config.require_credentials(), Ok(()));
        // The refresh token may come from the store instead.
        assert_eq!(config.require_refresh_token(true), Ok(()));
        assert_eq!(
            config.require_refresh_token(false).unwrap_err().key(),
            "refresh_token"
        );
        let mut with_token = base.clone();
        with_token["refresh_token"] = json!("rt");
        assert_eq!(parse(&with_token).require_refresh_token(false), Ok(()));

        for key in ["username", "client_id", "token_url"] {
            let mut missing = base.clone();
            missing[key] = json!("");
            assert_eq!(
                parse(&missing)
                    .require_credentials()
                    .unwrap_err()
                    .to_string(),
                format!("config.{key} is required for OAuth authentication")
            );
        }

        let mut app_only = base.clone();
        app_only["oauth_grant"] = json!("client_credentials");
        assert_eq!(
            parse(&app_only)
                .require_credentials()
                .unwrap_err()
                .to_string(),
            "config.client_secret is required for OAuth authentication with the \
             client_credentials grant"
        );
        // No refresh token is needed for app-only access.
        assert_eq!(parse(&app_only).require_refresh_token(false), Ok(()));
        app_only["client_secret"] = json!("s");
        assert_eq!(parse(&app_only).require_credentials(), Ok(()));
    }

    #[test]
    fn refresh_token_not_needed_for_basic() {
        assert_eq!(parse(&json!({})).require_refresh_token(false), Ok(()));
    }

    #[test]
    fn require_oauth_login() {
        let config = parse(&json!({
            "client_id": "cid", "auth_url": "https://a/auth", "token_url": "https://a/token",
        }));
        assert_eq!(config.require_oauth_login(), Ok(()));
        assert_eq!(
            parse(&json!({ "client_id": "cid", "token_url": "https://a/token" }))
                .require_oauth_login()
                .unwrap_err()
                .to_string(),
            "config.auth_url is required for OAuth login"
        );
    }
}
