//! Helpers shared by the integration tests.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as the one JSON response (fails the test if it is anything else:
    /// `from_str` refuses anything after the one document).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// Run the binary with `stdin` as the request, `args`, and `SOAR_IMAP_HOME` set to `home`.
pub fn run_with(args: &[&str], stdin: &[u8], home: &Path) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_soar-imap"))
        .args(args)
        .env("SOAR_IMAP_HOME", home)
        .env_remove("SOAR_IMAP_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn soar-imap");
    let mut input = child.stdin.take().unwrap();
    // The binary may exit before reading everything (e.g. --help); ignore EPIPE.
    let _ = input.write_all(stdin);
    drop(input);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Run the binary with a JSON request.
pub fn run_json(request: &Value, home: &Path) -> Run {
    run_with(&[], request.to_string().as_bytes(), home)
}

/// Every `.eml` under `dir`, sorted.
pub fn emails_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "eml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The response without what legitimately differs between two runs: timings, and the
/// data directory's path wherever it shows.
pub fn comparable(run: &Run) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.retain(|key, _| {
                    !(key.ends_with("_ms") || key.contains("elapsed") || key.contains("duration"))
                });
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = run.json();
    strip(&mut value);
    value
}

/// The response of a run with its data directory's path replaced.
pub fn comparable_in(run: &Run, home: &Path) -> Value {
    let text = comparable(run)
        .to_string()
        .replace(&home.display().to_string(), "<home>");
    serde_json::from_str(&text).unwrap()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Wait for `child` at most `limit`; past it, kill it and return `None` (the caller
/// fails the test with what it knows), so a hung run never hangs the suite.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Read a spawned run's piped stdout and stderr to the end and wait for it, at most
/// `limit` (past it, the test fails naming `what`).
pub fn collect(mut child: Child, limit: Duration, what: &str) -> Run {
    use std::io::Read as _;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        stderr.read_to_end(&mut s).map(|_| s)
    });
    let Some(status) = wait_bounded(&mut child, limit) else {
        panic!("{what} did not finish within {limit:?}");
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap().expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&err.join().unwrap().unwrap()).into_owned(),
    }
}
