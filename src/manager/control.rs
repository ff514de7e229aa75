//! What a control request does to the queue: each operation is the
//! manager call of the same name, made on the holder's own manager (its
//! writer, its projection, its audit trail). A change is answered only
//! once it is durable, whatever the store's durability mode.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Core, QueueManager};
use crate::control::protocol::{Answer, LIST_MAX, Op, WireError, parse_place, place_name};
use crate::control::{Handler, Server};
use crate::error::Error;
use crate::movie::Movie;

/// Starts the control socket of `manager`'s store; `None` (with a
/// warning) when it cannot be made: the store is served without it.
pub(super) fn start(manager: &QueueManager) -> Option<Server> {
    let core: Weak<Core> = Arc::downgrade(&manager.core);
    let handler: Handler = Arc::new(move |op| {
        let core = core
            .upgrade()
            .ok_or_else(|| WireError::new("closed", "the store is closing"))?;
        let handle = QueueManager {
            core,
            control: None,
            owner: false,
        };
        answer(&handle, op)
    });
    match Server::start(&manager.core.dir, handler) {
        Ok(server) => Some(server),
        Err(error) => {
            tracing::warn!(
                %error,
                dir = %manager.core.dir.display(),
                "the control socket could not be made; the store is served without it"
            );
            None
        }
    }
}

/// One request's answer: the `ok` value as JSON text.
fn answer(qm: &QueueManager, op: Op) -> Answer {
    let mutates = op.mutates();
    let text = perform(qm, op).map_err(|error| WireError::from_error(&error))?;
    if mutates {
        // Durable before it is answered, in `Batched` mode too.
        qm.flush().map_err(|error| WireError::from_error(&error))?;
    }
    Ok(text)
}

fn movie(value: Value) -> Result<Movie, Error> {
    Movie::from_value(value)
}

/// `value` as JSON text.
fn text(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|error| Error::InvalidArgument(format!("an answer that does not serialize: {error}")))
}

/// The store directory's device and inode: a client checks that the
/// holder answering on a store's socket holds that store.
fn store_identity(dir: &std::path::Path) -> Option<[u64; 2]> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .ok()
        .map(|metadata| [metadata.dev(), metadata.ino()])
}

impl QueueManager {
    /// `[` the entries of `place` from `offset` (or after the entry of
    /// `after`), at most `limit`, as the store holds their JSON text `]`:
    /// no entry parsed or copied whole. An `after` no longer in the place
    /// is an error: the listing cannot go on where it was.
    fn list_text(
        &self,
        place: crate::projection::Place,
        offset: usize,
        after: Option<&str>,
        limit: usize,
    ) -> Result<String, Error> {
        self.query(super::Need::Whole, |state, _| {
            let mut entries = state.entries_stored(place).skip(offset);
            if let Some(after) = after
                && !entries.by_ref().any(|(id, _)| id == after)
            {
                return Err(Error::InvalidArgument(format!(
                    "movie {after:?} is no longer {place}: the listing cannot go on after it"
                )));
            }
            let mut out = String::from("[");
            for (index, (_, entry)) in entries.take(limit).enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(entry);
            }
            out.push(']');
            Ok(out)
        })
    }
}

fn perform(qm: &QueueManager, op: Op) -> Result<String, Error> {
    qm.check_owner()?;
    if !op.mutates() {
        // A poisoned writer's state may hold what never became durable.
        qm.check_writer()?;
    }
    match op {
        Op::Hello => text(&json!({
            "protocol": crate::control::protocol::PROTOCOL_VERSION,
            "pid": std::process::id(),
            "last_seq": qm.last_seq().0,
            "max_retries": qm.max_retries(),
            "version": env!("CARGO_PKG_VERSION"),
            "store": store_identity(qm.dir()),
        })),
        Op::Stats => {
            qm.load()?;
            text(&qm.get_statistics())
        }
        Op::Get { movie } => match qm.get(movie.as_str()) {
            Some((place, entry)) => text(&json!({"place": place_name(place), "entry": entry})),
            None => Ok("null".to_owned()),
        },
        Op::List {
            place,
            offset,
            after,
            limit,
        } => {
            let place =
                parse_place(&place).ok_or_else(|| Error::InvalidArgument(format!("{place:?} is not a place")))?;
            qm.load()?;
            qm.list_text(place, offset, after.as_deref(), limit.unwrap_or(LIST_MAX).min(LIST_MAX))
        }
        Op::RetryCandidates { max_retries } => {
            qm.load()?;
            text(&qm.get_movies_ready_for_retry(max_retries))
        }
        Op::RemovedReady { grace_seconds } => {
            let grace = Duration::try_from_secs_f64(grace_seconds)
                .map_err(|error| Error::InvalidArgument(format!("grace_seconds {grace_seconds}: {error}")))?;
            qm.load()?;
            text(&qm.get_movies_ready_for_deletion(grace))
        }
        Op::Load => {
            qm.load()?;
            Ok("null".to_owned())
        }
        Op::CheckAddable { movie: value } => {
            qm.check_addable(&movie(value)?)?;
            Ok("null".to_owned())
        }
        Op::Add { movies } => {
            let movies = movies.into_iter().map(movie).collect::<Result<Vec<_>, _>>()?;
            text(&qm.add_many_to_pending(movies)?)
        }
        Op::Next => text(&qm.get_next_pending()?),
        Op::Complete { movie: value } => text(&qm.add_to_completed(movie(value)?)?),
        Op::Fail {
            movie: value,
            error,
            retry_after,
        } => text(&qm.add_to_failed(movie(value)?, error, retry_after)?),
        Op::FailWithBackoff { movie: value, error } => text(&qm.fail_with_backoff(movie(value)?, error)?),
        Op::MoveFailedToPending { movie } => text(&qm.move_failed_to_pending(movie.as_str())?),
        Op::Reset { movie } => text(&qm.reset_failed_movie(movie.as_str())?),
        Op::RequeueInFlight => text(&qm.requeue_in_flight()?),
        Op::Cleanup { days } => text(&qm.cleanup_old_completed(days)?),
        Op::MarkRemoved { ids } => text(&qm.mark_movies_as_removed(&ids)?),
        Op::Restore { movie } => text(&qm.restore_removed_movie(movie.as_str())?),
        Op::Forget { movie } => text(&qm.remove_from_removed_queue(movie.as_str())?),
    }
}
