//! Golden files: `fixtures/eml/**/NAME.eml` must give exactly `NAME.json`.
//!
//! On a mismatch the test writes `NAME.json.actual` beside it and fails; review the diff.
//! `BLESS=1 cargo test golden` rewrites the expected files: review them before committing.

use serde_json::Value;
use soar_imap::{
    container::{BuildOptions, EmailSource, build_container},
    vault::MemoryVault,
};

use crate::support::{emails_under, root};

/// The container for one fixture as the golden file shows it: the raw email is replaced
/// by its length (it is the fixture itself), everything else is verbatim.
fn golden_view(raw: &[u8]) -> String {
    let source = EmailSource {
        raw,
        email_id: 5,
        folder: "inbox",
        container_id: None,
        label: "email",
    };
    let vault = MemoryVault::default();
    let container = build_container(&source, &BuildOptions::default(), &vault).unwrap();
    // Every vault artifact's file is really in the vault, with the size it claims.
    for artifact in container
        .artifacts
        .iter()
        .filter(|a| a["name"] == "Vault Artifact")
    {
        let id = artifact["cef"]["vaultId"].as_str().unwrap();
        let stored = vault
            .file(id)
            .expect("vault artifact without a stored file");
        assert_eq!(artifact["cef"]["fileSize"], stored.len());
    }
    let mut value = serde_json::to_value(&container).unwrap();
    let len = container.data.raw_email.len();
    value["data"]["raw_email"] = Value::String(format!("<{len} characters>"));
    serde_json::to_string_pretty(&value).unwrap() + "\n"
}

#[test]
fn every_fixture_matches_its_golden_container() {
    let fixtures = emails_under(&root().join("fixtures/eml"));
    assert!(
        fixtures.len() >= 20,
        "expected the fixture set, found {}",
        fixtures.len()
    );
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for eml in &fixtures {
        let raw = std::fs::read(eml).unwrap();
        let actual = golden_view(&raw);
        // Determinism: the same email gives byte-identical output.
        assert_eq!(
            actual,
            golden_view(&raw),
            "{} is not deterministic",
            eml.display()
        );
        let expected_path = eml.with_extension("json");
        let actual_path = eml.with_extension("json.actual");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            let _ = std::fs::remove_file(&actual_path);
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {
                let _ = std::fs::remove_file(&actual_path);
            }
            Ok(_) => {
                std::fs::write(&actual_path, &actual).unwrap();
                failures.push(format!(
                    "{} differs (see {})",
                    expected_path.display(),
                    actual_path.display()
                ));
            }
            Err(_) => {
                std::fs::write(&actual_path, &actual).unwrap();
                failures.push(format!(
                    "{} is missing (see {})",
                    expected_path.display(),
                    actual_path.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
