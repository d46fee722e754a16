//! Every input a fuzzer found a bug with (`fixtures/fuzz/<target>/`), replayed through
//! the fuzz target's own checks (`fuzz/src/checks.rs`, included here by path): nothing
//! panics and every invariant the target asserts holds (the container serializes and
//! reads back, SDIs are the md5 of their artifact, vault files match their hashes, no
//! secret is shown, ...). See README "Fuzzing".

#[path = "../../fuzz/src/checks.rs"]
mod checks;

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::PathBuf,
};

use crate::support::root;

/// What a fuzz target checks on one input (panics on a violation).
type Check = fn(&[u8]);

/// The fuzz targets and their checks; a target with no directory has had no finding yet.
const TARGETS: [(&str, Check); 4] = [
    ("email_pipeline", checks::email_pipeline),
    ("outlook_msg", checks::outlook_msg),
    ("request", checks::request),
    ("transcript", checks::transcript),
];

/// The saved inputs of one target, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = root().join("fixtures/fuzz").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found
}

#[test]
fn every_saved_fuzz_finding_passes_its_targets_checks() {
    let mut replayed = 0;
    let mut failed = Vec::new();
    for (target, check) in TARGETS {
        for path in inputs(target) {
            let bytes = std::fs::read(&path).unwrap();
            replayed += 1;
            if catch_unwind(AssertUnwindSafe(|| check(&bytes))).is_err() {
                failed.push(path.display().to_string());
            }
        }
    }
    assert!(replayed > 0, "fixtures/fuzz/ holds no saved inputs");
    assert!(
        failed.is_empty(),
        "saved fuzz findings fail again (panic messages above): {failed:#?}"
    );
}
