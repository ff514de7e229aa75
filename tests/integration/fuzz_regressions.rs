//! Replays every committed fuzz input — the seed corpus in
//! `fuzz/corpus/<target>/` and the minimized findings in
//! `fuzz/regressions/<target>/` — through exactly the code the cargo-fuzz
//! targets run (`fuzz/fuzz_targets/common/`, included below), on the stable
//! toolchain. Each target asserts its properties itself (see the module
//! docs there), so a property that breaks fails this test, naming the file.
//! The generated seeds are replayed too, so the committed ones cannot drift
//! from the code that made them.
//!
//! Regenerate the committed seeds with `MOVIE_QUEUE_WRITE_SEEDS=1 cargo test
//! --test integration -- --ignored write_seed_corpus`; known library
//! bugs, when there are any, are `#[ignore]`d tests that fail until fixed.

#[path = "../../fuzz/fuzz_targets/common/mod.rs"]
pub(crate) mod common;

use std::path::{Path, PathBuf};

/// A target's name and the function its fuzz target runs.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 5] = [
    ("record_decoder", common::record_decoder::run),
    ("recovery_dir", common::recovery_dir::run),
    ("snapshot_loader", common::snapshot_loader::run),
    ("model_ops", common::model_ops::run),
    ("movie_round_trip", common::movie_round_trip::run),
];

/// Regression inputs of library bugs not fixed yet: skipped by the replay
/// and run by their own `#[ignore = "library bug: …"]` test (remove the
/// name here once the bug is fixed). None at present: the three `verify`
/// and `open` disagreements the fuzzer found are fixed (verify asks the
/// same recovery decision open does) and replayed strictly below.
const KNOWN_BUGS: [&str; 0] = [];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The committed inputs of `target`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
            continue;
        };
        files.extend(
            entries
                .map(|entry| entry.expect("list the inputs").path())
                .filter(|path| path.is_file()),
        );
    }
    files.sort();
    files
}

/// Runs `run` on each input, then fails naming every input that panicked.
fn replay(target: &str, run: fn(&[u8]), inputs: &[(String, Vec<u8>)]) {
    let failures: Vec<&str> = inputs
        .iter()
        .filter(|(name, data)| {
            eprintln!("{target}: {name}");
            std::panic::catch_unwind(|| run(data)).is_err()
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        failures.is_empty(),
        "{target}: these inputs break a property: {failures:?}"
    );
}

fn replay_committed(target: &str) {
    let (_, run) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files: Vec<(String, Vec<u8>)> = inputs(target)
        .into_iter()
        .filter(|path| !KNOWN_BUGS.iter().any(|bug| path.ends_with(bug)))
        .map(|path| {
            let data = std::fs::read(&path).expect("read an input");
            (path.display().to_string(), data)
        })
        .collect();
    assert!(!files.is_empty(), "{target} has no committed inputs");
    replay(target, *run, &files);
}

#[test]
fn record_decoder_inputs() {
    replay_committed("record_decoder");
}

#[test]
fn recovery_dir_inputs() {
    replay_committed("recovery_dir");
}

#[test]
fn snapshot_loader_inputs() {
    replay_committed("snapshot_loader");
}

#[test]
fn model_ops_inputs() {
    replay_committed("model_ops");
}

#[test]
fn movie_round_trip_inputs() {
    replay_committed("movie_round_trip");
}

fn seeds(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    match target {
        "record_decoder" => common::record_decoder::seeds(),
        "recovery_dir" => common::recovery_dir::seeds(),
        "snapshot_loader" => common::snapshot_loader::seeds(),
        "movie_round_trip" => common::movie_round_trip::seeds(),
        _ => common::model_ops::seeds(),
    }
}

#[test]
fn generated_seeds_hold_every_property() {
    for (target, run) in TARGETS {
        let named: Vec<(String, Vec<u8>)> = seeds(target)
            .into_iter()
            .map(|(name, data)| (name.to_owned(), data))
            .collect();
        replay(target, run, &named);
    }
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus/; run by hand with MOVIE_QUEUE_WRITE_SEEDS=1"]
fn write_seed_corpus() {
    if std::env::var_os("MOVIE_QUEUE_WRITE_SEEDS").is_none() {
        eprintln!("set MOVIE_QUEUE_WRITE_SEEDS=1 to rewrite fuzz/corpus/*/seed-*");
        return;
    }
    for (target, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        for (name, data) in seeds(target) {
            std::fs::write(dir.join(format!("seed-{name}")), data).expect("write a seed");
        }
    }
}

/// Replays one known-bug regression input with every property checked.
fn replay_known_bug(target: &str, name: &str, run: fn(&[u8])) {
    let path = fuzz_dir().join("regressions").join(target).join(name);
    let data = std::fs::read(&path).expect("read the regression input");
    run(&data);
}

#[test]
fn verify_passes_unopenable_legacy_store() {
    replay_known_bug(
        "recovery_dir",
        "verify_passes_unopenable_legacy_store",
        common::recovery_dir::run_strict,
    );
}

#[test]
fn verify_passes_gap_after_base() {
    replay_known_bug(
        "recovery_dir",
        "verify_passes_gap_after_base",
        common::recovery_dir::run_strict,
    );
}

#[test]
fn verify_passes_base_beyond_journal_end() {
    replay_known_bug(
        "recovery_dir",
        "verify_passes_base_beyond_journal_end",
        common::recovery_dir::run_strict,
    );
}

#[test]
fn seq_overflow_compaction_base() {
    replay_known_bug(
        "recovery_dir",
        "seq_overflow_compaction_base",
        common::recovery_dir::run_strict,
    );
}

#[test]
fn seq_overflow_manifest() {
    replay_known_bug(
        "recovery_dir",
        "seq_overflow_manifest",
        common::recovery_dir::run_strict,
    );
}

#[test]
fn seq_overflow_record() {
    replay_known_bug("recovery_dir", "seq_overflow_record", common::recovery_dir::run_strict);
}
