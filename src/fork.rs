//! What `fork()` does to a store opened before it.
//!
//! A child made by `fork()` (without `exec`) gets a copy of its parent's
//! memory, so of every `QueueManager`, but only the thread that forked:
//! not the journal's writer, not a snapshot thread. A copy must not be
//! used (a write would wait forever for a writer that is not there), and
//! it must not keep the store locked once the parent closes it.
//!
//! Two things, installed once (by the first open, with `pthread_atfork`):
//!
//! * a count of forks, raised in every child: a manager notes it at its
//!   open ([`Origin`]), and a different count means this process is a
//!   child that inherited the manager;
//! * the writer locks' descriptors, kept in a fixed table of atomics
//!   ([`CloseInChild`]), which the child handler closes in the child.
//!   Closing a descriptor in the child drops only the child's reference
//!   to the open file description: the parent's `flock` stays held (the
//!   handler never calls `flock(LOCK_UN)`, which would release the
//!   parent's lock). Every descriptor the store opens is close-on-exec as
//!   well (the standard library opens them so), so a child that execs
//!   keeps none.
//!
//! A child handler runs in a child of a process with threads, where only
//! async-signal-safe work is allowed: it allocates nothing and takes no
//! lock; it reads and writes atomics and calls `close(2)`. With the
//! control socket's system calls (`control/socket.rs`), the only `unsafe`
//! of the library is here.
//!
//! The handler runs in the child as `fork` returns there, before anything
//! else: from then on the child holds no lock. Until the child is first
//! scheduled it still does, so a parent that closes and reopens the store
//! in that moment (microseconds, or longer on a loaded machine) may meet
//! `Locked`; a handshake (the parent's handler waiting for the child's)
//! would close that window at the cost of every fork waiting for its
//! child, and is not made.
//!
//! A descriptor is registered after its file is opened and unregistered
//! before it is closed, so a descriptor the handler closes is always one
//! the child inherited, never a number another thread reused. A fork in
//! the short window between an open and the registration lends that lock
//! to the child until it exits or execs; so does a fork while more than
//! [`LOCK_FDS_MAX`] descriptors are registered (a warning says so).

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

/// The most lock descriptors the child handler closes: two per writer
/// lock, so 32 stores open for writing at once in one process.
pub const LOCK_FDS_MAX: usize = 64;

/// A free slot of [`LOCK_FDS`].
const FREE: i32 = -1;

/// The descriptors every child closes ([`FREE`]: none).
static LOCK_FDS: [AtomicI32; LOCK_FDS_MAX] = [const { AtomicI32::new(FREE) }; LOCK_FDS_MAX];

/// How many forks made this process: raised by one in each child.
static FORKS: AtomicUsize = AtomicUsize::new(0);

/// Whether the child handler is installed (else a fork is told by the
/// process id alone).
static INSTALLED: AtomicBool = AtomicBool::new(false);

static INSTALL: Once = Once::new();

/// The process a manager was opened in.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pid: u32,
    forks: usize,
}

impl Origin {
    /// This process, now (installing the child handler first, once).
    pub fn here() -> Origin {
        install();
        Origin {
            pid: std::process::id(),
            forks: FORKS.load(Ordering::Relaxed),
        }
    }

    /// The id of the process it names.
    pub fn pid(self) -> u32 {
        self.pid
    }

    /// Is this process a child (made by `fork()`) of the one it names?
    /// Costs an atomic load (a `getpid` where the handler could not be
    /// installed).
    pub fn is_forked(self) -> bool {
        if INSTALLED.load(Ordering::Relaxed) {
            FORKS.load(Ordering::Relaxed) != self.forks
        } else {
            std::process::id() != self.pid
        }
    }
}

/// A descriptor closed in every child made by `fork()` while this is
/// alive. Drop it before the descriptor is closed.
#[derive(Debug)]
pub struct CloseInChild {
    /// Its slot of [`LOCK_FDS`] and the descriptor (`None`: the table was full).
    slot: Option<(usize, i32)>,
}

impl CloseInChild {
    /// Registers `fd`, an open descriptor.
    pub fn register(fd: i32) -> CloseInChild {
        install();
        let slot = LOCK_FDS.iter().position(|slot| {
            slot.compare_exchange(FREE, fd, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        if slot.is_none() {
            tracing::warn!(
                fd,
                limit = LOCK_FDS_MAX,
                "too many writer locks to close in a forked child; a child made by fork() keeps this one until it exits or execs"
            );
        }
        CloseInChild {
            slot: slot.map(|slot| (slot, fd)),
        }
    }

    /// Nothing to close (a system without `fork`).
    #[cfg(not(unix))]
    pub fn none() -> CloseInChild {
        CloseInChild { slot: None }
    }
}

impl Drop for CloseInChild {
    fn drop(&mut self) {
        if let Some((slot, fd)) = self.slot
            && let Some(entry) = LOCK_FDS.get(slot)
        {
            let _ = entry.compare_exchange(fd, FREE, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

/// Installs the child handler, once per process.
fn install() {
    INSTALL.call_once(|| {
        #[cfg(unix)]
        {
            // SAFETY: `in_child` is a function that lives as long as the
            // program and does only async-signal-safe work (atomics and
            // `close`), as a child handler must; there is no prepare or
            // parent handler. `pthread_atfork` only records the pointers.
            #[expect(unsafe_code, reason = "the one call that installs the fork handler")]
            let status = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
            INSTALLED.store(status == 0, Ordering::Relaxed);
            if status != 0 {
                tracing::warn!(
                    status,
                    "pthread_atfork failed; a forked child keeps the store's lock until it exits"
                );
            }
        }
    });
}

/// The child handler: counts the fork and closes every registered lock
/// descriptor. Async-signal-safe: no allocation, no lock, no logging.
#[cfg(unix)]
extern "C" fn in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
    for slot in &LOCK_FDS {
        let fd = slot.swap(FREE, Ordering::Relaxed);
        if fd != FREE {
            // SAFETY: `fd` was registered while its file was open and is
            // unregistered before that file is closed, so it was open in
            // the parent at the fork and is this child's inherited copy;
            // the child's copy of its `File` is never dropped (the
            // manager forgets it in a child), so it is closed only here.
            // Closing it releases only the child's reference: the
            // parent's lock stays.
            #[expect(unsafe_code, reason = "closing an inherited descriptor in the fork handler")]
            let _ = unsafe { libc::close(fd) };
        }
    }
}
