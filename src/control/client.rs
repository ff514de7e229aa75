//! [`Control`]: a connection to the process that holds a store, asking it
//! through its control socket what a [`crate::QueueManager`] would be
//! asked, with the same answers and the same errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::protocol::{self, LINE_MAX, Op, parse_answer, request_line};
use super::socket;
use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::movie::Movie;
use crate::projection::{Place, Statistics};
use crate::seq::Seq;

/// How long a client waits for each answer after `hello`.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Control::connect`] waits for the holder to accept and to
/// answer its `hello`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The answer to `get`.
#[derive(serde::Deserialize)]
struct Found {
    place: String,
    entry: Value,
}

/// How a busy holder's refusal begins in [`Error::ControlUnavailable`].
const BUSY: &str = "it is busy";

/// Who answers on a store's control socket: the holder's `hello`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct Holder {
    /// The protocol version it speaks.
    pub protocol: u64,
    /// Its process id.
    pub pid: u32,
    /// The last record it had applied when it answered.
    pub last_seq: u64,
    /// Its retry policy's limit.
    pub max_retries: u32,
    /// The library version it runs.
    pub version: String,
    /// The device and inode of the store directory it holds.
    #[serde(default)]
    store: Option<[u64; 2]>,
}

/// A connection to the process that holds a store for writing, through
/// the store's control socket (`control.sock`; see `docs/FORMAT.md`).
/// Each method asks the holder to make the [`crate::QueueManager`] call
/// of the same name: a change is made by the holder's writer, appears in
/// its projection at once and in the journal, and is answered only once
/// it is durable. Errors are the library's: the ones a caller decides
/// from come back as the same variant ([`Error::NotFound`],
/// [`Error::InvalidMovie`], [`Error::InvalidArgument`],
/// [`Error::EventTooLarge`]), the rest as [`Error::Remote`] with the
/// holder's words. A connection lost while a change was asked for is
/// [`Error::OutcomeUnknown`]: done or not, the journal tells.
#[derive(Debug)]
pub struct Control {
    dir: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    holder: Holder,
}

impl Control {
    /// Connects to the holder of the store in `dir`, checks that it runs
    /// as this user (or root) and speaks this protocol, and asks who it is.
    ///
    /// # Errors
    /// [`Error::ControlUnavailable`]: no socket, nobody answering on it
    /// (a killed holder's, a holder that is stuck), a socket of another
    /// user, another protocol version.
    pub fn connect(dir: impl AsRef<Path>) -> Result<Control> {
        // A holder serving its most connections says `busy`: asked again,
        // with growing pauses, until the connect's time is up.
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            match Self::connect_once(dir.as_ref()) {
                Err(Error::ControlUnavailable { reason, .. })
                    if reason.starts_with(BUSY) && started.elapsed() + pause < CONNECT_TIMEOUT =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                connected => return connected,
            }
        }
    }

    fn connect_once(dir: &Path) -> Result<Control> {
        let dir = dir.to_path_buf();
        let path = Layout::new(&dir).control_socket();
        let unavailable = |reason: String| Error::ControlUnavailable {
            dir: dir.clone(),
            reason,
        };
        let stream = connect_within(&path, CONNECT_TIMEOUT).map_err(&unavailable)?;
        let peer = socket::peer_uid(&stream).map_err(|error| unavailable(error.to_string()))?;
        if !socket::peer_allowed(peer, socket::own_uid()) {
            return Err(unavailable(format!(
                "its socket belongs to a process of user {peer}, not this user's; it is not trusted"
            )));
        }
        // A holder that accepts but does not answer `hello` soon is stuck:
        // the first answer gets the connect's time, the others more.
        let timeouts = stream
            .set_read_timeout(Some(CONNECT_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(CONNECT_TIMEOUT)));
        let reading = timeouts
            .and_then(|()| stream.try_clone())
            .map_err(|error| unavailable(error.to_string()))?;
        let mut control = Control {
            dir: dir.clone(),
            reader: BufReader::new(reading),
            writer: stream,
            next_id: 1,
            holder: Holder {
                protocol: protocol::PROTOCOL_VERSION,
                pid: 0,
                last_seq: 0,
                max_retries: 0,
                version: String::new(),
                store: None,
            },
        };
        control.holder = match control.call(&Op::Hello) {
            Ok(holder) => holder,
            Err(Error::ControlUnavailable { .. }) => {
                return Err(unavailable("it accepted the connection but did not answer".into()));
            }
            Err(Error::Remote { kind, message }) if kind == "busy" => {
                return Err(unavailable(format!("{BUSY}: {message}")));
            }
            Err(error) => return Err(unavailable(error.to_string())),
        };
        // A socket moved here from another store answers for that store.
        let here = std::fs::metadata(&dir).ok().map(|metadata| {
            use std::os::unix::fs::MetadataExt;
            [metadata.dev(), metadata.ino()]
        });
        if control.holder.store.is_none() || control.holder.store != here {
            return Err(unavailable(format!(
                "the process answering on its socket (process {}) holds another store; it is not trusted",
                control.holder.pid
            )));
        }
        control
            .writer
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .and_then(|()| control.writer.set_write_timeout(Some(ANSWER_TIMEOUT)))
            .map_err(|error| unavailable(error.to_string()))?;
        Ok(control)
    }

    /// The store's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Who answered when the connection was made.
    #[must_use]
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The holder's retry limit (`QueueManager::max_retries`).
    #[must_use]
    pub fn max_retries(&self) -> u32 {
        self.holder.max_retries
    }

    /// Asks `op`, reads its answer as a `T`.
    fn call<T: DeserializeOwned>(&mut self, op: &Op) -> Result<T> {
        let id = self.next_id;
        self.next_id += 1;
        // A lost answer to a change leaves its outcome unknown; to a
        // question, only the answer is missing.
        let lost = |reason: String| {
            if op.mutates() {
                Error::OutcomeUnknown {
                    dir: self.dir.clone(),
                    operation: op.name(),
                    last_seq: self.holder.last_seq,
                    reason,
                }
            } else {
                Error::ControlUnavailable {
                    dir: self.dir.clone(),
                    reason: format!("it stopped answering ({reason})"),
                }
            }
        };
        // A holder that refused the connection (busy, another user) wrote
        // why and closed it: the request's write may fail, the line is there.
        let sent = self.writer.write_all(&request_line(id, op));
        let mut line = Vec::new();
        let limit = u64::try_from(LINE_MAX.saturating_mul(64)).unwrap_or(u64::MAX);
        match (&mut self.reader).take(limit).read_until(b'\n', &mut line) {
            Ok(_) if line.ends_with(b"\n") => {}
            Ok(_) => {
                let reason = sent
                    .err()
                    .map_or("the connection closed before the answer".into(), |error| {
                        error.to_string()
                    });
                return Err(lost(reason));
            }
            Err(error) => return Err(lost(error.to_string())),
        }
        let (answered, result) = parse_answer(&line).map_err(&lost)?;
        if answered != Some(id) {
            return match result {
                Err(error) => Err(error.into_error()),
                Ok(_) => Err(lost(format!("an answer to request {answered:?}, not {id}"))),
            };
        }
        let value = result.map_err(super::protocol::WireError::into_error)?;
        serde_json::from_value(value).map_err(|error| lost(format!("an answer that does not read: {error}")))
    }

    /// `get_statistics()`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn get_statistics(&mut self) -> Result<Statistics> {
        self.call(&Op::Stats)
    }

    /// `get(id)`: where the movie is and its entry.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn get(&mut self, movie_id: &str) -> Result<Option<(Place, QueueEntry)>> {
        let found: Option<Found> = self.call(&Op::Get {
            movie: movie_id.to_owned(),
        })?;
        found
            .map(|found| Self::place_entry(&found.place, found.entry))
            .transpose()
    }

    fn place_entry(place: &str, entry: Value) -> Result<(Place, QueueEntry)> {
        let place = protocol::parse_place(place).ok_or_else(|| Error::Remote {
            kind: "bad_answer".into(),
            message: format!("the holder named an unknown place {place:?}"),
        })?;
        Ok((place, QueueEntry::from_value(entry)?))
    }

    fn entries(values: Vec<Value>) -> Result<Vec<QueueEntry>> {
        values.into_iter().map(QueueEntry::from_value).collect()
    }

    /// `list(place)`, from `offset`, at most `limit` entries: asked for
    /// in pages of at most 10,000, each after the last entry of the one
    /// before (so an entry that stays in the place is never skipped while
    /// the front moves); when that entry left the place meanwhile, the
    /// error says so.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn list(&mut self, place: Place, offset: usize, limit: Option<usize>) -> Result<Vec<QueueEntry>> {
        let mut entries = Vec::new();
        let wanted = limit.unwrap_or(usize::MAX);
        while entries.len() < wanted {
            let page = (wanted - entries.len()).min(protocol::LIST_MAX);
            let after = entries.last().map(|entry: &QueueEntry| entry.id().to_owned());
            let values: Vec<Value> = self.call(&Op::List {
                place: protocol::place_name(place).to_owned(),
                offset: if after.is_some() { 0 } else { offset },
                after,
                limit: Some(page),
            })?;
            let got = values.len();
            entries.extend(Self::entries(values)?);
            if got < page {
                break;
            }
        }
        Ok(entries)
    }

    /// `get_movies_ready_for_retry(max_retries)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn get_movies_ready_for_retry(&mut self, max_retries: u32) -> Result<Vec<QueueEntry>> {
        let values = self.call(&Op::RetryCandidates { max_retries })?;
        Self::entries(values)
    }

    /// `get_movies_ready_for_deletion(grace)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn get_movies_ready_for_deletion(&mut self, grace: Duration) -> Result<Vec<QueueEntry>> {
        let values = self.call(&Op::RemovedReady {
            grace_seconds: grace.as_secs_f64(),
        })?;
        Self::entries(values)
    }

    /// `load()`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn load(&mut self) -> Result<()> {
        self.call::<Value>(&Op::Load).map(drop)
    }

    /// `check_addable(movie)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn check_addable(&mut self, movie: &Movie) -> Result<()> {
        self.call::<Value>(&Op::CheckAddable {
            movie: movie.to_value(),
        })
        .map(drop)
    }

    /// `add_many_to_pending(movies)`: how many were added.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn add_many_to_pending(&mut self, movies: &[Movie]) -> Result<usize> {
        // In requests of at most 1,000 movies: a big batch never makes one
        // huge line (a movie alone may be as big as the journal takes).
        let mut added = 0;
        for chunk in movies.chunks(1_000) {
            added += self.call::<usize>(&Op::Add {
                movies: chunk.iter().map(Movie::to_value).collect(),
            })?;
        }
        Ok(added)
    }

    /// `get_next_pending()`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn get_next_pending(&mut self) -> Result<Option<Movie>> {
        let movie: Option<Value> = self.call(&Op::Next)?;
        movie.map(Movie::from_value).transpose()
    }

    /// `add_to_completed(movie)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn add_to_completed(&mut self, movie: &Movie) -> Result<bool> {
        self.call(&Op::Complete {
            movie: movie.to_value(),
        })
    }

    /// `add_to_failed(movie, error, retry_after)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn add_to_failed(&mut self, movie: &Movie, error: &str, retry_after: Option<f64>) -> Result<bool> {
        self.call(&Op::Fail {
            movie: movie.to_value(),
            error: error.to_owned(),
            retry_after,
        })
    }

    /// `fail_with_backoff(movie, error)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn fail_with_backoff(&mut self, movie: &Movie, error: &str) -> Result<Option<f64>> {
        self.call(&Op::FailWithBackoff {
            movie: movie.to_value(),
            error: error.to_owned(),
        })
    }

    /// `move_failed_to_pending(id)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn move_failed_to_pending(&mut self, movie_id: &str) -> Result<bool> {
        self.call(&Op::MoveFailedToPending {
            movie: movie_id.to_owned(),
        })
    }

    /// `reset_failed_movie(id)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn reset_failed_movie(&mut self, movie_id: &str) -> Result<bool> {
        self.call(&Op::Reset {
            movie: movie_id.to_owned(),
        })
    }

    /// `requeue_in_flight()`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn requeue_in_flight(&mut self) -> Result<usize> {
        self.call(&Op::RequeueInFlight)
    }

    /// `cleanup_old_completed(days)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn cleanup_old_completed(&mut self, days: u32) -> Result<usize> {
        self.call(&Op::Cleanup { days })
    }

    /// `mark_movies_as_removed(ids)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn mark_movies_as_removed(&mut self, current_watchlist_ids: &[String]) -> Result<usize> {
        self.call(&Op::MarkRemoved {
            ids: current_watchlist_ids.to_vec(),
        })
    }

    /// `restore_removed_movie(id)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn restore_removed_movie(&mut self, movie_id: &str) -> Result<bool> {
        self.call(&Op::Restore {
            movie: movie_id.to_owned(),
        })
    }

    /// `remove_from_removed_queue(id)`.
    ///
    /// # Errors
    /// See [`Control`].
    pub fn remove_from_removed_queue(&mut self, movie_id: &str) -> Result<bool> {
        self.call(&Op::Forget {
            movie: movie_id.to_owned(),
        })
    }

    /// The last record the holder had applied when it last said (at
    /// [`Control::connect`]).
    #[must_use]
    pub fn last_seq(&self) -> Seq {
        Seq(self.holder.last_seq)
    }
}

/// Connects within `timeout` (a holder whose backlog is full would make a
/// plain connect wait): the connect runs on a thread, abandoned if late.
fn connect_within(path: &Path, timeout: Duration) -> std::result::Result<UnixStream, String> {
    match std::fs::symlink_metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(
                "it serves no control socket (another movie-queue command, which holds the store for a moment; \
                        or a holder with the socket turned off, of an older version, or whose socket file was removed)"
                    .into(),
            );
        }
        Err(error) => return Err(error.to_string()),
        Ok(metadata) => {
            use std::os::unix::fs::FileTypeExt;
            if !metadata.file_type().is_socket() {
                return Err(format!("{} is not a socket; it is not trusted", path.display()));
            }
        }
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::Builder::new()
        .name("movie-queue-connect".into())
        .spawn(move || {
            let _ = sender.send(socket::connect(&owned));
        })
        .map_err(|error| error.to_string())?;
    match receiver.recv_timeout(timeout) {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => Err(
            "nothing listens on its control socket (a holder that is starting, or another movie-queue command \
                 holding the store for a moment where a killed holder left its socket)"
                .into(),
        ),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("it did not accept within {} s", timeout.as_secs())),
    }
}
