//! The `soar-imap` binary: one JSON request in, one JSON response out (SPEC §1), or the
//! same request built from a subcommand's arguments (`src/cli.rs`).

use std::{
    io::{Read as _, Write as _},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use soar_imap::{
    cli::{self, ActionCommand},
    container::{Container, ContainerSink, Outgoing},
    dispatch::{self, RunEnv},
    imap::Link,
    logging::{self, LogFormat},
    protocol::{RequestError, Response},
};

/// jemalloc rather than glibc's malloc: a container is thousands of small maps and
/// strings made on one thread and freed on another, where glibc spent a quarter of a bulk
/// parse's CPU (`malloc_consolidate`, `_int_free`); jemalloc cut its CPU time by 28% and a
/// poll's by about 15% (BENCHMARKS.md). Its settings are built in by `.cargo/config.toml`
/// (freed pages returned after 1 s, which keeps a poll's peak RSS where glibc had it).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// IMAP connector for security automation: reads one JSON action request (stdin, or
/// --request FILE), writes one JSON response on stdout, logs on stderr.
///
/// Exit status: 0 success, 1 the action failed, 2 the request was unusable.
#[derive(Debug, Parser)]
#[command(name = "soar-imap", version, about, long_about = None, after_help = MODES)]
struct Cli {
    /// Read the request from FILE instead of stdin (`-` means stdin); not with parse,
    /// test, poll, get, which build theirs.
    // The global options come after a subcommand's own in its help (display_order).
    #[arg(long, value_name = "FILE", global = true, display_order = 100)]
    request: Option<PathBuf>,
    /// Format of the log lines on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, display_order = 101)]
    log_format: LogFormat,
    /// Write the run's IMAP conversation to FILE as a transcript (credentials redacted).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "replay",
        display_order = 102
    )]
    record: Option<PathBuf>,
    /// Run against the transcript in FILE instead of a server; fail at the first line the
    /// client sends differently.
    #[arg(long, value_name = "FILE", display_order = 103)]
    replay: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The two ways in, for the top-level help.
const MODES: &str = "\
With no command, reads one JSON request (stdin, or --request FILE) and writes one JSON
response on stdout; the commands build that request from their arguments instead:
  soar-imap < request.json
  soar-imap parse suspicious.eml
  SOAR_IMAP_PASSWORD=... soar-imap poll --asset /etc/soar-imap/phish.json
Exit status: 0 success, 1 the action failed, 2 the request was unusable.
See soar-imap <COMMAND> --help for each command's examples.";

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Action(ActionCommand),
    /// OAuth for assets with `auth_type: OAuth`.
    Oauth {
        #[command(subcommand)]
        command: OAuthCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OAuthCommand {
    /// Authorize in a browser (authorization code with PKCE) and store the asset's
    /// tokens. The request (stdin or --request) carries the asset's config and `asset_id`.
    Login {
        /// The redirect URI registered for the client; it must be a loopback http URI
        /// (default `http://127.0.0.1:<free port>/`).
        #[arg(long, value_name = "URI")]
        redirect_uri: Option<String>,
        /// How long to wait for the browser.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout_secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = error.print();
                return ExitCode::SUCCESS;
            }
            let _ = error.print();
            // clap's first paragraph: the error, with the arguments it lists on the lines
            // after it ("required arguments were not provided:\n  --uid <N>").
            let message = error.render().to_string();
            let first: Vec<&str> = message
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = match first.join(" ") {
                joined if joined.is_empty() => "invalid command line".to_owned(),
                joined => joined.trim_start_matches("error: ").to_owned(),
            };
            let response = Response::bad_request(&RequestError::BadField {
                field: "command_line",
                expected: "valid soar-imap arguments (see --help)",
                got: first,
            });
            return emit(&response);
        }
    };
    let progress = matches!(&cli.command, Some(Command::Action(a)) if a.shows_progress());
    let _logging = logging::init(cli.log_format, progress);

    // A subcommand builds the request a platform would send; nothing else differs.
    let (bytes, pretty, _spooled) = match &cli.command {
        Some(Command::Action(action)) => match cli::prepare(action, cli.request.is_some()) {
            Ok(prepared) => (prepared.request, prepared.pretty, prepared.spooled),
            Err(error) => {
                let message = error.to_string();
                tracing::error!("{message}");
                return emit(&Response::bad_request(&RequestError::CommandLine(message)));
            }
        },
        _ => match read_request(cli.request.as_deref()) {
            Ok(bytes) => (bytes, false, None),
            Err(message) => {
                tracing::error!("{message}");
                let response = Response::bad_request(&RequestError::BadField {
                    field: "input",
                    expected: "a readable request",
                    got: message,
                });
                return emit(&response);
            }
        },
    };
    let mut env = RunEnv::from_process();
    if let Some(Command::Oauth {
        command: OAuthCommand::Login {
            redirect_uri,
            timeout_secs,
        },
    }) = &cli.command
    {
        let login = soar_imap::oauth::LoginOptions {
            redirect_uri: redirect_uri.clone(),
            timeout: std::time::Duration::from_secs(*timeout_secs),
        };
        let response =
            soar_imap::actions::oauth_login::run(&bytes, &env, &login, &mut std::io::stderr());
        return emit(&response);
    }
    let link = match (&cli.record, &cli.replay) {
        (Some(path), _) => Link::record(path),
        (None, Some(path)) => Link::replay(path),
        (None, None) => Ok(Link::Live),
    };
    env.link = match link {
        Ok(link) => link,
        Err(message) => {
            tracing::error!("{message}");
            return emit(&Response::failed_to_start("transcript", message));
        }
    };
    let mut stream = ResponseStream::begin(pretty);
    let (response, delivery) = dispatch::run_streaming(&bytes, &env, &mut stream);
    if !stream.finish(&response) {
        // Cut off: its containers stay undelivered, for the next poll to send again.
        return ExitCode::from(1);
    }
    // The whole response is out: only now are its containers delivered.
    if let Err(message) = delivery.confirm() {
        tracing::warn!("{message}");
    }
    ExitCode::from(response.exit_code())
}

fn read_request(path: Option<&std::path::Path>) -> Result<Vec<u8>, String> {
    if let Some(path) = path.filter(|p| p.as_os_str() != "-") {
        return std::fs::read(path)
            .map_err(|e| format!("cannot read --request {}: {e}", path.display()));
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the request from stdin: {e}"))?;
    Ok(bytes)
}

/// Write a response with no containers (usage and input errors).
fn emit(response: &Response) -> ExitCode {
    if ResponseStream::begin(false).finish(response) {
        ExitCode::from(response.exit_code())
    } else {
        ExitCode::from(1)
    }
}

/// The one JSON response on stdout, written as the run goes: containers first, each as
/// soon as it is durable (a poll of any size then holds one batch in memory, not the
/// whole mailbox), then the rest of the response. stdout carries nothing else.
///
/// Each container starts a line of its own (`{"containers":[` / `<c1>` / `,<c2>` /
/// `],"identifier":...}`): still one JSON document, and a wrapper (the Splunk SOAR app)
/// can take the containers one line at a time as they come, without a streaming JSON
/// parser; serialized JSON never holds a raw line break.
///
/// `--pretty` (for a person reading it) holds the containers back instead and prints the
/// whole response indented at the end: the same JSON document, laid out differently.
struct ResponseStream {
    out: std::io::BufWriter<std::io::Stdout>,
    count: usize,
    failed: Option<std::io::Error>,
    /// `--pretty`: the containers so far, printed with the rest of the response.
    held: Option<Vec<Container>>,
}

impl ResponseStream {
    fn begin(pretty: bool) -> Self {
        let mut stream = Self {
            out: std::io::BufWriter::new(std::io::stdout()),
            count: 0,
            failed: None,
            held: pretty.then(Vec::new),
        };
        if !pretty {
            stream.write(|out| out.write_all(b"{\"containers\":[\n"));
        }
        stream
    }

    fn write(
        &mut self,
        f: impl FnOnce(&mut std::io::BufWriter<std::io::Stdout>) -> std::io::Result<()>,
    ) {
        if self.failed.is_none()
            && let Err(e) = f(&mut self.out)
        {
            self.failed = Some(e);
        }
    }

    fn container(&mut self, outgoing: Outgoing) {
        let first = self.count == 0;
        self.count += 1;
        if let Some(held) = &mut self.held {
            held.push(outgoing.container);
            return;
        }
        self.write(|out| {
            if !first {
                out.write_all(b",")?;
            }
            match &outgoing.json {
                // Serialized once already, for the ledger.
                Some(json) => out.write_all(json.as_bytes()),
                None => serde_json::to_writer(&mut *out, &outgoing.container)
                    .map_err(std::io::Error::from),
            }?;
            out.write_all(b"\n")?;
            // A reader (a platform saving containers as they come) gets each one as soon
            // as it is durable, not when a buffer happens to fill.
            out.flush()
        });
    }

    /// Write the rest of the response; whether stdout took all of it. When it did not
    /// (the reader went away, the disk is full), the run exits 1 and its containers
    /// stay undelivered: the next poll sends them again.
    fn finish(mut self, response: &Response) -> bool {
        if let Some(held) = self.held.take() {
            let whole = Response {
                containers: held,
                ..response.clone()
            };
            self.write(|out| {
                serde_json::to_writer_pretty(&mut *out, &whole)?;
                out.write_all(b"\n")?;
                out.flush()?;
                sync_if_file(out.get_ref())
            });
            return self.finished();
        }
        let fields = match serde_json::to_value(response) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        self.write(|out| {
            out.write_all(b"]")?;
            for (key, value) in fields.iter().filter(|(k, _)| k.as_str() != "containers") {
                out.write_all(b",")?;
                serde_json::to_writer(&mut *out, key)?;
                out.write_all(b":")?;
                serde_json::to_writer(&mut *out, value)?;
            }
            out.write_all(b"}\n")?;
            out.flush()?;
            sync_if_file(out.get_ref())
        });
        self.finished()
    }

    /// Whether stdout took the whole response; says so on stderr when it did not.
    fn finished(self) -> bool {
        match self.failed {
            None => true,
            Some(e) => {
                let containers = match self.count {
                    0 => String::new(),
                    1 => "; its 1 container is not delivered: the next poll of the asset's folder sends it again".into(),
                    n => format!("; its {n} containers are not delivered: the next poll of the asset's folder sends them again"),
                };
                tracing::error!("cannot write the whole response on stdout: {e}{containers}");
                false
            }
        }
    }
}

impl ContainerSink for ResponseStream {
    fn send(&mut self, container: Outgoing) {
        self.container(container);
    }

    fn closed(&self) -> bool {
        self.failed.is_some()
    }
}

/// Make a response redirected to a file durable before its containers count as
/// delivered; a pipe or terminal has nothing to sync.
fn sync_if_file(stdout: &std::io::Stdout) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        let file = std::fs::File::from(stdout.as_fd().try_clone_to_owned()?);
        if file.metadata()?.is_file() {
            file.sync_data()?;
        }
    }
    #[cfg(not(unix))]
    let _ = stdout;
    Ok(())
}
