//! The seed's Queue Manager API, and the additions (in flight, requeue,
//! lookups), each a decision over the projection handed to `commit`.

use super::{MovieId, Need, QueueManager, check_time, now};
use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::event::{Event, encode_payload};
use crate::journal::writer::Durability;
use crate::movie::Movie;
use crate::projection::{Place, QueueState, Statistics};
use crate::seq::Seq;

impl QueueManager {
    // ----- the seed's API -------------------------------------------------

    /// Adds a movie to the back of pending. `Ok(false)`: a movie with this
    /// id is already pending, in flight, failed or completed.
    ///
    /// # Errors
    /// [`crate::error::Error::InvalidMovie`] (empty id); [`crate::error::Error::EventTooLarge`];
    /// [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`] if it could not be made durable.
    pub fn add_to_pending(&self, movie: Movie) -> Result<bool> {
        movie.validate()?;
        let need = self.need_id(movie.id());
        self.commit_and_wait(need.need(), |state| {
            Ok(state.place(movie.id()).is_none().then(|| Event::Added { movie }))
        })
    }

    /// Adds many movies in one batch (one lock, one fsync); returns how
    /// many were added (duplicates are skipped, also within `movies`).
    ///
    /// # Errors
    /// As [`QueueManager::add_to_pending`]; movies before a failing one stay added.
    pub fn add_many_to_pending(&self, movies: impl IntoIterator<Item = Movie>) -> Result<usize> {
        let mut last = None;
        let mut added = 0;
        for movie in movies {
            movie.validate()?;
            let need = self.need_id(movie.id());
            if let Some(ticket) = self.commit(need.need(), |state| {
                Ok(state.place(movie.id()).is_none().then(|| Event::Added { movie }))
            })? {
                last = Some(ticket);
                added += 1;
            }
        }
        if let (Some(ticket), Durability::Immediate) = (last, self.core.options.writer.durability) {
            ticket.wait()?;
        }
        Ok(added)
    }

    /// Checks, writing nothing, that [`QueueManager::add_to_pending`] would
    /// not refuse `movie` as an error: a valid movie whose `added` event is
    /// within the event size limit ([`crate::Options::event_bytes_max`]).
    /// Checking every movie of a batch first makes it all or nothing. (A
    /// duplicate is no error: it is skipped.)
    ///
    /// # Errors
    /// [`crate::error::Error::InvalidMovie`]; [`crate::error::Error::EventTooLarge`].
    pub fn check_addable(&self, movie: &Movie) -> Result<()> {
        self.check_owner()?;
        movie.validate()?;
        // The widest time an event can carry, so the commit's own time
        // never makes the payload longer than the one checked here.
        let payload = encode_payload(-f64::MAX, &Event::Added { movie: movie.clone() })?;
        let limit = self.core.options.writer.event_bytes_limit();
        if payload.len() > limit {
            return Err(Error::EventTooLarge {
                length: payload.len() as u64,
                limit: limit as u64,
            });
        }
        Ok(())
    }

    /// Takes the movie at the front of pending (FIFO); it is now in flight
    /// until completed, failed or requeued. `Ok(None)`: pending is empty.
    ///
    /// # Errors
    /// [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`] if the take could not be made durable.
    pub fn get_next_pending(&self) -> Result<Option<Movie>> {
        Ok(self.take_next_pending()?.map(|entry| entry.movie))
    }

    /// As [`QueueManager::get_next_pending`], returning the whole entry
    /// (its retry fields too, for a movie that failed before).
    ///
    /// # Errors
    /// As [`QueueManager::get_next_pending`].
    pub fn take_next_pending(&self) -> Result<Option<QueueEntry>> {
        let mut taken = None;
        self.commit_and_wait(Need::Front, |state| {
            Ok(state.front_pending().map(|entry| {
                let event = Event::Taken {
                    id: entry.id().to_owned(),
                };
                taken = Some(entry);
                event
            }))
        })?;
        Ok(taken)
    }

    /// Records a failure: `retry_count` + 1, `last_error`, `retry_after`
    /// (`None`: now), `failed_at` on the first failure only. Takes the movie
    /// out of pending or in flight; a movie already failed is updated in
    /// place. `Ok(false)`: the movie is completed or removed (nothing changes).
    ///
    /// # Errors
    /// [`crate::error::Error::InvalidMovie`], [`crate::error::Error::OutOfRange`] (non-finite
    /// `retry_after`), [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn add_to_failed(&self, movie: Movie, error: impl Into<String>, retry_after: Option<f64>) -> Result<bool> {
        movie.validate()?;
        let retry_after = check_time("retry_after", retry_after.unwrap_or_else(now))?;
        let error = error.into();
        let need = self.need_id(movie.id());
        self.commit_and_wait(need.need(), |state| {
            Ok((!is_done(state, movie.id())).then(|| Event::Failed {
                movie,
                error,
                retry_after,
            }))
        })
    }

    /// As [`QueueManager::add_to_failed`], with `retry_after` from the retry
    /// policy (default: 1 h doubling per failure). Returns the `retry_after`
    /// chosen, or `None` if the movie is completed or removed.
    ///
    /// # Errors
    /// As [`QueueManager::add_to_failed`].
    pub fn fail_with_backoff(&self, movie: Movie, error: impl Into<String>) -> Result<Option<f64>> {
        movie.validate()?;
        let error = error.into();
        let policy = self.core.options.retry_policy;
        let mut chosen = None;
        let need = self.need_id(movie.id());
        self.commit_and_wait(need.need(), |state| {
            let retry_count = match state.get(movie.id()) {
                Some((Place::Completed | Place::Removed, _)) => return Ok(None),
                Some((_, entry)) => entry.retry_count + 1,
                None => 1,
            };
            let retry_after = now() + policy.delay(retry_count).as_secs_f64();
            chosen = Some(retry_after);
            Ok(Some(Event::Failed {
                movie,
                error,
                retry_after,
            }))
        })?;
        Ok(chosen)
    }

    /// Failed movies whose `retry_after` has passed and whose
    /// `retry_count < max_retries`, earliest `retry_after` first.
    #[must_use]
    pub fn get_movies_ready_for_retry(&self, max_retries: u32) -> Vec<QueueEntry> {
        let now = now();
        self.query(Need::Whole, |state, _| state.ready_for_retry(now, max_retries))
    }

    /// Moves a failed movie to the back of pending, keeping its
    /// `retry_count`. `Ok(false)`: it is not in failed.
    ///
    /// # Errors
    /// [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn move_failed_to_pending(&self, movie: impl MovieId) -> Result<bool> {
        let id = movie.movie_id().to_owned();
        self.commit_and_wait(self.need_id(&id).need(), |state| {
            Ok((state.place(&id) == Some(Place::Failed)).then_some(Event::MovedToPending { id }))
        })
    }

    /// Failed movies with `retry_count >= max_retries`, in failed order.
    #[must_use]
    pub fn get_permanent_failures(&self, max_retries: u32) -> Vec<QueueEntry> {
        self.query(Need::Whole, |state, _| state.permanent_failures(max_retries))
    }

    /// Manual intervention: a failed movie goes back to pending with
    /// `retry_count` 0 and its error, `retry_after` and `failed_at`
    /// cleared. `Ok(false)`: it is not in failed.
    ///
    /// # Errors
    /// [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn reset_failed_movie(&self, movie_id: impl MovieId) -> Result<bool> {
        let id = movie_id.movie_id().to_owned();
        self.commit_and_wait(self.need_id(&id).need(), |state| {
            Ok((state.place(&id) == Some(Place::Failed)).then_some(Event::Reset { id }))
        })
    }

    /// Marks a movie done (stamped `completed_at`), taking it out of pending,
    /// in flight or failed. `Ok(false)`: it was already completed, or removed.
    ///
    /// # Errors
    /// [`crate::error::Error::InvalidMovie`], [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn add_to_completed(&self, movie: Movie) -> Result<bool> {
        movie.validate()?;
        let need = self.need_id(movie.id());
        self.commit_and_wait(need.need(), |state| {
            Ok((!is_done(state, movie.id())).then(|| Event::Completed { movie }))
        })
    }

    /// Is a movie with this id completed?
    #[must_use]
    pub fn is_completed(&self, movie_id: impl MovieId) -> bool {
        self.query(Need::Id(movie_id.movie_id()), |state, _| {
            state.place(movie_id.movie_id()) == Some(Place::Completed)
        })
    }

    /// Movies pending (not counting those in flight).
    #[must_use]
    pub fn get_pending_count(&self) -> usize {
        self.query(Need::Whole, |state, _| state.pending_count())
    }

    /// Movies in flight.
    #[must_use]
    pub fn get_in_flight_count(&self) -> usize {
        self.query(Need::Whole, |state, _| state.in_flight_count())
    }

    /// Movies failed.
    #[must_use]
    pub fn get_failed_count(&self) -> usize {
        self.query(Need::Whole, |state, _| state.failed_count())
    }

    /// Movies completed.
    #[must_use]
    pub fn get_completed_count(&self) -> usize {
        self.query(Need::Whole, |state, _| state.completed_count())
    }

    /// The counts, with permanent failures by the configured `max_retries`.
    #[must_use]
    pub fn get_statistics(&self) -> Statistics {
        self.query(Need::Whole, |state, _| {
            state.statistics(self.core.options.retry_policy.max_retries)
        })
    }

    /// Removes completed entries older than `days` days; returns how many.
    ///
    /// # Errors
    /// [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn cleanup_old_completed(&self, days: u32) -> Result<usize> {
        self.cleanup_completed_before(now() - f64::from(days) * 86_400.0)
    }

    /// Removes completed entries with `completed_at` before `cutoff` (Unix
    /// seconds); returns how many.
    ///
    /// # Errors
    /// [`crate::error::Error::OutOfRange`] for a non-finite cutoff; [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn cleanup_completed_before(&self, cutoff: f64) -> Result<usize> {
        let cutoff = check_time("cutoff", cutoff)?;
        let mut removed = 0;
        self.commit_and_wait(Need::Whole, |state| {
            let ids = state.completed_before(cutoff);
            removed = ids.len();
            Ok((!ids.is_empty()).then_some(Event::CleanedUp { cutoff, ids }))
        })?;
        Ok(removed)
    }

    // ----- additions ------------------------------------------------------

    /// Puts every movie in flight back at the front of pending (oldest
    /// first); returns how many.
    ///
    /// # Errors
    /// [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn requeue_in_flight(&self) -> Result<usize> {
        let mut count = 0;
        self.commit_and_wait(Need::Whole, |state| {
            let ids: Vec<String> = state.in_flight().map(|entry| entry.id().to_owned()).collect();
            count = ids.len();
            Ok((!ids.is_empty()).then_some(Event::Requeued { ids }))
        })?;
        Ok(count)
    }

    /// Loads the whole state now, if the manager was opened with
    /// [`crate::Options::load_on_demand`] and has not loaded it yet (a
    /// call about every movie does it too, once). Nothing otherwise.
    ///
    /// # Errors
    /// As [`crate::QueueManager::open_read_only`]; [`crate::error::Error::Poisoned`] /
    /// [`crate::error::Error::Io`] when the journal could not be flushed first.
    pub fn load(&self) -> Result<()> {
        self.check_owner()?;
        if self.core.partial.load(std::sync::atomic::Ordering::Acquire) {
            self.prepare(&mut self.write(), Need::Whole)?;
        }
        Ok(())
    }

    /// Does the state hold every movie? `false` only while a manager opened
    /// with [`crate::Options::load_on_demand`] holds just the movies asked
    /// about so far.
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        !self.core.partial.load(std::sync::atomic::Ordering::Acquire)
    }

    /// One movie's place and entry, if the store knows it.
    #[must_use]
    pub fn get(&self, movie_id: impl MovieId) -> Option<(Place, QueueEntry)> {
        self.query(Need::Id(movie_id.movie_id()), |state, _| {
            state
                .get(movie_id.movie_id())
                .map(|(place, entry)| (place, entry.clone()))
        })
    }

    /// Every entry of one place, in queue order.
    #[must_use]
    pub fn list(&self, place: Place) -> Vec<QueueEntry> {
        self.query(Need::Whole, |state, _| state.entries(place).collect())
    }

    /// A copy of the whole projection as it is now. In a child made by
    /// `fork()` (see [`QueueManager::check_owner`]), as the child
    /// inherited it at the fork — or empty, if another thread of the parent
    /// was changing it just then; so for every query of the projection.
    #[must_use]
    pub fn state(&self) -> QueueState {
        self.query(Need::Whole, |state, _| state.clone())
    }

    /// The sequence number of the last event applied (`Seq(0)`: none).
    #[must_use]
    pub fn last_seq(&self) -> Seq {
        self.query(Need::Nothing, |_, last| last)
    }

    /// The retry policy's `max_retries` (the default for statistics).
    #[must_use]
    pub fn max_retries(&self) -> u32 {
        self.core.options.retry_policy.max_retries
    }
}

/// Completed and removed movies are done with: failures and completions
/// of them change nothing.
fn is_done(state: &QueueState, id: &str) -> bool {
    matches!(state.place(id), Some(Place::Completed | Place::Removed))
}
