//! The writer's lock cannot be lost by deleting or replacing a file: with
//! a writer open, `LOCK` is deleted (or replaced by a new file), and a
//! second writer is still refused at once; once the first closes, it opens.
//!
//! How: the lock is taken on the store directory itself (which cannot be
//! unlinked while the writer works in it) as well as on `LOCK`.

use std::fs;

use movie_queue::{Error, QueueManager};

use crate::support::durability::{movie, scratch};

#[test]
fn deleting_or_replacing_lock_never_lets_a_second_writer_in() {
    for replace in [false, true] {
        let dir = scratch();
        let first = QueueManager::open(dir.path()).expect("open");
        first.add_to_pending(movie("1")).expect("add");
        let lock = dir.path().join("LOCK");
        fs::remove_file(&lock).expect("a careless rm LOCK");
        if replace {
            fs::write(&lock, b"").expect("a new LOCK file");
        }
        let second = QueueManager::open(dir.path());
        assert!(
            matches!(second, Err(Error::Locked { .. })),
            "replace {replace}: a second writer got in: {:?}",
            second.map(|qm| qm.get_statistics())
        );
        first.close().expect("close");
        let after = QueueManager::open(dir.path()).expect("the lock is free once the writer closes");
        assert_eq!(after.get_pending_count(), 1);
    }
}
