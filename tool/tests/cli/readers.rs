//! Reader processes cannot be killed by a writer: `movie-queue stats`,
//! `list`, `log` and `verify` run in a loop in other processes while this
//! one appends torn tails to the journal, writers (`movie-queue add`) cut
//! them, a record is damaged and `movie-queue repair` sets the rest aside.
//! Every reader exits with a code — 0, or 1 with a message — never by a
//! signal (a file that shrinks under a reader is only a shorter file: files
//! are read into owned buffers, never mapped) and never by a panic; every
//! state a reader prints is a prefix of what was added, and holds at least
//! what was acknowledged before it started unless a repair ran meanwhile.
//! The same with reader threads is in `integration::hostile::readers`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::support::cli::{Run, mq};
use crate::support::common::scratch;
use crate::support::durability::layout;

/// What the writer side publishes to the readers.
#[derive(Default)]
struct Progress {
    /// Movies `0..acknowledged` were added and acknowledged (exit 0).
    acknowledged: AtomicUsize,
    /// Bumped before each damage-and-repair (which may cut acknowledged
    /// movies) and again once `acknowledged` is true again: a reader that
    /// saw it odd or changing checks only the prefix.
    losses: AtomicUsize,
    stop: AtomicBool,
}

const READS: [&[&str]; 4] = [
    &["list", "pending", "--json"],
    &["stats", "--json"],
    &["log", "--json"],
    &["verify"],
];

/// Checks one reader run: an exit code, never a signal or a panic; on
/// success, what it printed is a prefix holding at least `floor` movies.
fn check_read(args: &[&str], run: &Run, floor: Option<usize>) {
    let context = format!("movie-queue {}: {run:#?}", args.join(" "));
    assert!(run.code.is_some(), "killed by a signal: {context}");
    assert!(!run.stderr.contains("panicked"), "a panic: {context}");
    match run.code {
        Some(0) => {}
        // `verify`: the store opens, but a torn tail (say) is there.
        Some(3) if args[0] == "verify" => {
            assert!(run.stderr.contains("the store opens, but it is damaged"), "{context}");
            return;
        }
        Some(1) => {
            assert!(
                run.stderr.starts_with("movie-queue: "),
                "an error without its message: {context}"
            );
            return;
        }
        Some(_) => panic!("an unexpected exit code: {context}"),
        None => unreachable!(),
    }
    let held = match args[0] {
        "list" => {
            let ids: Vec<String> = run
                .json()
                .as_array()
                .expect("a list")
                .iter()
                .map(|e| e["id"].as_str().expect("an id").to_owned())
                .collect();
            for (index, id) in ids.iter().enumerate() {
                assert_eq!(id, &index.to_string(), "not a prefix of what was added: {context}");
            }
            ids.len()
        }
        "stats" => usize::try_from(run.json()["pending"].as_u64().expect("a count")).expect("fits"),
        "log" => {
            // History a snapshot covers may have a damaged record `log`
            // skips, so the log is only checked for order here.
            let seqs: Vec<u64> = run
                .json_lines()
                .iter()
                .map(|event| event["seq"].as_u64().expect("a seq"))
                .collect();
            assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "out of order: {context}");
            return;
        }
        _ => return,
    };
    if let Some(floor) = floor {
        assert!(
            held >= floor,
            "{held} movies, {floor} were acknowledged before the read began: {context}"
        );
    }
}

fn reader(dir: PathBuf, progress: Arc<Progress>, first: usize) -> usize {
    let mut runs = 0;
    let mut which = first;
    while !progress.stop.load(Ordering::SeqCst) {
        let args = READS[which % READS.len()];
        which += 1;
        let losses = progress.losses.load(Ordering::SeqCst);
        let acknowledged = progress.acknowledged.load(Ordering::SeqCst);
        let run = mq(&dir, args);
        let floor =
            (losses.is_multiple_of(2) && progress.losses.load(Ordering::SeqCst) == losses).then_some(acknowledged);
        check_read(args, &run, floor);
        runs += 1;
    }
    runs
}

fn torn_tail(dir: &Path) {
    let segment = layout(dir).pop().expect("a segment");
    let mut file = OpenOptions::new().append(true).open(segment.path).expect("open");
    file.write_all(&[0xa5; 53]).expect("a torn tail");
}

/// Flips one byte in the middle of the last segment's records and removes
/// the snapshot's manifest, so that no snapshot covers the damage: stores
/// refuse to open until `repair` cuts the journal there.
fn damage_a_record(dir: &Path) {
    std::fs::remove_file(dir.join("queue_snapshot.json")).expect("remove the manifest");
    let segment = layout(dir).pop().expect("a segment");
    let at = segment
        .records
        .get(segment.records.len() / 2)
        .map_or(segment.len - 1, |record| (record.start + record.end) / 2);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&segment.path)
        .expect("open");
    let mut byte = [0_u8];
    file.read_exact_at(&mut byte, at as u64).expect("read");
    file.write_all_at(&[byte[0] ^ 0x40], at as u64).expect("write");
}

fn add(dir: &Path, id: usize) {
    let id = id.to_string();
    mq(dir, &["add", "--id", &id, "--title", "Movie", "--year", "2020"]).ok();
}

#[test]
fn reader_processes_survive_writers_cutting_tails_and_repairs_under_them() {
    let dir = scratch();
    add(dir.path(), 0);
    let progress = Arc::new(Progress::default());
    progress.acknowledged.store(1, Ordering::SeqCst);
    let readers: Vec<_> = (0..3)
        .map(|first| {
            let dir = dir.path().to_path_buf();
            let progress = Arc::clone(&progress);
            thread::spawn(move || reader(dir, progress, first))
        })
        .collect();

    let mut next = 1;
    for round in 0..24 {
        for _ in 0..3 {
            add(dir.path(), next);
            next += 1;
            progress.acknowledged.store(next, Ordering::SeqCst);
        }
        if round % 8 == 7 {
            progress.losses.fetch_add(1, Ordering::SeqCst);
            damage_a_record(dir.path());
            thread::sleep(Duration::from_millis(100));
            mq(dir.path(), &["repair"]).ok();
            let pending = mq(dir.path(), &["stats", "--json"]).ok().json()["pending"]
                .as_u64()
                .expect("a count");
            next = usize::try_from(pending).expect("fits");
            progress.acknowledged.store(next, Ordering::SeqCst);
            progress.losses.fetch_add(1, Ordering::SeqCst);
        }
        torn_tail(dir.path());
    }
    progress.stop.store(true, Ordering::SeqCst);
    let runs: usize = readers
        .into_iter()
        .map(|reader| reader.join().expect("a reader thread"))
        .sum();
    assert!(runs >= READS.len(), "the readers ran ({runs} runs)");
    // The last torn tail is still there: the store opens, damaged (exit 3).
    let verify = mq(dir.path(), &["verify"]).fails_with(3);
    assert!(verify.stdout.contains("torn tail"), "{verify:?}");
}
