//! `test connectivity`: connect, log in, list folders, examine the folder, log out, and
//! report what was found (SPEC §3).

use serde_json::{Map, Value, json};

use super::{after_ingest::MoveWith, connect::Connector};
use crate::{
    config::{AfterIngest, Config},
    dispatch::echo_parameter,
    imap::{Connected, MailSession, TransportInfo},
    protocol::{ActionResult, Status},
    state::StateStore,
};

/// Run the test; a failure names the step and the server's words. `store` keeps the
/// OAuth tokens (none is opened for Basic logins).
pub fn run(
    parameter: &Map<String, Value>,
    config: &Config,
    connector: &Connector,
    store: Option<&mut dyn StateStore>,
) -> ActionResult {
    let echoed = echo_parameter(parameter);
    match check(config, connector, store) {
        Ok(report) => {
            tracing::info!("Connectivity test passed");
            ActionResult {
                status: Status::Success,
                message: "Connectivity test passed".to_owned(),
                parameter: echoed,
                data: vec![report],
                summary: Map::new(),
            }
        }
        Err(reason) => ActionResult::failed(echoed, format!("Connectivity test failed: {reason}")),
    }
}

fn check(
    config: &Config,
    connector: &Connector,
    store: Option<&mut dyn StateStore>,
) -> Result<Value, String> {
    let Connected {
        mut session,
        transport,
        mechanism,
    } = connector.connect(config, store)?;
    let options =
        super::connect_options(config, config.require_server().map_err(|e| e.to_string())?);
    let capabilities = session.capabilities().map_err(|e| e.to_string())?;
    let folders = session.list_folders().map_err(|e| e.to_string())?;
    tracing::info!("Got folder listing");
    let status = session.examine(&config.folder).map_err(|e| e.to_string())?;
    tracing::info!("Selected folder '{}'", config.folder);
    let after_ingest = after_ingest_report(&mut session, config, &capabilities, &folders)?;
    // A failed LOGOUT after a successful test is worth a warning, not a failure.
    if let Err(e) = session.logout() {
        tracing::warn!("{e}");
    }
    let (tls_protocol, tls_cipher) = match transport.mode {
        "plain text" => (None, None),
        _ => connector
            .link
            .probe_tls(&options)
            .map_or((None, None), |(p, c)| (Some(p), Some(c))),
    };
    Ok(json!({
        "server": options.server,
        "port": options.port,
        "transport": transport.mode,
        "tls_protocol": tls_protocol,
        "tls_cipher": tls_cipher,
        "certificate": certificate_report(&transport),
        "capabilities": capabilities,
        "auth_mechanism": mechanism,
        "folder_count": folders.len(),
        "folder": config.folder,
        "message_count": status.exists,
        "uidvalidity": status.uid_validity,
        "uidnext": status.uid_next,
        "after_ingest": after_ingest,
    }))
}

/// With `after_ingest` set: whether the folder opens read-write with the flag the
/// action sets, and for `move` whether the server can move exactly those UIDs and where
/// to. A poll would fail to do the action otherwise, so the test fails.
fn after_ingest_report(
    session: &mut dyn MailSession,
    config: &Config,
    capabilities: &[String],
    folders: &[String],
) -> Result<Value, String> {
    let flag = match &config.after_ingest {
        AfterIngest::None => return Ok(Value::Null),
        AfterIngest::MarkSeen => "\\Seen",
        AfterIngest::Flag => "\\Flagged",
        AfterIngest::Move(_) => "\\Deleted",
    };
    let action = config.after_ingest.as_str();
    let (_, permanent) = session.select(&config.folder).map_err(|e| {
        format!(
            "after_ingest \"{action}\" needs folder {:?} read-write: {e}",
            config.folder
        )
    })?;
    let settable = permanent
        .iter()
        .any(|p| p.eq_ignore_ascii_case(flag) || p == "\\*");
    let has = |name: &str| capabilities.iter().any(|c| c.eq_ignore_ascii_case(name));
    let mut report = json!({
        "action": action,
        "folder_read_write": !permanent.is_empty(),
        "permanent_flags": permanent,
        "move": has("MOVE"),
        "uidplus": has("UIDPLUS"),
    });
    match &config.after_ingest {
        AfterIngest::Move(target) => {
            let how =
                MoveWith::of(capabilities).map_err(|e| format!("after_ingest \"move\": {e}"))?;
            if how == MoveWith::CopyExpunge && !settable {
                return Err(format!(
                    "after_ingest \"move\" without MOVE needs {flag} in folder {:?}, which this user may not set",
                    config.folder
                ));
            }
            report["move_with"] = json!(match how {
                MoveWith::Move => "UID MOVE",
                MoveWith::CopyExpunge => "UID COPY + UID STORE \\Deleted + UID EXPUNGE",
            });
            report["target_folder"] = json!(target);
            report["target_exists"] = json!(folders.contains(target));
        }
        _ if !settable => {
            return Err(format!(
                "after_ingest \"{action}\" needs {flag} in folder {:?}, which this user may not set (the folder opened read-only, or its PERMANENTFLAGS lack it)",
                config.folder
            ));
        }
        _ => {}
    }
    Ok(report)
}

/// Subject, issuer, expiry and SHA-256 fingerprint of the server certificate.
fn certificate_report(transport: &TransportInfo) -> Value {
    let Some(der) = &transport.certificate_der else {
        return Value::Null;
    };
    let Ok(certificate) = openssl::x509::X509::from_der(der) else {
        return Value::Null;
    };
    let name = |n: &openssl::x509::X509NameRef| {
        n.entries()
            .map(|e| {
                let key = e.object().nid().short_name().unwrap_or("?");
                let value = e.data().to_string().unwrap_or_default();
                format!("{key}={value}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fingerprint = certificate
        .digest(openssl::hash::MessageDigest::sha256())
        .map(|d| crate::sdi::hex(&d))
        .unwrap_or_default();
    json!({
        "subject": name(certificate.subject_name()),
        "issuer": name(certificate.issuer_name()),
        "not_after": certificate.not_after().to_string(),
        "sha256_fingerprint": fingerprint,
    })
}
