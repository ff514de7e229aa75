//! Group commit: concurrent `Immediate` callers share fsyncs, and every
//! one of them is durable when its call returns.
//!
//! How: eight threads, released together by a barrier, each add a hundred
//! movies to one `QueueManager` in `Immediate` mode over a
//! `FaultyStorage`, which counts every fsync. The storage is wrapped so
//! that each file fsync takes 3 ms, as on a real disk (this machine's
//! virtual disk answers in 0.2 ms, and on a loaded 2-core machine the
//! woken callers might then not get a core before the next fsync starts).
//! While the writer thread fsyncs one batch, the seven other callers,
//! blocked on their own records, have milliseconds to queue their next
//! event, and the next batch takes them all with one fsync: the number of
//! fsyncs must be well below the number of events. Then the power goes
//! out with nothing kept that was not synced, and the reopened store
//! holds every movie: each `Ok` really was on disk. A control run with
//! one event per batch takes exactly one fsync per event, so the counter
//! counts what it should.

use crate::support::durability as durability_support;

use std::io;
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use durability_support::{movie, scratch};
use movie_queue::testing::{Entry, FaultyStorage, ReadableFile, Storage, WritableFile};
use movie_queue::{Durability, QueueManager};

const THREADS: usize = 8;
const ADDS_PER_THREAD: usize = 100;
const FSYNC_TIME: Duration = Duration::from_millis(3);

/// A storage whose file fsyncs take `FSYNC_TIME` (then go to the inner one).
#[derive(Debug)]
struct SlowFsync(FaultyStorage);

struct SlowFile(Box<dyn WritableFile>);

impl WritableFile for SlowFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all_at(offset, bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        std::thread::sleep(FSYNC_TIME);
        self.0.sync_data()
    }
}

impl Storage for SlowFsync {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.0.list_dir(path)
    }
    fn entry(&self, path: &Path) -> io::Result<Entry> {
        self.0.entry(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.read(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>> {
        self.0.open_read(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(SlowFile(self.0.create_new(path)?)))
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.0.sync_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.0.remove_dir(path)
    }
    fn open_write(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(SlowFile(self.0.open_write(path, offset)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path)
    }
    fn zero_from(&self, path: &Path, offset: u64) -> io::Result<()> {
        self.0.zero_from(path, offset)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.sync_dir(path)
    }
}

/// What a run of concurrent adds left.
struct Run {
    dir: tempfile::TempDir,
    faulty: FaultyStorage,
    qm: Arc<QueueManager>,
    syncs: u64,
}

fn concurrent_adds(storage: Arc<dyn Storage>, faulty: FaultyStorage, batch_events_max: usize) -> Run {
    // The two tests of this file would otherwise compete for the cores.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = scratch();
    let qm = Arc::new(
        QueueManager::options()
            .durability(Durability::Immediate)
            .storage(storage)
            .snapshot_every_events(0)
            .snapshot_every(None)
            .batch_events_max(batch_events_max)
            .open(dir.path())
            .expect("open"),
    );
    let barrier = Arc::new(Barrier::new(THREADS));
    let syncs_before = faulty.sync_count();
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let qm = Arc::clone(&qm);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for n in 0..ADDS_PER_THREAD {
                    assert!(qm.add_to_pending(movie(&format!("t{thread}-{n}"))).expect("add"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a thread panicked");
    }
    let syncs = faulty.sync_count() - syncs_before;
    Run { dir, faulty, qm, syncs }
}

#[test]
fn concurrent_immediate_adds_share_fsyncs_and_are_all_durable() {
    let faulty = FaultyStorage::new();
    let run = concurrent_adds(Arc::new(SlowFsync(faulty.clone())), faulty, 4_096);
    let events = (THREADS * ADDS_PER_THREAD) as u64;
    eprintln!("{events} events made durable by {} fsyncs", run.syncs);
    assert!(
        run.syncs * 10 < events * 9,
        "group commit: {} fsyncs for {events} concurrent events (want fewer than 90%)",
        run.syncs
    );

    run.faulty.power_loss(0).expect("power loss");
    drop(run.qm);
    let reopened = QueueManager::open(run.dir.path()).expect("reopen");
    assert_eq!(
        reopened.get_pending_count(),
        THREADS * ADDS_PER_THREAD,
        "every acknowledged add survived"
    );
    for thread in 0..THREADS {
        let ids: Vec<usize> = reopened
            .list(movie_queue::Place::Pending)
            .iter()
            .filter_map(|entry| entry.id().strip_prefix(&format!("t{thread}-"))?.parse().ok())
            .collect();
        assert_eq!(
            ids,
            (0..ADDS_PER_THREAD).collect::<Vec<_>>(),
            "thread {thread}'s adds in its order"
        );
    }
}

/// The counter counts what it should: with one event per batch, the same
/// workload takes one fsync per event.
#[test]
fn without_batching_every_event_takes_its_own_fsync() {
    let faulty = FaultyStorage::new();
    let run = concurrent_adds(Arc::new(faulty.clone()), faulty, 1);
    assert_eq!(run.syncs, (THREADS * ADDS_PER_THREAD) as u64);
}
