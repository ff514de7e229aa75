//! The dashboard (issue 15) on a store of 100,000 movies and 1,000,000
//! journal events: how long `movie-queue serve` takes to answer the
//! overview (`GET /`) and one time-travel step (`GET /travel?seq=S&prev=P`,
//! S all over the journal, 1,000 records after P), measured end to end over
//! HTTP from this process to the release binary (rendering, the request and
//! the response; loopback). Target: each under 200 ms. Criterion measures
//! the median; the p99 is computed here from 200 timed requests of each
//! and printed as `FIGURE` lines.
//!
//! The store is built once (Batched, automatic snapshots off; 100,000 adds,
//! then takes, failures with four messages, retries and completions until
//! the journal holds 1,000,000 records) and cached in
//! `target/bench-data/dashboard-1m/`; delete that directory to rebuild it.
//! Run: `cargo bench --bench dashboard`.

#[path = "../../benches/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::SamplingMode;
use movie_queue::QueueManager;

const GROUP: &str = "dashboard";

/// The store's size: movies, and journal records.
fn size() -> (u64, u64) {
    let movies = common::size(100_000, 5_000) as u64;
    (movies, movies * 10)
}

/// Builds (or reuses) the store.
fn store() -> PathBuf {
    let (movies, events) = size();
    let dir = common::data_dir().join(format!("dashboard-{}", events));
    let complete = dir.join("COMPLETE");
    if complete.exists() {
        return dir;
    }
    eprintln!(
        "building {} with {movies} movies and {events} events (once)",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the store directory");
    let qm = common::options(common::batched()).open(&dir).expect("open");
    qm.add_many_to_pending((0..movies).map(common::movie)).expect("add");
    let errors = [
        "No seeders",
        "Not found on tracker",
        "Connection reset by peer",
        "Disk full",
    ];
    let mut turn = 0u64;
    while qm.last_seq().0 < events {
        turn += 1;
        match qm.get_next_pending().expect("take") {
            Some(movie) if turn.is_multiple_of(25) => drop(qm.add_to_completed(movie).expect("complete")),
            Some(movie) => {
                let error = errors[usize::try_from(turn % 4).unwrap_or(0)];
                // One in 50 waits hours (a countdown on the pages); the rest are due.
                let wait = if turn % 50 == 1 {
                    (turn % 7 + 1) as f64 * 3600.0
                } else {
                    -1.0
                };
                qm.add_to_failed(movie, error, Some(common::unix_now() + wait))
                    .expect("fail");
            }
            None if retry_all(&qm) == 0 => break,
            None => {}
        }
        if turn.is_multiple_of(20_000) {
            retry_all(&qm);
        }
    }
    assert!(qm.last_seq().0 >= events, "the history ran dry at {}", qm.last_seq());
    qm.close().expect("close");
    std::fs::write(&complete, b"").expect("mark complete");
    dir
}

/// Every failed movie due back to pending (the application's retry
/// loop); how many moved.
fn retry_all(qm: &QueueManager) -> usize {
    let ready = qm.get_movies_ready_for_retry(u32::MAX);
    for entry in &ready {
        qm.move_failed_to_pending(entry).expect("retry");
    }
    ready.len()
}

/// `movie-queue serve` on the store, killed when dropped.
struct Server(Child, SocketAddr);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &PathBuf) -> Server {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_movie-queue"))
        .arg("--dir")
        .arg(dir)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start movie-queue serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("read its address");
    eprintln!(
        "FIGURE serve start-up (listening, answering with what it has read): {:.3} s",
        started.elapsed().as_secs_f64()
    );
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    // The pages are measured on the whole timeline: once it is read.
    let mut body = Vec::new();
    loop {
        body.clear();
        let mut stream = TcpStream::connect(addr).expect("connect");
        write!(stream, "GET /api/status HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
        stream.read_to_end(&mut body).expect("read");
        if String::from_utf8_lossy(&body).contains("\"loading\":false") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "FIGURE serve start-up (the whole journal read): {:.3} s",
        started.elapsed().as_secs_f64()
    );
    Server(child, addr)
}

/// `GET path`, the whole response read; its size.
fn get(addr: SocketAddr, path: &str) -> usize {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut body = Vec::new();
    stream.read_to_end(&mut body).expect("read");
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    body.len()
}

/// The `index`-th time-travel step: all over the journal, 1,000 records on.
fn step(index: u64, last: u64) -> String {
    let seq = 1_000 + (index.wrapping_mul(7_919_u64 * 97)) % (last - 1_000);
    format!("/travel?seq={seq}&prev={}", seq - 1_000)
}

/// Median and p99 of `count` timed requests made by `request`.
fn percentiles(count: u64, mut request: impl FnMut(u64)) -> (f64, f64) {
    let mut times: Vec<f64> = (0..count)
        .map(|index| {
            let started = Instant::now();
            request(index);
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let at = |fraction: f64| times[((times.len() - 1) as f64 * fraction).round() as usize];
    (at(0.5), at(0.99))
}

fn main() {
    let dir = store();
    let (_, events) = size();
    let server = serve(&dir);
    let addr = server.1;
    let mut criterion = common::criterion();
    let mut group = criterion.benchmark_group(GROUP);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(common::size(50, 10))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("overview", |bencher| bencher.iter(|| get(addr, "/")));
    let mut index = 0;
    group.bench_function("travel_step", |bencher| {
        bencher.iter(|| {
            index += 1;
            get(addr, &step(index, events))
        });
    });
    group.finish();
    let count = common::size(200, 10) as u64;
    let (median, p99) = percentiles(count, |_| {
        get(addr, "/");
    });
    eprintln!("FIGURE overview over {count} requests: median {median:.1} ms, p99 {p99:.1} ms (target < 200 ms)");
    let (median, p99) = percentiles(count, |index| {
        get(addr, &step(index + 10_000, events));
    });
    eprintln!(
        "FIGURE time-travel step over {count} requests: median {median:.1} ms, p99 {p99:.1} ms (target < 200 ms)"
    );
    criterion.final_summary();
}
