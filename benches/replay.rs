//! Replay speed: opening a store of 1,000,000 journal events with no
//! snapshot (500,000 adds, then 500,000 takes) against plain serde_json
//! deserialization of the same payloads into the same event type
//! (`movie_queue::testing::decode_payload`).
//!
//! The store is the audit bench's, built once (Batched, automatic
//! snapshots off, the final snapshot's manifest and files removed so open
//! must replay everything; `common::audit_store`) and cached in
//! `target/bench-data/audit-1000000/`; delete that directory to rebuild
//! it. It is opened read-only, so it stays as built. Target (issue 6): open ≥ 50% of the decode speed.
//! Run: `cargo bench --bench replay`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use movie_queue::testing::JOURNAL_DIR;
use movie_queue::testing::list_segments;
use movie_queue::testing::{RealStorage, Storage};
use movie_queue::testing::{SEGMENT_HEADER_BYTES, decode_record};
use movie_queue::{QueueManager, Seq};

const GROUP: &str = "replay";

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

fn bench(criterion: &mut Criterion, dir: &Path, payloads: &[Vec<u8>], events: u64) {
    let bytes: u64 = payloads.iter().map(|payload| payload.len() as u64).sum();
    let mut group = criterion.benchmark_group(GROUP);
    group
        .throughput(Throughput::Bytes(bytes))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(15));
    group.bench_function("open_read_only", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let start = Instant::now();
                let manager = QueueManager::open_read_only(dir).expect("open");
                total += start.elapsed();
                assert_eq!(manager.last_seq(), Seq(events));
                drop(manager);
            }
            total
        });
    });
    group.bench_function("decode_payloads", |bencher| {
        bencher.iter(|| {
            for payload in payloads {
                let decoded = movie_queue::testing::decode_payload(payload);
                assert!(std::hint::black_box(decoded).is_ok());
            }
        });
    });
    group.finish();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let per_second = |function| common::median_ns(GROUP, function).map(|nanos| 1e9 / nanos);
    for (name, function) in [
        ("open_read_only", "open_read_only"),
        ("serde_json decode", "decode_payloads"),
    ] {
        let rate = per_second(function);
        common::print_figure(
            &format!("{name} events/s"),
            rate.map(|rate| rate * events as f64),
            "events/s",
        );
        common::print_figure(&format!("{name} MiB/s"), rate.map(|rate| rate * mib), "MiB/s");
    }
    common::print_figure("payload bytes", Some(bytes as f64), "bytes");
    common::print_ratio(
        "open speed / decode speed",
        per_second("open_read_only")
            .zip(per_second("decode_payloads"))
            .map(|(open, decode)| open / decode),
        ">= 0.5",
        |ratio| ratio >= 0.5,
    );
}

fn main() {
    let adds = common::size(500_000, 2_000) as u64;
    let dir = common::audit_store(adds);
    let payloads = payloads(&dir);
    assert_eq!(payloads.len() as u64, adds * 2);
    let mut criterion = common::criterion();
    bench(&mut criterion, &dir, &payloads, adds * 2);
    criterion.final_summary();
}
