//! The HTTP seam of token requests: one POST to the token endpoint, through ureq 3.
//!
//! oauth2 builds the request and parses the answer; [`HttpTransport`] only carries it.
//! Every answer comes back as a response whatever its status, because a 400 carries the
//! OAuth error (`invalid_grant` for a revoked refresh token) that the user must see; only
//! "no answer at all" is a [`TransportError`].

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Duration,
};

use oauth2::{HttpRequest, HttpResponse};
use ureq::{
    Agent, Proxy,
    tls::{Certificate, RootCerts, TlsConfig, TlsProvider},
};
use url::{Host, Url};

use super::OAuthError;
use crate::{config::Config, secret::Secret};

/// Token answers are a few kilobytes; anything much larger is not a token endpoint.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// How token requests reach the network.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Connect plus send plus receive, for the whole request.
    pub timeout: Duration,
    /// The `HTTPS_PROXY` to use, if any (it may carry credentials, hence a [`Secret`]).
    pub proxy: Option<Secret>,
    /// A PEM file of extra trust anchors, added to the system's.
    pub ca_cert: Option<PathBuf>,
}

impl HttpSettings {
    /// The asset's `timeout_secs` and `ca_cert`, with the proxy the caller resolved (see
    /// [`choose_proxy`]).
    pub fn from_config(config: &Config, proxy: Option<String>) -> Self {
        Self {
            timeout: Duration::from_secs(config.timeout_secs),
            proxy: proxy.map(Secret::new),
            ca_cert: config.ca_cert.clone(),
        }
    }
}

/// The proxy for token requests: the request's `environment_variables.HTTPS_PROXY` wins
/// over the process environment's `HTTPS_PROXY`/`https_proxy`. Empty values count as unset.
///
/// The caller reads both (this module reads no environment), e.g.
/// `choose_proxy(request_env.get("HTTPS_PROXY"), std::env::var("HTTPS_PROXY").or_else(|_| std::env::var("https_proxy")).ok())`.
pub fn choose_proxy(from_request: Option<String>, from_process: Option<String>) -> Option<String> {
    let set = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    set(from_request).or_else(|| set(from_process))
}

/// Why no HTTP response arrived.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The whole request took longer than the timeout.
    #[error("timed out after {secs} s")]
    Timeout {
        /// The timeout.
        secs: u64,
    },
    /// Anything else: DNS, connection refused, TLS, proxy, a broken answer.
    #[error("{0}")]
    Failed(String),
}

/// Sends one token request. Implemented by [`UreqTransport`]; tests and replays may
/// substitute their own.
pub trait HttpTransport {
    /// Sends `request` and returns the response, whatever its status. `Err` only when no
    /// complete response arrived.
    fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

/// [`HttpTransport`] over ureq 3 with native TLS.
///
/// Redirects are not followed (RFC 6749 advice for token requests: a redirect would
/// resend the credentials elsewhere). Loopback targets bypass the proxy, as Go and most
/// tools do, since a proxy cannot reach this machine's loopback.
pub struct UreqTransport {
    /// For every target when there is no proxy, and for loopback targets.
    direct: Agent,
    /// For non-loopback targets when a proxy is set.
    proxied: Option<Agent>,
    timeout_secs: u64,
}

impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqTransport")
            .field("proxied", &self.proxied.is_some())
            .field("timeout_secs", &self.timeout_secs)
            .finish_non_exhaustive()
    }
}

impl UreqTransport {
    /// Builds the agents. Fails on an unusable proxy URL or `ca_cert` file.
    pub fn new(settings: &HttpSettings) -> Result<Self, OAuthError> {
        let roots = root_certs(settings.ca_cert.as_ref())?;
        let proxy = settings.proxy.as_ref().map(parse_proxy).transpose()?;
        let agent = |proxy: Option<Proxy>| -> Agent {
            let tls = TlsConfig::builder()
                .provider(TlsProvider::NativeTls)
                // Without an explicit choice ureq's native-tls build defaults to WebPki
                // roots, which it does not have, and panics on the first HTTPS request.
                .root_certs(roots.clone())
                .build();
            Agent::config_builder()
                .timeout_global(Some(settings.timeout))
                // oauth2 must see 4xx bodies: they carry `invalid_grant`.
                .http_status_as_error(false)
                .max_redirects(0)
                // Always explicit: ureq would otherwise read ALL_PROXY/HTTP_PROXY itself.
                .proxy(proxy)
                .user_agent(concat!("soar-imap/", env!("CARGO_PKG_VERSION")))
                .tls_config(tls)
                .build()
                .new_agent()
        };
        Ok(Self {
            direct: agent(None),
            proxied: proxy.map(|p| agent(Some(p))),
            timeout_secs: settings.timeout.as_secs().max(1),
        })
    }
}

impl HttpTransport for UreqTransport {
    fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let loopback = request.uri().host().is_some_and(is_loopback_name);
        let agent = match &self.proxied {
            Some(proxied) if !loopback => proxied,
            _ => &self.direct,
        };
        let classify = |e: ureq::Error| classify(e, self.timeout_secs);
        let (parts, mut body) = agent.run(request).map_err(classify)?.into_parts();
        let bytes = body
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(classify)?;
        Ok(HttpResponse::from_parts(parts, bytes))
    }
}

/// A ureq failure as a [`TransportError`]; ureq's messages carry no request content.
fn classify(error: ureq::Error, timeout_secs: u64) -> TransportError {
    match error {
        ureq::Error::Timeout(_) => TransportError::Timeout { secs: timeout_secs },
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            TransportError::Timeout { secs: timeout_secs }
        }
        ureq::Error::BodyExceedsLimit(limit) => {
            TransportError::Failed(format!("the answer is larger than {limit} bytes"))
        }
        ureq::Error::HostNotFound => TransportError::Failed("host not found (DNS)".into()),
        other => {
            let reason = other.to_string();
            let hint = if reason.contains("certificate verify failed") {
                " (the certificate is signed by no system CA: set config.ca_cert to trust a private CA or a TLS-inspecting proxy)"
            } else {
                ""
            };
            TransportError::Failed(format!("{reason}{hint}"))
        }
    }
}

/// The system's trust anchors, plus `ca_cert` when set.
///
/// ureq's native-tls backend either uses the built-in roots or only the given ones, so
/// to add a private CA the system bundle (found the way native-tls finds it) is loaded
/// too; `SPEC` §2 says `ca_cert` adds a trust anchor, it does not replace the others.
fn root_certs(ca_cert: Option<&PathBuf>) -> Result<RootCerts, OAuthError> {
    let Some(path) = ca_cert else {
        return Ok(RootCerts::PlatformVerifier);
    };
    let bad = |problem: String| OAuthError::CaCert {
        path: path.clone(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = pem_certificates(&pem).map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    if let Some(bundle) = openssl_probe::probe().cert_file {
        match std::fs::read(&bundle) {
            // Unparseable entries of the system bundle are skipped, as OpenSSL does.
            Ok(system) => certs.extend(pem_certificates(&system).unwrap_or_default()),
            Err(e) => tracing::warn!(
                "cannot read the system CA bundle {}: {e}; only config.ca_cert is trusted for OAuth token requests",
                bundle.display()
            ),
        }
    } else {
        tracing::warn!(
            "no system CA bundle found; only config.ca_cert is trusted for OAuth token requests"
        );
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// The certificates of a PEM file (other PEM items are skipped).
fn pem_certificates(pem: &[u8]) -> Result<Vec<Certificate<'static>>, openssl::error::ErrorStack> {
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Ok(Vec::new());
    }
    openssl::x509::X509::stack_from_pem(pem)?
        .iter()
        .map(|cert| Ok(Certificate::from_der(&cert.to_der()?).to_owned()))
        .collect()
}

/// The ureq proxy for `HTTPS_PROXY`. Only HTTP(S) CONNECT proxies: this build has no SOCKS.
fn parse_proxy(value: &Secret) -> Result<Proxy, OAuthError> {
    let raw = value.expose().trim();
    let shown = display_url(raw);
    let invalid = |problem: &str| OAuthError::InvalidProxy {
        url: shown.clone(),
        problem: problem.to_owned(),
    };
    let scheme = raw.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        None | Some("http" | "https") => {}
        Some(_) => return Err(invalid("only http:// and https:// proxies are supported")),
    }
    Proxy::new(raw).map_err(|_| invalid("not a proxy URL"))
}

/// Parses an endpoint and refuses plain http to anything but this machine.
pub(crate) fn endpoint_url(key: &'static str, raw: &str) -> Result<Url, OAuthError> {
    let url = Url::parse(raw.trim()).map_err(|e| OAuthError::InvalidUrl {
        key,
        url: display_url(raw),
        problem: e.to_string(),
    })?;
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if url.host().is_some_and(|h| is_loopback_host(&h)) => Ok(url),
        "http" => Err(OAuthError::InsecureUrl {
            key,
            url: display_url(raw),
        }),
        _ => Err(OAuthError::InvalidUrl {
            key,
            url: display_url(raw),
            problem: "not an https URL with a host".into(),
        }),
    }
}

/// Whether a parsed host is this machine: 127.0.0.0/8, `::1` (also IPv4-mapped) or `localhost`.
pub(crate) fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    }
}

/// [`is_loopback_host`] for the host text of an `http::Uri` (IPv6 in brackets).
fn is_loopback_name(name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<Ipv4Addr>() {
        return is_loopback_host(&Host::Ipv4(ip));
    }
    if let Ok(ip) = bare.parse::<Ipv6Addr>() {
        return is_loopback_host(&Host::Ipv6(ip));
    }
    is_loopback_host(&Host::Domain(bare))
}

/// A URL as it may appear in a message: without user info (a proxy password), query
/// (some endpoints take keys there) or fragment. Works on unparseable text too.
pub(crate) fn display_url(raw: &str) -> String {
    let raw = raw.trim();
    let cut = raw.find(['?', '#']).unwrap_or(raw.len());
    let raw = &raw[..cut];
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, raw),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let shown: String = match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    };
    super::quote_remote(&shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_url_strips_userinfo_query_and_fragment() {
        assert_eq!(
            display_url("https://user:pw@login.example.com/t/token?key=abc#x"),
            "https://login.example.com/t/token"
        );
        assert_eq!(display_url("user:pw@proxy:3128"), "proxy:3128");
        assert_eq!(display_url("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(display_url(" https://a/b@c "), "https://a/b@c");
    }

    #[test]
    fn loopback_endpoints_may_be_plain_http() {
        for ok in [
            "https://oauth2.googleapis.com/token",
            "http://127.0.0.1:8080/token",
            "http://127.8.9.10/token",
            "http://localhost:1/token",
            "http://LOCALHOST/token",
            "http://[::1]:10080/token",
            "http://[::ffff:127.0.0.1]/token",
        ] {
            assert!(endpoint_url("token_url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://oauth.example.com/token",
            "http://10.0.0.1/token",
            "http://localhost.example.com/token",
            "http://[::2]/token",
        ] {
            let e = endpoint_url("token_url", bad).unwrap_err();
            assert!(matches!(e, OAuthError::InsecureUrl { .. }), "{bad}: {e}");
        }
        let e = endpoint_url("auth_url", "ftp://x/y")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config.auth_url must be an http or https URL"),
            "{e}"
        );
        let e = endpoint_url("token_url", "http://u:pw@example.com/t?secret=1")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config.token_url must be an https URL (plain http is only allowed to a loopback host such as 127.0.0.1 or localhost, because client secrets and tokens would cross the network in clear), got http://example.com/t"
        );
        assert!(!e.contains("pw") && !e.contains("secret=1"));
    }

    #[test]
    fn loopback_names_of_request_uris() {
        assert!(is_loopback_name("127.0.0.1"));
        assert!(is_loopback_name("[::1]"));
        assert!(is_loopback_name("localhost"));
        assert!(!is_loopback_name("example.com"));
        assert!(!is_loopback_name("[2001:db8::1]"));
    }

    #[test]
    fn proxy_choice_prefers_the_request() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            choose_proxy(s("http://a:1"), s("http://b:2")),
            s("http://a:1")
        );
        assert_eq!(choose_proxy(None, s("http://b:2")), s("http://b:2"));
        assert_eq!(choose_proxy(s(" "), s("http://b:2")), s("http://b:2"));
        assert_eq!(choose_proxy(None, s("")), None);
    }

    #[test]
    fn unusable_proxies_are_refused_without_their_password() {
        let settings = |proxy: &str| HttpSettings {
            timeout: Duration::from_secs(1),
            proxy: Some(Secret::new(proxy.to_owned())),
            ca_cert: None,
        };
        let e = UreqTransport::new(&settings("socks5://u:hunter2@proxy:1080"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "HTTPS_PROXY socks5://proxy:1080 cannot be used for OAuth token requests: only http:// and https:// proxies are supported"
        );
        assert!(UreqTransport::new(&settings("http://u:hunter2@proxy:3128")).is_ok());
        let shown = format!("{:?}", settings("http://u:hunter2@proxy:3128"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn ca_cert_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        let settings = HttpSettings {
            timeout: Duration::from_secs(1),
            proxy: None,
            ca_cert: Some(path.clone()),
        };
        let e = UreqTransport::new(&settings).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot use config.ca_cert {}: ", path.display())),
            "{e}"
        );
        std::fs::write(&path, "not a certificate").unwrap();
        let e = UreqTransport::new(&settings).unwrap_err().to_string();
        assert!(e.ends_with("no PEM certificate in the file"), "{e}");
    }
}
