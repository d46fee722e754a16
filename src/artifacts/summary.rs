//! The triage facts of a container at a glance, for `parse email`'s result data: what a
//! playbook branches on (the authentication verdict, the sender tricks, the originating
//! IP, the links a gateway wrapped or a text disguised) without walking the artifacts.

use serde_json::{Map, Value, json};

/// `email_authentication`, `sender_mismatch`, `originating_ip` and `received_hops` of the
/// container's root Email Artifact (null or empty when it has none), and the URL
/// Artifacts that were unwrapped (`unwrapped_urls`) or shown as another site
/// (`displayed_urls`). Every key is always present, so data paths hold for every email.
pub fn triage_summary(artifacts: &[Value]) -> Map<String, Value> {
    let root = artifacts
        .iter()
        .find(|a| a["name"] == "Email Artifact")
        .map(|a| &a["cef"]);
    let field = |name: &str| root.and_then(|cef| cef.get(name)).cloned();
    let mut unwrapped = Vec::new();
    let mut displayed = Vec::new();
    for cef in artifacts
        .iter()
        .filter(|a| a["name"] == "URL Artifact")
        .map(|a| &a["cef"])
    {
        let url = &cef["requestURL"];
        if let Some(wrapped) = cef.get("wrappedURL") {
            unwrapped
                .push(json!({"url": url, "wrapped_url": wrapped, "rewriter": cef["urlRewriter"]}));
        }
        if let Some(shown) = cef.get("displayedURL") {
            displayed.push(json!({"url": url, "displayed": shown}));
        }
    }
    Map::from_iter([
        (
            "email_authentication".to_owned(),
            field("emailAuthentication").unwrap_or(Value::Null),
        ),
        (
            "sender_mismatch".to_owned(),
            field("senderMismatch").unwrap_or_else(|| json!([])),
        ),
        (
            "originating_ip".to_owned(),
            field("originatingIp").unwrap_or(Value::Null),
        ),
        (
            "received_hops".to_owned(),
            field("receivedHops").unwrap_or_else(|| json!([])),
        ),
        ("unwrapped_urls".to_owned(), Value::Array(unwrapped)),
        ("displayed_urls".to_owned(), Value::Array(displayed)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_email_and_described_urls_are_summarised() {
        let artifacts = [
            json!({"name": "URL Artifact", "cef": {"requestURL": "https://plain.example.com/"}}),
            json!({"name": "URL Artifact", "cef": {"requestURL": "https://evil.example.net/",
                "wrappedURL": "https://x.safelinks.protection.outlook.com/?url=y",
                "urlRewriter": "microsoft_safelinks", "displayedURL": "https://paypal.com"}}),
            json!({"name": "Email Artifact", "cef": {"originatingIp": "203.0.113.5",
                "emailAuthentication": {"spf": "fail", "verdict": "fail"},
                "senderMismatch": ["reply_to_domain"]}}),
            json!({"name": "Email Artifact", "cef": {"originatingIp": "198.51.100.1"}}),
        ];
        let summary = triage_summary(&artifacts);
        assert_eq!(summary["originating_ip"], "203.0.113.5");
        assert_eq!(summary["email_authentication"]["verdict"], "fail");
        assert_eq!(summary["sender_mismatch"], json!(["reply_to_domain"]));
        assert_eq!(summary["received_hops"], json!([]));
        assert_eq!(
            summary["unwrapped_urls"],
            json!([{"url": "https://evil.example.net/",
                "wrapped_url": "https://x.safelinks.protection.outlook.com/?url=y",
                "rewriter": "microsoft_safelinks"}])
        );
        assert_eq!(
            summary["displayed_urls"],
            json!([{"url": "https://evil.example.net/", "displayed": "https://paypal.com"}])
        );
    }

    #[test]
    fn an_email_without_facts_has_every_key_empty() {
        let summary = triage_summary(&[]);
        assert_eq!(summary.len(), 6);
        assert!(summary["email_authentication"].is_null() && summary["originating_ip"].is_null());
        assert_eq!(summary["unwrapped_urls"], json!([]));
    }
}
