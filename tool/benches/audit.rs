//! Audit and the event stream (issue 12), on a store of 1,000,000 journal
//! events with no snapshot (500,000 adds, then 500,000 takes; the same
//! shape as `benches/replay.rs`):
//!
//! * `replay --until` of the record at 10 %, 50 % and 100 % of the journal
//!   (`movie_queue::replay`, what the command runs), each against
//!   serde_json decoding of that prefix's payloads, held in memory, into
//!   the same event type, and against reading and decoding the prefix from
//!   the journal (`movie_queue::events(dir, 1)`, the first `k` events).
//!   Targets: the cost grows with the target, and is at most 1.5× the
//!   decode of its prefix.
//! * the time-target lookup (`Until::Time` turned into a record, through
//!   the time index) of a time at 50 %;
//! * `log --follow` latency: from the return of the fsync that makes an
//!   `Immediate` add durable (a storage wrapper notes it) to the line of
//!   `movie-queue log --follow --json` (another process, polling every
//!   5 ms) that prints it, and to `subscribe` in this process; median and
//!   p99 over 300 events 10 ms apart.
//!
//! The store is built once (Batched, automatic snapshots off; a writer's
//! reopen writes the time index; the snapshot is removed so replay starts
//! from nothing) and cached in `target/bench-data/audit-1m/`; delete that
//! directory to rebuild it. Run: `cargo bench --bench audit`.

#[path = "../../benches/common/mod.rs"]
mod common;

use std::io;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use movie_queue::testing::{Entry, ReadableFile, WritableFile};
use movie_queue::testing::{JOURNAL_DIR, RealStorage, Storage};
use movie_queue::testing::{SEGMENT_HEADER_BYTES, decode_record, list_segments};
use movie_queue::{Durability, Seq, Until};

const GROUP: &str = "audit";

/// Every record's payload, read straight from the segments.
fn payloads(dir: &Path) -> Vec<Vec<u8>> {
    let storage = RealStorage;
    let mut payloads = Vec::new();
    for segment in list_segments(&storage, &dir.join(JOURNAL_DIR)).expect("list segments") {
        let bytes = storage.read(&segment.path).expect("read a segment");
        let mut offset = SEGMENT_HEADER_BYTES;
        while offset < bytes.len() {
            let record = decode_record(&bytes[offset..], segment.first_seq).expect("a valid record");
            payloads.push(record.payload.to_vec());
            offset += record.framed_len();
        }
    }
    payloads
}

const PERCENTS: [u64; 3] = [10, 50, 100];

fn bench_replay(criterion: &mut Criterion, dir: &Path, payloads: &[Vec<u8>]) {
    let events = payloads.len() as u64;
    let mut group = criterion.benchmark_group(GROUP);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10));
    for percent in PERCENTS {
        let target = events * percent / 100;
        group.bench_with_input(
            BenchmarkId::new("replay_until", percent),
            &target,
            |bencher, &target| {
                bencher.iter(|| {
                    let replayed = movie_queue::replay(dir, Until::Seq(Seq(target))).expect("replay");
                    assert_eq!(std::hint::black_box(replayed).seq, Seq(target));
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("stream_prefix", percent),
            &target,
            |bencher, &target| {
                bencher.iter(|| {
                    let events = movie_queue::events(dir, Seq(1)).expect("events");
                    let mut read = 0_u64;
                    for event in events.take(target as usize) {
                        std::hint::black_box(event.expect("an event"));
                        read += 1;
                    }
                    assert_eq!(read, target);
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("decode_prefix", percent),
            &target,
            |bencher, &target| {
                bencher.iter(|| {
                    for payload in &payloads[..target as usize] {
                        let decoded = movie_queue::testing::decode_payload(payload);
                        assert!(std::hint::black_box(decoded).is_ok());
                    }
                });
            },
        );
    }
    let half = movie_queue::replay(dir, Until::Seq(Seq(events / 2)))
        .expect("replay")
        .ts
        .expect("a time");
    let journal = dir.join(JOURNAL_DIR);
    group.bench_function("time_lookup_50", |bencher| {
        bencher.iter(|| {
            let found = movie_queue::testing::time_target(&RealStorage, &journal, half, true).expect("lookup");
            assert_eq!(std::hint::black_box(found), Seq(events / 2));
        });
    });
    group.bench_function("time_lookup_50_without_index", |bencher| {
        bencher.iter(|| {
            let found = movie_queue::testing::time_target(&RealStorage, &journal, half, false).expect("lookup");
            assert_eq!(std::hint::black_box(found), Seq(events / 2));
        });
    });
    group.finish();
    report_replay();
}

fn report_replay() {
    let median = |function: &str| common::median_ns(GROUP, function);
    let mut previous: Option<f64> = None;
    for percent in PERCENTS {
        let replay = median(&format!("replay_until/{percent}"));
        let decode = median(&format!("decode_prefix/{percent}"));
        common::print_figure(
            &format!("replay --until {percent}% ms"),
            replay.map(|ns| ns / 1e6),
            "ms",
        );
        common::print_figure(&format!("decode {percent}% prefix ms"), decode.map(|ns| ns / 1e6), "ms");
        let stream = median(&format!("stream_prefix/{percent}"));
        common::print_figure(
            &format!("events stream {percent}% prefix ms"),
            stream.map(|ns| ns / 1e6),
            "ms",
        );
        common::print_ratio(
            &format!("replay / decode of its prefix (in memory), {percent}%"),
            replay.zip(decode).map(|(replay, decode)| replay / decode),
            "<= 1.5",
            |ratio| ratio <= 1.5,
        );
        common::print_ratio(
            &format!("replay / reading and decoding its prefix (events), {percent}%"),
            replay.zip(stream).map(|(replay, stream)| replay / stream),
            "<= 1.5",
            |ratio| ratio <= 1.5,
        );
        if let (Some(before), Some(now)) = (previous, replay) {
            common::print_ratio(
                &format!("replay {percent}% / the previous target"),
                Some(now / before),
                "> 1 (cost grows with the target)",
                |ratio| ratio > 1.0,
            );
        }
        previous = replay;
    }
    for function in ["time_lookup_50", "time_lookup_50_without_index"] {
        common::print_figure(&format!("{function} ms"), median(function).map(|ns| ns / 1e6), "ms");
    }
}

/// The real file system, remembering when the last fsync of a journal
/// segment returned.
#[derive(Debug, Clone, Default)]
struct TimedSync(Arc<Mutex<Option<Instant>>>);

struct TimedFile(Box<dyn WritableFile>, TimedSync);

impl WritableFile for TimedFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all_at(offset, bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()?;
        *self.1.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        Ok(())
    }
}

impl Storage for TimedSync {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        RealStorage.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        RealStorage.list_dir(path)
    }
    fn entry(&self, path: &Path) -> io::Result<Entry> {
        RealStorage.entry(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        RealStorage.read(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>> {
        RealStorage.open_read(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        RealStorage.create_new(path)
    }
    fn open_write(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(TimedFile(RealStorage.open_write(path, offset)?, self.clone())))
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        RealStorage.sync_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealStorage.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealStorage.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        RealStorage.remove_dir(path)
    }
    fn zero_from(&self, path: &Path, offset: u64) -> io::Result<()> {
        RealStorage.zero_from(path, offset)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        RealStorage.sync_dir(path)
    }
}

/// The median and 99th percentile of `samples` (sorted in place), in ms.
fn median_p99(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |quantile: f64| samples[((samples.len() - 1) as f64 * quantile).round() as usize];
    (at(0.5), at(0.99))
}

/// Starts `movie-queue log --follow --json` on `dir`; the instant each line arrives.
fn log_follow(dir: &Path) -> (std::process::Child, mpsc::Receiver<Instant>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_movie-queue"))
        .arg("--dir")
        .arg(dir)
        .args(["log", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start log --follow");
    let (lines, received) = mpsc::channel::<Instant>();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if line.is_err() || lines.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    (child, received)
}

/// `log --follow` (another process, polling) and `subscribe` (this
/// process) latency: from the return of the fsync that makes an add
/// durable to the consumer's receipt of its event, in ms. Negative: the
/// follower read the record between its write and the fsync's return.
fn follow_latency(count: usize) {
    let scratch = common::scratch_dir();
    let dir = scratch.path();
    let synced = TimedSync::default();
    let manager = common::options(Durability::Immediate)
        .storage(Arc::new(synced.clone()))
        .open(dir)
        .expect("open");
    manager.add_to_pending(common::movie(u64::MAX)).expect("add");
    let (mut child, received) = log_follow(dir);
    received.recv().expect("the first line");
    let subscription = manager.subscribe(Seq(2)).expect("subscribe");
    let (events, subscribed) = mpsc::channel::<Instant>();
    std::thread::spawn(move || {
        for record in subscription {
            if record.is_err() || events.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    let signed_ms = |at: Instant, since: Instant| match at.checked_duration_since(since) {
        Some(after) => after.as_secs_f64() * 1e3,
        None => -(since.duration_since(at).as_secs_f64() * 1e3),
    };
    let (mut follow, mut subscribe) = (Vec::new(), Vec::new());
    for number in 0..count as u64 {
        manager.add_to_pending(common::movie(number)).expect("add");
        let fsynced = synced.0.lock().expect("lock").expect("an fsync");
        follow.push(signed_ms(received.recv().expect("a line"), fsynced));
        subscribe.push(signed_ms(subscribed.recv().expect("an event"), fsynced));
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let early = follow.iter().filter(|&&ms| ms < 0.0).count();
    let (median, p99) = median_p99(&mut follow);
    common::print_figure("log --follow latency from fsync, median", Some(median), "ms");
    common::print_figure("log --follow latency from fsync, p99", Some(p99), "ms");
    common::print_figure(
        "log --follow lines read before their fsync returned",
        Some(early as f64),
        "of the events",
    );
    let (median, p99) = median_p99(&mut subscribe);
    common::print_figure("subscribe latency from fsync, median", Some(median), "ms");
    common::print_figure("subscribe latency from fsync, p99", Some(p99), "ms");
}

fn main() {
    let adds = common::size(500_000, 2_000) as u64;
    let dir = common::audit_store(adds);
    let payloads = payloads(&dir);
    assert_eq!(payloads.len() as u64, adds * 2);
    let mut criterion = common::criterion();
    bench_replay(&mut criterion, &dir, &payloads);
    follow_latency(common::size(300, 20));
    criterion.final_summary();
}
