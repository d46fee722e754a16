//! The `soar-imap` binary: one JSON request in, one JSON response out (SPEC §1).

use std::{
    io::{Read as _, Write as _},
    path::PathBuf,
    process::ExitCode,
};

use clap::Parser;
use soar_imap::{
    dispatch::{self, RunEnv},
    logging::{self, LogFormat},
    protocol::{RequestError, Response},
};

/// IMAP connector for security automation: reads one JSON action request (stdin, or
/// --request FILE), writes one JSON response on stdout, logs on stderr.
///
/// Exit status: 0 success, 1 the action failed, 2 the request was unusable.
#[derive(Debug, Parser)]
#[command(name = "soar-imap", version, about, long_about = None)]
struct Cli {
    /// Read the request from FILE instead of stdin (`-` means stdin).
    #[arg(long, value_name = "FILE")]
    request: Option<PathBuf>,
    /// Format of the log lines on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
            let message = error.render().to_string();
            let first = message
                .lines()
                .next()
                .unwrap_or("invalid command line")
                .trim_start_matches("error: ");
            let response = Response::bad_request(&RequestError::BadField {
                field: "command_line",
                expected: "valid soar-imap arguments (see --help)",
                got: first.to_owned(),
            });
            return emit(&response);
        }
    };
    logging::init(cli.log_format);

    let bytes = match read_request(cli.request.as_deref()) {
        Ok(bytes) => bytes,
        Err(message) => {
            tracing::error!("{message}");
            let response = Response::bad_request(&RequestError::BadField {
                field: "input",
                expected: "a readable request",
                got: message,
            });
            return emit(&response);
        }
    };
    let response = dispatch::run(&bytes, &RunEnv::from_process());
    emit(&response)
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

/// Write the response as one JSON line; stdout carries nothing else.
fn emit(response: &Response) -> ExitCode {
    let code = response.exit_code();
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, response)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::from(code),
        // The reader went away (e.g. `| head`): nothing left to tell anyone.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Err(e) => {
            tracing::error!("cannot write the response: {e}");
            ExitCode::from(2)
        }
    }
}
