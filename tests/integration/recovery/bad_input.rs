//! Bad input in the store directory: what the store does with each kind,
//! one test per row of the bad-input table in `docs/DURABILITY.md`
//! (truncation, bit flips, zeroed sectors and huge lengths have sweeps and
//! tests of their own).
//!
//! How: a small store is built through the API, then one thing is broken
//! by hand — a foreign file in `journal/`, a segment header with another
//! version or magic, a manifest or documented file with invalid JSON, a
//! legacy store whose file is invalid, a second writer — and the store is
//! opened. (Files the process may not write or read: `processes::permissions`,
//! which runs `chattr`, a child process.) Each case checks the
//! outcome (a named error, or a fallback that gives the exact state) and
//! that nothing was silently deleted or emptied.

use crate::support::durability as durability_support;

use std::fs;
use std::path::{Path, PathBuf};

use durability_support::{journal_dir, movie, scratch, segment_paths};
use movie_queue::{Error, QueueManager, QueueState};

/// A closed store holding three movies (one pending, one failed, one
/// completed) and a snapshot; returns its state.
fn small_store(dir: &Path) -> QueueState {
    let qm = QueueManager::open(dir).expect("open");
    qm.add_to_pending(movie("p")).expect("add");
    qm.add_to_pending(movie("f")).expect("add");
    qm.add_to_failed(movie("f"), "no seeders", Some(1.0)).expect("fail");
    qm.add_to_completed(movie("c")).expect("complete");
    let state = qm.state();
    qm.close().expect("close");
    state
}

fn open_error(dir: &Path) -> Error {
    match QueueManager::open(dir) {
        Ok(qm) => panic!("opened despite the damage: {:?}", qm.get_statistics()),
        Err(error) => error,
    }
}

#[test]
fn a_foreign_file_in_the_journal_directory_is_an_error_naming_it_and_is_kept() {
    let dir = scratch();
    small_store(dir.path());
    let stranger = journal_dir(dir.path()).join("notes.txt");
    fs::write(&stranger, "my notes").expect("write");
    for error in [
        open_error(dir.path()),
        movie_queue::verify(dir.path()).expect_err("verify"),
    ] {
        assert!(matches!(error, Error::Corrupt { .. }), "{error}");
        assert_eq!(error.place().map(|(path, _)| path), Some(stranger.as_path()));
    }
    assert_eq!(fs::read(&stranger).expect("kept"), b"my notes");
}

#[test]
fn a_leftover_tmp_segment_is_removed_and_set_aside_files_are_ignored() {
    let dir = scratch();
    let state = small_store(dir.path());
    let journal = journal_dir(dir.path());
    let leftover = journal.join("00000000000000000099.seg.tmp");
    let aside = journal.join("00000000000000000001.seg.40.broken");
    fs::write(&leftover, b"half a header").expect("write");
    fs::write(&aside, b"bytes repair set aside").expect("write");
    let qm = QueueManager::open(dir.path()).expect("open");
    assert!(qm.state() == state);
    assert!(!leftover.exists(), "an interrupted segment creation is removed");
    assert_eq!(fs::read(&aside).expect("kept"), b"bytes repair set aside");
}

#[test]
fn a_segment_of_another_format_version_is_an_unsupported_version_error() {
    let dir = scratch();
    small_store(dir.path());
    let segment = segment_paths(dir.path()).remove(0);
    let mut bytes = fs::read(&segment).expect("read");
    bytes[8..12].copy_from_slice(&2_u32.to_le_bytes());
    fs::write(&segment, &bytes).expect("write");
    let error = open_error(dir.path());
    assert!(
        matches!(
            error,
            Error::UnsupportedVersion {
                version: 2,
                offset: 8,
                supported: 1,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.place().map(|(path, _)| path), Some(segment.as_path()));
    assert_eq!(fs::read(&segment).expect("read"), bytes, "left alone");
}

#[test]
fn a_segment_with_a_foreign_magic_number_is_corrupt() {
    let dir = scratch();
    small_store(dir.path());
    let segment = segment_paths(dir.path()).remove(0);
    let mut bytes = fs::read(&segment).expect("read");
    bytes[0..8].copy_from_slice(b"SQLite f");
    fs::write(&segment, &bytes).expect("write");
    let error = open_error(dir.path());
    assert!(matches!(error, Error::Corrupt { offset: 0, .. }), "{error}");
    assert_eq!(error.place().map(|(path, _)| path), Some(segment.as_path()));
}

#[test]
fn an_unusable_manifest_falls_back_to_the_journal() {
    type Edit = fn(&str) -> String;
    let manifest_edits: [(&str, Edit); 3] = [
        ("invalid JSON", |_| "{ not json".to_owned()),
        ("another version", |text| {
            text.replacen("\"version\": 4", "\"version\": 7", 1)
        }),
        ("a wrong checksum", |text| {
            let mut manifest: serde_json::Value = serde_json::from_str(text).expect("manifest JSON");
            let crc = manifest["manifest"]["files"][1]["crc32"].as_u64().expect("a checksum");
            manifest["manifest"]["files"][1]["crc32"] = serde_json::json!(crc ^ 1);
            manifest.to_string()
        }),
    ];
    for (what, edit) in manifest_edits {
        let dir = scratch();
        let state = small_store(dir.path());
        let manifest = dir.path().join("queue_snapshot.json");
        let text = fs::read_to_string(&manifest).expect("read");
        let edited = edit(&text);
        assert_ne!(edited, text, "{what}: the edit changed the manifest");
        fs::write(&manifest, edited).expect("write");
        let report = movie_queue::verify(dir.path()).expect("the journal is sound");
        assert!(
            !report.problems.is_empty(),
            "{what}: verify names the unusable snapshot"
        );
        let qm = QueueManager::open(dir.path()).expect("open");
        assert!(qm.state() == state, "{what}: the state is rebuilt from the journal");
    }
}

#[test]
fn invalid_json_in_a_documented_file_is_rebuilt_from_the_journal() {
    for name in ["queue_pending.json", "queue_failed.json", "queue_completed.json"] {
        let dir = scratch();
        let state = small_store(dir.path());
        fs::write(dir.path().join(name), "[{\"id\": \"p\", \"title\": ").expect("write");
        let qm = QueueManager::open(dir.path()).expect("open");
        assert!(qm.state() == state, "{name}: the state is rebuilt from the journal");
        qm.close().expect("close");
        let rewritten = fs::read(dir.path().join(name)).expect("read");
        assert!(
            serde_json::from_slice::<serde_json::Value>(&rewritten).is_ok(),
            "{name}: the next snapshot rewrites the file"
        );
    }
}

#[test]
fn invalid_json_in_a_legacy_file_with_no_journal_is_reported_and_never_emptied() {
    let dir = scratch();
    fs::write(
        dir.path().join("queue_pending.json"),
        r#"[{"id": "1", "title": "One", "year": "2020"}]"#,
    )
    .expect("write");
    let failed = dir.path().join("queue_failed.json");
    fs::write(&failed, "[{\"id\": \"2\", truncated").expect("write");
    let error = open_error(dir.path());
    match &error {
        Error::BadQueueFile { path, .. } => assert_eq!(path, &failed),
        other => panic!("expected BadQueueFile, got {other}"),
    }
    assert_eq!(
        fs::read(&failed).expect("kept"),
        b"[{\"id\": \"2\", truncated",
        "never emptied"
    );
    assert!(
        segment_paths_if_any(dir.path()).is_empty(),
        "nothing was journaled from a half-read legacy store"
    );
}

fn segment_paths_if_any(dir: &Path) -> Vec<PathBuf> {
    if journal_dir(dir).exists() {
        segment_paths(dir)
    } else {
        Vec::new()
    }
}

#[test]
fn a_second_writer_is_refused_at_once_while_readers_still_work() {
    let dir = scratch();
    let first = QueueManager::open(dir.path()).expect("open");
    first.add_to_pending(movie("1")).expect("add");
    match QueueManager::open(dir.path()) {
        Err(Error::Locked { dir: locked }) => assert_eq!(locked, dir.path()),
        other => panic!("a second writer must get Locked, got {other:?}"),
    }
    assert!(
        matches!(movie_queue::repair(dir.path()), Err(Error::Locked { .. })),
        "repair takes the lock too"
    );
    let reader = QueueManager::open_read_only(dir.path()).expect("a reader opens beside the writer");
    assert_eq!(reader.get_pending_count(), 1);
    assert!(matches!(reader.add_to_pending(movie("2")), Err(Error::ReadOnly { .. })));
    first.close().expect("close");
    let second = QueueManager::open(dir.path()).expect("the lock is released on close");
    assert_eq!(second.get_pending_count(), 1);
}
