//! The store's identity (`journal/identity`): given by the first writer
//! open, kept for the journal's life (reopens, snapshots, compaction), never
//! given by a reader, named by `verify` when it does not hold up and then
//! set aside and replaced by the next writer, and never read through a link.

use std::fs;
use std::path::Path;

use crate::support::common::{movie, scratch};
use movie_queue::{Error, QueueManager, StoreId};

fn identity_file(dir: &Path) -> std::path::PathBuf {
    dir.join("journal").join("identity")
}

/// A closed store holding movie 1, and the identity its writer gave it.
fn closed_store() -> (tempfile::TempDir, StoreId) {
    let dir = scratch();
    let qm = QueueManager::open(dir.path()).expect("open");
    let id = qm.store_id().expect("a writer gives the store its identity");
    qm.add_to_pending(movie("1")).expect("add");
    qm.close().expect("close");
    (dir, id)
}

fn verify_problems(dir: &Path) -> Vec<String> {
    movie_queue::verify(dir).expect("verify").problems
}

#[test]
fn a_store_gets_its_identity_at_the_first_writer_open_and_keeps_it_for_its_journals_life() {
    let dir = scratch();
    let qm = QueueManager::open(dir.path()).expect("open");
    let id = qm.store_id().expect("a writer gives the store its identity");
    let text = fs::read_to_string(identity_file(dir.path())).expect("the file");
    assert_eq!(text, format!("{id}\n"));
    assert_eq!(StoreId::parse(text.trim_end()), Some(id));
    qm.add_to_pending(movie("1")).expect("add");
    qm.snapshot().expect("snapshot");
    qm.compact().expect("compact");
    qm.close().expect("close");
    assert_eq!(
        movie_queue::store_id(dir.path()).expect("read"),
        Some(id),
        "kept by snapshot and compaction"
    );
    let reader = QueueManager::open_read_only(dir.path()).expect("read-only");
    assert_eq!(reader.store_id(), Some(id));
    drop(reader);
    let again = QueueManager::open(dir.path()).expect("reopen");
    assert_eq!(again.store_id(), Some(id), "a reopen keeps it");
    drop(again);
    assert!(verify_problems(dir.path()).is_empty());
    let other = scratch();
    let other_id = QueueManager::open(other.path()).expect("open").store_id();
    assert_ne!(other_id, Some(id), "another store, another identity");
}

#[test]
fn a_reader_never_gives_an_identity_and_the_next_writer_does() {
    let dir = scratch();
    let qm = QueueManager::open(dir.path()).expect("open");
    qm.add_to_pending(movie("1")).expect("add");
    qm.close().expect("close");
    // A store from before identities: no file.
    fs::remove_file(identity_file(dir.path())).expect("remove");
    let reader = QueueManager::open_read_only(dir.path()).expect("read-only");
    assert_eq!(reader.store_id(), None);
    drop(reader);
    assert_eq!(movie_queue::store_id(dir.path()).expect("read"), None);
    assert!(!identity_file(dir.path()).exists(), "a reader writes nothing");
    assert!(verify_problems(dir.path()).is_empty(), "no identity yet is not damage");
    let writer = QueueManager::open(dir.path()).expect("open");
    let id = writer.store_id().expect("given now");
    assert_eq!(movie_queue::store_id(dir.path()).expect("read"), Some(id));
}

#[test]
fn an_identity_that_does_not_parse_is_named_then_set_aside_and_replaced_by_the_next_writer() {
    let (dir, old) = closed_store();
    let mut damaged = format!("{old}\n").into_bytes();
    damaged[5] = b'Z';
    fs::write(identity_file(dir.path()), &damaged).expect("damage");
    let problems = verify_problems(dir.path());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("identity") && problems[0].contains("does not parse"),
        "{problems:?}"
    );
    assert!(matches!(movie_queue::store_id(dir.path()), Err(Error::Corrupt { .. })));
    let writer = QueueManager::open(dir.path()).expect("the store opens all the same");
    let new = writer.store_id().expect("a new identity");
    assert_ne!(new, old);
    assert_eq!(writer.get_pending_count(), 1, "nothing else changed");
    drop(writer);
    let aside = fs::read(dir.path().join("journal").join("identity.damaged.broken")).expect("set aside");
    assert_eq!(aside, damaged, "the damaged bytes are kept");
    assert!(verify_problems(dir.path()).is_empty());
}

#[test]
fn repair_mends_an_identity_as_a_writer_open_does() {
    let (dir, old) = closed_store();
    fs::write(identity_file(dir.path()), b"").expect("empty it");
    movie_queue::repair(dir.path()).expect("repair");
    let new = movie_queue::store_id(dir.path())
        .expect("read")
        .expect("a new identity");
    assert_ne!(new, old);
    assert!(verify_problems(dir.path()).is_empty());
}

#[test]
fn a_link_where_the_identity_belongs_is_never_followed() {
    let (dir, old) = closed_store();
    // A planted link to a file that would parse.
    let elsewhere = scratch();
    let target = elsewhere.path().join("planted");
    fs::write(&target, "0123456789abcdef0123456789abcdef\n").expect("target");
    fs::remove_file(identity_file(dir.path())).expect("remove");
    std::os::unix::fs::symlink(&target, identity_file(dir.path())).expect("link");
    assert!(
        matches!(movie_queue::store_id(dir.path()), Err(Error::Corrupt { .. })),
        "not read through the link"
    );
    assert_eq!(verify_problems(dir.path()).len(), 1);
    let writer = QueueManager::open(dir.path()).expect("open");
    let new = writer.store_id().expect("a new identity");
    assert_ne!(new, old);
    assert_ne!(
        new.to_string(),
        "0123456789abcdef0123456789abcdef",
        "never the planted one"
    );
    drop(writer);
    assert_eq!(
        fs::read_to_string(&target).expect("target"),
        "0123456789abcdef0123456789abcdef\n",
        "the link's target is untouched"
    );
    assert!(
        fs::symlink_metadata(dir.path().join("journal").join("identity.damaged.broken"))
            .expect("the link set aside")
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_journal_replaced_whole_by_the_legacy_import_gets_a_new_identity() {
    let dir = scratch();
    let qm = QueueManager::open(dir.path()).expect("open");
    let old = qm.store_id().expect("given");
    qm.add_to_pending(movie("1")).expect("add");
    qm.snapshot().expect("snapshot");
    qm.close().expect("close");
    // Only the application's files left (and the old journal's identity):
    // the next open imports them as a new history.
    for name in ["queue_snapshot.json", "queue_snapshot.idx"] {
        fs::remove_file(dir.path().join(name)).expect("remove");
    }
    for entry in fs::read_dir(dir.path().join("journal")).expect("list") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|name| name != "identity") {
            fs::remove_file(path).expect("remove");
        }
    }
    let qm = QueueManager::open(dir.path()).expect("the import");
    assert_eq!(qm.get_pending_count(), 1, "imported");
    let new = qm.store_id().expect("a new identity");
    assert_ne!(new, old, "a new history of records");
    drop(qm);
    let aside = dir.path().join("journal.before-import.broken").join("identity");
    assert_eq!(
        fs::read_to_string(aside).expect("the old journal, set aside"),
        format!("{old}\n")
    );
}
