//! Grants, the token policy and the login against in-process stub servers.

use std::{fmt::Write as _, path::PathBuf, sync::Arc, thread, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{test_support::*, *};
use crate::{
    config::Config,
    state::{MemoryStore, SqliteStore, StateStore},
};

const CLIENT_SECRET: &str = "cs-S3CRET-client";
const REFRESH: &str = "rt-S3CRET-refresh";
const ACCESS: &str = "at-S3CRET-access";
const CODE: &str = "code-S3CRET";
/// Every secret the tests use; none may show up in a message.
const SECRETS: &[&str] = &[
    CLIENT_SECRET,
    REFRESH,
    ACCESS,
    CODE,
    "S3CRET",
    "rt-rotated",
    "at-new",
];
const NOW: u64 = 1_700_000_000;

fn transport(timeout_secs: u64) -> UreqTransport {
    UreqTransport::new(&HttpSettings {
        timeout: Duration::from_secs(timeout_secs),
        proxy: None,
        ca_cert: None,
    })
    .unwrap()
}

fn client(token_url: &str, secret: Option<&str>, scopes: &[&str]) -> OAuthClient {
    OAuthClient::new(
        "cid-1",
        secret.map(|s| Secret::new(s.into())),
        token_url,
        scopes.iter().map(|s| (*s).to_owned()).collect(),
    )
    .unwrap()
}

fn secret(value: &str) -> Secret {
    Secret::new(value.into())
}

fn assert_no_secret(shown: &str) {
    for s in SECRETS {
        assert!(!shown.contains(s), "{s} leaked in: {shown}");
    }
}

/// Config of an OAuth asset against `token_url`.
fn config(token_url: &str, extra: &serde_json::Value) -> Config {
    let mut value = json!({
        "auth_type": "OAuth", "username": "soc@example.com", "client_id": "cid-1",
        "client_secret": CLIENT_SECRET, "token_url": token_url,
        "auth_url": "https://accounts.example.com/auth",
    });
    for (k, v) in extra.as_object().unwrap() {
        value[k] = v.clone();
    }
    Config::from_json(&value).unwrap()
}

// ---- grants ----------------------------------------------------------------------------

#[test]
fn refresh_without_rotation_keeps_the_refresh_token() {
    let stub = StubServer::start(|_, _| Reply::token(ACCESS, None, 3599));
    let c = client(
        &stub.token_url(),
        Some(CLIENT_SECRET),
        &["https://mail.google.com/"],
    );
    let tokens = c.refresh(&transport(5), &secret(REFRESH), NOW).unwrap();
    assert_eq!(tokens.access_token.expose(), ACCESS);
    assert_eq!(tokens.refresh_token, Some(secret(REFRESH)));
    assert_eq!(tokens.expires_at, Some(NOW + 3599));
    assert_eq!(tokens.scope.as_deref(), Some("https://mail.google.com/"));
    assert_eq!(
        (tokens.client_id.as_str(), tokens.token_url.as_str()),
        ("cid-1", stub.token_url().as_str())
    );

    let [request] = stub.requests().try_into().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/token")
    );
    let form = request.form();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], REFRESH);
    assert_eq!(form["client_id"], "cid-1");
    assert_eq!(form["client_secret"], CLIENT_SECRET);
    assert_eq!(form["scope"], "https://mail.google.com/");
    // client_secret_post: no Basic header.
    assert_eq!(request.header("Authorization"), None);
    assert_eq!(request.header("Accept"), Some("application/json"));
}

#[test]
fn refresh_with_rotation_returns_the_new_refresh_token() {
    let stub = StubServer::start(|_, _| Reply::token("at-new", Some("rt-rotated"), 60));
    let c = client(&stub.token_url(), None, &["a", "b"]);
    let tokens = c.refresh(&transport(5), &secret(REFRESH), NOW).unwrap();
    assert_eq!(tokens.refresh_token, Some(secret("rt-rotated")));
    assert_eq!(tokens.expires_at, Some(NOW + 60));
    let form = stub.requests()[0].form();
    // A public client (no secret) still identifies itself; scopes are space-separated.
    assert_eq!(form["client_id"], "cid-1");
    assert!(!form.contains_key("client_secret"));
    assert_eq!(form["scope"], "a b");
}

#[test]
fn revoked_refresh_token_is_reported_clearly() {
    let stub = StubServer::start(|_, _| {
        Reply::json(
            400,
            &json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
        )
    });
    let c = client(&stub.token_url(), Some(CLIENT_SECRET), &["s"]);
    let e = c.refresh(&transport(5), &secret(REFRESH), NOW).unwrap_err();
    assert!(e.is_invalid_grant());
    assert_eq!(
        e.to_string(),
        format!(
            "the refresh token was rejected by {} (invalid_grant: Token has been expired or revoked.); run `soar-imap oauth login` again or set config.refresh_token",
            stub.token_url()
        )
    );
}

#[test]
fn oauth_error_on_401_quotes_error_and_description() {
    let stub = StubServer::start(|_, _| {
        Reply::json(
            401,
            &json!({"error": "invalid_client", "error_description": "The OAuth client was not found."}),
        )
    });
    let c = client(&stub.token_url(), Some(CLIENT_SECRET), &["s"]);
    let e = c.refresh(&transport(5), &secret(REFRESH), NOW).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the token endpoint {} refused the request (HTTP 401): invalid_client (The OAuth client was not found.)",
            stub.token_url()
        )
    );
}

#[test]
fn non_json_answer_says_so_with_the_status() {
    let stub =
        StubServer::start(|_, _| Reply::text(500, "text/html; charset=utf-8", "<html>oops</html>"));
    let c = client(&stub.token_url(), None, &["s"]);
    let e = c.refresh(&transport(5), &secret(REFRESH), NOW).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the token endpoint {} answered HTTP 500 with a text/html body, not JSON",
            stub.token_url()
        )
    );
    // The same on a 200 (a captive portal).
    let stub = StubServer::start(|_, _| Reply::text(200, "text/html", "<html>login</html>"));
    let c = client(&stub.token_url(), None, &["s"]);
    let e = c.refresh(&transport(5), &secret(REFRESH), NOW).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("answered HTTP 200 with a text/html body, not JSON"),
        "{e}"
    );
}

#[test]
fn redirects_are_not_followed() {
    let stub = StubServer::start(|_, _| {
        let mut reply = Reply::text(302, "text/html", "moved");
        reply.location = Some("https://elsewhere.example.com/token");
        reply
    });
    let c = client(&stub.token_url(), Some(CLIENT_SECRET), &["s"]);
    let e = c.refresh(&transport(5), &secret(REFRESH), NOW).unwrap_err();
    assert!(
        e.to_string().ends_with(
            "answered HTTP 302 with a text/html body, not JSON (redirects are not followed for token requests: check config.token_url)"
        ),
        "{e}"
    );
    assert_eq!(stub.requests().len(), 1);
}

#[test]
fn json_that_is_not_a_token_never_shows_the_body() {
    let stub = StubServer::start(|_, _| {
        Reply::json(
            200,
            &json!({"token_type": "Bearer", "refresh_token": REFRESH}),
        )
    });
    let c = client(&stub.token_url(), None, &["s"]);
    let e = c.refresh(&transport(5), &secret("x"), NOW).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the token endpoint {} answered HTTP 200 with an unusable token response: missing field `access_token`",
            stub.token_url()
        )
    );
    // A wrongly typed field: serde would quote the value; the message must not.
    let stub = StubServer::start(|_, _| {
        Reply::json(
            200,
            &json!({"access_token": ACCESS, "token_type": "Bearer", "expires_in": ACCESS}),
        )
    });
    let c = client(&stub.token_url(), None, &["s"]);
    let e = c
        .refresh(&transport(5), &secret("x"), NOW)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("unusable token response: unexpected value in field `expires_in`"),
        "{e}"
    );
    assert_no_secret(&e);
    // An error status with JSON that is not an OAuth error.
    let stub = StubServer::start(|_, _| Reply::json(503, &json!({"message": "maintenance"})));
    let c = client(&stub.token_url(), None, &["s"]);
    let e = c
        .refresh(&transport(5), &secret("x"), NOW)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("answered HTTP 503 with an unusable token response: JSON that is not an OAuth error response (no `error` field)"),
        "{e}"
    );
}

#[test]
fn timeout_names_the_setting() {
    let stub = StubServer::start(|_, _| {
        let mut reply = Reply::token(ACCESS, None, 60);
        reply.delay = Duration::from_secs(3);
        reply
    });
    let c = client(&stub.token_url(), None, &["s"]);
    let e = c.refresh(&transport(1), &secret(REFRESH), NOW).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "no answer from {} within config.timeout_secs (1 s)",
            stub.token_url()
        )
    );
}

#[test]
fn unreachable_endpoint_names_the_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/token");
    let e = client(&url, None, &["s"])
        .refresh(&transport(2), &secret(REFRESH), NOW)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("cannot reach the token endpoint {url}: ")),
        "{e}"
    );
}

#[test]
fn client_credentials_sends_the_client_and_the_scope() {
    let stub = StubServer::start(|_, _| Reply::token(ACCESS, None, 3599));
    let c = client(
        &stub.token_url(),
        Some(CLIENT_SECRET),
        &["https://outlook.office365.com/.default"],
    );
    let tokens = c.client_credentials(&transport(5), NOW).unwrap();
    assert_eq!(tokens.access_token.expose(), ACCESS);
    assert_eq!(tokens.refresh_token, None);
    let form = stub.requests()[0].form();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], "cid-1");
    assert_eq!(form["client_secret"], CLIENT_SECRET);
    assert_eq!(form["scope"], "https://outlook.office365.com/.default");

    let e = client(&stub.token_url(), None, &["s"])
        .client_credentials(&transport(5), NOW)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.client_secret is required for OAuth authentication with the client_credentials grant"
    );
    assert_eq!(stub.requests().len(), 1);
}

#[test]
fn plain_http_to_another_host_is_refused() {
    let e = OAuthClient::new("c", None, "http://oauth.example.com/token", vec![]).unwrap_err();
    assert!(
        matches!(
            e,
            OAuthError::InsecureUrl {
                key: "token_url",
                ..
            }
        ),
        "{e}"
    );
    let c = Config::from_json(&json!({"client_id": "c"})).unwrap();
    assert_eq!(
        OAuthClient::from_config(&c).unwrap_err().to_string(),
        "config.token_url is required for OAuth authentication"
    );
}

#[test]
fn the_proxy_carries_https_token_requests() {
    let host = "oauth.example.test";
    let pki = test_pki(host);
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &pki.ca_pem).unwrap();
    let answer = json!({"access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600});
    let (proxy, log) = start_connect_proxy(&pki, answer.to_string());
    let http = UreqTransport::new(&HttpSettings {
        timeout: Duration::from_secs(10),
        // Credentials in the proxy URL go to the proxy, never into a message.
        proxy: Some(Secret::new(proxy.replace("http://", "http://user:pw@"))),
        ca_cert: Some(ca_path),
    })
    .unwrap();
    let c = client(
        &format!("https://{host}/tenant/token"),
        Some(CLIENT_SECRET),
        &["s"],
    );
    let tokens = c.refresh(&http, &secret(REFRESH), NOW).unwrap();
    assert_eq!(tokens.access_token.expose(), ACCESS);
    let log = log.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(log.connect_line, format!("CONNECT {host}:443 HTTP/1.1\r\n"));
    assert!(
        log.tunnelled.starts_with("POST /tenant/token HTTP/1.1\r\n"),
        "{}",
        log.tunnelled
    );
    assert!(
        log.tunnelled.contains("grant_type=refresh_token"),
        "{}",
        log.tunnelled
    );
}

#[test]
fn loopback_endpoints_bypass_the_proxy() {
    // The proxy is a closed port: a request through it would fail.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let http = UreqTransport::new(&HttpSettings {
        timeout: Duration::from_secs(5),
        proxy: Some(Secret::new(format!("http://127.0.0.1:{port}"))),
        ca_cert: None,
    })
    .unwrap();
    let stub = StubServer::start(|_, _| Reply::token(ACCESS, None, 60));
    let c = client(&stub.token_url(), None, &["s"]);
    assert!(c.refresh(&http, &secret(REFRESH), NOW).is_ok());
}

#[test]
fn an_untrusted_certificate_is_refused() {
    // Without config.ca_cert the test CA is not trusted.
    let host = "oauth.example.test";
    let pki = test_pki(host);
    let (proxy, _log) = start_connect_proxy(&pki, "{}".into());
    let http = UreqTransport::new(&HttpSettings {
        timeout: Duration::from_secs(10),
        proxy: Some(Secret::new(proxy)),
        ca_cert: None,
    })
    .unwrap();
    let c = client(&format!("https://{host}/token"), None, &["s"]);
    let e = c
        .refresh(&http, &secret(REFRESH), NOW)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "cannot reach the token endpoint https://{host}/token: "
        )) && e.ends_with("set config.ca_cert to trust a private CA or a TLS-inspecting proxy)"),
        "{e}"
    );
}

// ---- TokenSource ---------------------------------------------------------------------------

/// Stored tokens as an earlier run would have left them.
fn seed(store: &mut dyn StateStore, seal: Option<SealKey>, tokens: &StoredTokens) {
    TokenCache::new(store, seal).save(tokens).unwrap();
}

fn stored_for(token_url: &str, access: &str, expires_at: u64, obtained_at: u64) -> StoredTokens {
    StoredTokens {
        access_token: Some(secret(access)),
        refresh_token: Some(secret("rt-stored")),
        expires_at: Some(expires_at),
        obtained_at: Some(obtained_at),
        scope: None,
        client_id: Some("cid-1".into()),
        token_url: Some(token_url.into()),
        grant: Some("refresh_token".into()),
        config_refresh_token_sha256: None,
    }
}

fn source<'a>(config: &Config, store: &'a mut dyn StateStore) -> TokenSource<'a> {
    TokenSource::new(config, TokenCache::new(store, None), Box::new(transport(5)))
        .unwrap()
        .with_clock(|| NOW)
}

fn load(store: &mut dyn StateStore) -> StoredTokens {
    TokenCache::new(store, None).load().unwrap().unwrap()
}

#[test]
fn a_fresh_stored_token_is_used_without_http() {
    let stub = StubServer::start(|_, _| Reply::token("at-new", None, 3600));
    let cfg = config(&stub.token_url(), &json!({}));
    let mut store = MemoryStore::new("f");
    seed(
        &mut store,
        None,
        &stored_for(&stub.token_url(), ACCESS, NOW + 3000, NOW - 600),
    );
    assert_eq!(
        source(&cfg, &mut store).access_token().unwrap().expose(),
        ACCESS
    );
    assert!(stub.requests().is_empty());
}

#[test]
fn a_token_near_expiry_is_refreshed_early_and_stored() {
    let stub = StubServer::start(|_, _| Reply::token("at-new", None, 3600));
    let cfg = config(&stub.token_url(), &json!({}));
    let mut store = MemoryStore::new("f");
    // 4 minutes left of a one-hour token: inside the 5-minute margin.
    seed(
        &mut store,
        None,
        &stored_for(&stub.token_url(), ACCESS, NOW + 240, NOW - 3360),
    );
    assert_eq!(
        source(&cfg, &mut store).access_token().unwrap().expose(),
        "at-new"
    );
    let [request] = stub.requests().try_into().unwrap();
    assert_eq!(request.form()["refresh_token"], "rt-stored");
    let now_stored = load(&mut store);
    assert_eq!(now_stored.access_token, Some(secret("at-new")));
    assert_eq!(now_stored.refresh_token, Some(secret("rt-stored")));
    assert_eq!(
        (now_stored.expires_at, now_stored.obtained_at),
        (Some(NOW + 3600), Some(NOW))
    );
    assert_eq!(now_stored.grant.as_deref(), Some("refresh_token"));
}

#[test]
fn a_rotated_refresh_token_is_stored_and_used_next() {
    let stub =
        StubServer::start(|_, i| Reply::token("at-new", Some(&format!("rt-rotated-{i}")), 3600));
    let cfg = config(&stub.token_url(), &json!({"refresh_token": REFRESH}));
    let mut store = MemoryStore::new("f");
    source(&cfg, &mut store).access_token().unwrap();
    assert_eq!(load(&mut store).refresh_token, Some(secret("rt-rotated-0")));
    // The next rejection refreshes with the rotated token, not the configured one.
    source(&cfg, &mut store).refresh_after_rejection().unwrap();
    let requests = stub.requests();
    assert_eq!(requests[0].form()["refresh_token"], REFRESH);
    assert_eq!(requests[1].form()["refresh_token"], "rt-rotated-0");
    assert_eq!(load(&mut store).refresh_token, Some(secret("rt-rotated-1")));
}

#[test]
fn tokens_of_another_client_or_endpoint_are_ignored() {
    let stub = StubServer::start(|_, _| Reply::token("at-new", None, 3600));
    let cfg = config(&stub.token_url(), &json!({"refresh_token": REFRESH}));
    for tokens in [
        StoredTokens {
            client_id: Some("another-client".into()),
            ..stored_for(&stub.token_url(), ACCESS, NOW + 3000, NOW)
        },
        stored_for("https://other.example.com/token", ACCESS, NOW + 3000, NOW),
    ] {
        let mut store = MemoryStore::new("f");
        seed(&mut store, None, &tokens);
        assert_eq!(
            source(&cfg, &mut store).access_token().unwrap().expose(),
            "at-new"
        );
    }
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| r.form()["refresh_token"] == REFRESH)
    );
}

#[test]
fn refresh_after_rejection_forces_a_new_token_and_forgets_the_old() {
    let stub = StubServer::start(|_, _| Reply::token("at-new", None, 3600));
    let cfg = config(&stub.token_url(), &json!({}));
    let mut store = MemoryStore::new("f");
    seed(
        &mut store,
        None,
        &stored_for(&stub.token_url(), ACCESS, NOW + 3000, NOW),
    );
    assert_eq!(
        source(&cfg, &mut store)
            .refresh_after_rejection()
            .unwrap()
            .expose(),
        "at-new"
    );
    assert_eq!(stub.requests().len(), 1);
    assert_eq!(load(&mut store).access_token, Some(secret("at-new")));

    // If the refresh fails, the rejected token is not offered again next run.
    let failing = StubServer::start(|_, _| Reply::json(400, &json!({"error": "invalid_grant"})));
    let cfg = config(&failing.token_url(), &json!({}));
    let mut store = MemoryStore::new("f");
    seed(
        &mut store,
        None,
        &stored_for(&failing.token_url(), ACCESS, NOW + 3000, NOW),
    );
    let e = source(&cfg, &mut store)
        .refresh_after_rejection()
        .unwrap_err();
    assert!(
        e.to_string().contains("(invalid_grant: no description)"),
        "{e}"
    );
    let left = load(&mut store);
    assert_eq!(
        (left.access_token, left.refresh_token),
        (None, Some(secret("rt-stored")))
    );
}

#[test]
fn no_refresh_token_anywhere() {
    let stub = StubServer::start(|_, _| Reply::token("at-new", None, 3600));
    let cfg = config(&stub.token_url(), &json!({}));
    let mut store = MemoryStore::new("f");
    let mut tokens = source(&cfg, &mut store);
    assert!(!tokens.has_stored_refresh_token().unwrap());
    assert_eq!(
        tokens.access_token().unwrap_err().to_string(),
        "no OAuth refresh token for this asset: set config.refresh_token or run `soar-imap oauth login`"
    );
    assert!(stub.requests().is_empty());
}

#[test]
fn a_changed_config_refresh_token_wins_over_the_stored_one() {
    let stub = StubServer::start(|_, _| Reply::token("at-new", None, 3600));
    let old = config(&stub.token_url(), &json!({"refresh_token": "rt-old"}));
    let mut store = MemoryStore::new("f");
    source(&old, &mut store).access_token().unwrap();
    // Same config: the stored token is used.
    source(&old, &mut store).access_token().unwrap();
    assert_eq!(stub.requests().len(), 1);
    // The user pasted a new refresh token: it replaces the stored lineage.
    let new = config(&stub.token_url(), &json!({"refresh_token": REFRESH}));
    source(&new, &mut store).access_token().unwrap();
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].form()["refresh_token"], REFRESH);
}

#[test]
fn a_rejected_stored_refresh_token_falls_back_to_the_config() {
    let stub = StubServer::start(|request, _| {
        if request.form()["refresh_token"] == "rt-stored" {
            Reply::json(400, &json!({"error": "invalid_grant"}))
        } else {
            Reply::token("at-new", None, 3600)
        }
    });
    let cfg = config(&stub.token_url(), &json!({"refresh_token": REFRESH}));
    let mut store = MemoryStore::new("f");
    let fingerprint = format!("{:x}", Sha256::digest(REFRESH.as_bytes()));
    let mut tokens = stored_for(&stub.token_url(), ACCESS, NOW - 1, NOW - 3601);
    tokens.config_refresh_token_sha256 = Some(fingerprint);
    seed(&mut store, None, &tokens);
    assert_eq!(
        source(&cfg, &mut store).access_token().unwrap().expose(),
        "at-new"
    );
    let sent: Vec<_> = stub
        .requests()
        .iter()
        .map(|r| r.form()["refresh_token"].clone())
        .collect();
    assert_eq!(sent, ["rt-stored", REFRESH]);
    assert_eq!(load(&mut store).refresh_token, Some(secret(REFRESH)));
}

#[test]
fn client_credentials_tokens_are_reused_then_renewed() {
    let stub = StubServer::start(|_, i| Reply::token(&format!("at-app-{i}"), None, 3600));
    let cfg = config(
        &stub.token_url(),
        &json!({"oauth_grant": "client_credentials", "scopes": ["https://outlook.office365.com/.default"]}),
    );
    let mut store = MemoryStore::new("f");
    assert_eq!(
        source(&cfg, &mut store).access_token().unwrap().expose(),
        "at-app-0"
    );
    assert_eq!(
        source(&cfg, &mut store).access_token().unwrap().expose(),
        "at-app-0"
    );
    assert_eq!(
        source(&cfg, &mut store)
            .refresh_after_rejection()
            .unwrap()
            .expose(),
        "at-app-1"
    );
    // A user token stored earlier is not an app token.
    let mut store = MemoryStore::new("f");
    seed(
        &mut store,
        None,
        &stored_for(&stub.token_url(), ACCESS, NOW + 3000, NOW),
    );
    assert_eq!(
        source(&cfg, &mut store).access_token().unwrap().expose(),
        "at-app-2"
    );
    assert_eq!(
        stub.requests()[0].form()["grant_type"],
        "client_credentials"
    );
}

#[test]
fn sealed_tokens_in_the_sqlite_store() {
    let stub = StubServer::start(|_, i| Reply::token(&format!("at-new-{i}"), None, 3600));
    let data = tempfile::tempdir().unwrap();
    let cfg = config(&stub.token_url(), &json!({"refresh_token": REFRESH}));
    let open = || SqliteStore::open(data.path(), "asset-1", Duration::from_secs(5)).unwrap();
    {
        let mut store = open();
        let mut tokens =
            TokenSource::from_config(&cfg, &mut store, Some(data.path()), None).unwrap();
        assert_eq!(tokens.access_token().unwrap().expose(), "at-new-0");
    }
    // Nothing in clear in the database files.
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("at-new-0") && !text.contains(REFRESH),
                "{}",
                path.display()
            );
        }
    }
    {
        let mut store = open();
        let mut tokens =
            TokenSource::from_config(&cfg, &mut store, Some(data.path()), None).unwrap();
        assert_eq!(tokens.access_token().unwrap().expose(), "at-new-0");
    }
    assert_eq!(stub.requests().len(), 1);
    // Another client secret cannot open them: treated as absent, refreshed from config.
    let changed = config(
        &stub.token_url(),
        &json!({"refresh_token": REFRESH, "client_secret": "other"}),
    );
    let mut store = open();
    let mut tokens =
        TokenSource::from_config(&changed, &mut store, Some(data.path()), None).unwrap();
    assert_eq!(tokens.access_token().unwrap().expose(), "at-new-1");
}

// ---- login -----------------------------------------------------------------------------

/// Runs `login` on a thread; returns its result channel and its printed output.
fn start_login(
    token_url: &str,
    options: LoginOptions,
) -> (
    thread::JoinHandle<Result<TokenSet, OAuthError>>,
    std::sync::mpsc::Receiver<String>,
) {
    let c = client(
        token_url,
        Some(CLIENT_SECRET),
        &["https://mail.google.com/", "offline_access"],
    );
    let (mut writer, output) = ChannelWriter::new();
    let handle = thread::spawn(move || {
        login(
            &c,
            "https://accounts.example.com/o/oauth2/auth",
            &options,
            &transport(5),
            &mut writer,
        )
    });
    (handle, output)
}

fn options(timeout_secs: u64) -> LoginOptions {
    LoginOptions {
        redirect_uri: None,
        timeout: Duration::from_secs(timeout_secs),
    }
}

/// The redirect the provider would send, from the printed authorization URL.
fn redirect(auth: &url::Url, params: &str) -> String {
    let q = query(auth);
    format!("{}?{params}", q["redirect_uri"])
}

#[test]
fn login_succeeds_with_pkce() {
    let stub = Arc::new(StubServer::start(|_, _| {
        Reply::token(ACCESS, Some(REFRESH), 3599)
    }));
    let (handle, output) = start_login(&stub.token_url(), options(10));
    let auth = printed_url(&output.recv_timeout(Duration::from_secs(10)).unwrap());
    let q = query(&auth);
    assert_eq!(auth.host_str(), Some("accounts.example.com"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "cid-1");
    assert_eq!(q["scope"], "https://mail.google.com/ offline_access");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert!(
        q["redirect_uri"].starts_with("http://127.0.0.1:"),
        "{}",
        q["redirect_uri"]
    );
    assert!(q["state"].len() >= 16);

    // The browser asks for a favicon first: 404, and the wait goes on.
    let favicon = q["redirect_uri"].clone() + "favicon.ico";
    assert_eq!(browser_get(&favicon).0, 404);
    let (status, page) = browser_get(&redirect(
        &auth,
        &format!("code={CODE}&state={}&scope=x", q["state"]),
    ));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("signed in"), "{page}");

    let tokens = handle.join().unwrap().unwrap();
    assert_eq!(tokens.access_token.expose(), ACCESS);
    assert_eq!(tokens.refresh_token, Some(secret(REFRESH)));
    let [request] = stub.requests().try_into().unwrap();
    let form = request.form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], CODE);
    assert_eq!(form["redirect_uri"], q["redirect_uri"]);
    assert_eq!(form["client_secret"], CLIENT_SECRET);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(form["code_verifier"].as_bytes()));
    assert_eq!(challenge, q["code_challenge"]);
}

#[test]
fn login_on_a_given_redirect_uri() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let uri = format!("http://localhost:{port}/callback");
    let stub = StubServer::start(|_, _| Reply::token(ACCESS, None, 3599));
    let (handle, output) = start_login(
        &stub.token_url(),
        LoginOptions {
            redirect_uri: Some(uri.clone()),
            timeout: Duration::from_secs(10),
        },
    );
    let auth = printed_url(&output.recv_timeout(Duration::from_secs(10)).unwrap());
    let q = query(&auth);
    assert_eq!(q["redirect_uri"], uri);
    assert_eq!(browser_get(&format!("http://localhost:{port}/")).0, 404);
    // The right path without a code: not the redirect yet.
    assert_eq!(browser_get(&uri).0, 400);
    let (status, _) = browser_get(&redirect(
        &auth,
        &format!("code={CODE}&state={}", q["state"]),
    ));
    assert_eq!(status, 200);
    assert!(handle.join().unwrap().is_ok());
    assert_eq!(stub.requests()[0].form()["redirect_uri"], uri);
}

#[test]
fn login_refuses_a_foreign_state() {
    let stub = StubServer::start(|_, _| Reply::token(ACCESS, None, 3599));
    let (handle, output) = start_login(&stub.token_url(), options(10));
    let auth = printed_url(&output.recv_timeout(Duration::from_secs(10)).unwrap());
    let (status, page) = browser_get(&redirect(&auth, &format!("code={CODE}&state=forged")));
    assert_eq!(status, 400);
    assert!(page.contains("state mismatch"), "{page}");
    let e = handle.join().unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "the redirect's state does not match (possible CSRF); nothing was stored"
    );
    assert!(stub.requests().is_empty());
}

#[test]
fn login_reports_a_refusal() {
    let stub = StubServer::start(|_, _| Reply::token(ACCESS, None, 3599));
    let (handle, output) = start_login(&stub.token_url(), options(10));
    let auth = printed_url(&output.recv_timeout(Duration::from_secs(10)).unwrap());
    let state = query(&auth)["state"].clone();
    let (status, _) = browser_get(&redirect(
        &auth,
        &format!("error=access_denied&error_description=The+user+said+no&state={state}"),
    ));
    assert_eq!(status, 400);
    let e = handle.join().unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "the authorization server refused the login: access_denied (The user said no); nothing was stored"
    );
    assert!(stub.requests().is_empty());
}

#[test]
fn login_times_out() {
    let stub = StubServer::start(|_, _| Reply::token(ACCESS, None, 3599));
    let (handle, output) = start_login(&stub.token_url(), options(1));
    let printed = output.recv_timeout(Duration::from_secs(10)).unwrap();
    let uri = query(&printed_url(&printed))["redirect_uri"].clone();
    let e = handle.join().unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("no redirect to {uri} arrived within 1 s; nothing was stored")
    );
}

#[test]
fn login_reports_a_failed_exchange_to_browser_and_caller() {
    let stub = StubServer::start(|_, _| {
        Reply::json(
            400,
            &json!({"error": "invalid_grant", "error_description": "Bad code"}),
        )
    });
    let (handle, output) = start_login(&stub.token_url(), options(10));
    let auth = printed_url(&output.recv_timeout(Duration::from_secs(10)).unwrap());
    let state = query(&auth)["state"].clone();
    let (status, page) = browser_get(&redirect(&auth, &format!("code={CODE}&state={state}")));
    assert_eq!(status, 502);
    assert!(page.contains("Nothing was stored"), "{page}");
    assert!(handle.join().unwrap().unwrap_err().is_invalid_grant());
}

#[test]
fn login_redirect_uris_must_be_loopback_http() {
    let c = client("https://oauth2.example.com/token", None, &["s"]);
    for (uri, problem) in [
        ("https://127.0.0.1:8400/", "plain http://"),
        ("http://example.com:8400/", "127.0.0.1, [::1] or localhost"),
        ("http://127.0.0.1:8400/cb?x=1", "query or fragment"),
        ("not a url", "relative URL"),
    ] {
        let options = LoginOptions {
            redirect_uri: Some(uri.into()),
            timeout: Duration::from_secs(1),
        };
        let e = login(
            &c,
            "https://a.example.com/auth",
            &options,
            &transport(1),
            &mut Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("the redirect URI "), "{e}");
        assert!(e.contains(problem), "{uri}: {e}");
    }
    let e = login(
        &c,
        "http://a.example.com/auth",
        &options(1),
        &transport(1),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            OAuthError::InsecureUrl {
                key: "auth_url",
                ..
            }
        ),
        "{e}"
    );
}

// ---- no secret in any message --------------------------------------------------------

/// One of every error variant, built with secrets nearby; the match below fails to
/// compile when a variant is added without being listed here.
#[allow(clippy::too_many_lines, reason = "one entry per variant")]
fn every_error() -> Vec<OAuthError> {
    let url = "https://login.example.com/token".to_owned();
    let errors = vec![
        OAuthError::Config(crate::config::ConfigError::Missing {
            key: "client_secret",
            purpose: "for OAuth authentication with the client_credentials grant",
        }),
        endpoint_url_error("http://user:S3CRET@example.com/token?key=S3CRET"),
        OAuthError::InvalidUrl {
            key: "token_url",
            url: http::display_url("ftp://u:S3CRET@x/y?S3CRET"),
            problem: "not an https URL with a host".into(),
        },
        OAuthError::InvalidProxy {
            url: http::display_url("socks5://u:S3CRET@proxy:1080"),
            problem: "only http:// and https:// proxies are supported".into(),
        },
        OAuthError::CaCert {
            path: "/etc/ca.pem".into(),
            problem: "No such file".into(),
        },
        OAuthError::NoRefreshToken,
        OAuthError::InvalidGrant {
            token_url: url.clone(),
            description: "Token has been expired or revoked.".into(),
        },
        OAuthError::Refused {
            token_url: url.clone(),
            status: 401,
            error: "invalid_client".into(),
            description: None,
        },
        OAuthError::Timeout {
            url: url.clone(),
            secs: 60,
        },
        OAuthError::Transport {
            url: url.clone(),
            reason: "connection refused".into(),
        },
        OAuthError::NotJson {
            url: url.clone(),
            status: 500,
            what: "a text/html body".into(),
            hint: "",
        },
        OAuthError::BadResponse {
            url: url.clone(),
            status: 200,
            problem: "missing field `access_token`".into(),
        },
        OAuthError::KeyFile {
            action: "read",
            path: "/data/keys/oauth.key".into(),
            source: std::io::Error::other("denied"),
        },
        OAuthError::KeyFileCorrupt {
            path: "/data/keys/oauth.key".into(),
            len: 5,
        },
        OAuthError::Crypto {
            action: "seal the OAuth token",
            reason: "error:0308010C".into(),
        },
        OAuthError::State(crate::state::StateError::InvalidState {
            key: "state.secrets".into(),
            problem: "not an object".into(),
        }),
        OAuthError::InvalidRedirectUri {
            uri: http::display_url("http://127.0.0.1:1/cb?code=S3CRET"),
            problem: "it must not have a query or fragment".into(),
        },
        OAuthError::Listener {
            address: "127.0.0.1:8400".into(),
            reason: "address in use".into(),
        },
        OAuthError::Output(std::io::Error::other("broken pipe")),
        OAuthError::StateMismatch,
        OAuthError::AuthorizationRefused {
            error: "access_denied".into(),
            description: Some("no".into()),
        },
        OAuthError::LoginTimeout {
            redirect_uri: "http://127.0.0.1:1/".into(),
            secs: 300,
        },
    ];
    for e in &errors {
        match e {
            OAuthError::Config(_)
            | OAuthError::InvalidUrl { .. }
            | OAuthError::InsecureUrl { .. }
            | OAuthError::InvalidProxy { .. }
            | OAuthError::CaCert { .. }
            | OAuthError::NoRefreshToken
            | OAuthError::InvalidGrant { .. }
            | OAuthError::Refused { .. }
            | OAuthError::Timeout { .. }
            | OAuthError::Transport { .. }
            | OAuthError::NotJson { .. }
            | OAuthError::BadResponse { .. }
            | OAuthError::KeyFile { .. }
            | OAuthError::KeyFileCorrupt { .. }
            | OAuthError::Crypto { .. }
            | OAuthError::State(_)
            | OAuthError::InvalidRedirectUri { .. }
            | OAuthError::Listener { .. }
            | OAuthError::Output(_)
            | OAuthError::StateMismatch
            | OAuthError::AuthorizationRefused { .. }
            | OAuthError::LoginTimeout { .. } => {}
        }
    }
    errors
}

fn endpoint_url_error(raw: &str) -> OAuthError {
    OAuthClient::new("c", None, raw, vec![]).unwrap_err()
}

#[test]
fn no_secret_in_errors_or_debug_output() {
    let mut shown = String::new();
    for e in every_error() {
        writeln!(shown, "{e}\n{e:?}\n{e:#?}").unwrap();
    }
    // Errors from real flows, where the secrets were on the wire.
    let stubs = [
        StubServer::start(|_, _| Reply::json(400, &json!({"error": "invalid_grant"}))),
        StubServer::start(|_, _| {
            Reply::json(
                200,
                &json!({"token_type": "Bearer", "refresh_token": REFRESH}),
            )
        }),
        StubServer::start(|_, _| Reply::text(500, "text/plain", ACCESS)),
        StubServer::start(|_, _| {
            Reply::json(200, &json!({"access_token": ACCESS, "token_type": 5}))
        }),
    ];
    for stub in &stubs {
        let c = client(&stub.token_url(), Some(CLIENT_SECRET), &["s"]);
        for e in [
            c.refresh(&transport(5), &secret(REFRESH), NOW).unwrap_err(),
            c.exchange_code(
                &transport(5),
                &secret(CODE),
                &secret("verifier-S3CRET"),
                "http://127.0.0.1:1/",
                NOW,
            )
            .unwrap_err(),
        ] {
            writeln!(shown, "{e}\n{e:?}").unwrap();
        }
    }
    // Structures that hold secrets.
    let tokens = TokenSet {
        access_token: secret(ACCESS),
        refresh_token: Some(secret(REFRESH)),
        expires_at: Some(1),
        scope: None,
        client_id: "cid-1".into(),
        token_url: "https://x/token".into(),
    };
    let stored = StoredTokens {
        access_token: Some(secret(ACCESS)),
        refresh_token: Some(secret(REFRESH)),
        ..StoredTokens::default()
    };
    let c = client("https://x/token", Some(CLIENT_SECRET), &["s"]);
    let settings = HttpSettings {
        timeout: Duration::from_secs(1),
        proxy: Some(secret("http://user:S3CRET@proxy:3128")),
        ca_cert: None,
    };
    let key = SealKey::derive(&[1; 32], Some(&secret(CLIENT_SECRET))).unwrap();
    write!(
        shown,
        "{tokens:?}{tokens:#?}{stored:?}{c:?}{c:#?}{settings:?}{:?}{key:?}",
        UreqTransport::new(&settings).unwrap()
    )
    .unwrap();
    assert_no_secret(&shown);
    assert!(shown.contains("<redacted>"));
}

/// How the connector calls it: a `&mut dyn StateStore` borrowed for one login.
fn token_through_dyn(config: &Config, store: &mut dyn StateStore) -> Result<Secret, OAuthError> {
    let mut tokens = TokenSource::from_config(config, store, None, None)?;
    tokens.access_token()
}

#[test]
fn stateless_runs_keep_plain_tokens_for_the_platform() {
    let stub = StubServer::start(|_, _| Reply::token(ACCESS, Some("rt-rotated"), 3600));
    let cfg = config(&stub.token_url(), &json!({"refresh_token": REFRESH}));
    let mut store = MemoryStore::new("f");
    assert_eq!(
        token_through_dyn(&cfg, &mut store).unwrap().expose(),
        ACCESS
    );
    let state = store.to_json();
    let blob: serde_json::Value =
        serde_json::from_str(state["secrets"][TOKEN_BLOB_KEY].as_str().unwrap()).unwrap();
    assert_eq!(blob["refresh_token"], "rt-rotated");
    assert_eq!(blob["client_id"], "cid-1");
    // The next stateless run reads it back from the returned state.
    let mut next = MemoryStore::from_json(&state, "f").unwrap();
    assert_eq!(token_through_dyn(&cfg, &mut next).unwrap().expose(), ACCESS);
    assert_eq!(stub.requests().len(), 1);
}
