//! A string that never shows up in logs, errors or JSON output.

use std::fmt;

/// A password, client secret or token.
///
/// `Debug` and `Display` both print `<redacted>`, so a secret inside a struct that derives
/// `Debug`, or inside a formatted error, cannot leak by accident. It deliberately does not
/// implement `Serialize`: writing one into a response or a state file must be a visible,
/// explicit [`Secret::expose`] call at the place that owns that decision.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// What every formatting of a [`Secret`] prints.
const REDACTED: &str = "<redacted>";

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret value itself, for the one place that has to send it somewhere.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "hunter2-s3cr3t";

    #[test]
    fn expose_returns_the_value() {
        assert_eq!(Secret::new(VALUE.to_owned()).expose(), VALUE);
    }

    #[test]
    fn display_and_debug_are_redacted() {
        let secret = Secret::new(VALUE.to_owned());
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        // Width, alternate and padding flags must not bring the value back either.
        for shown in [
            format!("{secret:>40}"),
            format!("{secret:#?}"),
            format!("{secret:<5}"),
            secret.to_string(),
        ] {
            assert!(!shown.contains(VALUE), "{shown}");
            assert!(!shown.contains("hunter"), "{shown}");
        }
    }

    #[test]
    fn nested_debug_is_redacted() {
        #[derive(Debug)]
        #[allow(dead_code, reason = "only read through Debug")]
        struct Holder {
            password: Secret,
            token: Option<Secret>,
        }
        let holder = Holder {
            password: Secret::new(VALUE.to_owned()),
            token: Some(Secret::new("tok-123".to_owned())),
        };
        let shown = format!("{holder:?} {holder:#?}");
        assert!(!shown.contains(VALUE), "{shown}");
        assert!(!shown.contains("tok-123"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn empty_secret_is_redacted_too() {
        // Even "no value" is not revealed: the length of a secret is information.
        assert_eq!(format!("{:?}", Secret::new(String::new())), "<redacted>");
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(Secret::new("a".into()), Secret::new("a".into()));
        assert_ne!(Secret::new("a".into()), Secret::new("b".into()));
    }
}
