//! `snapshot`, `compact`, `import` and `export` through the binary:
//! a snapshot writes the four documented files and the manifest that
//! `verify` checks; compaction of a journal of several segments (written
//! through the library with a small segment size) deletes covered segments
//! and keeps the state, after which replay before the base is refused
//! clearly; export then import moves every entry to a new store, once.

use crate::support::cli as cli_support;

use cli_support::{add, counts, events, mq, stats};
use movie_queue::{Movie, QueueManager};

#[test]
fn snapshot_writes_the_documented_files_and_verify_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    add(dir.path(), "2");
    let run = mq(dir.path(), &["snapshot"]).ok();
    assert!(run.stdout.contains("covering records through 2"), "{run:?}");
    for name in [
        "queue_pending.json",
        "queue_failed.json",
        "queue_completed.json",
        "queue_removed.json",
        "queue_snapshot.json",
    ] {
        assert!(dir.path().join(name).is_file(), "{name}");
    }
    let report = mq(dir.path(), &["verify", "--json"]).ok().json();
    assert_eq!(report["snapshot_seq"], 2);
    assert_eq!(report["ok"], true);
    assert_eq!(report["records"], 2);
}

#[test]
fn compact_deletes_covered_segments_and_keeps_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let qm = QueueManager::options().segment_bytes_max(300).open(dir.path()).unwrap();
    for index in 0..20 {
        qm.add_to_pending(Movie::new(index.to_string(), format!("Movie {index}"), "2020"))
            .unwrap();
    }
    qm.close().unwrap();
    let segments = || {
        std::fs::read_dir(dir.path().join("journal"))
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().file_name().to_str().unwrap().ends_with(".seg"))
            .count()
    };
    assert!(segments() > 2, "several segments to compact");
    mq(dir.path(), &["next"]).ok();
    let before = stats(dir.path());

    let run = mq(dir.path(), &["compact"]).ok();
    assert!(run.stdout.starts_with("compacted through record 21"), "{run:?}");
    assert!(segments() <= 2, "covered segments are deleted");
    assert_eq!(stats(dir.path()), before);
    assert_eq!(before, counts(19, 1, 0, 0, 0));
    mq(dir.path(), &["verify"]).ok();
    let refused = mq(dir.path(), &["replay", "--until", "1"]).fails_with(1);
    assert!(refused.stderr.contains("compacted"), "{refused:?}");
    assert_eq!(
        mq(dir.path(), &["replay", "--until", "21", "--json"]).ok().json(),
        before
    );
    add(dir.path(), "after");
    let last = events(dir.path()).last().unwrap().clone();
    assert_eq!(last["seq"], 22, "numbering continues after compaction");
}

#[test]
fn export_then_import_moves_every_entry_once() {
    let source = tempfile::tempdir().unwrap();
    for id in ["1", "2", "3"] {
        add(source.path(), id);
    }
    mq(source.path(), &["fail", "1", "--error", "boom", "--retry-in", "1h"]).ok();
    mq(source.path(), &["complete", "2"]).ok();
    let files = tempfile::tempdir().unwrap();
    mq(source.path(), &["export", files.path().to_str().unwrap()]).ok();

    let target = tempfile::tempdir().unwrap();
    add(target.path(), "3");
    let run = mq(target.path(), &["import", files.path().to_str().unwrap()]).ok();
    assert!(run.stdout.starts_with("imported 2 entries"), "{run:?}");
    assert_eq!(stats(target.path()), counts(1, 0, 1, 1, 0));
    let failed = mq(target.path(), &["list", "failed", "--json"]).ok().json();
    assert_eq!(failed[0]["last_error"], "boom", "entries keep their fields");
    let again = mq(target.path(), &["import", files.path().to_str().unwrap()]).ok();
    assert!(again.stdout.starts_with("imported 0 entries"), "{again:?}");
    let empty = tempfile::tempdir().unwrap();
    let refused = mq(target.path(), &["import", empty.path().to_str().unwrap()]).fails_with(1);
    assert!(refused.stderr.contains(empty.path().to_str().unwrap()), "{refused:?}");
}
