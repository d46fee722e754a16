//! `get email`: one email by UID from the server, or by container id from the ledger;
//! its decoded headers as data, and optionally ingested (SPEC §3).

use serde_json::{Map, Value, json};

use super::ingest::{IngestContext, Ingested, hand_back, ingest};
use crate::{
    container::{Container, ContainerSink, Outgoing},
    dispatch::echo_parameter,
    imap::FetchedMessage,
    mime::headers::decoded_header_map,
    protocol::{ActionResult, Status, json_type, show},
    sdi::md5_hex,
    state::BatchCommit,
};

/// Which email the parameters name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A UID in `folder` (the asset's folder when the parameter is empty).
    Uid { uid: u32, folder: Option<String> },
    /// A container already in the ledger.
    Container(i64),
}

/// Run `get email` for one parameter object.
pub fn run(
    parameter: &Map<String, Value>,
    ctx: &mut IngestContext<'_>,
    containers: &mut dyn ContainerSink,
) -> ActionResult {
    let echoed = echo_parameter(parameter);
    let outcome = target(parameter)
        .and_then(|(target, ingest_email)| get(ctx, &target, ingest_email, containers));
    match outcome {
        Ok((headers, container_id, ingest_email)) => {
            let mut summary = Map::new();
            let message = if ingest_email {
                summary.insert("container_id".into(), json!(container_id));
                container_id.map_or_else(
                    || "Email ingested.".to_owned(),
                    |id| format!("Container id: {id}"),
                )
            } else {
                "Email not ingested.".to_owned()
            };
            ActionResult {
                status: Status::Success,
                message,
                parameter: echoed,
                data: vec![headers],
                summary,
            }
        }
        Err(reason) => ActionResult::failed(echoed, reason),
    }
}

/// Read the parameters: `container_id` wins over `id`; `folder` goes with `id` only.
fn target(parameter: &Map<String, Value>) -> Result<(Target, bool), String> {
    let ingest_email = match parameter.get("ingest_email") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => false,
        Some(other) => {
            return Err(format!(
                "parameters.ingest_email must be true or false, got {}",
                show(other)
            ));
        }
    };
    if let Some(id) = positive(parameter, "container_id", i64::MAX.unsigned_abs())? {
        let id =
            i64::try_from(id).map_err(|_| "parameters.container_id is too large".to_owned())?;
        return Ok((Target::Container(id), ingest_email));
    }
    if let Some(uid) = positive(parameter, "id", u64::from(u32::MAX))? {
        let uid = u32::try_from(uid).map_err(|_| "parameters.id is too large".to_owned())?;
        let folder = match parameter.get("folder") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) if s.contains(['\r', '\n', '\0']) => {
                return Err(format!(
                    "parameters.folder must not contain CR, LF or NUL, got {}",
                    show(&json!(s))
                ));
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(format!(
                    "parameters.folder must be a string, got {}",
                    json_type(other)
                ));
            }
        };
        return Ok((Target::Uid { uid, folder }, ingest_email));
    }
    Err("get email needs parameters.id (the email's IMAP UID) or parameters.container_id".into())
}

/// A positive integer parameter, as a JSON number or a string of digits (`"1:*"`, `" 5"`
/// with letters, `-1` and `0` are refused: the value goes into an IMAP command).
fn positive(parameter: &Map<String, Value>, key: &str, max: u64) -> Result<Option<u64>, String> {
    let bad = |v: &Value| {
        format!(
            "parameters.{key} must be a positive integer, got {}",
            show(v)
        )
    };
    let value = match parameter.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(v @ Value::Number(n)) => n.as_u64().ok_or_else(|| bad(v))?,
        Some(v @ Value::String(s)) => {
            let digits = s.trim();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(v));
            }
            digits.parse::<u64>().map_err(|_| bad(v))?
        }
        Some(other) => return Err(bad(other)),
    };
    if value == 0 || value > max {
        return Err(bad(&parameter[key]));
    }
    Ok(Some(value))
}

type Got = (Value, Option<i64>, bool);

fn get(
    ctx: &mut IngestContext<'_>,
    target: &Target,
    ingest_email: bool,
    containers: &mut dyn ContainerSink,
) -> Result<Got, String> {
    match target {
        Target::Container(id) => by_container(ctx, *id, ingest_email, containers),
        Target::Uid { uid, folder } => {
            by_uid(ctx, *uid, folder.as_deref(), ingest_email, containers)
        }
    }
}

/// From the ledger: no server needed.
fn by_container(
    ctx: &mut IngestContext<'_>,
    id: i64,
    ingest_email: bool,
    containers: &mut dyn ContainerSink,
) -> Result<Got, String> {
    let entry = ctx
        .store
        .container_by_id(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("container {id} is not in this asset's ledger (it was not ingested with this data_dir and asset_id)"))?;
    let container = entry.container.as_ref().ok_or_else(|| {
        format!("container {id} is known, but a stateless run keeps no email text; get email by container_id needs a data_dir")
    })?;
    let headers = decoded_headers(&raw_bytes(container));
    if ingest_email
        && let Some(container) = hand_back(&mut *ctx.store, entry).map_err(|e| e.to_string())?
    {
        containers.send(container.into());
    }
    Ok((headers, Some(id), ingest_email))
}

/// The exact bytes of a stored container's email.
fn raw_bytes(container: &Container) -> Vec<u8> {
    match container.data.raw_email_encoding.as_deref() {
        Some("latin-1") => container
            .data
            .raw_email
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
        _ => container.data.raw_email.clone().into_bytes(),
    }
}

/// From the server: EXAMINE the asset's folder (and the requested one), fetch the UID.
fn by_uid(
    ctx: &mut IngestContext<'_>,
    uid: u32,
    folder: Option<&str>,
    ingest_email: bool,
    containers: &mut dyn ContainerSink,
) -> Result<Got, String> {
    let config = ctx.config;
    let mut session = ctx.open.open(config, &mut *ctx.store)?;
    let mut status = session.examine(&config.folder).map_err(|e| e.to_string())?;
    tracing::info!("Selected folder '{}'", config.folder);
    let folder = match folder {
        Some(other) if other != config.folder => {
            status = session.examine(other).map_err(|e| e.to_string())?;
            tracing::info!("Selected folder '{other}'");
            other.to_owned()
        }
        _ => config.folder.clone(),
    };
    let message: FetchedMessage = session
        .fetch_messages(&[uid])
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no email with UID {uid} in folder {folder:?}"))?;
    if let Err(e) = session.logout() {
        tracing::warn!("{e}");
    }
    let headers = decoded_headers(&message.raw);
    if !ingest_email {
        return Ok((headers, None, false));
    }
    tracing::info!("Parsing email uid: {uid}");
    let uidvalidity = status.uid_validity.unwrap_or(1);
    let mut ids = ctx
        .store
        .reserve_container_ids(1)
        .map_err(|e| e.to_string())?;
    let container_id = match ingest(ctx, message, &folder, false, &mut ids)? {
        Ingested::Duplicate(container, id) => {
            if let Some(container) = container {
                containers.send(container.into());
            }
            id
        }
        Ingested::New(entry) => {
            let id = entry.container.id.unwrap_or_default();
            let batch = BatchCommit {
                folder_hash: md5_hex(folder.as_bytes()),
                uidvalidity,
                entries: vec![entry],
                progress: None,
                // `after_ingest` is the poll's: get email never touches the mailbox.
                after_ingest: None,
            };
            // The ledger row names its attachments: they are durable first.
            ctx.vault.flush().map_err(|e| e.to_string())?;
            ctx.store.commit_batch(&batch).map_err(|e| e.to_string())?;
            // The committed entry comes back to go out, without a copy.
            for entry in batch.entries {
                containers.send(Outgoing {
                    container: entry.container,
                    json: Some(entry.json),
                });
            }
            id
        }
    };
    Ok((headers, Some(container_id), true))
}

/// The email's top-level headers, each decoded; the last value of a repeated name wins.
fn decoded_headers(raw: &[u8]) -> Value {
    Value::Object(decoded_header_map(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::needless_pass_by_value)]
    fn t(v: Value) -> Result<(Target, bool), String> {
        target(v.as_object().unwrap())
    }

    #[test]
    fn id_must_be_a_plain_positive_uid() {
        assert_eq!(
            t(json!({"id": "42"})),
            Ok((
                Target::Uid {
                    uid: 42,
                    folder: None
                },
                false
            ))
        );
        assert_eq!(
            t(json!({"id": 7, "folder": "Archive"})),
            Ok((
                Target::Uid {
                    uid: 7,
                    folder: Some("Archive".into())
                },
                false
            ))
        );
        for bad in [
            json!("1:*"),
            json!("5 OR 6"),
            json!(0),
            json!(-3),
            json!(1.5),
            json!("4294967296"),
            json!(true),
        ] {
            let err = t(json!({ "id": bad })).unwrap_err();
            assert!(
                err.starts_with("parameters.id must be a positive integer, got "),
                "{err}"
            );
        }
    }

    #[test]
    fn container_id_wins_and_ingest_email_is_a_boolean() {
        assert_eq!(
            t(json!({"id": 3, "container_id": "12", "ingest_email": true})),
            Ok((Target::Container(12), true))
        );
        assert!(
            t(json!({"container_id": "abc"}))
                .unwrap_err()
                .starts_with("parameters.container_id must be a positive integer")
        );
        assert!(
            t(json!({"id": 3, "ingest_email": "yes"}))
                .unwrap_err()
                .starts_with("parameters.ingest_email must be true or false")
        );
        assert!(
            t(json!({}))
                .unwrap_err()
                .starts_with("get email needs parameters.id")
        );
        assert!(
            t(json!({"id": 1, "folder": "a\r\nb"}))
                .unwrap_err()
                .contains("CR, LF")
        );
    }

    #[test]
    fn headers_are_decoded_and_the_last_value_wins() {
        let raw = b"Received: from a\r\nReceived: from b\r\nSubject: =?utf-8?Q?caf=C3=A9?= menu\r\n\r\nbody";
        let headers = decoded_headers(raw);
        assert_eq!(headers["Received"], "from b");
        assert_eq!(headers["Subject"], "café menu");
    }
}
