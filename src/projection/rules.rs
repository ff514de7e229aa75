//! The rules: whether an event may apply to the state (`check`). A refused
//! event names its kind, the id and what is wrong; it changes nothing.

use std::collections::HashSet;

use super::time_index::Time;
use super::{ApplyError, Place, QueueState};
use crate::event::Event;

impl QueueState {
    /// Would [`QueueState::apply`] accept this event? The same checks, no
    /// change. The manager calls it before journaling an event.
    ///
    /// # Errors
    /// [`ApplyError`] naming the event kind, the id and what is wrong, such
    /// as `taken: "7" is not at the front of pending (it is failed)`.
    pub(crate) fn check(&self, event: &Event) -> Result<(), ApplyError> {
        let kind = event.kind();
        match event {
            Event::Added { movie } => self.expect_unknown(kind, movie.id()),
            Event::Taken { id } => self.expect_front(kind, id),
            Event::Failed { movie, retry_after, .. } => {
                expect_finite(kind, "retry_after", *retry_after)?;
                self.expect_not_done(kind, movie.id())
            }
            Event::MovedToPending { id } | Event::Reset { id } => self.expect_in(kind, id, Place::Failed),
            Event::Completed { movie } => self.expect_not_done(kind, movie.id()),
            Event::CleanedUp { cutoff, ids } => self.expect_cleanable(kind, *cutoff, ids),
            Event::Requeued { ids } => {
                expect_distinct(kind, ids)?;
                ids.iter().try_for_each(|id| self.expect_in(kind, id, Place::InFlight))
            }
            Event::Imported { .. } => Ok(()),
            Event::Removed { movie } => {
                if self.place(movie.id()) == Some(Place::Removed) {
                    Err(ApplyError(format!("{kind}: {:?} is already removed", movie.id())))
                } else {
                    Ok(())
                }
            }
            Event::MarkedRemoved { ids } => {
                expect_distinct(kind, ids)?;
                ids.iter().try_for_each(|id| match self.place(id) {
                    Some(Place::Pending | Place::Completed) => Ok(()),
                    _ => Err(ApplyError(format!(
                        "{kind}: {id:?} is neither pending nor completed ({})",
                        self.whereabouts(id)
                    ))),
                })
            }
            Event::Restored { id } | Event::Forgotten { id } => self.expect_in(kind, id, Place::Removed),
        }
    }

    /// Says where `id` is, for an error message.
    fn whereabouts(&self, id: &str) -> String {
        match self.place(id) {
            Some(place) => format!("it is {place}"),
            None => "it is in no queue".to_owned(),
        }
    }

    fn expect_unknown(&self, kind: &str, id: &str) -> Result<(), ApplyError> {
        match self.place(id) {
            None => Ok(()),
            Some(_) => Err(ApplyError(format!(
                "{kind}: {id:?} is already known ({})",
                self.whereabouts(id)
            ))),
        }
    }

    fn expect_front(&self, kind: &str, id: &str) -> Result<(), ApplyError> {
        if self.partial {
            return self.expect_in(kind, id, Place::Pending);
        }
        let front = self.front_pending_id();
        if front == Some(id) {
            return Ok(());
        }
        let detail = match (self.place(id), front) {
            (Some(Place::Pending), Some(front)) => format!("the front is {front:?}"),
            _ => self.whereabouts(id),
        };
        Err(ApplyError(format!(
            "{kind}: {id:?} is not at the front of pending ({detail})"
        )))
    }

    fn expect_in(&self, kind: &str, id: &str, wanted: Place) -> Result<(), ApplyError> {
        if self.place(id) == Some(wanted) {
            Ok(())
        } else {
            Err(ApplyError(format!(
                "{kind}: {id:?} is not {wanted} ({})",
                self.whereabouts(id)
            )))
        }
    }

    /// Completed and removed movies are done with: only `cleaned_up`,
    /// `removed`, `restored` and `forgotten` move them.
    fn expect_not_done(&self, kind: &str, id: &str) -> Result<(), ApplyError> {
        match self.place(id) {
            Some(Place::Completed) => Err(ApplyError(format!("{kind}: {id:?} is already completed"))),
            Some(Place::Removed) => Err(ApplyError(format!("{kind}: {id:?} is removed (restore it first)"))),
            _ => Ok(()),
        }
    }

    fn expect_cleanable(&self, kind: &str, cutoff: f64, ids: &[String]) -> Result<(), ApplyError> {
        expect_finite(kind, "cutoff", cutoff)?;
        expect_distinct(kind, ids)?;
        for id in ids {
            self.expect_in(kind, id, Place::Completed)?;
            let completed_at = self.find(id).map_or(Time(0.0), |(_, node)| Time(node.index_time));
            if completed_at >= Time(cutoff) {
                return Err(ApplyError(format!(
                    "{kind}: {id:?} was completed at {}, not before the cutoff {cutoff}",
                    completed_at.0
                )));
            }
        }
        Ok(())
    }
}

/// Refuses a time that cannot be journaled (JSON has no NaN or infinity).
fn expect_finite(kind: &str, name: &str, time: f64) -> Result<(), ApplyError> {
    if time.is_finite() {
        Ok(())
    } else {
        Err(ApplyError(format!("{kind}: {name} {time} is not a finite time")))
    }
}

fn expect_distinct(kind: &str, ids: &[String]) -> Result<(), ApplyError> {
    let mut seen = HashSet::with_capacity(ids.len());
    match ids.iter().find(|id| !seen.insert(id.as_str())) {
        Some(id) => Err(ApplyError(format!("{kind}: {id:?} is listed twice"))),
        None => Ok(()),
    }
}
