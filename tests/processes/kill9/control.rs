//! kill -9 of a holder in the middle of a stream of control-socket
//! mutations: every change the socket acknowledged is in the reopened
//! store; a request the kill cut is reported as of unknown outcome, never
//! as done; the killed holder's socket is never trusted, and the next
//! holder replaces it.
//!
//! How: this test binary re-executes itself as a holder (the test
//! `control_holder_child`, given the store in `MOVIE_QUEUE_CONTROL_HOLDER`;
//! every other round in `Batched` mode, whose socket answers must still
//! wait for durability), which runs a workload of its own (adding and
//! completing `h*` movies) and serves its control socket. Two client
//! threads of the parent add `c*` movies through `Control` and complete
//! every other one, noting each acknowledgement; the parent kills the
//! holder with SIGKILL after a random 100–400 ms, and then checks the
//! oracle on the reopened store: every acknowledged add is there, every
//! acknowledged completion is completed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::durability::{movie, scratch};
use movie_queue::{Control, Durability, Error, Place, QueueManager};

const HOLDER_ENV: &str = "MOVIE_QUEUE_CONTROL_HOLDER";
const ROUND_ENV: &str = "MOVIE_QUEUE_CONTROL_ROUND";

#[test]
#[ignore = "the holder process of the control kill -9 test; does nothing unless MOVIE_QUEUE_CONTROL_HOLDER is set"]
fn control_holder_child() {
    let Some(dir) = std::env::var_os(HOLDER_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV)
        .ok()
        .and_then(|round| round.parse().ok())
        .unwrap_or(0);
    let durability = if round.is_multiple_of(2) {
        Durability::Immediate
    } else {
        Durability::Batched {
            max_delay: Duration::from_millis(50),
        }
    };
    let qm = QueueManager::options()
        .durability(durability)
        .segment_bytes_max(16 * 1024)
        .snapshot_every_events(200)
        .open(PathBuf::from(dir))
        .expect("the holder opens the store");
    println!("ready");
    let started = Instant::now();
    let mut n = 0_u64;
    while started.elapsed() < Duration::from_secs(30) {
        qm.add_to_pending(movie(&format!("h{round}-{n}"))).expect("add");
        n += 1;
        if let Some(taken) = qm.get_next_pending().expect("take") {
            qm.add_to_completed(taken).expect("complete");
        }
    }
}

struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

fn start_holder(dir: &Path, round: u64) -> Holder {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            &crate::support::common::test_name(module_path!(), "control_holder_child"),
            "--nocapture",
            "--ignored",
            "--test-threads",
            "1",
        ])
        .env(HOLDER_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the holder");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    // The test harness speaks first ("running 1 test").
    let ready = lines
        .by_ref()
        .take(10)
        .any(|line| line.is_ok_and(|line| line.contains("ready")));
    assert!(ready, "the holder never said it was ready");
    Holder(child)
}

/// What the clients were told: the highest step acknowledged for each
/// movie (1 added, 2 completed), and every error with whether it came
/// after the kill.
#[derive(Default)]
struct Told {
    acknowledged: BTreeMap<String, u8>,
    errors: Vec<(bool, String)>,
}

fn client(dir: &Path, round: u64, thread: usize, killed: &AtomicBool, told: &Mutex<Told>) {
    let note = |error: Error| {
        told.lock()
            .unwrap()
            .errors
            .push((killed.load(Ordering::SeqCst), error.to_string()));
    };
    let mut control = match Control::connect(dir) {
        Ok(control) => control,
        Err(error) => return note(error),
    };
    for n in 0_u64.. {
        let id = format!("c{round}-{thread}-{n}");
        let added = control.add_many_to_pending(&[movie(&id)]);
        let step = match added {
            Ok(1) => 1,
            Ok(other) => panic!("adding a new movie added {other}"),
            Err(error) => return note(error),
        };
        told.lock().unwrap().acknowledged.insert(id.clone(), step);
        if n.is_multiple_of(2) {
            match control.add_to_completed(&movie(&id)) {
                Ok(_) => {
                    told.lock().unwrap().acknowledged.insert(id, 2);
                }
                Err(error) => return note(error),
            }
        }
    }
}

fn random_millis(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    100 + *seed % 300
}

fn run_round(dir: &Path, round: u64, seed: &mut u64) -> (usize, usize) {
    let holder = start_holder(dir, round);
    let killed = Arc::new(AtomicBool::new(false));
    let told = Arc::new(Mutex::new(Told::default()));
    let clients: Vec<_> = (0..2)
        .map(|thread| {
            let (dir, killed, told) = (dir.to_path_buf(), Arc::clone(&killed), Arc::clone(&told));
            std::thread::spawn(move || client(&dir, round, thread, &killed, &told))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(random_millis(seed)));
    killed.store(true, Ordering::SeqCst);
    drop(holder);
    for client in clients {
        client.join().expect("a client panicked");
    }
    let told = std::mem::take(&mut *told.lock().unwrap());
    for (after_kill, error) in &told.errors {
        assert!(after_kill, "round {round}: an error while the holder lived: {error}");
        assert!(
            error.contains("whether it was carried out is unknown") || error.contains("does not answer"),
            "round {round}: a cut request is of unknown outcome, never done: {error}"
        );
    }
    // The killed holder's socket is still there, and not trusted.
    if dir.join("control.sock").exists() {
        let refused = Control::connect(dir).unwrap_err();
        assert!(matches!(refused, Error::ControlUnavailable { .. }), "{refused}");
    }
    let reopened = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .control_socket(false)
        .open(dir)
        .expect("the store reopens after the kill");
    for (id, step) in &told.acknowledged {
        let place = reopened.get(id.as_str()).map(|(place, _)| place);
        match step {
            2 => assert_eq!(
                place,
                Some(Place::Completed),
                "round {round}: {id} was acknowledged completed"
            ),
            _ => assert!(
                place.is_some(),
                "round {round}: {id} was acknowledged added and is gone"
            ),
        }
    }
    reopened.close().expect("close");
    (told.acknowledged.len(), told.errors.len())
}

#[test]
fn control_kill9_loses_no_acknowledged_change() {
    let dir = scratch();
    let mut seed = std::env::var("MOVIE_QUEUE_KILL9_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64 | 1)
        });
    println!("seed {seed} (MOVIE_QUEUE_KILL9_SEED reruns it)");
    let mut acknowledged = 0;
    for round in 0..6 {
        let (acks, _) = run_round(dir.path(), round, &mut seed);
        acknowledged += acks;
    }
    assert!(acknowledged > 0, "the clients were never answered");
    let report = movie_queue::verify(dir.path()).expect("verify");
    assert!(report.problems.is_empty(), "{report:?}");
}
