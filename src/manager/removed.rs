//! The removed queue: movies that left the user's watchlist, whose files
//! the application deletes after a grace period (its fourth queue).

use std::collections::HashSet;
use std::time::Duration;

use super::{MovieId, Need, QueueManager, now};
use crate::entry::QueueEntry;
use crate::error::Result;
use crate::event::Event;
use crate::movie::Movie;
use crate::projection::Place;

/// The application's grace period before a removed movie's files are
/// deleted: 7 days (604,800 s).
pub const GRACE_PERIOD_DEFAULT: Duration = Duration::from_secs(604_800);

impl QueueManager {
    /// Moves a movie to the back of removed, from wherever it is (pending,
    /// in flight, failed, completed) or from nowhere, stamping `removed_at`
    /// (whole Unix seconds) and `status: "removed"`; what the queue knew of
    /// it (retry fields, `completed_at`) is kept, and the fields given
    /// replace the stored ones. `Ok(false)`: it is already removed.
    ///
    /// # Errors
    /// [`crate::error::Error::InvalidMovie`]; [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn add_to_removed(&self, movie: Movie) -> Result<bool> {
        movie.validate()?;
        let need = self.need_id(movie.id());
        self.commit_and_wait(need.need(), |state| {
            Ok((state.place(movie.id()) != Some(Place::Removed)).then(|| Event::Removed { movie }))
        })
    }

    /// Every pending or completed movie whose id is not in
    /// `current_watchlist_ids` moves to the back of removed (pending ones
    /// first, each queue in its order), as [`QueueManager::add_to_removed`]
    /// does; returns how many. Movies in flight or failed stay where they
    /// are. One event, one fsync.
    ///
    /// # Errors
    /// [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn mark_movies_as_removed<I>(&self, current_watchlist_ids: I) -> Result<usize>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let watchlist: HashSet<String> = current_watchlist_ids
            .into_iter()
            .map(|id| id.as_ref().to_owned())
            .collect();
        let mut count = 0;
        self.commit_and_wait(Need::Whole, |state| {
            let ids: Vec<String> = [Place::Pending, Place::Completed]
                .into_iter()
                .flat_map(|place| state.ids_in(place))
                .filter(|id| !watchlist.contains(*id))
                .map(str::to_owned)
                .collect();
            count = ids.len();
            Ok((!ids.is_empty()).then_some(Event::MarkedRemoved { ids }))
        })?;
        Ok(count)
    }

    /// Removed movies whose grace period is over:
    /// `removed_at + grace_period <= now`, in removed order.
    #[must_use]
    pub fn get_movies_ready_for_deletion(&self, grace_period: Duration) -> Vec<QueueEntry> {
        let now = now();
        self.query(Need::Whole, |state, _| {
            state.ready_for_deletion(now, grace_period.as_secs_f64())
        })
    }

    /// Drops a removed movie from the store (once its files are deleted);
    /// its id is unknown afterwards. `Ok(false)`: it is not removed.
    ///
    /// # Errors
    /// [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn remove_from_removed_queue(&self, movie_id: impl MovieId) -> Result<bool> {
        let id = movie_id.movie_id().to_owned();
        self.commit_and_wait(self.need_id(&id).need(), |state| {
            Ok((state.place(&id) == Some(Place::Removed)).then_some(Event::Forgotten { id }))
        })
    }

    /// Puts a removed movie back at the end of pending (it is on the
    /// watchlist again): `removed_at` dropped, `status: "pending"`.
    /// `Ok(false)`: it is not removed.
    ///
    /// # Errors
    /// [`crate::error::Error::Poisoned`] / [`crate::error::Error::Io`].
    pub fn restore_removed_movie(&self, movie_id: impl MovieId) -> Result<bool> {
        let id = movie_id.movie_id().to_owned();
        self.commit_and_wait(self.need_id(&id).need(), |state| {
            Ok((state.place(&id) == Some(Place::Removed)).then_some(Event::Restored { id }))
        })
    }

    /// Movies removed.
    #[must_use]
    pub fn get_removed_count(&self) -> usize {
        self.query(Need::Whole, |state, _| state.removed_count())
    }
}
