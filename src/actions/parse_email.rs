//! `parse email`: an `.eml` file or raw text in, the container a poll would make out,
//! with no server. How fixtures, playbooks and users test extraction.

use std::{
    borrow::Cow,
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
};

use serde_json::{Map, Value, json};

use crate::{
    artifacts::summary::triage_summary,
    config::Config,
    container::{Container, ContainerSink, EmailSource, build_container},
    dispatch::{RunEnv, echo_parameter},
    mime::headers::decoded_header_map,
    protocol::{ActionResult, Status, json_type, show},
    vault::{DirVault, Vault as _},
};

/// The parameters this action accepts (kept in step with app.json by a test).
pub const PARAMETERS: &[&str] = &["path", "raw_email", "id", "folder"];

/// Emails built between two vault flushes, at most. A flush makes the batch's attachments
/// durable at once (two `syncfs` calls, see [`DirVault`]), where one flush per email paid
/// a disk round trip for every file.
const BATCH: usize = 64;

/// Bytes of email a batch holds, about: a batch ends once its emails reach this much (one
/// more per worker may be under way), so that a request of large emails keeps memory near
/// one email's worth per core rather than a batch's. Two batches are held at once (one
/// built, the one before settled).
const BATCH_BYTES: usize = 32 * 1024 * 1024;

/// What one email gives: its container and decoded headers, or why it failed.
type Parsed = Result<(Container, Map<String, Value>), String>;

/// A batch built and not yet settled: its parameter objects and what each gave.
type Built<'p> = (&'p [Map<String, Value>], Vec<Parsed>);

/// Parse one email per parameter object, appending its container to `containers`; its
/// attachments go to the request's `vault_dir`, else `data_dir/vault` ([`RunEnv::vault`]).
pub fn run(
    parameter: &Map<String, Value>,
    config: &Config,
    label: &str,
    env: &RunEnv,
    vault_dir: Option<&Path>,
    containers: &mut dyn ContainerSink,
) -> ActionResult {
    let mut results = run_all(
        std::slice::from_ref(parameter),
        config,
        label,
        env,
        vault_dir,
        containers,
    );
    results
        .pop()
        .unwrap_or_else(|| ActionResult::failed(echo_parameter(parameter), "no result"))
}

/// Parse every parameter object's email: built on every core, batch by batch, in the
/// order of the parameters; each email still succeeds or fails on its own. While one
/// batch is built, the batch before is settled on this thread: the vault flushed (its
/// attachments durable), then its results and containers handed on, so the wait for
/// the disk overlaps the next batch's work instead of idling every core.
pub fn run_all(
    parameters: &[Map<String, Value>],
    config: &Config,
    label: &str,
    env: &RunEnv,
    vault_dir: Option<&Path>,
    containers: &mut dyn ContainerSink,
) -> Vec<ActionResult> {
    let vault = env.vault(config, vault_dir);
    let mut results = Vec::with_capacity(parameters.len());
    let mut settle = |batch: &[Map<String, Value>], parsed: Vec<Parsed>| {
        // The response names the vault files: they are durable before it is written.
        let flushed = vault
            .as_ref()
            .map_or(Ok(()), |vault| vault.flush().map_err(|e| e.to_string()));
        for (parameter, parsed) in batch.iter().zip(parsed) {
            let parsed = match (&flushed, parsed) {
                (Err(message), Ok(_)) => Err(message.clone()),
                (_, parsed) => parsed,
            };
            results.push(outcome(parameter, parsed, containers));
        }
    };
    let mut rest = parameters;
    let mut built: Option<Built<'_>> = None;
    while !rest.is_empty() {
        let parsed = build_batch(rest, config, label, vault.as_ref(), BATCH_BYTES, || {
            if let Some((batch, parsed)) = built.take() {
                settle(batch, parsed);
            }
        });
        let (batch, after) = rest.split_at(parsed.len().clamp(1, rest.len()));
        rest = after;
        built = Some((batch, parsed));
    }
    if let Some((batch, parsed)) = built {
        settle(batch, parsed);
    }
    results
}

/// The next batch: the emails at the head of `rest`, up to [`BATCH`] of them or about
/// `budget` bytes ([`BATCH_BYTES`]), built on one thread per core (each takes the next
/// email when it is free, as emails differ a lot in size), while `meanwhile` runs on
/// this thread. Results in the order of `rest`, at least one.
fn build_batch(
    rest: &[Map<String, Value>],
    config: &Config,
    label: &str,
    vault: Result<&DirVault, &String>,
    budget: usize,
    meanwhile: impl FnOnce(),
) -> Vec<Parsed> {
    let limit = rest.len().min(BATCH);
    let next = AtomicUsize::new(0);
    let bytes = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        // Nothing claimed yet means the batch needs its first email, whatever its size.
        while next.load(Ordering::Relaxed) == 0 || bytes.load(Ordering::Relaxed) < budget {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(parameter) = rest.get(index).filter(|_| index < limit) else {
                break;
            };
            let parsed = parse_one(parameter, config, label, vault);
            if let Ok((container, _)) = &parsed {
                bytes.fetch_add(container.data.raw_email.len(), Ordering::Relaxed);
            }
            done.push((index, parsed));
        }
        done
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(limit);
    let done: Vec<Vec<(usize, Parsed)>> = if workers <= 1 {
        meanwhile();
        vec![work()]
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
            meanwhile();
            // A worker that panicked outside the pipeline's own guard loses its emails:
            // they fail below, the others still come out.
            workers
                .into_iter()
                .filter_map(|worker| worker.join().ok())
                .collect()
        })
    };
    // Every index below this was claimed by a worker, and so built.
    let claimed = next.load(Ordering::Relaxed).min(limit);
    let mut slots: Vec<Option<Parsed>> = std::iter::repeat_with(|| None).take(claimed).collect();
    for (index, parsed) in done.into_iter().flatten() {
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(parsed);
        }
    }
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err("internal error: this email was not parsed (a bug: please report it)".into())
            })
        })
        .collect()
}

/// The action result for one email, its container handed to `containers`.
fn outcome(
    parameter: &Map<String, Value>,
    parsed: Parsed,
    containers: &mut dyn ContainerSink,
) -> ActionResult {
    let echoed = echo_parameter(parameter);
    match parsed {
        Ok((container, headers)) => {
            let artifact_count = container.artifacts.len();
            let message = format!(
                "Parsed email into container {:?} with {artifact_count} artifacts",
                container.name
            );
            let mut data = json!({
                "container_name": container.name,
                "source_data_identifier": container.source_data_identifier,
                "artifact_count": artifact_count,
                "parse_warnings": container.data.parse_warnings,
                "headers": headers,
            });
            if let Value::Object(data) = &mut data {
                data.extend(triage_summary(&container.artifacts));
            }
            containers.send(container.into());
            ActionResult {
                status: Status::Success,
                message,
                parameter: echoed,
                data: vec![data],
                summary: Map::from_iter([
                    ("container_count".to_owned(), json!(1)),
                    ("artifact_count".to_owned(), json!(artifact_count)),
                ]),
            }
        }
        Err(message) => ActionResult::failed(echoed, message),
    }
}

/// One email's container, its attachments stored in `vault` (durable at the batch's
/// flush), or why it failed: a bad parameter, the vault, or a bug.
fn parse_one(
    parameter: &Map<String, Value>,
    config: &Config,
    label: &str,
    vault: Result<&DirVault, &String>,
) -> Parsed {
    let raw = read_email(parameter)?;
    let email_id = email_id(parameter)?;
    let folder = folder(parameter, config)?;
    tracing::info!("Parsing email uid: {email_id}");
    let options = super::ingest::build_options(config);
    let vault = vault.map_err(Clone::clone)?;
    let source = EmailSource {
        raw: &raw,
        email_id,
        folder: &folder,
        container_id: None,
        label,
    };
    // The pipeline is built never to panic; should a bug prove otherwise, this email
    // fails with a clear message and the other emails of the request still parse.
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_container(&source, &options, vault)
    }));
    match built {
        Ok(result) => {
            let container = result.map_err(|e| e.to_string())?;
            Ok((container, decoded_header_map(&raw)))
        }
        Err(_) => Err(format!(
            "internal error while parsing email {email_id} (a bug: please report it with the email)"
        )),
    }
}

fn read_email(parameter: &Map<String, Value>) -> Result<Cow<'_, [u8]>, String> {
    let text = |key: &str| match parameter.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(format!(
            "parameters.{key} must be a string, got {}",
            json_type(other)
        )),
    };
    match (text("path")?, text("raw_email")?) {
        (Some(_), Some(_)) => Err("give either parameters.path or parameters.raw_email, not both".into()),
        (Some(path), None) => std::fs::read(path)
            .map(Cow::Owned)
            .map_err(|e| format!("cannot read parameters.path {path:?}: {e}")),
        (None, Some(raw)) => Ok(Cow::Borrowed(raw.as_bytes())),
        (None, None) => Err(
            "parse email needs parameters.path (an .eml file) or parameters.raw_email (the message text)"
                .into(),
        ),
    }
}

fn email_id(parameter: &Map<String, Value>) -> Result<u64, String> {
    let bad = |v: &Value| {
        format!(
            "parameters.id must be a non-negative integer, got {}",
            show(v)
        )
    };
    match parameter.get("id") {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(0),
        Some(v @ Value::Number(n)) => n.as_u64().ok_or_else(|| bad(v)),
        Some(v @ Value::String(s)) => {
            let s = s.trim();
            if s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().map_err(|_| bad(v))
            } else {
                Err(bad(v))
            }
        }
        Some(other) => Err(bad(other)),
    }
}

fn folder(parameter: &Map<String, Value>, config: &Config) -> Result<String, String> {
    match parameter.get("folder") {
        None | Some(Value::Null) => Ok(config.folder.clone()),
        Some(Value::String(s)) if s.is_empty() => Ok(config.folder.clone()),
        Some(Value::String(s)) if s.contains(['\r', '\n', '\0']) => Err(format!(
            "parameters.folder must not contain CR, LF or NUL, got {}",
            show(&Value::String(s.clone()))
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "parameters.folder must be a string, got {}",
            json_type(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::needless_pass_by_value)]
    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// `count` emails of about `size` bytes each, as raw-text parameters.
    fn emails(count: usize, size: usize) -> Vec<Map<String, Value>> {
        (0..count)
            .map(|i| {
                let body = "x".repeat(size);
                params(json!({"raw_email": format!("Subject: {i}\r\n\r\n{body}\r\n"), "id": i}))
            })
            .collect()
    }

    #[test]
    fn a_batch_ends_at_its_count_or_its_bytes_and_keeps_the_order() {
        let home = tempfile::tempdir().unwrap();
        let vault = DirVault::new(home.path());
        let config = Config::default();
        let built = |rest: &[Map<String, Value>], budget| {
            build_batch(rest, &config, "email", Ok(&vault), budget, || {})
        };
        let names = |parsed: &[Parsed]| -> Vec<String> {
            parsed
                .iter()
                .map(|p| p.as_ref().unwrap().0.name.clone())
                .collect()
        };
        // Under the byte budget, a batch is every email up to the count.
        let all = built(&emails(BATCH + 5, 100), usize::MAX);
        assert_eq!(all.len(), BATCH);
        let expected: Vec<String> = (0..BATCH).map(|i| i.to_string()).collect();
        assert_eq!(names(&all), expected);
        // Large emails end it early: one over the budget per worker at most, never none.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let big = built(&emails(20, 10_000), 25_000);
        assert!(big.len() >= 3 && big.len() <= 3 + cores, "{}", big.len());
        assert_eq!(names(&big), expected[..big.len()]);
        assert_eq!(built(&emails(3, 10_000), 0).len(), 1);
    }

    #[test]
    fn id_must_be_a_non_negative_integer() {
        assert_eq!(email_id(&params(json!({"id": "42"}))), Ok(42));
        assert_eq!(email_id(&params(json!({"id": 7}))), Ok(7));
        assert_eq!(email_id(&params(json!({}))), Ok(0));
        assert_eq!(
            email_id(&params(json!({"id": "1:*"}))),
            Err("parameters.id must be a non-negative integer, got \"1:*\"".into())
        );
        assert!(email_id(&params(json!({"id": -1}))).is_err());
        assert!(email_id(&params(json!({"id": 1.5}))).is_err());
    }

    #[test]
    fn exactly_one_source_is_required() {
        assert!(
            read_email(&params(json!({})))
                .unwrap_err()
                .contains("needs parameters.path")
        );
        assert!(
            read_email(&params(json!({"path": "a", "raw_email": "b"})))
                .unwrap_err()
                .contains("not both")
        );
        let err = read_email(&params(json!({"path": "/nonexistent/x.eml"}))).unwrap_err();
        assert!(
            err.starts_with("cannot read parameters.path \"/nonexistent/x.eml\""),
            "{err}"
        );
    }
}
