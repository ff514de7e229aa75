//! Snapshots of a running manager: due by count or time and written in the
//! background from disk, written on request, and written last on close.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Inner, QueueManager};
use crate::audit::{self, Until};
use crate::error::{Error, Result};
use crate::journal::writer::Flusher;
use crate::seq::Seq;
use crate::snapshot::manifest;
use crate::storage::Storage;

impl QueueManager {
    pub(super) fn snapshot_due(&self, inner: &Inner) -> bool {
        self.policy_due(
            inner.events_since_snapshot,
            inner.last_snapshot_at.elapsed().as_secs_f64(),
        )
    }

    /// The policy: records since the last snapshot reach its count, or
    /// there are some and the last one is older than its interval (`age`,
    /// seconds).
    fn policy_due(&self, since: u64, age: f64) -> bool {
        let by_count = self.core.options.snapshot_every_events > 0 && since >= self.core.options.snapshot_every_events;
        let by_age = self
            .core
            .options
            .snapshot_every
            .is_some_and(|interval| age >= interval.as_secs_f64());
        since > 0 && (by_count || by_age)
    }

    /// Is a snapshot due at close? When the store has none usable for the
    /// readers (none, one the open did not start from, one written by an
    /// older version without its time and index, an index that does not
    /// match it), or when the policy says so, its age being that of the
    /// oldest change the files do not reflect (the time of its record, so a
    /// short-lived process such as one CLI command counts its real age;
    /// the manifest's `written_at` when that is not known). Otherwise close
    /// leaves the documented files as
    /// they are: the journal holds every change, and a few records are not
    /// worth rewriting every queue.
    fn closing_snapshot_due(&self, inner: &Inner) -> bool {
        let storage = self.core.options.storage.as_ref();
        if inner.snapshot_stale {
            return true;
        }
        let Ok(Some(summary)) = manifest::read_summary(storage, &self.core.dir) else {
            return true;
        };
        let Some(written) = summary.written_at() else {
            return true;
        };
        // A state that loads on demand opened from this very index.
        if inner.partial.is_none() && summary.load_index(storage, &self.core.dir).is_err() {
            return true;
        }
        let oldest = inner.oldest_change.unwrap_or(written);
        self.policy_due(inner.events_since_snapshot, crate::clock::now() - oldest)
    }

    /// Starts a snapshot of record `seq` on a thread of its own. The thread
    /// rebuilds that state from disk — the previous snapshot plus the
    /// journal records after it — so writers never wait for it: nothing is
    /// cloned or held under the lock.
    pub(super) fn start_background_snapshot(&self, inner: &mut Inner) {
        let Ok(mut running) = self.core.snapshot_thread.try_lock() else {
            return;
        };
        if running.as_ref().is_some_and(|thread| !thread.is_finished()) {
            return;
        }
        let Some(flusher) = inner.writer.as_ref().and_then(|writer| writer.flusher().ok()) else {
            return;
        };
        let seq = Seq(inner.next_seq.0 - 1);
        inner.events_since_snapshot = 0;
        inner.snapshot_stale = false;
        inner.last_snapshot_at = Instant::now();
        inner.oldest_change = None;
        let storage = self.core.options.storage.clone();
        let dir = self.core.dir.clone();
        let writing = Arc::clone(&self.core.snapshot_writing);
        let spawned = std::thread::Builder::new()
            .name("movie-queue-snapshot".into())
            .spawn(move || {
                if let Err(error) = snapshot_from_disk(storage.as_ref(), &dir, &flusher, seq, &writing) {
                    tracing::warn!(%error, "background snapshot failed; the journal still holds every event");
                }
            });
        match spawned {
            Ok(thread) => *running = Some(thread),
            Err(error) => tracing::warn!(%error, "could not start the snapshot thread"),
        }
    }

    fn join_snapshot_thread(&self) {
        let thread = self
            .core
            .snapshot_thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::warn!("the snapshot thread panicked");
        }
    }

    /// Writes a snapshot now (waiting for it): the three documented files
    /// and the manifest, covering every event so far.
    ///
    /// # Errors
    /// [`crate::error::Error::ReadOnly`]; [`crate::error::Error::Poisoned`]; [`crate::error::Error::Io`] naming the file.
    pub fn snapshot(&self) -> Result<Seq> {
        self.check_owner()?;
        // Held while the files are written, so no background snapshot
        // starts meanwhile and writes the same temporary files.
        let mut running = self
            .core
            .snapshot_thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(thread) = running.take()
            && thread.join().is_err()
        {
            tracing::warn!("the snapshot thread panicked");
        }
        let (flusher, seq) = {
            let mut inner = self.write();
            let writer = inner.writer.as_ref().ok_or_else(|| self.not_writable())?;
            let flusher = writer.flusher()?;
            inner.events_since_snapshot = 0;
            inner.snapshot_stale = false;
            inner.last_snapshot_at = Instant::now();
            inner.oldest_change = None;
            (flusher, Seq(inner.next_seq.0 - 1))
        };
        snapshot_from_disk(
            self.core.options.storage.as_ref(),
            &self.core.dir,
            &flusher,
            seq,
            &self.core.snapshot_writing,
        )?;
        drop(running);
        Ok(seq)
    }

    /// Flushes the journal, writes a snapshot if one is due (see
    /// `closing_snapshot_due`: the store has none, the open did not start
    /// from it, or the policy's count or age is reached) and stops the
    /// writer.
    ///
    /// # Errors
    /// The first failure among these steps; [`Error::Forked`] in a forked
    /// child, where it does nothing to the store.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    pub(super) fn shutdown(&self) -> Result<()> {
        self.check_owner()?;
        // No request is taken once closing begins; one in progress is answered first.
        if let Some(server) = &self.control {
            server.stop();
        }
        self.join_snapshot_thread();
        let mut inner = self.write();
        let Some(writer) = inner.writer.take() else {
            return Ok(());
        };
        let seq = Seq(inner.next_seq.0 - 1);
        // A manager whose open did not complete never writes a snapshot:
        // its state may not be the store's.
        let opened = self.core.opened.load(std::sync::atomic::Ordering::Acquire);
        let snapshot = writer.flush(seq).and_then(|()| {
            if opened && self.closing_snapshot_due(&inner) {
                let storage = self.core.options.storage.as_ref();
                // A state that holds only some movies is rebuilt whole
                // from disk first (the journal is flushed through `seq`).
                let failed = |error| Error::SnapshotFailed {
                    seq: seq.0,
                    cause: Box::new(error),
                };
                let rebuilt = match inner.partial {
                    Some(_) => Some(audit::replay_with(storage, &self.core.dir, Until::Seq(seq)).map_err(failed)?),
                    None => None,
                };
                let (state, on_disk) = rebuilt.as_ref().map_or((&inner.state, &inner.on_disk), |rebuilt| {
                    (&rebuilt.state, &rebuilt.on_disk)
                });
                let _writing = lock(&self.core.snapshot_writing);
                manifest::write_snapshot_keeping(storage, &self.core.dir, state, seq, on_disk).map_err(failed)
            } else {
                Ok(())
            }
        });
        let closed = writer.close();
        snapshot.and(closed)
    }
}

/// Writes the snapshot of record `seq` from what is on disk: waits until
/// the journal is durable through `seq`, rebuilds that state from the
/// previous snapshot plus the journal after it, and writes the files
/// holding `writing` (one snapshot writer at a time). Holds no lock of the
/// manager's state.
fn snapshot_from_disk(
    storage: &dyn Storage,
    dir: &Path,
    flusher: &Flusher,
    seq: Seq,
    writing: &Mutex<()>,
) -> Result<()> {
    flusher.flush(seq)?;
    let rebuilt = audit::replay_with(storage, dir, Until::Seq(seq))?;
    let _writing = lock(writing);
    manifest::write_snapshot_keeping(storage, dir, &rebuilt.state, seq, &rebuilt.on_disk)
}

fn lock(mutex: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
