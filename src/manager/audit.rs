//! The audit queries of a running manager: they flush, then read the
//! journal on disk through `audit.rs`.

use super::{MovieId, QueueManager};
use crate::audit::{self, Until};
use crate::error::Result;
use crate::event::EventRecord;
use crate::projection::QueueState;
use crate::seq::Seq;

impl QueueManager {
    /// Every journaled event of the movie `id`, oldest first. Events before
    /// a compaction are gone from the journal and not listed.
    ///
    /// # Errors
    /// Corruption or I/O while reading the journal.
    pub fn history(&self, movie_id: impl MovieId) -> Result<Vec<EventRecord>> {
        let id = movie_id.movie_id();
        let mut events = Vec::new();
        self.for_each_event(Seq(1), &mut |record| {
            if record.event.concerns(id) {
                events.push(record);
            }
            Ok(())
        })?;
        Ok(events)
    }

    /// The events from sequence number `from` on, in order.
    ///
    /// # Errors
    /// Corruption or I/O while reading the journal.
    pub fn events_from(&self, from: Seq) -> Result<std::vec::IntoIter<EventRecord>> {
        let mut events = Vec::new();
        self.for_each_event(from, &mut |record| {
            events.push(record);
            Ok(())
        })?;
        Ok(events.into_iter())
    }

    /// Hands every event from `from` on to `visit`, streaming (nothing is
    /// collected).
    ///
    /// # Errors
    /// Corruption or I/O while reading the journal; what `visit` returned.
    pub fn for_each_event(&self, from: Seq, visit: &mut dyn FnMut(EventRecord) -> Result<()>) -> Result<()> {
        self.flush()?;
        audit::for_each_event(self.options.storage.as_ref(), self.dir(), from, visit)
    }

    /// The projection as of record `seq` (included).
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] if the journal no longer reaches back to
    /// `seq` (compacted); corruption or I/O.
    pub fn state_at(&self, seq: Seq) -> Result<QueueState> {
        self.state_until(Until::Seq(seq))
    }

    /// The projection as of Unix time `time`: every event stamped at or
    /// before it.
    ///
    /// # Errors
    /// As [`QueueManager::state_at`].
    pub fn state_at_time(&self, time: f64) -> Result<QueueState> {
        self.state_until(Until::Time(time))
    }

    /// The projection as of `until`.
    ///
    /// # Errors
    /// As [`QueueManager::state_at`].
    pub fn state_until(&self, until: Until) -> Result<QueueState> {
        self.flush()?;
        audit::state_until(self.options.storage.as_ref(), self.dir(), until)
    }
}
