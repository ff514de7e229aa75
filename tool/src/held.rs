//! A store as a command acts on it: opened by this process, or held by
//! another (the application) and asked through its control socket
//! (`movie_queue::Control`). The commands are written once, over
//! [`Store`]; each call goes to whichever holds the store.

use std::cell::RefCell;
use std::path::Path;

use movie_queue::{Control, Error, Movie, Place, QueueEntry, QueueManager};

/// The store a command works on.
pub(crate) enum Store {
    /// Opened here, with the writer's lock.
    Local(QueueManager),
    /// Held by another process, asked through its control socket.
    Held(RefCell<Control>),
}

type Result<T> = std::result::Result<T, Error>;

impl Store {
    fn held<T>(control: &RefCell<Control>, call: impl FnOnce(&mut Control) -> Result<T>) -> Result<T> {
        call(&mut control.borrow_mut())
    }

    /// Where a movie is, and its entry.
    pub fn get(&self, id: &str) -> Result<Option<(Place, QueueEntry)>> {
        match self {
            Store::Local(qm) => Ok(qm.get(id)),
            Store::Held(control) => Self::held(control, |control| control.get(id)),
        }
    }

    /// A place's entries in order.
    pub fn list(&self, place: Place) -> Result<Vec<QueueEntry>> {
        match self {
            Store::Local(qm) => Ok(qm.list(place)),
            Store::Held(control) => Self::held(control, |control| control.list(place, 0, None)),
        }
    }

    /// The retry policy's limit.
    pub fn max_retries(&self) -> u32 {
        match self {
            Store::Local(qm) => qm.max_retries(),
            Store::Held(control) => control.borrow().max_retries(),
        }
    }

    /// Loads the whole state (a local store opened on demand).
    pub fn load(&self) -> Result<()> {
        match self {
            Store::Local(qm) => qm.load(),
            Store::Held(control) => Self::held(control, Control::load),
        }
    }

    pub fn check_addable(&self, movie: &Movie) -> Result<()> {
        match self {
            Store::Local(qm) => qm.check_addable(movie),
            Store::Held(control) => Self::held(control, |control| control.check_addable(movie)),
        }
    }

    pub fn add_many_to_pending(&self, movies: Vec<Movie>) -> Result<usize> {
        match self {
            Store::Local(qm) => qm.add_many_to_pending(movies),
            Store::Held(control) => Self::held(control, |control| control.add_many_to_pending(&movies)),
        }
    }

    pub fn get_next_pending(&self) -> Result<Option<Movie>> {
        match self {
            Store::Local(qm) => qm.get_next_pending(),
            Store::Held(control) => Self::held(control, Control::get_next_pending),
        }
    }

    pub fn add_to_completed(&self, movie: Movie) -> Result<bool> {
        match self {
            Store::Local(qm) => qm.add_to_completed(movie),
            Store::Held(control) => Self::held(control, |control| control.add_to_completed(&movie)),
        }
    }

    pub fn add_to_failed(&self, movie: Movie, error: &str, retry_after: Option<f64>) -> Result<bool> {
        match self {
            Store::Local(qm) => qm.add_to_failed(movie, error, retry_after),
            Store::Held(control) => Self::held(control, |control| control.add_to_failed(&movie, error, retry_after)),
        }
    }

    pub fn fail_with_backoff(&self, movie: Movie, error: &str) -> Result<Option<f64>> {
        match self {
            Store::Local(qm) => qm.fail_with_backoff(movie, error),
            Store::Held(control) => Self::held(control, |control| control.fail_with_backoff(&movie, error)),
        }
    }

    pub fn get_movies_ready_for_retry(&self, max_retries: u32) -> Result<Vec<QueueEntry>> {
        match self {
            Store::Local(qm) => Ok(qm.get_movies_ready_for_retry(max_retries)),
            Store::Held(control) => Self::held(control, |control| control.get_movies_ready_for_retry(max_retries)),
        }
    }

    pub fn move_failed_to_pending(&self, id: &str) -> Result<bool> {
        match self {
            Store::Local(qm) => qm.move_failed_to_pending(id),
            Store::Held(control) => Self::held(control, |control| control.move_failed_to_pending(id)),
        }
    }

    pub fn reset_failed_movie(&self, id: &str) -> Result<bool> {
        match self {
            Store::Local(qm) => qm.reset_failed_movie(id),
            Store::Held(control) => Self::held(control, |control| control.reset_failed_movie(id)),
        }
    }

    pub fn requeue_in_flight(&self) -> Result<usize> {
        match self {
            Store::Local(qm) => qm.requeue_in_flight(),
            Store::Held(control) => Self::held(control, Control::requeue_in_flight),
        }
    }

    pub fn cleanup_old_completed(&self, days: u32) -> Result<usize> {
        match self {
            Store::Local(qm) => qm.cleanup_old_completed(days),
            Store::Held(control) => Self::held(control, |control| control.cleanup_old_completed(days)),
        }
    }

    pub fn mark_movies_as_removed(&self, ids: &[String]) -> Result<usize> {
        match self {
            Store::Local(qm) => qm.mark_movies_as_removed(ids),
            Store::Held(control) => Self::held(control, |control| control.mark_movies_as_removed(ids)),
        }
    }

    pub fn restore_removed_movie(&self, id: &str) -> Result<bool> {
        match self {
            Store::Local(qm) => qm.restore_removed_movie(id),
            Store::Held(control) => Self::held(control, |control| control.restore_removed_movie(id)),
        }
    }

    pub fn remove_from_removed_queue(&self, id: &str) -> Result<bool> {
        match self {
            Store::Local(qm) => qm.remove_from_removed_queue(id),
            Store::Held(control) => Self::held(control, |control| control.remove_from_removed_queue(id)),
        }
    }
}

/// The holder of the store in `dir`, when another process holds it and
/// answers on its control socket: a reading command asks it (its state is
/// in memory) and falls back to reading the disk on `None`.
pub(crate) fn holder_for_reading(dir: &Path) -> Option<Control> {
    let socket = movie_queue::Layout::new(dir).control_socket();
    std::fs::symlink_metadata(&socket).ok()?;
    match Control::connect(dir) {
        Ok(control) => Some(control),
        Err(error) => {
            tracing::debug!(%error, "reading the store from disk");
            None
        }
    }
}
