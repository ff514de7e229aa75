//! A guard on `movie-queue serve`'s memory: its resident size grows by
//! at most a fixed number of bytes per movie over an empty store's, so a
//! change that makes the dashboard's timeline several times fatter fails
//! here instead of shipping. The figure at a million movies (release
//! build) is in docs/PERFORMANCE.md (`scripts/performance serve`).

use std::path::Path;
use std::time::{Duration, Instant};

use movie_queue::{Durability, Movie, Options};

use crate::support::http::{PATIENCE, Server, get, serve};

/// Movies in the measured store.
const MOVIES: usize = 20_000;
/// The most resident bytes a movie may add. Measured (debug build, three
/// runs): 569-589, its entry in the library's state and its place in the
/// timeline (states, id, title, search text, id table), with titles of 45
/// characters (931-989 before verify ran in a child process and the
/// timeline's buffers were packed); the bound is about 1.5x that, far
/// below a 3x regression.
const BYTES_PER_MOVIE_MAX: u64 = 900;

fn resident(server: &Server) -> u64 {
    let deadline = Instant::now() + PATIENCE;
    while get(server.addr, "/api/status").json()["loading"] == true && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap();
    kib * 1024
}

fn store(dir: &Path, movies: usize) {
    let qm = Options::default()
        .durability(Durability::Batched {
            max_delay: Duration::from_millis(50),
        })
        .open(dir)
        .unwrap();
    qm.add_many_to_pending((0..movies).map(|index| {
        Movie::new(
            format!("tt{index:07}"),
            format!("A film of forty characters, number {index:05}"),
            "1999",
        )
    }))
    .unwrap();
    qm.close().unwrap();
}

#[test]
fn serve_grows_by_a_bounded_number_of_bytes_per_movie() {
    let scratch = tempfile::tempdir().unwrap();
    let (small, large) = (scratch.path().join("one"), scratch.path().join("many"));
    store(&small, 1);
    store(&large, MOVIES);
    let base = resident(&serve(&small, &[]));
    let full = resident(&serve(&large, &[]));
    let per_movie = full.saturating_sub(base) / MOVIES as u64;
    eprintln!("serve: {base} bytes resident on one movie, {full} on {MOVIES}: {per_movie} bytes a movie");
    assert!(
        per_movie <= BYTES_PER_MOVIE_MAX,
        "{per_movie} bytes a movie (at most {BYTES_PER_MOVIE_MAX}): the dashboard's memory grew"
    );
}
