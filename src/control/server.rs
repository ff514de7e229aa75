//! The control socket's server: one thread accepts, one thread a
//! connection (at most [`CONNECTIONS_MAX`] at once; beyond that a client
//! is told `busy`), each request answered by the handler in turn. Bounded
//! everywhere: a request line is at most [`LINE_MAX`] bytes and whole
//! within [`IDLE`] of its first byte, a client that sends nothing for
//! [`IDLE`] is told `timeout` and let go, an answer a client does not read
//! is given up after [`IDLE`], at most [`WORKING_MAX`] requests are carried
//! out at once, and one request or answer over [`LARGE`] bytes is held at
//! a time.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::protocol::{Answer, LINE_MAX, Op, WireError, answer_line, parse_request};
use super::socket::{self, Bound};

/// What answers a request (the `ok` value as JSON text): runs on the
/// connection's thread.
pub type Handler = Arc<dyn Fn(Op) -> Answer + Send + Sync>;

/// Connections served at once.
pub const CONNECTIONS_MAX: usize = 16;

/// How long a connection may stay silent (before its first request and
/// between requests), how long one request line may take to arrive, and
/// how long an answer may wait to be read.
pub const IDLE: Duration = Duration::from_secs(10);

/// Requests carried out at once, whatever the number of connections: the
/// others wait their turn, so clients can never take every core from the
/// application's own threads.
pub const WORKING_MAX: usize = 2;

/// A request line or an answer over this many bytes is large: one large
/// one at a time is read or written (the others are told `busy`, or wait
/// their turn), so the server holds at most one large request or answer
/// besides a mebibyte a connection.
pub const LARGE: usize = 1 << 20;

/// A running control socket. [`Server::stop`] (or dropping it) stops
/// accepting, closes every connection, waits for their threads and
/// removes the socket file.
pub struct Server {
    shared: Arc<Shared>,
    accepting: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    bound: Bound,
    handler: Handler,
    stopping: AtomicBool,
    connections: Mutex<Vec<Connection>>,
    /// Requests being carried out (at most [`WORKING_MAX`]), and the turn.
    working: Mutex<usize>,
    turn: std::sync::Condvar,
    /// Is a large request or answer under way (see [`LARGE`])?
    large: Mutex<bool>,
    large_done: std::sync::Condvar,
}

struct Connection {
    stream: UnixStream,
    thread: JoinHandle<()>,
}

impl Server {
    /// Binds the store's control socket (see `socket::bind`) and starts
    /// accepting on a thread of its own.
    ///
    /// # Errors
    /// The socket cannot be bound or the thread not started.
    pub fn start(dir: &Path, handler: Handler) -> std::io::Result<Server> {
        let bound = socket::bind(dir)?;
        let shared = Arc::new(Shared {
            bound,
            handler,
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
            working: Mutex::new(0),
            turn: std::sync::Condvar::new(),
            large: Mutex::new(false),
            large_done: std::sync::Condvar::new(),
        });
        let accepting = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("movie-queue-control".into())
                .spawn(move || accept_loop(&shared))
        };
        let accepting = match accepting {
            Ok(thread) => thread,
            Err(error) => {
                shared.bound.remove();
                return Err(error);
            }
        };
        Ok(Server {
            shared,
            accepting: Mutex::new(Some(accepting)),
        })
    }

    /// Stops serving: no new connection, every open one closed once its
    /// request in progress is answered, every thread joined, the socket
    /// file removed. Idempotent.
    pub fn stop(&self) {
        let Some(accepting) = lock(&self.accepting).take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::Release);
        // The file first: no client finds a socket that no longer answers.
        self.shared.bound.remove();
        // shutdown(2) on the listening socket wakes the blocked accept
        // (Linux); std offers it on a stream, which shares the socket.
        if let Ok(descriptor) = self.shared.bound.listener.try_clone() {
            let _ = UnixStream::from(std::os::fd::OwnedFd::from(descriptor)).shutdown(std::net::Shutdown::Both);
        }
        if accepting.join().is_err() {
            tracing::warn!("the control socket's accepting thread panicked");
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for connection in &connections {
            // Wakes a read; a request in progress still gets its answer
            // written (the write side is closed only after it).
            let _ = connection.stream.shutdown(std::net::Shutdown::Read);
        }
        for connection in connections {
            if connection.thread.join().is_err() {
                tracing::warn!("a control connection's thread panicked");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(shared: &Arc<Shared>) {
    loop {
        let accepted = shared.bound.listener.accept();
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, say: wait a little, never spin.
                tracing::debug!(%error, "control socket: accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        admit(shared, stream);
    }
}

/// Serves a new connection on a thread of its own, or refuses it with one
/// error line: another user's (`forbidden`), or one too many (`busy`).
fn admit(shared: &Arc<Shared>, stream: UnixStream) {
    let refuse = |stream: &mut UnixStream, error: WireError| {
        let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
        let _ = socket::send_all(stream, &answer_line(None, &Err(error)));
        let _ = stream.shutdown(std::net::Shutdown::Both);
    };
    let mut stream = stream;
    match socket::peer_uid(&stream) {
        Ok(peer) if socket::peer_allowed(peer, socket::own_uid()) => {}
        Ok(peer) => {
            tracing::warn!(peer, "control socket: refused a connection from another user");
            return refuse(
                &mut stream,
                WireError::new("forbidden", format!("user {peer} may not control this store")),
            );
        }
        Err(error) => {
            return refuse(
                &mut stream,
                WireError::new("forbidden", format!("the peer's credentials cannot be read: {error}")),
            );
        }
    }
    let mut connections = lock(&shared.connections);
    let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *connections)
        .into_iter()
        .partition(|connection| connection.thread.is_finished());
    *connections = live;
    for connection in done {
        let _ = connection.thread.join();
    }
    if connections.len() >= CONNECTIONS_MAX {
        drop(connections);
        return refuse(
            &mut stream,
            WireError::new(
                "busy",
                format!("{CONNECTIONS_MAX} clients are connected already; try again"),
            ),
        );
    }
    let Ok(kept) = stream.try_clone() else {
        return;
    };
    let thread = {
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name("movie-queue-control-client".into())
            .spawn(move || serve(&shared, stream))
    };
    match thread {
        Ok(thread) => connections.push(Connection { stream: kept, thread }),
        Err(error) => tracing::warn!(%error, "control socket: could not start a connection's thread"),
    }
}

/// Answers one connection's requests in turn until it closes, goes
/// silent, sends a line over the limit or the server stops; then shuts
/// the socket down (the server's copy of it must not keep it open).
fn serve(shared: &Shared, stream: UnixStream) {
    let closing = stream.try_clone();
    answer_requests(shared, stream);
    if let Ok(stream) = closing {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}

fn answer_requests(shared: &Shared, stream: UnixStream) {
    if stream.set_write_timeout(Some(IDLE)).is_err() {
        return;
    }
    let Ok(reading) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reading);
    let writer = stream;
    loop {
        // A fresh buffer a request: a large line's memory goes with it.
        let mut line = Vec::new();
        let mut large = None;
        let read = read_line(shared, &mut reader, &mut line, &mut large);
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let (id, mut result) = match read {
            Ok(0) => return,
            Ok(_) => answer(shared, &line),
            Err(refusal) => {
                let _ = socket::send_all(&writer, &answer_line(None, &Err(refusal)));
                return;
            }
        };
        drop(line);
        let answer_large = result.as_ref().is_ok_and(|text| text.len() > LARGE);
        if answer_large && large.is_none() {
            large = Large::wait(shared);
            if large.is_none() {
                result = Err(WireError::new(
                    "busy",
                    "another large answer is being written; ask again",
                ));
            }
        }
        let answer = answer_line(id, &result);
        drop(result);
        let sent = socket::send_all(&writer, &answer);
        drop(large);
        if sent.is_err() {
            return;
        }
    }
}

/// The one large request or answer under way, given back on drop.
struct Large<'a>(&'a Shared);

impl<'a> Large<'a> {
    /// Taken at once, or `None` (another is under way).
    fn try_take(shared: &'a Shared) -> Option<Large<'a>> {
        let mut large = lock(&shared.large);
        if *large {
            return None;
        }
        *large = true;
        Some(Large(shared))
    }

    /// Taken within [`IDLE`], or `None`.
    fn wait(shared: &'a Shared) -> Option<Large<'a>> {
        let deadline = std::time::Instant::now() + IDLE;
        let mut large = lock(&shared.large);
        while *large {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            large = shared
                .large_done
                .wait_timeout(large, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *large = true;
        Some(Large(shared))
    }
}

impl Drop for Large<'_> {
    fn drop(&mut self) {
        *lock(&self.0.large) = false;
        self.0.large_done.notify_one();
    }
}

/// Reads one request line into `line` (its length; 0: the connection
/// closed), within [`IDLE`] of the last answer and [`IDLE`] from its first
/// byte to its newline, and at most [`LINE_MAX`] bytes: otherwise the
/// error to answer before closing.
fn read_line<'a>(
    shared: &'a Shared,
    reader: &mut BufReader<UnixStream>,
    line: &mut Vec<u8>,
    large: &mut Option<Large<'a>>,
) -> Result<usize, WireError> {
    let deadline = std::time::Instant::now() + IDLE;
    let timeout = || {
        WireError::new(
            "timeout",
            format!(
                "no whole request line within {} s; send one line a request",
                IDLE.as_secs()
            ),
        )
    };
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || reader.get_ref().set_read_timeout(Some(left)).is_err() {
            return Err(timeout());
        }
        // One buffer's worth at a time, so the deadline is checked as
        // bytes trickle in (a plain `read_until` would wait on them).
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timeout());
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(0),
        };
        if available.is_empty() {
            // Closed: a last line without its newline is still a request.
            return Ok(line.len());
        }
        let (taken, done) = match available.iter().position(|byte| *byte == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        let taken = taken.min(LINE_MAX - line.len());
        if line.len() + taken > LARGE && large.is_none() {
            *large = Large::try_take(shared);
            if large.is_none() {
                return Err(WireError::new(
                    "busy",
                    "another large request or answer is under way; send this one again in a moment",
                ));
            }
        }
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if done && line.ends_with(b"\n") {
            return Ok(line.len());
        }
        if line.len() >= LINE_MAX {
            return Err(WireError::new(
                "line_too_long",
                format!("a request line is at most {LINE_MAX} bytes"),
            ));
        }
    }
}

/// One request line's answer line, carried out in turn (see [`WORKING_MAX`]).
fn answer(shared: &Shared, line: &[u8]) -> (Option<u64>, Answer) {
    let (id, op) = parse_request(line);
    let result = op.and_then(|op| {
        let _turn = Turn::take(shared);
        let handler = &shared.handler;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(op))).unwrap_or_else(|_| {
            Err(WireError::new(
                "internal",
                "the holder failed while answering (a panic); its log says more",
            ))
        })
    });
    (id, result)
}

/// A place among the requests carried out at once, given back on drop.
struct Turn<'a>(&'a Shared);

impl<'a> Turn<'a> {
    fn take(shared: &'a Shared) -> Turn<'a> {
        let mut working = lock(&shared.working);
        while *working >= WORKING_MAX {
            working = shared
                .turn
                .wait(working)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *working += 1;
        Turn(shared)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *lock(&self.0.working) -= 1;
        self.0.turn.notify_one();
    }
}
