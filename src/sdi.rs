//! Source data identifiers, byte-compatible with the Splunk SOAR IMAP app.
//!
//! Playbooks and the platform's duplicate detection key on these strings, so they must
//! match the Python app bit for bit: a container is `"<md5(folder)> : <uid>"` and an
//! artifact is the md5 of Python's `json.dumps(artifact, sort_keys=True)` (default
//! separators `", "` and `": "`, `ensure_ascii` escaping) of the artifact without its SDI.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use serde_json::Value;

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex md5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The container SDI: md5 of the folder exactly as typed (not its UTF-7 form), then the UID.
pub fn container_sdi(folder: &str, email_id: u64) -> String {
    format!("{} : {email_id}", md5_hex(folder.as_bytes()))
}

/// The artifact SDI: md5 of the Python-style sorted JSON of `artifact` (which must not
/// yet carry its own `source_data_identifier`).
pub fn artifact_sdi(artifact: &Value) -> String {
    md5_hex(python_json(artifact).as_bytes())
}

/// [`artifact_sdi`] of an artifact held as a map, without copying it into a `Value`.
pub fn map_sdi(artifact: &serde_json::Map<String, Value>) -> String {
    map_sdi_with(&mut String::new(), artifact)
}

/// [`map_sdi`] serialising into `scratch`, which is cleared first: a container computes
/// dozens of SDIs, and growing a fresh string for each was a tenth of their cost.
pub fn map_sdi_with(scratch: &mut String, artifact: &serde_json::Map<String, Value>) -> String {
    scratch.clear();
    write_map(scratch, artifact);
    md5_hex(scratch.as_bytes())
}

/// The SDI of an IOC artifact, `{"cef": {key: value}, "found_in": locations, "name": name,
/// "run_automation": false}` (`found_in` only when there are locations), written straight
/// from its parts: a container has dozens of these, and walking a map for each cost more
/// than hashing it. `scratch` is cleared first.
pub fn ioc_sdi(
    scratch: &mut String,
    name: &str,
    key: &str,
    value: &str,
    locations: &[&str],
) -> String {
    scratch.clear();
    scratch.push_str("{\"cef\": {");
    write_string(scratch, key);
    scratch.push_str(": ");
    write_string(scratch, value);
    scratch.push_str("}, ");
    if !locations.is_empty() {
        scratch.push_str("\"found_in\": [");
        for (i, location) in locations.iter().enumerate() {
            if i > 0 {
                scratch.push_str(", ");
            }
            write_string(scratch, location);
        }
        scratch.push_str("], ");
    }
    scratch.push_str("\"name\": ");
    write_string(scratch, name);
    scratch.push_str(", \"run_automation\": false}");
    md5_hex(scratch.as_bytes())
}

/// Serialise `value` exactly as Python's `json.dumps(value, sort_keys=True)` does.
///
/// `serde_json`'s default map is a `BTreeMap`, whose byte order over UTF-8 keys equals
/// Python's code-point order, so iterating it gives `sort_keys` order.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            // Integers print the same in both languages; floats only arise from
            // platform input we echo, where serde_json's shortest form is what Python
            // `repr` prints for the common cases.
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_map(out, map),
    }
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>) {
    out.push('{');
    for (i, (key, item)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_string(out, key);
        out.push_str(": ");
        write_value(out, item);
    }
    out.push('}');
}

/// Python's `ensure_ascii` string form: ASCII escapes as in JSON, everything above
/// U+007F as `\uXXXX` (lower-case hex), astral characters as surrogate pairs.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    // Runs of printable ASCII other than `"` and `\\` are copied as they are.
    let mut rest = s;
    while !rest.is_empty() {
        let plain =
            crate::extract::find_byte(rest.as_bytes(), 0, needs_escape).unwrap_or(rest.len());
        out.push_str(&rest[..plain]);
        rest = &rest[plain..];
        let Some(ch) = rest.chars().next() else { break };
        rest = &rest[ch.len_utf8()..];
        escape_char(out, ch);
    }
    out.push('"');
}

/// A byte that does not stand for itself in Python's `ensure_ascii` output.
#[allow(
    clippy::needless_bitwise_bool,
    reason = "branch-free, so that find_byte's block test vectorises"
)]
fn needs_escape(b: u8) -> bool {
    !(b' '..=b'~').contains(&b) | (b == b'"') | (b == b'\\')
}

fn escape_char(out: &mut String, ch: char) {
    match ch {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        // Python escapes everything outside printable ASCII (0x20..=0x7e), DEL included.
        c if !(' '..='~').contains(&c) => {
            let mut units = [0u16; 2];
            for &unit in c.encode_utf16(&mut units).iter() {
                // by hand: `write!` per unit cost more than the rest of the string
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(char::from(HEX_DIGITS[usize::from((unit >> shift) & 0xf)]));
                }
            }
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_vector_ip_artifact() {
        let artifact = json!({"cef": {"sourceAddress": "10.1.2.3"}, "name": "IP Artifact", "run_automation": false});
        assert_eq!(
            python_json(&artifact),
            r#"{"cef": {"sourceAddress": "10.1.2.3"}, "name": "IP Artifact", "run_automation": false}"#
        );
        assert_eq!(artifact_sdi(&artifact), "63cf0f9f0dfaac57f56130f94c0d2901");
    }

    #[test]
    fn python_vector_email_artifact_with_non_ascii_and_lists() {
        // md5(json.dumps(artifact, sort_keys=True)) computed with CPython 3.11.
        let artifact = json!({
            "cef": {
                "emailHeaders": {
                    "Received": ["from a by b", "from c\r\n by d"],
                    "Subject": "=?utf-8?Q?caf=C3=A9?= 😀",
                    "decodedSubject": "café 😀"
                },
                "emailId": 5,
                "fromEmail": "Jörg <j@example.com>"
            },
            "cef_types": {"emailId": ["imap email id"], "fromEmail": ["email"], "toEmail": ["email"]},
            "name": "Email Artifact",
            "run_automation": false
        });
        assert_eq!(artifact_sdi(&artifact), "037aaca6355465095cce7a14a5e2fefb");
    }

    #[test]
    fn ioc_sdi_equals_the_sdi_of_the_artifact_map() {
        for (value, locations) in [
            ("10.1.2.3", &[][..]),
            ("b\u{fc}cher.example.org", &["header Received"][..]),
            (
                "\"q\"\\",
                &["attachment a\u{e9}.txt", "header Received"][..],
            ),
        ] {
            let mut artifact = json!({
                "cef": {"sourceAddress": value},
                "name": "IP Artifact",
                "run_automation": false
            });
            if !locations.is_empty() {
                artifact["found_in"] = json!(locations);
            }
            let expected = artifact_sdi(&artifact);
            let got = ioc_sdi(
                &mut "left over".to_owned(),
                "IP Artifact",
                "sourceAddress",
                value,
                locations,
            );
            assert_eq!(got, expected, "{artifact}");
        }
        assert_eq!(
            ioc_sdi(
                &mut String::new(),
                "IP Artifact",
                "sourceAddress",
                "10.1.2.3",
                &[]
            ),
            "63cf0f9f0dfaac57f56130f94c0d2901"
        );
    }

    #[test]
    fn spec_vector_folder_hash() {
        assert_eq!(
            container_sdi("inbox", 5),
            "af1cd994dfcb9286c394d142687ff5a0 : 5"
        );
        // The folder is hashed as typed: case and spelling matter.
        assert_eq!(
            container_sdi("Archive/2024", 3),
            "ccd7d7a6d1558bb39540226cfa071c8c : 3"
        );
        assert_ne!(container_sdi("INBOX", 1), container_sdi("inbox", 1));
    }

    #[test]
    fn escapes_like_python_ensure_ascii() {
        // Python: json.dumps({"k": "é\u2603😀\"\\\n\x01\x7f"}, sort_keys=True)
        let v = json!({"k": "é\u{2603}😀\"\\\n\u{1}\u{7f}"});
        assert_eq!(
            python_json(&v),
            r#"{"k": "\u00e9\u2603\ud83d\ude00\"\\\n\u0001\u007f"}"#
        );
    }

    #[test]
    fn sorts_keys_by_code_point_and_nests() {
        let v = json!({"b": [1, true, null], "a": {"z": "x", "B": 2}, "é": 0});
        assert_eq!(
            python_json(&v),
            r#"{"a": {"B": 2, "z": "x"}, "b": [1, true, null], "\u00e9": 0}"#
        );
    }
}
