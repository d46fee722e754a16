//! The triage facts of a container at a glance, for `parse email`'s result data: what a
//! playbook branches on (the authentication verdict, the sender tricks, the originating
//! IP, the links a gateway wrapped or a text disguised) without walking the artifacts.

use serde_json::{Map, Value, json};

/// `email_authentication`, `sender_mismatch` and `originating_ip` of the container's root
/// Email Artifact (null or empty when it has none), and the URL Artifacts that were
/// unwrapped (`unwrapped_urls`) or shown as another site (`displayed_urls`). Every key is
/// always present, so data paths hold for every email. The Received hops stay on the
/// Email Artifact: they are the evidence, not the glance.
pub fn triage_summary(artifacts: &[Value]) -> Map<String, Value> {
    let mut root = None;
    let mut unwrapped = Vec::new();
    let mut displayed = Vec::new();
    // One pass, one name lookup an artifact: URL Artifacts come before the Email
    // Artifacts, and the first Email Artifact is the root's.
    for artifact in artifacts {
        let cef = &artifact["cef"];
        match artifact["name"].as_str() {
            Some("URL Artifact") => {
                let url = &cef["requestURL"];
                if let Some(wrapped) = cef.get("wrappedURL") {
                    unwrapped.push(
                        json!({"url": url, "wrapped_url": wrapped, "rewriter": cef["urlRewriter"]}),
                    );
                }
                if let Some(shown) = cef.get("displayedURL") {
                    displayed.push(json!({"url": url, "displayed": shown}));
                }
            }
            Some("Email Artifact") => {
                root = Some(cef);
                break;
            }
            _ => {}
        }
    }
    let field = |name: &str| root.and_then(|cef| cef.get(name)).cloned();
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
        assert!(summary.get("received_hops").is_none());
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
        assert_eq!(summary.len(), 5);
        assert!(summary["email_authentication"].is_null() && summary["originating_ip"].is_null());
        assert_eq!(summary["unwrapped_urls"], json!([]));
    }
}
