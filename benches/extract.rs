//! Extraction throughput: parse + extract (`build_container`, as `parse email` and a poll
//! run it, with an in-memory vault) over a fixed sample of the generated corpus and over
//! the shared real-world corpus, reported in emails/s and bytes/s.
//!
//! `cargo bench --bench extract` generates the corpus with `benches/gen_corpus.py` into
//! `target/bench-corpus/` when it is missing (or reads `$SOAR_IMAP_BENCH_CORPUS`) and takes
//! every 20th email (500 of 10,000); the shared corpus is `$SOAR_IMAP_CORPUS`, else
//! `../shared/corpus`, and is skipped when absent. Under `cargo test` (no `--bench`
//! argument) criterion runs each benchmark once, on a small sample, as a smoke test.
//! Figures and the side-by-side comparison with Python are in BENCHMARKS.md.
// The inputs are the benchmark's own generated files: a failure to read them is a
// broken setup, reported by a panic like any test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    hint::black_box,
    path::{Path, PathBuf},
    process::Command,
};

use criterion::{BenchmarkId, Criterion, Throughput};
use serde_json::Value;
use soar_imap::{
    container::{BuildOptions, Container, EmailSource, build_container},
    mime,
    vault::MemoryVault,
};

/// Every STRIDE-th generated email is in the sample (500 of the default 10,000).
const STRIDE: usize = 20;
/// Emails generated for the smoke run under `cargo test` (its sample is every STRIDE-th).
const SMOKE_COUNT: usize = 200;

/// Files under `dir`, recursively, sorted; documentation files of the shared corpus
/// (its README and licence texts) are not mail and are left out.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
            let documentation = Path::new(&name).extension().is_some_and(|e| e == "md")
                || name.starts_with("copying")
                || name.contains("license");
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() && !documentation {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Runs the generator; `Err` only when python3 cannot be started at all.
fn generate(dir: &Path, count: usize) -> std::io::Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen_corpus.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .args(["--count", &count.to_string()])
        .status()?;
    assert!(status.success(), "{} failed: {status}", script.display());
    Ok(())
}

/// The fixed sample of the generated corpus, read into memory. A smoke run generates a
/// small corpus into a temporary directory, or gives `None` on a machine without
/// python3, which the test suite does not otherwise need.
fn generated_sample(bench: bool) -> Option<Vec<Vec<u8>>> {
    let configured = std::env::var_os("SOAR_IMAP_BENCH_CORPUS").map(PathBuf::from);
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-corpus");
    let temp = tempfile::tempdir().unwrap();
    let dir = match configured {
        Some(dir) => dir,
        None if bench => {
            if files_under_or_empty(&default).is_empty() {
                generate(&default, 10_000)
                    .unwrap_or_else(|e| panic!("cannot run python3 benches/gen_corpus.py: {e}"));
            }
            default
        }
        None => match generate(temp.path(), SMOKE_COUNT) {
            Ok(()) => temp.path().to_path_buf(),
            Err(e) => {
                eprintln!("cannot run python3 ({e}): the generated-corpus smoke run is skipped");
                return None;
            }
        },
    };
    let files = files_under(&dir);
    assert!(!files.is_empty(), "no emails in {}", dir.display());
    Some(
        files
            .iter()
            .step_by(STRIDE)
            .map(|p| std::fs::read(p).unwrap())
            .collect(),
    )
}

fn files_under_or_empty(dir: &Path) -> Vec<PathBuf> {
    if dir.is_dir() {
        files_under(dir)
    } else {
        Vec::new()
    }
}

/// The shared real-world corpus, when present (all of it for a benchmark, every 30th
/// file for the smoke run).
fn shared_corpus(bench: bool) -> Option<Vec<Vec<u8>>> {
    let dir = std::env::var_os("SOAR_IMAP_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
        PathBuf::from,
    );
    let files = files_under_or_empty(&dir);
    if files.is_empty() {
        eprintln!(
            "{}: no shared corpus, its benchmark is skipped",
            dir.display()
        );
        return None;
    }
    let step = if bench { 1 } else { 30 };
    Some(
        files
            .iter()
            .step_by(step)
            .map(|p| std::fs::read(p).unwrap())
            .collect(),
    )
}

/// One email through the pipeline as `parse email` runs it (default configuration: every
/// indicator class, attachments vaulted), into a fresh in-memory vault.
fn container_of(raw: &[u8], options: &BuildOptions) -> Container {
    let source = EmailSource {
        raw,
        email_id: 1,
        folder: "inbox",
        container_id: None,
        label: "email",
    };
    build_container(&source, options, &MemoryVault::default()).unwrap()
}

/// [`container_of`] as JSON, for the checks.
fn build(raw: &[u8], options: &BuildOptions) -> Value {
    serde_json::to_value(container_of(raw, options)).unwrap()
}

/// The generated emails must exercise the whole pipeline, or the figures would flatter
/// it: every one yields a clean container with its Email Artifact, URLs and domains, and
/// the sample as a whole yields IPs, hashes and vaulted attachments.
fn check_generated(sample: &[Vec<u8>], options: &BuildOptions) {
    let mut classes = std::collections::BTreeMap::<String, usize>::new();
    for (i, raw) in sample.iter().enumerate() {
        let container = build(raw, options);
        let warnings = &container["data"]["parse_warnings"];
        assert!(
            warnings.is_null(),
            "sample email {i} gave parse warnings: {warnings}"
        );
        let mut own = std::collections::BTreeSet::new();
        for artifact in container["artifacts"].as_array().unwrap() {
            let name = artifact["name"].as_str().unwrap().to_owned();
            own.insert(name.clone());
            *classes.entry(name).or_default() += 1;
        }
        for class in ["Email Artifact", "URL Artifact", "Domain Artifact"] {
            assert!(own.contains(class), "sample email {i} gave no {class}");
        }
    }
    for class in ["IP Artifact", "Hash Artifact", "Vault Artifact"] {
        assert!(
            classes.get(class).copied().unwrap_or(0) > 0,
            "the sample gave no {class}: {classes:?}"
        );
    }
}

fn bench_emails(c: &mut Criterion, group: &str, emails: &[Vec<u8>], options: &BuildOptions) {
    let bytes: usize = emails.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group(group);
    // One iteration is the whole sample (hundreds of emails): few, long samples.
    group.sample_size(10);
    group.throughput(Throughput::ElementsAndBytes {
        elements: emails.len() as u64,
        bytes: bytes as u64,
    });
    group.bench_function(BenchmarkId::new("build_container", emails.len()), |b| {
        b.iter(|| {
            for raw in emails {
                black_box(container_of(raw, options));
            }
        });
    });
    // The MIME walk alone (parse, decode bodies and attachments; no extraction, hashing
    // or artifacts): the floor under build_container, to show where its time goes.
    group.bench_function(BenchmarkId::new("mime_walk", emails.len()), |b| {
        b.iter(|| {
            for raw in emails {
                let mut events = 0_usize;
                black_box(mime::walk(raw, options.max_depth, &mut |e| {
                    black_box(&e);
                    events += 1;
                }));
                black_box(events);
            }
        });
    });
    group.finish();
}

fn main() {
    // cargo bench passes --bench; cargo test runs this binary without it, and criterion
    // then runs each benchmark once: keep that run small.
    let bench = std::env::args().any(|a| a == "--bench");
    let options = BuildOptions::default();
    let mut c = Criterion::default().configure_from_args();

    if let Some(sample) = generated_sample(bench) {
        check_generated(&sample, &options);
        bench_emails(&mut c, "extract/generated", &sample, &options);
    }

    if let Some(corpus) = shared_corpus(bench) {
        // Real mail is messy: only check that nothing fails; the robustness test
        // (tests/it/corpus.rs) checks the rest.
        for raw in &corpus {
            black_box(build(raw, &options));
        }
        bench_emails(&mut c, "extract/shared-corpus", &corpus, &options);
    }
    c.final_summary();
}
