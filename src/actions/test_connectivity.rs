//! `test connectivity`: connect, log in, list folders, examine the folder, log out, and
//! report what was found (SPEC §3).

use serde_json::{Map, Value, json};

use super::connect::Connector;
use crate::{
    config::Config,
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
    }))
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
