//! The Email Artifact: a message's raw headers, decoded fields and addresses.

use std::{collections::HashMap, sync::LazyLock};

use regex::Regex;
use serde_json::{Map, Value, json};

use crate::mime::{RawHeader, headers::decode_words};
use crate::triage::{self, Hop};

/// The reference's header dict: case-insensitive, the last occurrence wins (its spelling
/// included), `Received` is the list of all values, plus `decoded*` fields that keep
/// the text around encoded words.
pub fn header_dict(headers: &[RawHeader]) -> Map<String, Value> {
    let mut last: HashMap<String, (&str, &str)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut received: Vec<Value> = Vec::new();
    for h in headers {
        let key = h.name.to_ascii_lowercase();
        if key == "received" {
            received.push(Value::String(h.value.clone()));
            continue;
        }
        if last.insert(key.clone(), (&h.name, &h.value)).is_none() {
            order.push(key);
        }
    }
    let mut dict = Map::new();
    for key in &order {
        if let Some((name, value)) = last.get(key) {
            dict.insert((*name).to_owned(), Value::String((*value).to_owned()));
        }
    }
    if !received.is_empty() {
        dict.insert("Received".into(), Value::Array(received));
    }
    for (header, field) in [
        ("subject", "decodedSubject"),
        ("to", "decodedTo"),
        ("from", "decodedFrom"),
        ("cc", "decodedCC"),
    ] {
        if let Some((_, value)) = last.get(header).filter(|(_, v)| !v.is_empty()) {
            dict.insert(field.into(), Value::String(decode_words(value)));
        }
    }
    dict
}

/// The last value of a header, by case-insensitive name.
pub fn header_value<'a>(headers: &'a [RawHeader], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .rev()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Whether the reference would build an Email Artifact for this header block: a
/// non-empty From or To, or any Message-ID.
pub fn looks_like_message(headers: &[RawHeader]) -> bool {
    let non_empty = |name| header_value(headers, name).is_some_and(|v| !v.trim().is_empty());
    non_empty("from") || non_empty("to") || header_value(headers, "message-id").is_some()
}

/// An Email Artifact (without SDI) for a header block; `email_id` only for the root
/// message and for forwards found in its bodies.
pub fn email_artifact(headers: &[RawHeader], email_id: Option<u64>) -> Map<String, Value> {
    let mut cef = Map::new();
    if let Some(from) = header_value(headers, "from").filter(|v| !v.is_empty()) {
        cef.insert("fromEmail".into(), Value::String(from.to_owned()));
    }
    if let Some(to) = header_value(headers, "to").filter(|v| !v.is_empty()) {
        cef.insert("toEmail".into(), Value::String(to.to_owned()));
    }
    cef.insert("emailHeaders".into(), Value::Object(header_dict(headers)));
    let mut cef_types = json!({"fromEmail": ["email"], "toEmail": ["email"]});
    if let Some(id) = email_id {
        // Always an integer: the reference wrote a string from get email by id and an
        // int from polls, so the same mail got two different artifact SDIs.
        cef.insert("emailId".into(), json!(id));
        cef_types["emailId"] = json!(["imap email id"]);
    }
    let mut artifact = Map::new();
    artifact.insert("name".into(), json!("Email Artifact"));
    artifact.insert("cef".into(), Value::Object(cef));
    artifact.insert("cef_types".into(), cef_types);
    artifact.insert("run_automation".into(), json!(false));
    artifact
}

/// Adds what the headers already tell an analyst to an Email Artifact: the receiver's
/// authentication verdict (`emailAuthentication`), sender tricks (`senderMismatch`), the
/// host that handed the mail to the receiving system (`originatingIp`, typed `ip` so
/// reputation actions take it) and the whole `Received` chain (`receivedHops`), internal
/// hops included so nothing is hidden. Each field only when it applies: an email without
/// any keeps the reference's artifact and identifier.
pub fn add_triage(artifact: &mut Map<String, Value>, headers: &[RawHeader], hops: Vec<Hop>) {
    let mut fields = Map::new();
    if let Some(verdicts) = triage::email_authentication(headers) {
        fields.insert("emailAuthentication".into(), json!(verdicts));
    }
    let mismatches = triage::sender_mismatches(headers);
    if !mismatches.is_empty() {
        fields.insert("senderMismatch".into(), json!(mismatches));
    }
    let originating = triage::originating_ip(&hops).map(str::to_owned);
    let typed = originating.is_some();
    if let Some(ip) = originating {
        fields.insert("originatingIp".into(), Value::String(ip));
    }
    if !hops.is_empty() {
        let hops = hops.into_iter().map(hop_value).collect();
        fields.insert("receivedHops".into(), Value::Array(hops));
    }
    if let Some(Value::Object(cef)) = artifact.get_mut("cef") {
        cef.extend(fields);
    }
    if typed && let Some(Value::Object(types)) = artifact.get_mut("cef_types") {
        types.insert("originatingIp".into(), json!(["ip"]));
    }
}

/// A hop as JSON, its strings moved rather than copied (every Received header of every
/// email becomes one; serializing them through serde cost a copy of each).
fn hop_value(hop: Hop) -> Value {
    let text = |value: Option<String>| value.map_or(Value::Null, Value::String);
    Value::Object(Map::from_iter([
        ("by_host".to_owned(), text(hop.by_host)),
        ("date".to_owned(), text(hop.date)),
        ("from_host".to_owned(), text(hop.from_host)),
        ("from_ip".to_owned(), text(hop.from_ip)),
        ("internal".to_owned(), Value::Bool(hop.internal)),
        ("with".to_owned(), text(hop.with)),
    ]))
}

static FORWARD_MARKER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?im)^[^\n]*forwarded message[^\n]*\n").ok());

/// The header block of a message forwarded inline in a plain-text body (a line such as
/// `---------- Forwarded message ---------` followed by `From:`/`To:`/`Subject:` lines), if any.
///
/// Reporters often forward a phish inline instead of attaching it; its headers are the
/// indicators the analyst needs. The marker search is linear-time (the reference's
/// pattern backtracked badly on long lines and never fired on UTF-8 bodies).
pub fn inline_forward(text: &str) -> Option<Vec<RawHeader>> {
    let marker = FORWARD_MARKER.as_ref()?;
    let rest = match may_hold_marker(text).then(|| marker.find(text)).flatten() {
        Some(m) => &text[m.end()..],
        None if starts_with_header(text) => text,
        None => return None,
    };
    let rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
    let headers = crate::mime::headers::header_block(rest);
    looks_like_message(&headers).then_some(headers)
}

/// Whether `text` holds `forwarded me` in any ASCII case: without it the marker cannot
/// match, and most bodies do not, so the regex (a tenth of a text body's scan) is skipped.
/// Only the `s` of the pattern has a non-ASCII case variant (`ſ`), so the test leaves it out.
fn may_hold_marker(text: &str) -> bool {
    const NEEDLE: &[u8] = b"forwarded me";
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = crate::extract::find_byte(bytes, from, |b| b | 0x20 == b'f') {
        if bytes
            .get(i..i + NEEDLE.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(NEEDLE))
        {
            return true;
        }
        from = i + 1;
    }
    false
}

fn starts_with_header(text: &str) -> bool {
    let first = text.trim_start().lines().next().unwrap_or("");
    ["from:", "to:", "message-id:"].iter().any(|p| {
        first
            .as_bytes()
            .get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> RawHeader {
        RawHeader {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn header_dict_keeps_last_value_and_lists_received() {
        let headers = [
            h("Received", "from a by b"),
            h("X-Tag", "one"),
            h("x-tag", "two"),
            h("Received", "from c by d"),
            h("From", "=?utf-8?Q?J=C3=B6rg?= <jorg@example.com>"),
        ];
        let dict = header_dict(&headers);
        assert_eq!(dict["x-tag"], "two");
        assert!(!dict.contains_key("X-Tag"));
        assert_eq!(dict["Received"], json!(["from a by b", "from c by d"]));
        assert_eq!(dict["From"], "=?utf-8?Q?J=C3=B6rg?= <jorg@example.com>");
        assert_eq!(dict["decodedFrom"], "Jörg <jorg@example.com>");
    }

    #[test]
    fn email_id_is_always_an_integer() {
        let art = email_artifact(&[h("From", "a@example.com")], Some(7));
        assert_eq!(art["cef"]["emailId"], json!(7));
        assert_eq!(art["cef_types"]["emailId"], json!(["imap email id"]));
        assert_eq!(art["cef"]["fromEmail"], "a@example.com");
        assert!(art["cef"].get("toEmail").is_none());
    }

    #[test]
    fn finds_inline_forwarded_headers() {
        let body = "FYI, looks phishy\n\n---------- Forwarded message ---------\nFrom: Bad Guy <bad@evil-login.com>\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nSubject: Verify your account\nTo: victim@example.com\n\nClick http://evil-login.com/x\n";
        let headers = inline_forward(body).unwrap();
        assert_eq!(
            header_value(&headers, "from"),
            Some("Bad Guy <bad@evil-login.com>")
        );
        assert_eq!(
            header_value(&headers, "subject"),
            Some("Verify your account")
        );
        assert!(inline_forward("just a note\nwith lines\n").is_none());
        // A first line with multi-byte characters where a header name could be.
        assert!(inline_forward("Fróm: x\n").is_none());
        assert!(inline_forward("日本語のテキスト\n").is_none());
        // the regex folds case the Unicode way: a long s is an s
        let long_s = "note\nFORWARDED MEſſAGE\nFrom: a@evil.example.com\n\nbody\n";
        assert!(inline_forward(long_s).is_some());
    }
}
