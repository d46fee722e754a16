//! Gateway-rewritten URLs (Safe Links, Proofpoint, Barracuda...) unwrapped offline to the URL
//! the sender wrote, so that analysts see the destination and not the gateway.
//!
//! A wrapper is recognised by its parsed host, matched label by label from the right (never by
//! substring: `evil.com/?x=safelinks.protection.outlook.com` is no wrapper), then by its path.
//! Every URL candidate of a body passes through [`unwrap`], so a non-wrapper is rejected with a
//! few byte comparisons on a borrowed host slice, before anything is allocated.
//!
//! Values are percent-decoded with `percent_encoding`, which keeps `+` (a query parser would
//! turn it into a space and change the URL). Wrappers nest (Safe Links around Proofpoint v3,
//! Sophos around Barracuda), so unwrapping repeats, at most [`MAX_DEPTH`] times. Every step
//! is linear in its input and no step makes its output longer than its input, so the work on
//! a URL is bounded whatever it holds.

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use percent_encoding::percent_decode_str;
use psl::Psl as _;

use super::starts_with_ignore_case;

/// Most wrappers peeled off one URL. Two or three nest in the wild; the cap only stops a
/// crafted chain from costing more than a few passes over the URL.
const MAX_DEPTH: usize = 8;

/// The result of unwrapping a URL that a gateway rewrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unwrapping {
    /// The innermost URL recovered (an http/https URL), or the input itself when the outermost wrapper was malformed.
    pub url: String,
    /// Rewriter names, outermost first; empty when nothing could be unwrapped.
    pub rewriters: Vec<&'static str>,
    /// Why a wrapper (outermost or nested) could not be decoded, naming the rewriter, e.g. "Proofpoint URL Defense v3 link could not be decoded: run `**` is cut short"; None when all went well.
    pub warning: Option<String>,
}

/// `None` when `url` is not a known wrapper (the common case: must be fast and allocation-free).
///
/// A Mimecast link is `None` too: its destination is a token on Mimecast's servers, which
/// cannot be resolved offline, so the link stays as it is.
pub(crate) fn unwrap(url: &str) -> Option<Unwrapping> {
    let (mut rewriter, rest) = recognise(url)?;
    let mut decoded = decode(rewriter, rest);
    let mut out = Unwrapping {
        url: url.to_owned(),
        rewriters: Vec::new(),
        warning: None,
    };
    loop {
        match decoded {
            Ok(inner) => {
                out.url = inner;
                out.rewriters.push(rewriter.name());
            }
            Err(reason) => {
                out.warning = Some(format!(
                    "{} link could not be decoded: {reason}",
                    rewriter.label()
                ));
                break;
            }
        }
        let Some((next, rest)) = recognise(&out.url) else {
            break;
        };
        if out.rewriters.len() >= MAX_DEPTH {
            out.warning = Some(format!(
                "{} link left wrapped: more than {MAX_DEPTH} wrappers were nested",
                next.label()
            ));
            break;
        }
        decoded = decode(next, rest);
        rewriter = next;
    }
    Some(out)
}

/// A gateway's URL rewriting scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rewriter {
    /// Microsoft Defender for Office 365 Safe Links: percent-encoded `url`.
    SafeLinks,
    /// Proofpoint URL Defense v1: percent-encoded `u`, ended by `&k=`.
    ProofpointV1,
    /// Proofpoint URL Defense v2: `u` with `-` for `%` and `_` for `/`.
    ProofpointV2,
    /// Proofpoint URL Defense v3: the URL in the path, some bytes moved to a base64 tail.
    ProofpointV3,
    /// Barracuda Link Protection: percent-encoded `a`.
    Barracuda,
    /// Cisco Secure Email (`IronPort`): the percent-encoded URL in the path, after a token.
    Cisco,
    /// Google's `/url` redirect: `q`, or `url` when `q` is empty.
    Google,
    /// Sophos Email time-of-click: base64url `u`.
    Sophos,
    /// Trend Micro click-time protection: `url` up to `&umid=`, encoded or not.
    TrendMicro,
    /// `FireEye` (Trellix) Email Security: percent-encoded `u`, the last parameter.
    FireEye,
}

impl Rewriter {
    /// The stable identifier playbooks match on.
    fn name(self) -> &'static str {
        match self {
            Rewriter::SafeLinks => "microsoft_safelinks",
            Rewriter::ProofpointV1 => "proofpoint_v1",
            Rewriter::ProofpointV2 => "proofpoint_v2",
            Rewriter::ProofpointV3 => "proofpoint_v3",
            Rewriter::Barracuda => "barracuda_linkprotect",
            Rewriter::Cisco => "cisco_secure_email",
            Rewriter::Google => "google_redirect",
            Rewriter::Sophos => "sophos",
            Rewriter::TrendMicro => "trendmicro_clicktime",
            Rewriter::FireEye => "fireeye",
        }
    }

    /// The product's name, for warnings an analyst reads.
    fn label(self) -> &'static str {
        match self {
            Rewriter::SafeLinks => "Microsoft Defender Safe Links",
            Rewriter::ProofpointV1 => "Proofpoint URL Defense v1",
            Rewriter::ProofpointV2 => "Proofpoint URL Defense v2",
            Rewriter::ProofpointV3 => "Proofpoint URL Defense v3",
            Rewriter::Barracuda => "Barracuda LinkProtect",
            Rewriter::Cisco => "Cisco Secure Email",
            Rewriter::Google => "Google redirect",
            Rewriter::Sophos => "Sophos Email",
            Rewriter::TrendMicro => "Trend Micro click-time",
            Rewriter::FireEye => "FireEye/Trellix",
        }
    }
}

/// Why a wrapper could not be decoded (mostly static text; allocated only on failure).
type Reason = Cow<'static, str>;

/// The wrapper `url` is, and the rest of it after the authority (path, query, fragment).
/// Only byte comparisons on slices of `url`: this runs for every URL of every email.
fn recognise(url: &str) -> Option<(Rewriter, &str)> {
    let (host, rest) = split_host(url)?;
    let host = host.as_bytes();
    let rewriter = if has_label_suffix(host, b"safelinks.protection.outlook.com")
        || has_label_suffix(host, b"safelinks.protection.office365.us")
    {
        Rewriter::SafeLinks
    } else if has_label_suffix(host, b"urldefense.proofpoint.com")
        || has_label_suffix(host, b"urldefense.com")
        || has_label_suffix(host, b"urldefense.us")
    {
        // the three hosts serve every version; the path says which
        if rest.starts_with("/v1/") {
            Rewriter::ProofpointV1
        } else if rest.starts_with("/v2/") {
            Rewriter::ProofpointV2
        } else if rest.starts_with("/v3/") {
            Rewriter::ProofpointV3
        } else {
            return None;
        }
    } else if has_label_suffix(host, b"linkprotect.cudasvc.com") {
        Rewriter::Barracuda
    } else if has_label_suffix(host, b"secure-web.cisco.com") {
        Rewriter::Cisco
    } else if has_label_suffix(host, b"protection.sophos.com") {
        Rewriter::Sophos
    } else if has_label_suffix(host, b"protect2.fireeye.com") {
        Rewriter::FireEye
    } else if rest.starts_with("/wis/clicktime/") && is_trend_micro_host(host) {
        Rewriter::TrendMicro
    } else if is_path(rest, "/url") && is_google_host(host) {
        Rewriter::Google
    } else {
        return None;
    };
    Some((rewriter, rest))
}

/// Whether the path of `rest` (the text after the authority) is exactly `path`.
fn is_path(rest: &str, path: &str) -> bool {
    rest.strip_prefix(path)
        .is_some_and(|after| after.is_empty() || after.starts_with(['?', '#']))
}

/// The host of an `http`/`https` URL (after any userinfo, without port or root dot) and the
/// text after the authority. The authority ends at `/`, `?`, `#` or `\`, as browsers end it,
/// so `https://evil.com\@nam01.safelinks.protection.outlook.com/` is evil.com's.
fn split_host(url: &str) -> Option<(&str, &str)> {
    if !(starts_with_ignore_case(url, "https://") || starts_with_ignore_case(url, "http://")) {
        return None;
    }
    let (host_port, rest) = super::urls::split_authority(url)?;
    // an IPv6 literal is no gateway, and its colons are not a port
    if host_port.starts_with('[') {
        return None;
    }
    let host = host_port
        .split_once(':')
        .map_or(host_port, |(host, _)| host);
    Some((host.strip_suffix('.').unwrap_or(host), rest))
}

/// Whether `host` is `suffix` or ends with `.` and `suffix` (ASCII case-insensitive).
fn has_label_suffix(host: &[u8], suffix: &[u8]) -> bool {
    strip_label_suffix(host, suffix).is_some()
}

/// The labels of `host` in front of `suffix` (without the dot; empty when `host` is `suffix`),
/// if `host` ends with whole labels equal to `suffix`.
fn strip_label_suffix<'h>(host: &'h [u8], suffix: &[u8]) -> Option<&'h [u8]> {
    let split = host.len().checked_sub(suffix.len())?;
    let (head, tail) = host.split_at(split);
    if !tail.eq_ignore_ascii_case(suffix) {
        return None;
    }
    match head.split_last() {
        None => Some(head),
        Some((b'.', labels)) => Some(labels),
        Some(_) => None,
    }
}

/// `<name>-ctp.trendmicro.com` or `<name>-urlprotect.trendmicro.com` (also written with a dot
/// instead of the hyphen); the `/wis/clicktime/` path is checked by the caller.
fn is_trend_micro_host(host: &[u8]) -> bool {
    let Some(labels) = strip_label_suffix(host, b"trendmicro.com") else {
        return false;
    };
    let label = labels.rsplit(|&b| b == b'.').next().unwrap_or(labels);
    [&b"ctp"[..], b"urlprotect"].iter().any(|service| {
        label
            .len()
            .checked_sub(service.len())
            .and_then(|start| label.split_at_checked(start))
            .is_some_and(|(name, end)| {
                end.eq_ignore_ascii_case(service) && (name.is_empty() || name.ends_with(b"-"))
            })
    })
}

/// `google.<public suffix>` or `www.google.<public suffix>` (`google.co.uk`, not
/// `google.evil.com`), lowercased on the stack for the Public Suffix List lookup.
fn is_google_host(host: &[u8]) -> bool {
    let host = strip_prefix_ignore_case(host, b"www.").unwrap_or(host);
    let Some(suffix) = strip_prefix_ignore_case(host, b"google.") else {
        return false;
    };
    let mut buffer = [0_u8; 32];
    let Some(lower) = buffer.get_mut(..suffix.len()) else {
        return false;
    };
    lower.copy_from_slice(suffix);
    lower.make_ascii_lowercase();
    !lower.is_empty()
        && psl::List.suffix(lower).is_some_and(|known| {
            known.as_bytes().len() == lower.len() && known.typ() == Some(psl::Type::Icann)
        })
}

/// `bytes` without `prefix` (ASCII case-insensitive), if it starts with it.
fn strip_prefix_ignore_case<'b>(bytes: &'b [u8], prefix: &[u8]) -> Option<&'b [u8]> {
    let (head, tail) = bytes.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(tail)
}

/// Recovers the URL inside one wrapper from the text after its authority.
fn decode(rewriter: Rewriter, rest: &str) -> Result<String, Reason> {
    let query = rest.split_once('?').map_or("", |(_, query)| query);
    let inner = match rewriter {
        Rewriter::SafeLinks => percent_decode(required(param(query, "url"), "url")?)?,
        Rewriter::ProofpointV1 => proofpoint_v1(query)?,
        Rewriter::ProofpointV2 => proofpoint_v2(required(param(query, "u"), "u")?)?,
        Rewriter::ProofpointV3 => proofpoint_v3(rest)?.into(),
        Rewriter::Barracuda => percent_decode(required(param(query, "a"), "a")?)?,
        Rewriter::Cisco => cisco(rest)?,
        Rewriter::Google => {
            let target = param(query, "q")
                .filter(|q| !q.is_empty())
                .or_else(|| param(query, "url"));
            percent_decode(required(target, "q` or `url")?)?
        }
        Rewriter::Sophos => sophos(required(param(query, "u"), "u")?)?.into(),
        Rewriter::TrendMicro => trend_micro(query)?,
        // `u` comes last and is taken whole, `&` included: it is the target
        Rewriter::FireEye => percent_decode(required(param_to_end(query, "u"), "u")?)?,
    };
    http_url(inner)
}

/// The value of parameter `name` in `query`, up to the next `&`.
fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    param_to_end(query, name).map(|value| value.split('&').next().unwrap_or(value))
}

/// The query from the value of the first parameter `name` to its end. A pair after `&amp;`
/// counts: links in plain-text bodies often keep their HTML-escaped ampersands.
fn param_to_end<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    let mut pairs = query;
    loop {
        let pair = pairs.strip_prefix("amp;").unwrap_or(pairs);
        if let Some(value) = pair.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
            return Some(value);
        }
        pairs = pairs.split_once('&')?.1;
    }
}

/// A parameter value that must be present and non-empty.
fn required<'v>(value: Option<&'v str>, name: &'static str) -> Result<&'v str, Reason> {
    match value {
        None => Err(format!("no `{name}` parameter").into()),
        Some("") => Err(format!("the `{name}` parameter is empty").into()),
        Some(value) => Ok(value),
    }
}

/// Percent-decodes `value` (keeping `+`); bytes that are not UTF-8 make the wrapper malformed.
fn percent_decode(value: &str) -> Result<Cow<'_, str>, Reason> {
    percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| "percent-decoding gives bytes that are not UTF-8".into())
}

/// Proofpoint v1: `u` up to `&k=` (or `&amp;k=` in plain text), percent-decoded, then
/// HTML-unescaped, since the gateway encoded the href as the HTML source had it.
fn proofpoint_v1(query: &str) -> Result<Cow<'_, str>, Reason> {
    let value = required(param_to_end(query, "u"), "u")?;
    let end = [value.find("&k="), value.find("&amp;k=")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(value.len());
    let decoded = percent_decode(required(value.get(..end), "u")?)?;
    Ok(match html_unescape(&decoded) {
        Cow::Borrowed(_) => decoded,
        Cow::Owned(unescaped) => Cow::Owned(unescaped),
    })
}

/// Proofpoint v2: `-` stands for `%` and `_` for `/` (an original `-` or `_` is `-2D`/`-5F`),
/// then as v1: percent-decoded and HTML-unescaped.
fn proofpoint_v2(value: &str) -> Result<Cow<'static, str>, Reason> {
    let percent_encoded: String = value
        .chars()
        .map(|c| match c {
            '-' => '%',
            '_' => '/',
            c => c,
        })
        .collect();
    let decoded = percent_decode(&percent_encoded)?;
    Ok(Cow::Owned(html_unescape(&decoded).into_owned()))
}

/// Proofpoint v3: `/v3/__<URL>__;<base64url>!<customer>!<signature>$`. Proofpoint replaced
/// some bytes of the URL with `*` and moved them, in order, to the base64url tail: `*`
/// stands for one byte, `**X` for a run of 2 to 65 bytes (`X` from `A-Za-z0-9-_`). Runs
/// count UTF-8 bytes, not characters. The URL is not percent-decoded afterwards: a `%` in
/// it is one of the moved bytes or was in the original.
fn proofpoint_v3(rest: &str) -> Result<String, Reason> {
    let body = rest
        .strip_prefix("/v3/__")
        .ok_or("the path does not start with `/v3/__`")?;
    // the URL is at least one byte long, up to the first `__;` after that
    let end = body
        .match_indices("__;")
        .map(|(i, _)| i)
        .find(|&i| i > 0)
        .ok_or("no `__;` ends the URL")?;
    let (url, tail) = body.split_at(end);
    let tail = tail.get("__;".len()..).unwrap_or("");
    let encoded = tail.split('!').next().unwrap_or(tail);
    let moved = if encoded.is_empty() {
        Vec::new()
    } else {
        BASE64URL
            .decode(encoded)
            .map_err(|_| "the text after `__;` is not base64url")?
    };

    let bytes = url.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + moved.len());
    let mut left: &[u8] = &moved;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'*' {
            out.push(b);
            i += 1;
            continue;
        }
        let (count, width) = if bytes.get(i + 1) == Some(&b'*') {
            let letter = url
                .get(i + 2..)
                .and_then(|s| s.chars().next())
                .ok_or("run `**` is cut short")?;
            let count = run_length(letter)
                .ok_or_else(|| format!("run `**{letter}` has an unknown length letter"))?;
            (count, 3)
        } else {
            (1, 1)
        };
        let (taken, remaining) = left.split_at_checked(count).ok_or_else(|| {
            let run = url.get(i..i + width).unwrap_or("*");
            let wanted = if count == 1 {
                "1 byte".to_owned()
            } else {
                format!("{count} bytes")
            };
            format!(
                "run `{run}` wants {wanted} of the `__;` tail, which has {} left",
                left.len()
            )
        })?;
        out.extend_from_slice(taken);
        left = remaining;
        i += width;
    }
    String::from_utf8(out).map_err(|_| "the decoded URL is not UTF-8".into())
}

/// Bytes in a Proofpoint v3 run `**X`: 2 for `A` up to 65 for `_`, in base64url order.
fn run_length(letter: char) -> Option<usize> {
    let index = match letter {
        'A'..='Z' => u32::from(letter) - u32::from('A'),
        'a'..='z' => u32::from(letter) - u32::from('a') + 26,
        '0'..='9' => u32::from(letter) - u32::from('0') + 52,
        '-' => 62,
        '_' => 63,
        _ => return None,
    };
    usize::try_from(index + 2).ok()
}

/// Base64 decoding that takes what gateways write: padded or not, and without insisting that
/// the unused low bits of the last character are zero (Python's decoder does not check them).
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);

/// Base64url (`-_`), as Proofpoint v3 and Sophos write it.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Standard base64 (`+/`), for a Sophos `u` that was written so.
const BASE64: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);

/// Cisco Secure Email: `/<token>/<percent-encoded URL>`; the URL is everything after the
/// token (one segment when encoded as the gateway does, several when a template did not).
fn cisco(rest: &str) -> Result<Cow<'_, str>, Reason> {
    let path = rest.find(['?', '#']).map_or(rest, |end| &rest[..end]);
    let target = path
        .strip_prefix('/')
        .and_then(|path| path.split_once('/'))
        .map(|(_, target)| target)
        .filter(|target| !target.is_empty())
        .ok_or("no URL after the token in the path")?;
    percent_decode(target)
}

/// Sophos: `u` is the URL in base64url (padding optional), itself percent-encoded in places
/// (`%3D` for padding).
fn sophos(value: &str) -> Result<String, Reason> {
    let encoded = percent_decode(value)?;
    let encoded = encoded.trim_end_matches('=');
    let engine = if encoded.contains(['+', '/']) {
        &BASE64
    } else {
        &BASE64URL
    };
    let bytes = engine.decode(encoded).map_err(|_| "`u` is not base64url")?;
    String::from_utf8(bytes).map_err(|_| "`u` decodes to bytes that are not UTF-8".into())
}

/// Trend Micro: the text between `url=` and `&umid=`. Gateways write it percent-encoded
/// (`%3a%2f%2f`, `-` as `%2d`) or as it is; a value that already starts with `http://` or
/// `https://` is taken as it is, since decoding it would turn its own `%26` into `&`.
fn trend_micro(query: &str) -> Result<Cow<'_, str>, Reason> {
    let value = required(param_to_end(query, "url"), "url")?;
    let value = match value.find("&umid=").or_else(|| value.find("&amp;umid=")) {
        Some(end) => value.get(..end).unwrap_or(value),
        None => value.split('&').next().unwrap_or(value),
    };
    let value = required(Some(value), "url")?;
    if starts_with_ignore_case(value, "http://") || starts_with_ignore_case(value, "https://") {
        Ok(Cow::Borrowed(value))
    } else {
        percent_decode(value)
    }
}

/// Undoes the HTML escaping a gateway copied from an href: `&amp;`, `&lt;`, `&gt;`, `&quot;`,
/// `&apos;` and numeric references. Anything else stays as written.
fn html_unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // the references known here are short: a `;` further away is not theirs (and
        // looking only this far keeps the pass linear)
        let reference = after
            .bytes()
            .take(10)
            .position(|b| b == b';')
            .and_then(|semi| Some((semi, entity(after.get(..semi)?)?)));
        if let Some((semi, c)) = reference {
            out.push(c);
            rest = &after[semi + 1..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character an HTML reference name (between `&` and `;`) stands for.
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code).filter(|&c| c != '\0')
        }
    }
}

/// Accepts `url` if it is an `http`/`https` URL (scheme in any ASCII case) with something after
/// `//`. Proofpoint's one-slash `https:/host` is repaired to `https://host`.
fn http_url(url: Cow<'_, str>) -> Result<String, Reason> {
    let scheme_len = if starts_with_ignore_case(&url, "https:") {
        "https:".len()
    } else if starts_with_ignore_case(&url, "http:") {
        "http:".len()
    } else {
        return Err("the recovered value is not an http(s) URL".into());
    };
    let after = url.get(scheme_len..).unwrap_or("");
    if let Some(authority) = after.strip_prefix("//") {
        if authority.is_empty() || authority.starts_with('/') {
            return Err("the recovered URL has no host".into());
        }
        return Ok(url.into_owned());
    }
    match after.strip_prefix('/') {
        Some(host) if !host.is_empty() => {
            Ok(format!("{}//{host}", url.get(..scheme_len).unwrap_or("")))
        }
        _ => Err("the recovered value is not an http(s) URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unwraps a wrapper that must decode cleanly; the URL and the rewriters.
    fn clean(url: &str) -> (String, Vec<&'static str>) {
        let result = unwrap(url).unwrap_or_else(|| panic!("not recognised: {url}"));
        assert_eq!(result.warning, None, "{url}");
        (result.url, result.rewriters)
    }

    /// Asserts one clean unwrapping by `rewriter` to `expected`.
    fn assert_unwraps(url: &str, expected: &str, rewriter: &str) {
        assert_eq!(clean(url), (expected.to_owned(), vec![rewriter]), "{url}");
    }

    /// Asserts that the outermost wrapper is malformed: input kept, warning naming `label`.
    fn assert_malformed(url: &str, label: &str, reason: &str) {
        let result = unwrap(url).unwrap_or_else(|| panic!("not recognised: {url}"));
        assert_eq!(result.url, url);
        assert!(result.rewriters.is_empty(), "{url}: {result:?}");
        let warning = result.warning.unwrap_or_default();
        assert!(
            warning.starts_with(&format!("{label} link could not be decoded: ")),
            "{url}: {warning}"
        );
        assert!(warning.contains(reason), "{url}: {warning}");
    }

    // XSOAR FormatURLApiModule_test.py ATP_REDIRECTS (demisto/content, MIT).
    #[test]
    fn safe_links_from_xsoar() {
        assert_unwraps(
            "https://na01.safelinks.protection.outlook.com/?url=https%3A%2F%2Foffice.memoriesflower.com\
             %2FPermission%2Foffice.php&data=01%7C01%7Cdavid.levin%40mheducation.com\
             %7C0ac9a3770fe64fbb21fb08d50764c401%7Cf919b1efc0c347358fca092\
             8ec39d8d5%7C0&sdata=PEoDOerQnha%2FACafNx8JAep8O9MdllcKCsHET2Ye%2B4%3D&reserved=0",
            "https://office.memoriesflower.com/Permission/office.php",
            "microsoft_safelinks",
        );
        // XSOAR decodes twice and expects `paulameixner@curo.com`; one level of encoding
        // belongs to the wrapper, the second to the original URL, which keeps its `%40`
        assert_unwraps(
            "http://nam12.safelinks.protection.outlook.com/\
             ?url=http%3A%2F%2Fi.ms00.net%2Fsubscribe%3Fserver_action%3D\
             Unsubscribe%26list%3Dvalintry2%26sublist%3D*%26msgid%3D1703700099.20966\
             %26email_address%3Dpaulameixner%2540curo.com&data=05%7C02%7Cpaulameixner%40curo.com%7C\
             93f0eea20f1c47350eb508dc07b40542%7C2dc14abb79414377a7d259f436e42867\
             %7C1%7C0%7C638393716982915257%7C\
             Unknown%7CTWFpbGZsb3d8eyJWIjoiMC4wLjAwMDAiLCJQIjoiV2luMzIiLCJBTiI6Ik1haWwiLCJXVCI6Mn0%3D%7C\
             3000%7C%7C%7C&sdata=%2FwfuIapNXRbZBgLVK651uTH%2FwXrSZFqwdvhvWK6Azwk%3D&reserved=0",
            "http://i.ms00.net/subscribe?server_action=Unsubscribe&list=valintry2&\
             sublist=*&msgid=1703700099.20966&email_address=paulameixner%40curo.com",
            "microsoft_safelinks",
        );
        // XSOAR's `/ap/` vectors, with their defanged `hxxps` refanged as the extractor does
        assert_unwraps(
            "https://nam10.safelinks.protection.outlook.com/ap/w-59523e83/?url=https://test.com/test&data=",
            "https://test.com/test",
            "microsoft_safelinks",
        );
        assert_unwraps(
            "https://nam10.safelinks.protection.office365.us/ap/w-59523e83/?url=https://test.com/test&data=",
            "https://test.com/test",
            "microsoft_safelinks",
        );
    }

    // kachi tests/test_main.py (ninoseki/kachi, MIT): one link per rule, all to example.com.
    #[test]
    fn one_link_per_gateway_from_kachi() {
        for (url, rewriter) in [
            (
                "https://x.linkprotect.cudasvc.com/?a=http%3A%2F%2Fexample.com",
                "barracuda_linkprotect",
            ),
            (
                "https://protect2.fireeye.com/v1/url?k=abc&u=http%3A%2F%2Fexample.com",
                "fireeye",
            ),
            (
                "https://nam01.safelinks.protection.outlook.com/?url=http%3A%2F%2Fexample.com",
                "microsoft_safelinks",
            ),
            (
                "https://urldefense.proofpoint.com/v1/url?u=http://example.com&k=foo",
                "proofpoint_v1",
            ),
            (
                "https://urldefense.proofpoint.com/v2/url?u=http-3A__example.com&d=foo",
                "proofpoint_v2",
            ),
            (
                "https://imsva91.ctp.trendmicro.com/wis/clicktime/v1/query?url=http%3A%2F%2Fexample.com",
                "trendmicro_clicktime",
            ),
            (
                "https://urldefense.us/v3/__http://example.com__;!abc$",
                "proofpoint_v3",
            ),
        ] {
            assert_unwraps(url, "http://example.com", rewriter);
        }
        assert_unwraps(
            "https://eu-central-1.protection.sophos.com/?d=sophos.com&u=aHR0cHM6Ly93d3cuc29waG9zLmNvbS9kZS1kZS9wcm9kdWN0cy9zb3Bob3MtZW1haWw=&i=NjJkMTA1NzEwNWJkNDAxMDc5ZDliN2Uy&t=OGE0L3MwTUdrUmE0NXdkWEtxSzdGdUMxS0JsRDFlK2tmcThqK2FSQjBYQT0=&h=0d5a5f867dd841698a9ee6af8c1d8846&s=AVNPUEhUT0NFTkNSWVBUSVaP4zyKF4qdzGb8PYXRFY2poaAOWE20fUiquUBd3DxoZw",
            "https://www.sophos.com/de-de/products/sophos-email",
            "sophos",
        );
        assert_eq!(unwrap("http://example.com"), None);
    }

    // XSOAR FormatURLApiModule_test.py PROOF_POINT_REDIRECTS (demisto/content, MIT).
    #[test]
    fn proofpoint_from_xsoar() {
        assert_unwraps(
            "https://urldefense.proofpoint.com/v2/url?u=https-3A__example.com_something.html",
            "https://example.com/something.html",
            "proofpoint_v2",
        );
        assert_unwraps(
            "https://urldefense.proofpoint.com/v2/url?\
             u=http-3A__links.mkt3337.com_ctt-3Fkn-3D3-26ms-3DMzQ3OTg3MDQS1-26r\
             -3DMzkxNzk3NDkwMDA0S0-26b-3D0-26j-3DMTMwMjA1ODYzNQS2-26mt-3D1-26rt-3D0&d=DwMFaQ&c\
             =Vxt5e0Osvvt2gflwSlsJ5DmPGcPvTRKLJyp031rXjhg&r=MujLDFBJstxoxZI_GKbsW7wxGM7nnIK__qZvVy6j9Wc&m\
             =QJGhloAyfD0UZ6n8r6y9dF-khNKqvRAIWDRU_K65xPI&s=ew-rOtBFjiX1Hgv71XQJ5BEgl9TPaoWRm_Xp9Nuo8bk&e=",
            "http://links.mkt3337.com/ctt?kn=3&ms=MzQ3OTg3MDQS1&r=MzkxNzk3NDkwMDA0S0&b=0&j=\
             MTMwMjA1ODYzNQS2&mt=1&rt=0",
            "proofpoint_v2",
        );
        // plain text keeps the href's `&amp;`
        assert_unwraps(
            "https://urldefense.proofpoint.com/v1/url?u=http://www.bouncycastle.org/\
             &amp;k=oIvRg1%2BdGAgOoM1BIlLLqw%3D%3D%0A\
             &amp;r=IKM5u8%2B%2F%2Fi8EBhWOS%2BqGbTqCC%2BrMqWI%2FVfEAEsQO%2F0Y%3D%0A&amp;m\
             =Ww6iaHO73mDQpPQwOwfLfN8WMapqHyvtu8jM8SjqmVQ%3D%0A&amp;s\
             =d3583cfa53dade97025bc6274c6c8951dc29fe0f38830cf8e5a447723b9f1c9a",
            "http://www.bouncycastle.org/",
            "proofpoint_v1",
        );
        for host in ["urldefense.com", "urldefense.us"] {
            assert_unwraps(
                &format!(
                    "https://{host}/v3/__https://google.com:443/\
                     search?q=a*test&gs=ps__;Kw!-612Flbf0JvQ3kNJkRi5Jg\
                     !Ue6tQudNKaShHg93trcdjqDP8se2ySE65jyCIe2K1D_uNjZ1Lnf6YLQERujngZv9UWf66ujQIQ$"
                ),
                "https://google.com:443/search?q=a+test&gs=ps",
                "proofpoint_v3",
            );
        }
    }

    // Proofpoint's URL Decoder API documentation example, as quoted in binref/refinery's tests:
    // `-2D` and `-5F` are the original `-` and `_`.
    #[test]
    fn proofpoint_v2_escaped_hyphen_and_underscore() {
        assert_unwraps(
            "https://urldefense.proofpoint.com/v2/url?u=https-3A__media.mnn.com_assets_images_2016_06_jupiter-2Dnasa.jpg.638x0-5Fq80-5Fcrop-2Dsmart.jpg&amp;d=DwMBaQ&amp;c=Vxt5e0Osvvt2gflwSlsJ5DmPGcPvTRKLJyp031rXjhg&amp;r=BTD8MPjq1qSLi0tGKaB5H6aCJZZBjwYkLyorZdRQrnY&amp;m=iKjixvaJuqvmReS78AB0JiActTrR_liSq7lDRjEQ9DE&amp;s=-M8Vz-GV-kqkNVf1BAtv38DdudAHVDAI6_jQQLVmleE&amp;e=",
            "https://media.mnn.com/assets/images/2016/06/jupiter-nasa.jpg.638x0_q80_crop-smart.jpg",
            "proofpoint_v2",
        );
        // an href whose `&amp;` the gateway encoded comes back as `&`
        assert_unwraps(
            "https://urldefense.proofpoint.com/v2/url?u=https-3A__a.example.com_-3Fa-3D1-26amp-3Bb-3D2&d=x",
            "https://a.example.com/?a=1&b=2",
            "proofpoint_v2",
        );
    }

    // cardi/proofpoint-url-decoder decode_test.py (CC0).
    #[test]
    fn proofpoint_from_cardi() {
        let v2 = |u: &str| format!("https://urldefense.com/v2/url?u={u}&d=&c=&r=&m=&s=&e=");
        assert_unwraps(
            &v2("https-3A__www.example.com_-23-23-23-23-23foobar"),
            "https://www.example.com/#####foobar",
            "proofpoint_v2",
        );
        assert_unwraps(
            &v2("https-3A__www.example.com_-40-40-21-40foobar"),
            "https://www.example.com/@@!@foobar",
            "proofpoint_v2",
        );
        let hashes = |n: usize| "#".repeat(n);
        for (url, expected) in [
            // empty tail: the URL is as written
            (
                "https://urldefense.com/v3/__http://www.example.com__;!!foo!bar$".to_owned(),
                "http://www.example.com".to_owned(),
            ),
            // a lone `*`
            (
                "https://urldefense.com/v3/__https://example.com/*newsletter__;Iw!!foo!bar$"
                    .to_owned(),
                "https://example.com/#newsletter".to_owned(),
            ),
            // moved `%` stay percent-encoded: no second decoding
            (
                "https://urldefense.com/v3/__http://example.com/?=a1!b2@c3*d4$5e*6*5E7&8*9(10*7C*5C**B7D*7B__;IyUlKiUlW10lJQ!!foo!bar$".to_owned(),
                "http://example.com/?=a1!b2@c3#d4$5e%6%5E7&8*9(10%7C%5C[]%7D%7B".to_owned(),
            ),
            (
                "https://urldefense.com/v3/__http://www.example.com/**_test__;IyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyM!!foo!bar$".to_owned(),
                format!("http://www.example.com/{}test", hashes(65)),
            ),
            (
                "https://urldefense.com/v3/__http://www.example.com/**_**Atest__;IyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIw!!foo!bar$".to_owned(),
                format!("http://www.example.com/{}test", hashes(67)),
            ),
            // chained runs: 65 + 65 + 1
            (
                "https://urldefense.com/v3/__http://www.example.com/**_**_*test__;IyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyM!!foo!bar$".to_owned(),
                format!("http://www.example.com/{}test", hashes(131)),
            ),
        ] {
            assert_unwraps(&url, &expected, "proofpoint_v3");
        }
    }

    // cardi/proofpoint-url-decoder decode_test.py (CC0), TestSequenceUTF8: runs count bytes.
    #[test]
    fn proofpoint_v3_runs_count_utf8_bytes() {
        for (url, expected) in [
            (
                "https://urldefense.com/v3/__http://www.example.com/**E.html__;5L2g5aW9!!foo!bar$",
                "http://www.example.com/你好.html",
            ),
            (
                "https://urldefense.com/v3/__http://www.example.com/**Aa*.html__;w60j!!foo!bar$",
                "http://www.example.com/ía#.html",
            ),
            (
                "https://urldefense.com/v3/__http://www.example.com/**Aa*a*.html__;w60jIw!!foo!bar$",
                "http://www.example.com/ía#a#.html",
            ),
            (
                "https://urldefense.com/v3/__http://www.example.com/**F.html__;w60jIyMjIw!!foo!bar$",
                "http://www.example.com/í#####.html",
            ),
            (
                "https://urldefense.com/v3/__http://www.example.com/**_**5.html__;w6DDqMOsw7LDucOAw4jDjMOSw5nDocOpw63Ds8O6w73DgcOJw43Dk8Oaw53DosOqw67DtMO7w4LDisOOw5TDm8Ojw7HDtcODw5HDlcOkw6vDr8O2w7zDv8OEw4vDj8OWw5zFuMOlw4XDpsOGxZPFksOnw4fDsMOQw7jDmA!!foo!bar$",
                "http://www.example.com/àèìòùÀÈÌÒÙáéíóúýÁÉÍÓÚÝâêîôûÂÊÎÔÛãñõÃÑÕäëïöüÿÄËÏÖÜŸåÅæÆœŒçÇðÐøØ.html",
            ),
        ] {
            assert_unwraps(url, expected, "proofpoint_v3");
        }
    }

    #[test]
    fn proofpoint_v3_one_slash_scheme_is_repaired() {
        assert_unwraps(
            "https://urldefense.com/v3/__https:/a.example.com/x__;!!c!s$",
            "https://a.example.com/x",
            "proofpoint_v3",
        );
        assert_unwraps(
            "https://urldefense.com/v3/__HTTP:/a.example.com__;!!c!s$",
            "HTTP://a.example.com",
            "proofpoint_v3",
        );
    }

    // XSOAR ATP_REDIRECTS (demisto/content, MIT): Safe Links around Proofpoint v3.
    #[test]
    fn safe_links_around_proofpoint_v3() {
        assert_eq!(
            clean(
                "https://na01.safelinks.protection.outlook.com/?url=https%3A//urldefense.com/v3/__\
                 https%3A//google.com%3A443/search%3Fq%3Da%2Atest%26gs%3Dps__%3BKw%21-612Flbf0JvQ\
                 3kNJkRi5Jg&"
            ),
            (
                "https://google.com:443/search?q=a+test&gs=ps".to_owned(),
                vec!["microsoft_safelinks", "proofpoint_v3"]
            )
        );
    }

    #[test]
    fn proofpoint_v3_around_fireeye_and_sophos_around_barracuda() {
        // the four `%` of the FireEye link are moved to the tail (`JSUlJQ` is `%%%%`)
        assert_eq!(
            clean(
                "https://urldefense.com/v3/__https://protect2.fireeye.com/v1/url?k=abc&q=1&e=0f&u=https*3A*2F*2Fwww.example.com*2Fx__;JSUlJQ!!cust!sig$"
            ),
            (
                "https://www.example.com/x".to_owned(),
                vec!["proofpoint_v3", "fireeye"]
            )
        );
        let barracuda = "https://linkprotect.cudasvc.com/url?a=https%3a%2f%2fwww.example.com%2fpage&c=E,1,abc&typo=1";
        let sophos = format!(
            "https://us-west-2.protection.sophos.com/?d=cudasvc.com&u={}&i=x&t=y&h=z",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(barracuda)
        );
        assert_eq!(
            clean(&sophos),
            (
                "https://www.example.com/page".to_owned(),
                vec!["sophos", "barracuda_linkprotect"]
            )
        );
    }

    // XSOAR FIREEYE_REDIRECT and TRENDMICRO_REDIRECT (demisto/content, MIT).
    #[test]
    fn fireeye_and_trend_micro_from_xsoar() {
        assert_unwraps(
            "https://protect2.fireeye.com/v1/url?\
             k=00bf92e9-5f24adeb-00beb0cd-0cc47aa88f82-a1f32e4f84d91cbe&q=1\
             &e=221919da-9d68-429a-a70e-9d8d836ca107&u=https%3A%2F%2Fwww.facebook.com%2FNamshiOfficial",
            "https://www.facebook.com/NamshiOfficial",
            "fireeye",
        );
        // XSOAR's vector still holds quoted-printable `=3D` (it expects them dropped); the
        // extractor sees transfer-decoded text, so they are decoded here
        assert_unwraps(
            "https://imsva91-ctp.trendmicro.com:443/wis/clicktime/v1/query?\
             url=http%3a%2f%2fclick.sanantonioshoemakers.com\
             %2f%3fqs%3dba654fa7d9346fec1b=3fa6c55906d045be350d0ee6e3ed\
             c4ff33ef33eacb79b79602f5aaf719ee16c3d24e8489293=4d3&\
             umid=B8AB568B-E738-A205-9C9E-ECD7B0A0383F&auth=00e18db2b3f9ca3ba6337946518e0b003516e16e-\
             5a8d41640e706acd29c760ae7a8cd40=f664d6489",
            "http://click.sanantonioshoemakers.com/?qs=ba654fa7d9346fec1b=\
             3fa6c55906d045be350d0ee6e3edc4ff33ef33eacb79b79602f5aaf719ee16c3d24e8489293=4d3",
            "trendmicro_clicktime",
        );
    }

    #[test]
    fn trend_micro_unencoded_value_runs_to_umid() {
        assert_unwraps(
            "https://eu1-urlprotect.trendmicro.com/wis/clicktime/v1/query?url=https://a.example.com/x?y=1%26&z=2&umid=0F-1&auth=ab",
            "https://a.example.com/x?y=1%26&z=2",
            "trendmicro_clicktime",
        );
    }

    // Gateway formats without a permissively licensed suite; the shapes are those seen in
    // published links, with example.com targets and made-up tokens.
    #[test]
    fn cisco_google_and_barracuda_shapes() {
        assert_unwraps(
            "https://secure-web.cisco.com/1EH1B-CLV31IF8vcULm_niGDoJ/https%3A%2F%2Fwww.example.com%2Fa%3Fb%3D1",
            "https://www.example.com/a?b=1",
            "cisco_secure_email",
        );
        assert_unwraps(
            "https://www.google.com/url?q=https://a.example.com/?q%3Da+b&sa=D&source=editors&ust=1&usg=AOv",
            "https://a.example.com/?q=a+b",
            "google_redirect",
        );
        // a search result link: empty `q`, the target in `url`
        assert_unwraps(
            "https://www.google.co.uk/url?sa=t&rct=j&q=&esrc=s&source=web&url=https%3A%2F%2Fa.example.com%2F&usg=x",
            "https://a.example.com/",
            "google_redirect",
        );
        assert_unwraps(
            "https://google.de/url?url=http%3A%2F%2Fa.example.com",
            "http://a.example.com",
            "google_redirect",
        );
        assert_unwraps(
            "https://linkprotect.cudasvc.com/url?a=https%3a%2f%2fwww.example.com%2freservations%3fpromo_code%3dGEO&c=E,1,gq-fB3Ov_XUDr&typo=1",
            "https://www.example.com/reservations?promo_code=GEO",
            "barracuda_linkprotect",
        );
    }

    #[test]
    fn plus_is_never_a_space() {
        assert_unwraps(
            "https://nam01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fa.example.com%2Fs%3Fq%3Da+b%2Bc&data=x",
            "https://a.example.com/s?q=a+b+c",
            "microsoft_safelinks",
        );
    }

    #[test]
    fn hosts_match_case_insensitively_after_userinfo_without_port_or_root_dot() {
        for url in [
            "HTTPS://NAM01.SafeLinks.Protection.Outlook.COM/?url=https%3A%2F%2Fa.example.com%2F",
            "https://nam01.safelinks.protection.outlook.com./?url=https%3A%2F%2Fa.example.com%2F",
            "https://user:pw@nam01.safelinks.protection.outlook.com:443/?url=https%3A%2F%2Fa.example.com%2F",
            "https://nam01.safelinks.protection.outlook.com/?data=1&amp;url=https%3A%2F%2Fa.example.com%2F",
        ] {
            assert_unwraps(url, "https://a.example.com/", "microsoft_safelinks");
        }
    }

    #[test]
    fn hosts_are_never_matched_by_substring() {
        for url in [
            "https://evil.com/?x=safelinks.protection.outlook.com&url=https%3A%2F%2Fa.example.com",
            "https://evil.com/safelinks.protection.outlook.com/?url=https%3A%2F%2Fa.example.com",
            "https://safelinks.protection.outlook.com.evil.com/?url=https%3A%2F%2Fa.example.com",
            "https://nam01.safelinks.protection.outlook.com@evil.com/?url=https%3A%2F%2Fa.example.com",
            "https://evil.com\\@nam01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fa.example.com",
            "https://notsafelinks.protection.outlook.com/?url=https%3A%2F%2Fa.example.com",
            "https://urldefense.com.evil.net/v3/__https://a.example.com__;!!c!s$",
            "https://evilurldefense.com/v3/__https://a.example.com__;!!c!s$",
            "https://google.evil.com/url?q=https://a.example.com",
            "https://evilgoogle.com/url?q=https://a.example.com",
            "https://google.blogspot.com/url?q=https://a.example.com",
            "https://maps.google.com/url?q=https://a.example.com",
            "https://google.zzzz/url?q=https://a.example.com",
            "https://www.google.com/search?q=https://a.example.com",
            "https://www.google.com/url/x?q=https://a.example.com",
            "https://evil-ctp.trendmicro.com.evil.net/wis/clicktime/v1/query?url=https://a.example.com",
            "https://evilctp.trendmicro.com/wis/clicktime/v1/query?url=https://a.example.com",
            "https://x-ctp.trendmicro.com/other?url=https://a.example.com",
            "https://protect2.fireeye.com.evil.net/v1/url?u=https%3A%2F%2Fa.example.com",
            "https://urldefense.proofpoint.com/v4/url?u=https-3A__a.example.com",
            "https://[2001:db8::1]/?url=https%3A%2F%2Fa.example.com",
            "ftp://nam01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fa.example.com",
            "",
        ] {
            assert_eq!(unwrap(url), None, "{url}");
        }
    }

    #[test]
    fn mimecast_cannot_be_unwrapped_offline() {
        assert_eq!(
            unwrap("https://protect-eu.mimecast.com/s/AbCdEfGhIjKlMn?domain=example.com"),
            None
        );
        assert_eq!(
            unwrap("https://url.uk.m.mimecastprotect.com/s/AbCdEfGh?domain=example.com"),
            None
        );
    }

    #[test]
    fn malformed_safe_links_and_proofpoint_keep_the_input_with_a_warning() {
        let safe = "Microsoft Defender Safe Links";
        assert_malformed(
            "https://nam01.safelinks.protection.outlook.com/?data=1",
            safe,
            "no `url` parameter",
        );
        assert_malformed(
            "https://nam01.safelinks.protection.outlook.com/?url=&data=1",
            safe,
            "is empty",
        );
        assert_malformed(
            "https://nam01.safelinks.protection.outlook.com/?url=javascript%3Aalert(1)",
            safe,
            "not an http(s) URL",
        );
        assert_malformed(
            "https://nam01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fa.example.com%2F%FF",
            safe,
            "not UTF-8",
        );
        assert_malformed(
            "https://nam01.safelinks.protection.outlook.com/?url=https%3A%2F%2F",
            safe,
            "no host",
        );
        let v1 = "Proofpoint URL Defense v1";
        assert_malformed("https://urldefense.proofpoint.com/v1/url?k=1", v1, "no `u`");
        assert_malformed(
            "https://urldefense.proofpoint.com/v1/url?u=&k=1",
            v1,
            "empty",
        );
        assert_malformed(
            "https://urldefense.proofpoint.com/v2/url?u=data-3Atext&d=1",
            "Proofpoint URL Defense v2",
            "not an http(s) URL",
        );
        let v3 = "Proofpoint URL Defense v3";
        // cardi's incomplete link
        assert_malformed(
            "https://urldefense.com/v3/__http://www.example.com/",
            v3,
            "no `__;`",
        );
        assert_malformed(
            "https://urldefense.com/v3/____;Iw!!foo!bar$",
            v3,
            "no `__;`",
        );
        assert_malformed(
            "https://urldefense.com/v3/__https://a.example.com/**__;Iw!!c!s$",
            v3,
            "run `**` is cut short",
        );
        assert_malformed(
            "https://urldefense.com/v3/__https://a.example.com/**.x__;Iw!!c!s$",
            v3,
            "run `**.` has an unknown length letter",
        );
        assert_malformed(
            "https://urldefense.com/v3/__https://a.example.com/**E.html__;Iw!!c!s$",
            v3,
            "run `**E` wants 6 bytes of the `__;` tail, which has 1 left",
        );
        assert_malformed(
            "https://urldefense.com/v3/__https://a.example.com/*x__;!!c!s$",
            v3,
            "run `*` wants 1 byte of the `__;` tail, which has 0 left",
        );
        assert_malformed(
            "https://urldefense.com/v3/__https://a.example.com/*x__;I$w!!c!s$",
            v3,
            "not base64url",
        );
        assert_malformed(
            "https://urldefense.com/v3/__https://a.example.com/*x__;_w!!c!s$",
            v3,
            "not UTF-8",
        );
    }

    #[test]
    fn malformed_wrappers_of_other_gateways_keep_the_input_with_a_warning() {
        assert_malformed(
            "https://linkprotect.cudasvc.com/url?c=E,1,x&typo=1",
            "Barracuda LinkProtect",
            "no `a`",
        );
        assert_malformed(
            "https://secure-web.cisco.com/1EH1B-CLV31IF8vcULm",
            "Cisco Secure Email",
            "no URL after the token",
        );
        assert_malformed(
            "https://secure-web.cisco.com/1EH1B/ftp%3A%2F%2Fa.example.com",
            "Cisco Secure Email",
            "not an http(s) URL",
        );
        assert_malformed(
            "https://www.google.com/url?sa=t&q=",
            "Google redirect",
            "no `q` or `url` parameter",
        );
        assert_malformed(
            "https://www.google.com/url?q=cats",
            "Google redirect",
            "not an http(s) URL",
        );
        // the domain-only form carries no URL
        assert_malformed(
            "https://eu-central-1.protection.sophos.com/?d=example.com",
            "Sophos Email",
            "no `u`",
        );
        assert_malformed(
            "https://eu-central-1.protection.sophos.com/?d=example.com&u=!!!",
            "Sophos Email",
            "not base64url",
        );
        assert_malformed(
            "https://x-ctp.trendmicro.com/wis/clicktime/v1/query?umid=1",
            "Trend Micro click-time",
            "no `url`",
        );
        assert_malformed(
            "https://protect2.fireeye.com/v1/url?k=abc&q=1",
            "FireEye/Trellix",
            "no `u`",
        );
    }

    #[test]
    fn a_malformed_nested_wrapper_keeps_what_was_unwrapped() {
        let result = unwrap(
            "https://nam01.safelinks.protection.outlook.com/?url=https%3A%2F%2Furldefense.com%2Fv3%2F__https%3A%2F%2Fa.example.com%2F**__%3BIw%21%21c%21s%24&data=1",
        )
        .unwrap();
        assert_eq!(
            result.url,
            "https://urldefense.com/v3/__https://a.example.com/**__;Iw!!c!s$"
        );
        assert_eq!(result.rewriters, ["microsoft_safelinks"]);
        assert_eq!(
            result.warning.as_deref(),
            Some("Proofpoint URL Defense v3 link could not be decoded: run `**` is cut short")
        );
    }

    #[test]
    fn nesting_stops_at_the_depth_cap() {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let nest = |levels: usize| {
            (0..levels).fold("https://a.example.com/".to_owned(), |inner, _| {
                format!(
                    "https://nam01.safelinks.protection.outlook.com/?url={}&data=1",
                    utf8_percent_encode(&inner, NON_ALPHANUMERIC)
                )
            })
        };
        let (url, rewriters) = clean(&nest(MAX_DEPTH));
        assert_eq!(url, "https://a.example.com/");
        assert_eq!(rewriters, vec!["microsoft_safelinks"; MAX_DEPTH]);

        let result = unwrap(&nest(MAX_DEPTH + 1)).unwrap();
        assert_eq!(result.url, nest(1));
        assert_eq!(result.rewriters, vec!["microsoft_safelinks"; MAX_DEPTH]);
        assert_eq!(
            result.warning.as_deref(),
            Some(
                "Microsoft Defender Safe Links link left wrapped: more than 8 wrappers were nested"
            )
        );
    }

    #[test]
    fn html_references_are_unescaped_and_others_kept() {
        assert_eq!(
            html_unescape("a&amp;b&lt;&gt;&quot;&apos;&#39;&#x41;"),
            "a&b<>\"''A"
        );
        assert_eq!(
            html_unescape("a&b&unknown;&#0;&#xZZ;&"),
            "a&b&unknown;&#0;&#xZZ;&"
        );
        assert!(matches!(html_unescape("plain"), Cow::Borrowed("plain")));
        assert_eq!(html_unescape("é&amp;例&#20363;"), "é&例例");
    }

    #[test]
    fn run_letters_cover_two_to_sixty_five_bytes() {
        assert_eq!(run_length('A'), Some(2));
        assert_eq!(run_length('Z'), Some(27));
        assert_eq!(run_length('a'), Some(28));
        assert_eq!(run_length('z'), Some(53));
        assert_eq!(run_length('0'), Some(54));
        assert_eq!(run_length('9'), Some(63));
        assert_eq!(run_length('-'), Some(64));
        assert_eq!(run_length('_'), Some(65));
        assert_eq!(run_length('*'), None);
        assert_eq!(run_length('é'), None);
    }

    #[test]
    fn long_hostile_wrappers_take_linear_time() {
        // 8 KB each: a search that went quadratic in any of them would not finish quickly
        let runs = format!(
            "https://urldefense.com/v3/__https://a.example.com/{}__;!!c!s$",
            "**A".repeat(2730)
        );
        assert!(unwrap(&runs).unwrap().warning.is_some());
        let amps = format!(
            "https://nam01.safelinks.protection.outlook.com/?{}url=https%3A%2F%2Fa.example.com",
            "&amp;".repeat(1600)
        );
        assert_eq!(clean(&amps).0, "https://a.example.com");
        let entities = format!(
            "https://urldefense.proofpoint.com/v2/url?u=https-3A__a.example.com_{}&d=1",
            "-26-26-26-26-26-26-26-26x".repeat(300)
        );
        assert!(clean(&entities).0.len() > 2000);
        let unders = format!(
            "https://urldefense.com/v3/__https://a.example.com/{}",
            "_".repeat(8000)
        );
        assert!(unwrap(&unders).unwrap().warning.is_some());
    }

    #[test]
    fn arbitrary_mixes_of_wrapper_pieces_never_panic() {
        // every wrapper's head, so that the random tails reach each decoder
        const HEADS: [&str; 20] = [
            "",
            "https://nam01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fa.example.com",
            "https://urldefense.com/v3/__https://a.example.com/",
            "https://urldefense.proofpoint.com/v2/url?u=https-3A__a.example.com_",
            "https://urldefense.proofpoint.com/v1/url?u=https://a.example.com/",
            "https://secure-web.cisco.com/t/https%3A%2F%2Fa.example.com",
            "https://www.google.com/url?q=https://a.example.com/",
            "https://protect2.fireeye.com/v1/url?u=https%3A%2F%2Fa.example.com",
            "https://x-ctp.trendmicro.com/wis/clicktime/v1/query?url=https://a.example.com",
            "https://nam01.safelinks.protection.outlook.com/?url=",
            "https://urldefense.proofpoint.com/v1/url?u=",
            "https://urldefense.proofpoint.com/v2/url?u=",
            "https://urldefense.com/v3/__",
            "https://linkprotect.cudasvc.com/url?a=",
            "https://secure-web.cisco.com/t/",
            "https://www.google.com/url?q=",
            "https://eu.protection.sophos.com/?u=",
            "https://x-ctp.trendmicro.com/wis/clicktime/v1/query?url=",
            "https://protect2.fireeye.com/v1/url?u=",
            "HTTP://",
        ];
        const PIECES: [&str; 44] = [
            "https://",
            "http:/",
            "a.example.com",
            "urldefense.com/v3/__",
            "nam01.safelinks.protection.outlook.com/?url=",
            "/",
            "__;",
            "__",
            "!!",
            "!",
            "*",
            "**",
            "A",
            "_",
            "-",
            "-3A",
            "-2F",
            "5L2g",
            "Iw",
            "aHR0cHM6Ly9h",
            "=",
            "&u=",
            "&url=",
            "&k=",
            "&umid=",
            "&amp;",
            "&#x",
            ";",
            "%",
            "%2F",
            "%E4",
            "%3A%2F%2F",
            "é",
            "例",
            ":",
            "@",
            "?",
            "#",
            ".",
            "\\",
            " ",
            "javascript:",
            "www.google.com/url?q=",
            "linkprotect.cudasvc.com/url?a=",
        ];
        let (mut recognised, mut unwrapped) = (0, 0);
        let tails = crate::extract::pseudo_random_texts(0x9e37_79b9_7f4a_7c15, &PIECES, 24, 30_000);
        for (i, tail) in tails.iter().enumerate() {
            let text = format!("{}{tail}", HEADS[i % HEADS.len()]);
            let Some(result) = unwrap(&text) else {
                continue;
            };
            recognised += 1;
            unwrapped += usize::from(!result.rewriters.is_empty());
            assert!(result.rewriters.len() <= MAX_DEPTH, "{text:?}");
            if result.warning.is_none() {
                assert!(!result.rewriters.is_empty(), "{text:?}");
            }
            if result.rewriters.is_empty() {
                assert_eq!(result.url, text);
            } else {
                // whatever was unwrapped is an http(s) URL with a host
                assert!(split_host(&result.url).is_some(), "{text:?}: {result:?}");
            }
        }
        // the mixes must reach the decoders, not only the host check
        assert!(
            recognised > 20_000 && unwrapped > 5_000,
            "{recognised} {unwrapped}"
        );
    }
}
