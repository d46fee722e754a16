//! Robustness: `parse email` over every file under `$SOAR_IMAP_CORPUS` (all files, not
//! only `.eml`) in one request; every one must yield a container and nothing may panic.

use std::{path::PathBuf, time::Instant};

use serde_json::{Value, json};

use crate::support::run_json;

fn corpus_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_corpus_file_yields_a_container() {
    let Some(dir) = std::env::var_os("SOAR_IMAP_CORPUS") else {
        eprintln!("SOAR_IMAP_CORPUS is not set: corpus robustness test not run (.ci/run sets it)");
        return;
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.is_dir(),
        "SOAR_IMAP_CORPUS={} is not a directory",
        dir.display()
    );
    let files = corpus_files(&dir);
    assert!(
        !files.is_empty(),
        "SOAR_IMAP_CORPUS={} holds no files",
        dir.display()
    );

    let home = tempfile::tempdir().unwrap();
    let parameters: Vec<Value> = files.iter().map(|p| json!({"path": p})).collect();
    let started = Instant::now();
    let run = run_json(
        &json!({"identifier": "parse_email", "parameters": parameters}),
        home.path(),
    );
    let elapsed = started.elapsed();
    assert!(!run.stderr.contains("panicked"), "a panic:\n{}", run.stderr);
    let response = run.json();
    let results = response["action_results"].as_array().unwrap();
    assert_eq!(results.len(), files.len());
    let failed: Vec<String> = results
        .iter()
        .zip(&files)
        .filter(|(r, _)| r["status"] != "success")
        .map(|(r, p)| format!("{}: {}", p.display(), r["message"]))
        .collect();
    assert!(
        failed.is_empty(),
        "{} files gave no container:\n{}",
        failed.len(),
        failed.join("\n")
    );
    let containers = response["containers"].as_array().unwrap();
    assert_eq!(containers.len(), files.len());
    assert_eq!(run.code, 0);
    let artifacts: usize = containers
        .iter()
        .map(|c| c["artifacts"].as_array().unwrap().len())
        .sum();
    eprintln!(
        "corpus: {} files -> {} containers, {artifacts} artifacts, 0 panics, in {:.2?}",
        files.len(),
        containers.len(),
        elapsed
    );
}
