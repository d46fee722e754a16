//! The Vault Artifact: an attachment's name, hashes, size, type and vault id.

use md5::Md5;
use serde_json::{Map, Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::email::header_dict;
use crate::{mime::Attachment, sdi::hex};

/// The digests of a file; the SHA-1 is its vault id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashes {
    /// MD5 hex.
    pub md5: String,
    /// SHA-1 hex, also the vault id.
    pub sha1: String,
    /// SHA-256 hex.
    pub sha256: String,
}

impl FileHashes {
    /// Hash `bytes` once with each digest.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            md5: hex(&Md5::digest(bytes)),
            sha1: hex(&Sha1::digest(bytes)),
            sha256: hex(&Sha256::digest(bytes)),
        }
    }
}

/// A display name for an attachment: the sender's name with control characters and path
/// separators replaced by `_`, or `attachment-<n>.<ext>` when there is none.
///
/// The name is metadata only (the vault path is the hash), but platforms and analysts
/// copy it into paths and terminals, so it is made harmless here once.
pub fn file_name(attachment: &Attachment<'_>, index: usize) -> String {
    let cleaned: String = attachment
        .name
        .as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .map(|c| {
            if c.is_control() || c == '/' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if cleaned.chars().any(|c| c != '.' && c != '_') {
        return cleaned;
    }
    format!(
        "attachment-{index}.{}",
        extension_for(&attachment.content_type)
    )
}

fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "message/rfc822" | "message/global" => "eml",
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "image/svg+xml" => "svg",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "text/calendar" => "ics",
        "application/zip" => "zip",
        "application/ms-tnef" | "application/vnd.ms-tnef" => "dat",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => "bin",
    }
}

/// The SOAR "contains" types of a file, from its extension and its first bytes (the
/// reference used libmagic for the latter; these signatures are the ones it acted on).
pub fn contains(name: &str, bytes: &[u8]) -> Vec<&'static str> {
    let mut types = vec!["vault id"];
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "js" => types.push("javascript"),
        "doc" | "docx" => types.push("doc"),
        "xls" | "xlsx" => types.push("xls"),
        "vmsn" => types.extend(["os memory dump", "vm snapshot file"]),
        "vmss" => types.extend(["os memory dump", "vm suspend file"]),
        _ => {}
    }
    if bytes.starts_with(b"MZ") {
        types.extend(["pe file", "hash"]);
    } else if bytes.starts_with(b"%PDF-") {
        types.push("pdf");
    } else if bytes.starts_with(b"MDMP") {
        types.push("process dump");
    } else if bytes.starts_with(b"FWS") || bytes.starts_with(b"CWS") || bytes.starts_with(b"ZWS") {
        types.push("flash");
    }
    types
}

/// A Vault Artifact (without SDI and with `run_automation` false).
pub fn vault_artifact(
    attachment: &Attachment<'_>,
    file_name: &str,
    hashes: &FileHashes,
    container_id: Option<i64>,
) -> Map<String, Value> {
    let contains = contains(file_name, &attachment.bytes);
    let mut cef = Map::new();
    cef.insert(
        "headers".into(),
        Value::Object(header_dict(&attachment.headers)),
    );
    cef.insert("fileName".into(), json!(file_name));
    cef.insert("vaultId".into(), json!(hashes.sha1));
    cef.insert("cs6".into(), json!(hashes.sha1));
    cef.insert("cs6Label".into(), json!("Vault ID"));
    cef.insert("fileHashSha256".into(), json!(hashes.sha256));
    cef.insert("fileHashMd5".into(), json!(hashes.md5));
    cef.insert("fileHashSha1".into(), json!(hashes.sha1));
    cef.insert("fileSize".into(), json!(attachment.bytes.len()));
    cef.insert("fileContentType".into(), json!(attachment.content_type));
    let mut artifact = Map::new();
    artifact.insert("name".into(), json!("Vault Artifact"));
    artifact.insert("container_id".into(), json!(container_id));
    artifact.insert("cef".into(), Value::Object(cef));
    artifact.insert(
        "cef_types".into(),
        json!({"vaultId": contains, "cs6": contains}),
    );
    artifact.insert("run_automation".into(), json!(false));
    artifact
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn att(name: Option<&str>, ct: &str) -> Attachment<'static> {
        Attachment {
            depth: 0,
            name: name.map(str::to_owned),
            content_type: ct.into(),
            headers: Vec::new(),
            bytes: Cow::Borrowed(b"%PDF-1.4"),
            is_message: false,
            text_like: false,
        }
    }

    #[test]
    fn names_are_cleaned_never_paths() {
        assert_eq!(
            file_name(&att(Some("../../etc/passwd"), "text/plain"), 1),
            ".._.._etc_passwd"
        );
        assert_eq!(
            file_name(&att(Some("a\u{0}b\r\n.pdf"), "application/pdf"), 1),
            "a_b__.pdf"
        );
        assert_eq!(
            file_name(&att(Some(".."), "application/pdf"), 2),
            "attachment-2.pdf"
        );
        assert_eq!(
            file_name(&att(None, "message/rfc822"), 3),
            "attachment-3.eml"
        );
        assert_eq!(
            file_name(&att(Some("réport.pdf"), "application/pdf"), 1),
            "réport.pdf"
        );
    }

    #[test]
    fn sniffs_contains_from_magic_and_extension() {
        assert_eq!(
            contains("x.bin", b"MZ\x90\x00"),
            ["vault id", "pe file", "hash"]
        );
        assert_eq!(contains("invoice", b"%PDF-1.7"), ["vault id", "pdf"]);
        assert_eq!(contains("a.docx", b"PK"), ["vault id", "doc"]);
    }

    #[test]
    fn hashes_match_known_vectors() {
        let h = FileHashes::of(b"abc");
        assert_eq!(h.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(h.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            h.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
