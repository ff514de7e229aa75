//! The audit queries of a running manager: they flush, then read the
//! journal on disk through `audit.rs`.

use super::{MovieId, QueueManager};
use crate::audit::{self, Events, Until};
use crate::error::Result;
use crate::event::EventRecord;
use crate::journal::writer::JournalWriter;
use crate::seq::Seq;

impl QueueManager {
    /// Every journaled event of the movie `id`, oldest first. Events before
    /// a compaction are gone from the journal and not listed.
    ///
    /// # Errors
    /// Corruption or I/O while reading the journal (damaged records are
    /// an error, never skipped).
    pub fn history(&self, movie_id: impl MovieId) -> Result<Vec<EventRecord>> {
        let id = movie_id.movie_id();
        let mut events = Vec::new();
        for record in self.events_from(Seq(0))? {
            let record = record?;
            if record.event.concerns(id) {
                events.push(record);
            }
        }
        Ok(events)
    }

    /// The events from sequence number `from` on, in order, to the last
    /// one so far (durable: the journal is flushed first), read lazily —
    /// one record at a time, nothing collected. `Seq(0)` starts at the
    /// first event the journal still holds (after `compact`, later than
    /// record 1); a `from` the journal no longer holds is an error, never
    /// a silent gap. Each item is `Err` where a record cannot be read (and
    /// is the last).
    ///
    /// # Errors
    /// [`crate::error::Error::Poisoned`] from the flush; [`crate::error::Error::Forked`].
    pub fn events_from(&self, from: Seq) -> Result<Events> {
        self.flush()?;
        let last = self.last_seq();
        Ok(Events::to_end(
            self.core.options.storage.clone(),
            self.dir(),
            from,
            last,
        ))
    }

    /// Every event from sequence number `from` on, and then each new one as
    /// it becomes durable: a blocking iterator, in order, with no gap and
    /// no repeat, across segment rolls and `compact`. It never yields an
    /// event that is not durable, so a consumer that records the `seq` of
    /// the last event it handled resumes exactly with `subscribe(seq + 1)`,
    /// here or after a crash. It ends once this manager is closed (after
    /// the events written until then). A read-only manager follows what
    /// another process writes, as [`crate::follow`] does. `compact` keeps
    /// the segments a live subscription has yet to read.
    ///
    /// # Errors
    /// [`crate::error::Error::Forked`] in a forked child (errors reading the
    /// journal come as items).
    pub fn subscribe(&self, from: Seq) -> Result<Events> {
        self.check_owner()?;
        let watch = self.read().writer.as_ref().map(JournalWriter::durable_watch);
        let storage = self.core.options.storage.clone();
        let events = match watch {
            Some(watch) => Events::subscribed(storage, self.dir(), from, watch),
            None => Events::polling(storage, self.dir(), from),
        };
        Ok(events.sharing_position(self.register_subscription()))
    }

    /// Hands every event from `from` on to `visit`, streaming (nothing is
    /// collected).
    ///
    /// # Errors
    /// Corruption or I/O while reading the journal; what `visit` returned.
    pub fn for_each_event(&self, from: Seq, visit: &mut dyn FnMut(EventRecord) -> Result<()>) -> Result<()> {
        for record in self.events_from(from)? {
            visit(record?)?;
        }
        Ok(())
    }

    /// The queues as of `target`, a record (`Seq`, included) or a Unix
    /// time (`Until::Time`: every event stamped at or before it; event
    /// times are monotonic in a store), and how they were rebuilt (see
    /// [`crate::replay`], the same for a store on disk that no manager
    /// holds): from the latest starting point whose records reach the
    /// target, reading only the records up to it.
    ///
    /// ```no_run
    /// # use movie_queue::{QueueManager, Seq, Until};
    /// # let qm = QueueManager::open("some/dir")?;
    /// let at_five = qm.state_at(Seq(5))?.state;
    /// let yesterday = qm.state_at(Until::Time(movie_queue::now() - 86_400.0))?;
    /// println!("{} pending then", yesterday.state.pending_count());
    /// # Ok::<(), movie_queue::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::error::Error::Unanswerable`] if the store cannot answer exactly:
    /// the target is before what the journal still holds (compacted),
    /// behind damaged records, past the last record or in the future; it
    /// carries the reason and the records it can answer.
    /// [`crate::error::Error::OutOfRange`] for a time that is not finite.
    /// Corruption or I/O.
    pub fn state_at(&self, target: impl Into<Until>) -> Result<audit::Replayed> {
        self.flush()?;
        audit::replay_with(self.core.options.storage.as_ref(), self.dir(), target.into())
    }
}
