//! What a control request does to the queue: each operation is the
//! manager call of the same name, made on the holder's own manager (its
//! writer, its projection, its audit trail). A change is answered only
//! once it is durable, whatever the store's durability mode.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Core, QueueManager};
use crate::control::protocol::{Op, WireError, parse_place, place_name};
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

/// One request's answer.
fn answer(qm: &QueueManager, op: Op) -> Result<Value, WireError> {
    let mutates = op.mutates();
    let value = perform(qm, op).map_err(|error| WireError::from_error(&error))?;
    if mutates {
        // Durable before it is answered, in `Batched` mode too.
        qm.flush().map_err(|error| WireError::from_error(&error))?;
    }
    Ok(value)
}

fn movie(value: Value) -> Result<Movie, Error> {
    Movie::from_value(value)
}

fn entries(list: &[crate::entry::QueueEntry]) -> Value {
    Value::Array(list.iter().map(crate::entry::QueueEntry::to_value).collect())
}

fn perform(qm: &QueueManager, op: Op) -> Result<Value, Error> {
    qm.check_owner()?;
    Ok(match op {
        Op::Hello => json!({
            "protocol": crate::control::protocol::PROTOCOL_VERSION,
            "pid": std::process::id(),
            "last_seq": qm.last_seq().0,
            "max_retries": qm.max_retries(),
            "version": env!("CARGO_PKG_VERSION"),
        }),
        Op::Stats => {
            qm.load()?;
            json!(qm.get_statistics())
        }
        Op::Get { movie } => match qm.get(movie.as_str()) {
            Some((place, entry)) => json!({"place": place_name(place), "entry": entry.to_value()}),
            None => Value::Null,
        },
        Op::List { place, offset, limit } => {
            let place =
                parse_place(&place).ok_or_else(|| Error::InvalidArgument(format!("{place:?} is not a place")))?;
            qm.load()?;
            let list = qm.list(place);
            let shown = list.into_iter().skip(offset).take(limit.unwrap_or(usize::MAX));
            entries(&shown.collect::<Vec<_>>())
        }
        Op::RetryCandidates { max_retries } => {
            qm.load()?;
            entries(&qm.get_movies_ready_for_retry(max_retries))
        }
        Op::RemovedReady { grace_seconds } => {
            let grace = Duration::try_from_secs_f64(grace_seconds)
                .map_err(|error| Error::InvalidArgument(format!("grace_seconds {grace_seconds}: {error}")))?;
            qm.load()?;
            entries(&qm.get_movies_ready_for_deletion(grace))
        }
        Op::Load => {
            qm.load()?;
            Value::Null
        }
        Op::CheckAddable { movie: value } => {
            qm.check_addable(&movie(value)?)?;
            Value::Null
        }
        Op::Add { movies } => {
            let movies = movies.into_iter().map(movie).collect::<Result<Vec<_>, _>>()?;
            json!(qm.add_many_to_pending(movies)?)
        }
        Op::Next => json!(qm.get_next_pending()?.as_ref().map(Movie::to_value)),
        Op::Complete { movie: value } => json!(qm.add_to_completed(movie(value)?)?),
        Op::Fail {
            movie: value,
            error,
            retry_after,
        } => json!(qm.add_to_failed(movie(value)?, error, retry_after)?),
        Op::FailWithBackoff { movie: value, error } => json!(qm.fail_with_backoff(movie(value)?, error)?),
        Op::MoveFailedToPending { movie } => json!(qm.move_failed_to_pending(movie.as_str())?),
        Op::Reset { movie } => json!(qm.reset_failed_movie(movie.as_str())?),
        Op::RequeueInFlight => json!(qm.requeue_in_flight()?),
        Op::Cleanup { days } => json!(qm.cleanup_old_completed(days)?),
        Op::MarkRemoved { ids } => json!(qm.mark_movies_as_removed(&ids)?),
        Op::Restore { movie } => json!(qm.restore_removed_movie(movie.as_str())?),
        Op::Forget { movie } => json!(qm.remove_from_removed_queue(movie.as_str())?),
    })
}
