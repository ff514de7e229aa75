//! Thread safety: 8 threads × 1,000 mixed operations on overlapping ids.
//! Afterwards no movie is in two places, the counts add up, the state equals
//! a full replay of the journal, and a reopen restores it exactly.

use crate::support::common;

use std::sync::{Arc, Barrier};

use common::{movie, scratch};
use movie_queue::{Durability, Place, QueueManager};

const THREADS: usize = 8;
const OPERATIONS: usize = 1_000;
const IDS: usize = 200;

fn run(qm: &QueueManager, thread: usize) {
    let mut seed = 0x9e37_79b9_u64 ^ (thread as u64 * 7919);
    for step in 0..OPERATIONS {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let id = format!("m{}", (seed >> 33) as usize % IDS);
        match (seed >> 20) % 8 {
            0 | 1 => {
                qm.add_to_pending(movie(&id)).unwrap();
            }
            2 => {
                if let Some(taken) = qm.get_next_pending().unwrap() {
                    if step % 3 == 0 {
                        qm.add_to_failed(taken, "boom", Some(0.0)).unwrap();
                    } else {
                        qm.add_to_completed(taken).unwrap();
                    }
                }
            }
            3 => {
                qm.add_to_failed(movie(&id), "e", Some(0.0)).unwrap();
            }
            4 => {
                for entry in qm.get_movies_ready_for_retry(3) {
                    qm.move_failed_to_pending(&entry).unwrap();
                }
            }
            5 => {
                qm.reset_failed_movie(id.as_str()).unwrap();
            }
            6 => {
                qm.add_to_completed(movie(&id)).unwrap();
            }
            _ => {
                let stats = qm.get_statistics();
                assert!(stats.permanent_failures <= stats.failed);
            }
        }
    }
}

#[test]
fn eight_threads_of_mixed_operations_leave_one_consistent_state() {
    let dir = scratch();
    let qm = Arc::new(
        QueueManager::options()
            .durability(Durability::Batched {
                max_delay: std::time::Duration::from_millis(2),
            })
            .snapshot_every_events(500)
            .open(dir.path())
            .unwrap(),
    );
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let qm = Arc::clone(&qm);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                run(&qm, thread);
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("a worker panicked");
    }
    qm.flush().unwrap();
    let live = qm.state();
    assert!(live.indexes_agree());
    let mut seen = std::collections::HashSet::new();
    for place in Place::ALL {
        for entry in qm.list(place) {
            assert!(seen.insert(entry.id().to_owned()), "{} is in two places", entry.id());
        }
    }
    let stats = qm.get_statistics();
    assert_eq!(
        seen.len(),
        stats.pending + stats.in_flight + stats.failed + stats.completed
    );
    common::assert_replay_equals(dir.path(), &live);
    let qm = Arc::into_inner(qm).expect("threads are done");
    qm.close().unwrap();
    let reopened = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(dir.path())
        .unwrap();
    assert!(reopened.state() == live, "reopen differs from the live state");
}
