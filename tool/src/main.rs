//! `movie-queue`: the command-line tool over the `movie_queue` library.
//! It operates, inspects, audits, replays, verifies and repairs a store,
//! and knows nothing of the on-disk format beyond the library's public API
//! (it is its own package: the compiler sees to that).
//!
//! The `movie-queue` tool: parse the command line, open the store the way
//! the command needs (read-only for reading commands, the writer lock for
//! the rest), do one thing, close, and report errors as one line plus a hint.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::pedantic)]

mod args;
mod demo;
mod held;
mod inspect;
mod logging;
mod operate;
mod out_dir;
mod output;
mod removed;
#[cfg(feature = "dashboard")]
mod serve;
#[cfg(feature = "nats")]
mod ship;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use movie_queue::{Error, QueueManager};

use args::{Cli, Command};
use output::Output;

/// An error the tool itself raises, with what to do about it.
#[derive(Debug)]
pub(crate) struct Failure {
    /// One line: what went wrong, naming the file, offset or id.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Fails with `message` (no hint).
pub(crate) fn fail<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(Failure {
        message: message.into(),
        hint: None,
    }
    .into())
}

/// Fails with `message` and `hint`.
pub(crate) fn fail_with_hint<T>(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Result<T> {
    Err(Failure {
        message: message.into(),
        hint: Some(hint.into()),
    }
    .into())
}

/// The hint for a store that does not open: following it is tested.
pub(crate) const REPAIR_HINT: &str = "run `movie-queue repair`: it keeps every acknowledged change that survives in the \
                               store and sets the damaged bytes aside (nothing is deleted)";

/// Runs the tool; the process's exit status.
pub(crate) fn run() -> ExitCode {
    let matches = Cli::command().get_matches();
    let dir_given = matches.value_source("dir") == Some(ValueSource::CommandLine);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    logging::init();
    #[cfg(feature = "dashboard")]
    if let Command::Serve(serve) = &cli.command
        && let Err(message) = serve::check_addr(serve.addr, serve.token.as_deref())
    {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    let repairing = matches!(cli.command, Command::Repair);
    let (result, store) = match (cli.command, cli.dir) {
        // The demo never uses $MOVIE_QUEUE_DIR or ~/.movie_sync/: only a --dir given on the command line.
        (Command::Demo, _) if !dir_given => (demo::run(&mut Output::stdout(), None), None),
        (command, dir) => match store_dir(dir) {
            Ok(dir) => (dispatch(command, &dir), Some(dir)),
            Err(error) => (Err(error), None),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error, store.as_deref(), repairing),
    }
}

/// `--dir`, else `$MOVIE_QUEUE_DIR`, else `~/.movie_sync/`. (Read here,
/// not by clap: an argument clap takes from the environment shows in its
/// usage lines as if it had been typed.)
fn store_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let from_environment = std::env::var_os("MOVIE_QUEUE_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from);
    match given.or(from_environment) {
        Some(dir) => Ok(dir),
        None => movie_queue::default_dir()
            .or_else(|_| fail_with_hint("HOME is not set, so there is no default store", "pass --dir DIR")),
    }
}

fn dispatch(command: Command, dir: &Path) -> anyhow::Result<()> {
    let mut output = Output::stdout();
    let out = &mut output;
    match command {
        Command::Add(add) => operate::add(out, dir, &add),
        Command::Next => operate::next(out, dir),
        Command::Complete { id } => operate::complete(out, dir, &id),
        Command::Fail(failure) => operate::fail_movie(out, dir, &failure),
        Command::Retry { max_retries } => operate::retry(out, dir, max_retries),
        Command::Reset { id } => operate::reset(out, dir, &id),
        Command::RequeueInFlight => operate::requeue_in_flight(out, dir),
        Command::Cleanup { days } => operate::cleanup(out, dir, days),
        Command::Stats(flag) => inspect::stats(out, dir, flag.json),
        Command::List(list) => inspect::list(out, dir, &list),
        Command::Show { id, json } => inspect::show(out, dir, &id, json.json),
        Command::Log(log) => inspect::log(out, dir, &log),
        Command::Replay(replay) => inspect::replay(out, dir, &replay),
        Command::Verify(flag) => verify::verify(out, dir, flag.json),
        Command::Repair => operate::repair(out, dir),
        Command::Snapshot => operate::snapshot(out, dir),
        Command::Compact => operate::compact(out, dir),
        Command::Import { source } => operate::import(out, dir, &source),
        Command::Export { target } => inspect::export(out, dir, &target),
        Command::MarkRemoved { ids } => removed::mark_removed(out, dir, &ids),
        Command::Restore(args) => match &args.from {
            None => removed::restore(out, dir, &args.target),
            Some(from) => restore_from(from, &args),
        },
        Command::Ship(args) => ship_to(dir, &args),
        Command::Forget { id } => removed::forget(out, dir, &id),
        Command::Removed(args) => removed::list(out, dir, &args),
        Command::Demo => demo::run(out, Some(dir)),
        #[cfg(feature = "dashboard")]
        Command::Serve(args) => serve::run(dir, &args),
    }
}

#[cfg(feature = "nats")]
fn ship_to(dir: &Path, args: &args::ShipArgs) -> anyhow::Result<()> {
    ship::ship(dir, args)
}

#[cfg(feature = "nats")]
fn restore_from(from: &str, args: &args::RestoreArgs) -> anyhow::Result<()> {
    ship::restore(from, args)
}

#[cfg(not(feature = "nats"))]
fn ship_to(_: &Path, _: &args::ShipArgs) -> anyhow::Result<()> {
    without_nats()
}

#[cfg(not(feature = "nats"))]
fn restore_from(_: &str, _: &args::RestoreArgs) -> anyhow::Result<()> {
    without_nats()
}

#[cfg(not(feature = "nats"))]
fn without_nats() -> anyhow::Result<()> {
    fail_with_hint(
        "this movie-queue was built without NATS (the `nats` feature)",
        "build the tool with its default features: cargo install --path tool",
    )
}

/// Opens the store for a mutating command: the writer lock, and movies in
/// flight stay in flight (they belong to whoever took them), and no control
/// socket.
pub(crate) fn open_writer(dir: &Path) -> anyhow::Result<QueueManager> {
    Ok(writer_options().open(dir)?)
}

/// The options of a mutating command's open (see [`open_writer`]): it
/// loads on demand (`Options::load_on_demand`), so a command that changes
/// one movie reads that movie, not the store.
pub(crate) fn writer_options() -> movie_queue::Options {
    QueueManager::options()
        .requeue_in_flight_on_open(false)
        .load_on_demand(true)
        // A command holds the store for a moment: nobody is to act through it.
        .control_socket(false)
}

/// Closes a writer after its command's `work`. Once every change the
/// command made is durable in the journal (the flush succeeded), the
/// command has happened: a failure after that, such as a snapshot that
/// could not be written at close on a full disk, is a warning on stderr and
/// the command still succeeds (it has printed its result). Otherwise the
/// first error wins. The store is opened with `Durability::Immediate`, so
/// each operation `work` made returned only once durable: whatever it
/// printed about a change is true even when a later step fails.
pub(crate) fn close_writer<T>(qm: QueueManager, work: anyhow::Result<T>) -> anyhow::Result<T> {
    let store = qm.dir().to_path_buf();
    let durable = qm.flush();
    let closed = qm.close();
    let value = work?;
    durable?;
    if let Err(error) = closed {
        warn(&closing_warning(&error));
        if let Some(hint) = special_file_hint(&error, Some(&store), false) {
            write_hint(&hint);
        }
    }
    Ok(value)
}

/// What a failed close means when every change is already durable.
fn closing_warning(error: &Error) -> String {
    match error {
        Error::SnapshotFailed { seq, cause } => format!(
            "every change is durable in the journal (through record {seq}), but the snapshot was not written \
             ({}); the next open rebuilds the snapshot",
            describe(cause)
        ),
        other => format!(
            "every change is durable in the journal, but closing the store failed ({}); \
             the next open recovers from the journal",
            describe(other)
        ),
    }
}

/// A library error in words: an I/O error as `OPERATION PATH: REASON`; an
/// id in double quotes, its control characters escaped as everywhere else
/// ([`output::restyle_debug_escapes`]). The caller makes it [`output::safe`].
pub(crate) fn describe(error: &Error) -> String {
    match error {
        Error::Io {
            operation,
            path,
            source,
        } => format!("{operation} {}: {}", path.display(), io_reason(source)),
        Error::NotFound { id, wanted } => format!("no movie with id {} is {wanted}", output::quoted(id)),
        other => output::restyle_debug_escapes(&other.to_string()).into_owned(),
    }
}

/// Why an operating-system call failed, in plain words: `permission
/// denied`, `not a directory`, `no such file or directory`, ...
pub(crate) fn io_reason(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    if error.raw_os_error() == Some(libc::ELOOP) {
        return "too many levels of symbolic links".to_owned();
    }
    let words = match error.kind() {
        ErrorKind::PermissionDenied => "permission denied",
        ErrorKind::NotFound => "no such file or directory",
        ErrorKind::NotADirectory => "not a directory",
        ErrorKind::IsADirectory => "is a directory",
        ErrorKind::AlreadyExists => "already exists",
        ErrorKind::StorageFull => "no space left on device",
        ErrorKind::ReadOnlyFilesystem => "read-only file system",
        _ => return error.to_string(),
    };
    if error.raw_os_error().is_none() {
        // A message of the library's own says more than its kind.
        return error.to_string();
    }
    words.to_owned()
}

/// Prints `movie-queue: warning: MESSAGE` on stderr.
pub(crate) fn warn(message: &str) {
    // Never `eprintln!`: it panics when stderr is closed.
    let _ = writeln!(
        std::io::stderr().lock(),
        "movie-queue: warning: {}",
        output::safe(message)
    );
}

/// Prints `hint: HINT` on stderr.
fn write_hint(hint: &str) {
    // Never `eprintln!`: it panics when stderr is closed.
    let _ = writeln!(std::io::stderr().lock(), "hint: {}", output::safe(hint));
}

/// Opens the store for a reading command: no lock, no writes.
pub(crate) fn open_reader(dir: &Path) -> anyhow::Result<QueueManager> {
    require_directory(dir)?;
    Ok(QueueManager::open_read_only(dir)?)
}

/// Refuses a path that exists but is not a directory (the library would
/// read it as an empty store), a directory the process may not read, and a
/// directory that holds no store (a mistyped `--dir` would otherwise look
/// like an empty queue). A path that cannot be looked up at all is left to
/// the library's open, whose error names it and says why.
pub(crate) fn require_directory(dir: &Path) -> anyhow::Result<()> {
    let Ok(metadata) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if !metadata.is_dir() {
        return fail_with_hint(
            format!("{} is not a directory", dir.display()),
            "--dir (or $MOVIE_QUEUE_DIR) names the store's directory",
        );
    }
    if movie_queue::holds_store(dir) {
        return Ok(());
    }
    // `holds_store` cannot tell a directory it may not look into from one without a store.
    if let Err(error) = readable(dir) {
        return fail_with_hint(
            format!(
                "cannot read the store directory {}: {}",
                dir.display(),
                io_reason(&error)
            ),
            "run as the user the store belongs to, or give this one read and search permission on it",
        );
    }
    fail_with_hint(
        format!(
            "{} holds no movie-queue store (no journal/, no queue_*.json)",
            dir.display()
        ),
        "check --dir (or $MOVIE_QUEUE_DIR); `movie-queue add` creates a store",
    )
}

/// May the process list `dir` (read) and look up names in it (search)?
fn readable(dir: &Path) -> std::io::Result<()> {
    std::fs::read_dir(dir)?;
    std::fs::metadata(dir.join(".")).map(drop)
}

/// Prints the error as one line (and a hint line) on stderr; exit status 1.
/// `store` is the store directory the command worked on, if any;
/// `repairing`: the command is `repair`, whose hint cannot be to run it.
fn report(error: &anyhow::Error, store: Option<&Path>, repairing: bool) -> ExitCode {
    let broken_pipe = error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|error| error.kind() == std::io::ErrorKind::BrokenPipe);
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    if let Some(damaged) = error.downcast_ref::<verify::Damaged>() {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "movie-queue: {damaged}");
        drop(stderr);
        write_hint("run `movie-queue repair`: it deals with each problem as the list says (nothing is deleted)");
        return ExitCode::from(verify::DAMAGED_STATUS);
    }
    let message = match error.downcast_ref::<Error>() {
        Some(error) => describe(error),
        None => error.to_string(),
    };
    let message = output::safe(&message);
    // Never `eprintln!`: it panics when stderr is closed.
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "movie-queue: {message}");
    drop(stderr);
    if let Some(hint) = hint_for(error, store, repairing) {
        write_hint(&hint);
    }
    ExitCode::from(1)
}

fn hint_for(error: &anyhow::Error, store: Option<&Path>, repairing: bool) -> Option<String> {
    if let Some(failure) = error.downcast_ref::<Failure>() {
        return failure.hint.clone();
    }
    let error = error.downcast_ref::<Error>()?;
    if let Some(hint) = special_file_hint(error, store, repairing).or_else(|| control_hint(error)) {
        return Some(hint);
    }
    match error {
        Error::Changing { .. } => Some(
            "run `movie-queue verify` again when the application is not snapshotting or compacting (a snapshot \
             is written every 10,000 changes or 5 minutes by default)"
                .into(),
        ),
        Error::Locked { dir } => Some(format!(
            "another movie-queue process or the application holds {}; try again when it exits, \
             or use a read-only command (stats, list, show, log, replay, verify, removed, export)",
            dir.display()
        )),
        Error::Io {
            operation,
            path,
            source,
        } if *operation == "open store" && source.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "there is no store at {} yet: a mutating command such as `movie-queue add` creates one, \
                 or pass --dir DIR",
            path.display()
        )),
        Error::Io { path, source, .. } if outside_io_hint(path, source, store).is_some() => {
            outside_io_hint(path, source, store)
        }
        Error::Poisoned {
            kind: Some(std::io::ErrorKind::StorageFull),
            ..
        } => Some(full_disk_hint(store)),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => Some(full_disk_hint(store)),
        Error::Poisoned { .. } => Some(AGAIN.into()),
        // Files to import: not the store's, so not for `repair`.
        Error::BadQueueFile { path, .. } if store.is_some_and(|dir| !path.starts_with(dir)) => {
            let what = std::fs::symlink_metadata(path)
                .ok()
                .map(|metadata| file_kind(metadata.file_type()))
                .filter(|what| *what != "a regular file")?;
            Some(format!(
                "{} is {what}: movie-queue never follows links or reads special files; put the real file there, \
                 or remove it (its entries are then not imported)",
                path.display()
            ))
        }
        Error::CompactedAway { resumes, .. } => Some(format!(
            "`--since {resumes}` reads what the journal holds; the state before that record is in the compaction base \
             (journal/base.json), and `movie-queue replay --until` rebuilds states from there on"
        )),
        Error::FollowedRecordGone { seq, .. } => Some(format!(
            "`movie-queue verify` says whether the store needs `repair`; `movie-queue log --since {seq}` reads it again \
             from that record"
        )),
        _ if repairing => None,
        Error::BadQueueFile { .. } => Some(REPAIR_HINT.into()),
        error if error.is_corruption() => Some(REPAIR_HINT.into()),
        _ => None,
    }
}

/// The hint for a store held by a process that does not answer on its
/// control socket, or that stopped answering during a request.
fn control_hint(error: &Error) -> Option<String> {
    match error {
        Error::ControlUnavailable { dir, reason } if reason.contains("holds another store") => Some(format!(
            "remove {}: it is another store's holder's socket; this store's holder makes its own when it opens",
            movie_queue::Layout::new(dir).control_socket().display()
        )),
        Error::ControlUnavailable { reason, .. } if reason.starts_with("it is busy") => {
            Some("16 clients are connected to its control socket already; run the command again in a moment".into())
        }
        Error::ControlUnavailable { dir, .. } => Some(format!(
            "try again when the process holding {} exits; a reading command (stats, list, show, log, replay, \
             verify, removed, export) works meanwhile; the application serves the control socket unless it \
             turned it off (Python: QueueManager(dir, control_socket=False); Rust: Options::control_socket)",
            dir.display()
        )),
        Error::OutcomeUnknown { last_seq, .. } => Some(format!(
            "`movie-queue log --since {}` shows what was written after the request was sent: what is there was \
             done, what is not was not",
            last_seq + 1
        )),
        Error::Remote { kind, .. } if kind == "poisoned" => Some(
            "the process holding the store can write nothing more until it reopens the store: free disk space \
             if the disk is full, then restart the application; every change it acknowledged is in the journal"
                .into(),
        ),
        _ => None,
    }
}

/// What to do after a write that failed: every change the store
/// acknowledged is in the journal, and the next open starts from it.
const AGAIN: &str = "run the command again: opening the store replays the journal";

/// The hint for a denied access (anywhere), or a full disk under a file
/// outside the store (`export`, `replay --out`).
fn outside_io_hint(path: &Path, source: &std::io::Error, store: Option<&Path>) -> Option<String> {
    let outside = store.is_some_and(|dir| !path.starts_with(dir));
    match source.kind() {
        std::io::ErrorKind::PermissionDenied => {
            // A file about to be created does not exist yet: its directory says.
            let shown = path
                .ancestors()
                .find(|place| place.symlink_metadata().is_ok())
                .unwrap_or(path);
            Some(format!(
                "`ls -ld {}` shows its owner and mode: run as a user who may read it (and write it, {})",
                shown.display(),
                if outside {
                    "to write there"
                } else {
                    "to change the store"
                }
            ))
        }
        std::io::ErrorKind::StorageFull if outside => {
            let place = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .unwrap_or(path);
            Some(format!(
                "the disk is full: free disk space on the file system that holds {}, then run the command again \
                 (the store was only read)",
                place.display()
            ))
        }
        _ => None,
    }
}

/// A write failed for want of space: running again alone cannot help.
fn full_disk_hint(store: Option<&Path>) -> String {
    let place = store.map_or_else(String::new, |dir| {
        format!(" on the file system that holds {}", dir.display())
    });
    format!("the disk is full: free disk space{place} first, then {AGAIN}")
}

/// The hint for an I/O error caused by something other than what the store
/// keeps at `path`: a symbolic link (`ELOOP`: never followed there), a
/// directory where a file goes (`EISDIR`), a FIFO, socket or device, or a
/// file where a directory goes (`ENOTDIR` on the path itself). Names the
/// path and what is there, as found now; says what to do about it, in
/// the store or (`export`, `replay --out`, `import`) outside it.
fn special_file_hint(error: &Error, store: Option<&Path>, repairing: bool) -> Option<String> {
    use std::io::ErrorKind;
    let (path, source) = match error {
        Error::Io { path, source, .. } => (path, source),
        Error::SnapshotFailed { cause, .. } => return special_file_hint(cause, store, repairing),
        _ => return None,
    };
    if store.is_some_and(|dir| dir == path) {
        // The store directory itself: whatever --dir names is followed.
        return None;
    }
    let found = std::fs::symlink_metadata(path)
        .ok()
        .map(|metadata| metadata.file_type());
    let link_loop = source.raw_os_error() == Some(libc::ELOOP);
    let what = match found {
        Some(kind) => file_kind(kind),
        None if link_loop => "a symbolic link",
        None if source.kind() == ErrorKind::IsADirectory => "a directory",
        None => return None,
    };
    let special = found.is_some_and(|kind| !kind.is_file() && !kind.is_dir() && !kind.is_symlink());
    let expected = match source.kind() {
        ErrorKind::NotADirectory if found.is_some_and(|kind| !kind.is_dir()) => "a directory",
        ErrorKind::IsADirectory if found.is_none_or(|kind| kind.is_dir()) => "a file",
        _ if link_loop || special => "a file",
        _ => return None,
    };
    let inside = store.is_some_and(|dir| path.starts_with(dir));
    let path = path.display();
    Some(match (inside, expected) {
        (true, "a file") if repairing => format!(
            "{path} is {what} where the store keeps a file: the store never follows links or reads special \
             files; remove it"
        ),
        (true, "a file") => format!(
            "{path} is {what} where the store keeps a file: the store never follows links or reads special \
             files; remove it, or run `movie-queue repair`, which sets it aside"
        ),
        (true, _) => format!(
            "{path} is {what} where the store keeps a directory: move it out of the way and put the directory back"
        ),
        (false, _) => format!(
            "{path} is {what} where movie-queue reads or writes {expected}: it never follows links or reads or \
             writes special files; remove it, or choose another directory"
        ),
    })
}

/// What a file type is, in words.
fn file_kind(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "a regular file"
    }
}

fn main() -> ExitCode {
    run()
}
