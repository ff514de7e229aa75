//! `model_ops`: a sequence of `QueueManager` operations on a pool of four
//! ids, checked after every step against the crate's one reference model
//! (`movie_queue::testing::ReferenceModel`), including across close and reopen.
//!
//! Input: byte 0 picks the options (durability, snapshot frequency, tiny
//! segments so they roll over); then each operation is an opcode byte and
//! its arguments, up to [`OPERATIONS_MAX`] of them.
//!
//! Properties: every call returns what the model says (added or not, the
//! movie taken, counts removed, retry and deletion lists, statistics);
//! after every step the five queues equal the model's, entry by entry
//! (times stamped by the store are checked to lie within the call and are
//! then pinned); a reopen
//! gives the same state; a full replay of the journal gives the live state;
//! a read-only open sees what the writer flushed; the closed store verifies.

use std::path::Path;
use std::time::Duration;

use movie_queue::testing::ReferenceModel as Model;
use movie_queue::{Durability, Movie, Place, QueueEntry, QueueManager};
use serde_json::json;

use super::bytes::{Builder, Cursor};
use super::recovery_dir::scratch;

/// The most operations one input runs (keeps an iteration fast).
pub const OPERATIONS_MAX: usize = 48;
/// The ids operations draw from.
const IDS: [&str; 4] = ["a", "b", "c", "d"];
/// A `retry_after` far in the future (never ready during a run).
const FAR_FUTURE_SECS: f64 = 1.0e6;

/// The store's options for this run, from the first byte.
fn options(choice: u8) -> movie_queue::Options {
    let durability = if choice & 1 == 0 {
        Durability::Immediate
    } else {
        Durability::Batched {
            max_delay: Duration::from_millis(1),
        }
    };
    let mut options = QueueManager::options()
        .durability(durability)
        .snapshot_every(None)
        .snapshot_every_events([0, 3, 10_000][usize::from(choice >> 1) % 3]);
    if choice & 8 != 0 {
        options = options.segment_bytes_max(256);
    }
    options.requeue_in_flight_on_open(choice & 16 != 0)
}

fn movie(cursor: &mut Cursor<'_>) -> Movie {
    let id = IDS[usize::from(cursor.below(4))];
    let variant = cursor.byte();
    let mut movie = if variant & 1 == 0 {
        Movie::new(id, format!("Movie {id}"), "2020")
    } else {
        Movie::new(id, format!("Film {id} v{variant}"), i64::from(variant))
    };
    if variant & 2 != 0 {
        movie = movie.with_imdb_id(format!("tt{variant}"));
    }
    if variant & 4 != 0 {
        movie = movie
            .with_extra("status", json!({"queued": variant}))
            .expect("not a reserved field");
    }
    movie
}

fn now() -> f64 {
    movie_queue::now()
}

/// The run: the store under test, its directory, the model, the options.
struct Run {
    dir: tempfile::TempDir,
    manager: Option<QueueManager>,
    model: Model,
    choice: u8,
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut cursor = Cursor::new(data);
    let choice = cursor.byte();
    let dir = scratch();
    let manager = options(choice).open(dir.path()).expect("open a new store");
    let mut run = Run {
        dir,
        manager: Some(manager),
        model: Model::default(),
        choice,
    };
    for _ in 0..OPERATIONS_MAX {
        if cursor.is_empty() {
            break;
        }
        run.step(&mut cursor);
        run.compare("after a step");
        if std::env::var_os("MOVIE_QUEUE_FUZZ_DEBUG").is_some() {
            eprintln!("{:?}", run.manager().get_statistics());
        }
    }
    run.finish();
}

impl Run {
    fn manager(&self) -> &QueueManager {
        self.manager.as_ref().expect("the store is open")
    }

    /// One operation and its check against the model.
    fn step(&mut self, cursor: &mut Cursor<'_>) {
        match cursor.below(20) {
            0 | 1 => self.add(movie(cursor)),
            2 | 3 => self.take(),
            4 | 5 => {
                let retry = cursor.below(3);
                self.fail(movie(cursor), retry);
            }
            6 => self.fail_with_backoff(movie(cursor)),
            7 | 8 => self.complete(movie(cursor)),
            9 => self.move_to_pending(IDS[usize::from(cursor.below(4))]),
            10 => self.reset(IDS[usize::from(cursor.below(4))]),
            11 => self.cleanup(cursor.byte()),
            12 => self.requeue(),
            13 => self.queries(u32::from(cursor.below(4))),
            14 => self.reopen(cursor.byte()),
            15 => self.maintenance(cursor.below(4)),
            16 => self.remove(movie(cursor)),
            17 => self.mark_removed(cursor.byte()),
            18 => self.restore(IDS[usize::from(cursor.below(4))]),
            _ => self.forget(IDS[usize::from(cursor.below(4))]),
        }
    }

    fn add(&mut self, movie: Movie) {
        let before = now();
        let added = self.manager().add_to_pending(movie.clone()).expect("add_to_pending");
        let stamp = if added {
            self.stamped(movie.id(), before, queued_at)
        } else {
            0.0
        };
        assert_eq!(
            added,
            self.model.add(movie.clone(), stamp),
            "add_to_pending({}) returned {added}",
            movie.id()
        );
    }

    fn remove(&mut self, movie: Movie) {
        let before = now();
        let removed = self.manager().add_to_removed(movie.clone()).expect("add_to_removed");
        let stamp = if removed {
            self.stamped(movie.id(), before, |entry| entry.removed_at)
        } else {
            0.0
        };
        assert_eq!(
            removed,
            self.model.remove_movie(movie.clone(), stamp),
            "add_to_removed({})",
            movie.id()
        );
    }

    /// `mark_movies_as_removed` with the ids whose bit is set in `mask`.
    fn mark_removed(&mut self, mask: u8) {
        let watchlist: Vec<String> = (0..IDS.len())
            .filter(|bit| mask & (1 << bit) != 0)
            .map(|bit| IDS[bit].to_owned())
            .collect();
        let expected = self.model.not_on_watchlist(&watchlist);
        let before = now();
        let moved = self
            .manager()
            .mark_movies_as_removed(&watchlist)
            .expect("mark_movies_as_removed");
        let stamp = match expected.first() {
            Some(id) => self.stamped(id, before, |entry| entry.removed_at),
            None => 0.0,
        };
        assert_eq!(
            moved,
            self.model.mark_removed(&watchlist, stamp),
            "mark_movies_as_removed"
        );
    }

    fn restore(&mut self, id: &str) {
        let restored = self.manager().restore_removed_movie(id).expect("restore_removed_movie");
        assert_eq!(restored, self.model.restore(id), "restore_removed_movie({id})");
    }

    fn forget(&mut self, id: &str) {
        let forgotten = self
            .manager()
            .remove_from_removed_queue(id)
            .expect("remove_from_removed_queue");
        assert_eq!(forgotten, self.model.forget(id), "remove_from_removed_queue({id})");
    }

    fn take(&mut self) {
        let taken = self.manager().get_next_pending().expect("get_next_pending");
        assert_eq!(taken, self.model.take(), "get_next_pending");
    }

    /// A stamp the store chose during a call: within the call's time (a
    /// stamp in whole seconds from the second the call began), then pinned.
    fn stamped(&self, id: &str, before: f64, pick: impl Fn(&QueueEntry) -> Option<f64>) -> f64 {
        let after = now();
        let (_, entry) = self.manager().get(id).expect("the stamped movie is known");
        let stamp = pick(&entry).expect("the store stamped the entry");
        assert!(
            (before.floor()..=after).contains(&stamp),
            "stamp {stamp} outside the call ({before}..{after})"
        );
        stamp
    }

    fn fail(&mut self, movie: Movie, retry: u8) {
        let retry_after = match retry {
            0 => None,
            1 => Some(1.0),
            _ => Some(now() + FAR_FUTURE_SECS),
        };
        let before = now();
        let failed = self
            .manager()
            .add_to_failed(movie.clone(), "Download failed", retry_after)
            .expect("add_to_failed");
        self.apply_failure(movie, "Download failed", before, failed, retry_after);
    }

    fn fail_with_backoff(&mut self, movie: Movie) {
        let before = now();
        let chosen = self
            .manager()
            .fail_with_backoff(movie.clone(), "Timed out")
            .expect("fail_with_backoff");
        if let Some(retry_after) = chosen {
            assert!(retry_after > before, "a backoff lies in the future");
        }
        self.apply_failure(movie, "Timed out", before, chosen.is_some(), chosen);
    }

    /// The model's side of a failure the store reported as `failed`.
    fn apply_failure(&mut self, movie: Movie, error: &str, before: f64, failed: bool, retry_after: Option<f64>) {
        let done = matches!(
            self.model.find(movie.id()),
            Some((Place::Completed | Place::Removed, _))
        );
        assert_eq!(
            failed, !done,
            "a failure is refused exactly for a completed or removed movie"
        );
        if done {
            return;
        }
        let id = movie.id().to_owned();
        let retry_after = retry_after.unwrap_or_else(|| self.stamped(&id, before, |entry| entry.retry_after));
        let stamp = if self.model.first_failure(&id) {
            self.stamped(&id, before, |entry| entry.failed_at)
        } else {
            self.stamped(&id, before, last_failed_at)
        };
        assert!(
            self.model.fail(movie, error, retry_after, stamp),
            "the model refused a failure"
        );
    }

    fn complete(&mut self, movie: Movie) {
        let before = now();
        let completed = self
            .manager()
            .add_to_completed(movie.clone())
            .expect("add_to_completed");
        let already = matches!(
            self.model.find(movie.id()),
            Some((Place::Completed | Place::Removed, _))
        );
        assert_eq!(completed, !already, "add_to_completed({})", movie.id());
        if already {
            return;
        }
        let completed_at = self.stamped(movie.id(), before, |entry| entry.completed_at);
        assert!(
            self.model.complete(movie, completed_at),
            "the model refused a completion"
        );
    }

    fn move_to_pending(&mut self, id: &str) {
        let moved = self
            .manager()
            .move_failed_to_pending(id)
            .expect("move_failed_to_pending");
        assert_eq!(moved, self.model.move_back(id), "move_failed_to_pending({id})");
    }

    fn reset(&mut self, id: &str) {
        let reset = self.manager().reset_failed_movie(id).expect("reset_failed_movie");
        assert_eq!(reset, self.model.reset(id), "reset_failed_movie({id})");
    }

    fn cleanup(&mut self, choice: u8) {
        let (removed, cutoff) = match choice % 4 {
            0 => (
                self.manager().cleanup_old_completed(1).expect("cleanup_old_completed"),
                0.0,
            ),
            1 => (self.manager().cleanup_completed_before(0.0).expect("cleanup"), 0.0),
            2 => {
                let cutoff = now() + 1.0;
                (
                    self.manager().cleanup_completed_before(cutoff).expect("cleanup"),
                    cutoff,
                )
            }
            _ => {
                let index = usize::from(choice >> 2) % self.model.completed.len().max(1);
                let cutoff = self
                    .model
                    .completed
                    .get(index)
                    .and_then(|entry| entry.completed_at)
                    .unwrap_or(0.0);
                (
                    self.manager().cleanup_completed_before(cutoff).expect("cleanup"),
                    cutoff,
                )
            }
        };
        assert_eq!(removed, self.model.cleanup_before(cutoff), "cleanup removed");
    }

    fn requeue(&mut self) {
        let count = self.manager().requeue_in_flight().expect("requeue_in_flight");
        assert_eq!(count, self.model.requeue(), "requeue_in_flight");
    }

    fn queries(&mut self, max_retries: u32) {
        let manager = self.manager();
        let now = now();
        assert_eq!(
            manager.get_movies_ready_for_retry(max_retries),
            self.model.ready_for_retry(now, max_retries),
            "ready for retry"
        );
        assert_eq!(
            manager.get_permanent_failures(max_retries),
            self.model.permanent_failures(max_retries),
            "permanent failures"
        );
        for grace in [Duration::ZERO, movie_queue::GRACE_PERIOD_DEFAULT] {
            assert_eq!(
                manager.get_movies_ready_for_deletion(grace),
                self.model.ready_for_deletion(now, grace.as_secs_f64()),
                "ready for deletion"
            );
        }
        for id in IDS {
            let expected = matches!(self.model.find(id), Some((Place::Completed, _)));
            assert_eq!(self.manager().is_completed(id), expected, "is_completed({id})");
        }
        let replayed = self
            .manager()
            .state_at(self.manager().last_seq())
            .map(|replayed| replayed.state)
            .expect("replay the journal");
        assert!(replayed == self.manager().state(), "a full replay gives the live state");
    }

    fn reopen(&mut self, how: u8) {
        let manager = self.manager.take().expect("the store is open");
        match how % 3 {
            0 => manager.close().expect("close"),
            1 => drop(manager),
            _ => {
                manager.flush().expect("flush");
                let reader = QueueManager::open_read_only(self.dir.path()).expect("open read-only beside the writer");
                assert!(
                    reader.state() == manager.state(),
                    "a reader sees what the writer flushed"
                );
                drop(reader);
                self.manager = Some(manager);
                return;
            }
        }
        self.choice ^= how & 0x1F;
        let manager = options(self.choice).open(self.dir.path()).expect("reopen");
        if self.choice & 16 != 0 {
            self.model.requeue();
        }
        self.manager = Some(manager);
        self.compare("after a reopen");
    }

    fn maintenance(&mut self, what: u8) {
        let manager = self.manager();
        match what {
            0 => {
                manager.snapshot().expect("snapshot");
            }
            1 => {
                manager.compact().expect("compact");
            }
            2 => manager.flush().expect("flush"),
            _ => {
                assert_eq!(manager.get_statistics(), self.model.statistics(5), "get_statistics");
            }
        }
    }

    /// The store's five queues equal the model's, entry by entry.
    fn compare(&self, when: &str) {
        let manager = self.manager();
        let model = &self.model;
        for place in Place::ALL {
            assert_eq!(&manager.list(place), model.queue(place), "{place} {when}");
        }
        assert_eq!(manager.get_pending_count(), model.pending.len());
        assert_eq!(manager.get_in_flight_count(), model.in_flight.len());
        assert_eq!(manager.get_failed_count(), model.failed.len());
        assert_eq!(manager.get_completed_count(), model.completed.len());
        assert_eq!(manager.get_removed_count(), model.removed.len());
    }

    /// Close, check the store verifies and reopens to the model.
    fn finish(mut self) {
        let manager = self.manager.take().expect("the store is open");
        manager.close().expect("close");
        check_closed(self.dir.path(), &self.model);
    }
}

/// `queued_at`, stamped on the movie in whole seconds.
fn queued_at(entry: &QueueEntry) -> Option<f64> {
    entry.movie.extra().get("queued_at")?.as_f64()
}

/// `last_failed_at`, stamped on the movie in whole seconds.
fn last_failed_at(entry: &QueueEntry) -> Option<f64> {
    entry.movie.extra().get("last_failed_at")?.as_f64()
}

fn check_closed(dir: &Path, model: &Model) {
    let report = movie_queue::verify(dir).expect("the closed store verifies");
    assert!(
        report.problems.is_empty(),
        "verify found problems: {:?}",
        report.problems
    );
    let reader = QueueManager::open_read_only(dir).expect("the closed store reopens");
    for place in Place::ALL {
        assert_eq!(
            &reader.list(place),
            model.queue(place),
            "{place} after the final reopen"
        );
    }
}

/// Seed inputs: the seed's usage example, a retry cycle, reopens and compaction.
/// Operations: add `[0, id, variant]`, take `[2]`, fail `[4, retry, id, variant]`,
/// backoff `[6, id, variant]`, complete `[7, id, variant]`, move back `[9, id]`,
/// reset `[10, id]`, cleanup `[11, how]`, requeue `[12]`, queries `[13, max]`,
/// reopen `[14, how]`, maintenance `[15, what]`, remove `[16, id, variant]`,
/// mark removed `[17, watchlist mask]`, restore `[18, id]`, forget `[19, id]`.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut usage = Builder::default();
    // Immediate: add a and b, take a, fail it (due), queries, move it back,
    // statistics, take b, complete it, queries.
    usage
        .byte(0)
        .raw(&[0, 0, 0, 0, 1, 0, 2, 4, 1, 0, 0, 13, 3, 9, 0, 15, 3, 2, 7, 1, 0, 13, 0]);
    let mut cycle = Builder::default();
    // Batched, a snapshot every 3 events, 256-byte segments: a retry cycle
    // with a reset, a backoff, clean-ups, a close and reopen, a compaction.
    cycle.byte(9).raw(&[
        0, 0, 0, 0, 1, 1, 2, 4, 2, 0, 0, 10, 0, 2, 7, 1, 0, 2, 4, 1, 0, 5, 4, 0, 0, 1, 9, 0, 2, 6, 0, 0, 11, 2, 14, 0,
        15, 1, 13, 3, 7, 0, 2, 11, 3, 14, 1, 13, 1,
    ]);
    let mut reopen = Builder::default();
    // Requeue on open: takes across reopens by drop and close, a reader
    // beside the writer, an explicit requeue, a snapshot.
    reopen.byte(16).raw(&[
        0, 0, 0, 0, 1, 0, 2, 14, 1, 2, 14, 2, 12, 2, 2, 14, 16, 13, 2, 4, 2, 0, 0, 15, 0, 14, 0, 13, 3,
    ]);
    let mut removed = Builder::default();
    // The removed queue: add a, b, c; take a; complete it; mark the
    // watchlist {b}: a (completed) and c (pending) move; restore c, remove
    // b by hand, forget a, queries, a close and reopen, queries.
    removed.byte(0).raw(&[
        0, 0, 0, 0, 1, 0, 0, 2, 0, 2, 7, 0, 0, 17, 2, 18, 2, 16, 1, 0, 19, 0, 13, 1, 14, 0, 13, 1,
    ]);
    vec![
        ("usage_example", usage.finish()),
        ("retry_cycle", cycle.finish()),
        ("reopen", reopen.finish()),
        ("removed_queue", removed.finish()),
    ]
}
