//! A process that holds a store as the application does, for the
//! held-store figures of `docs/PERFORMANCE.md` (`scripts/performance
//! held`): `cargo run --release --example hold -- DIR [--work]` opens DIR
//! with the default options (`Immediate`, the control socket served),
//! prints `ready`, and with `--work` adds, takes and completes movies in
//! a loop (the application's own work), printing `ops N` every second (N:
//! the queue operations made so far, counted whether or not the loop is
//! waiting). It closes the store and exits when its standard input closes.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use movie_queue::{Movie, QueueManager};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: hold DIR [--work]")?;
    let work = args.next().as_deref() == Some("--work");
    let qm = Arc::new(QueueManager::open(&dir)?);
    println!("ready");
    std::io::stdout().flush()?;
    let done = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let worker = {
        let (qm, done, ops) = (Arc::clone(&qm), Arc::clone(&done), Arc::clone(&ops));
        std::thread::spawn(move || -> movie_queue::Result<()> {
            let mut number = 0_u64;
            while work && !done.load(Ordering::Relaxed) {
                qm.add_to_pending(Movie::new(format!("held-{number}"), "Held", 2026))?;
                number += 1;
                if let Some(taken) = qm.get_next_pending()? {
                    qm.add_to_completed(taken)?;
                }
                ops.fetch_add(3, Ordering::Relaxed);
            }
            Ok(())
        })
    };
    if work {
        let (done, ops) = (Arc::clone(&done), Arc::clone(&ops));
        std::thread::spawn(move || {
            let started = Instant::now();
            for second in 1.. {
                std::thread::sleep((started + Duration::from_secs(second)).saturating_duration_since(Instant::now()));
                if done.load(Ordering::Relaxed) {
                    break;
                }
                println!("ops {}", ops.load(Ordering::Relaxed));
                let _ = std::io::stdout().flush();
            }
        });
    }
    // Until standard input closes.
    for line in std::io::stdin().lock().lines() {
        line?;
    }
    done.store(true, Ordering::Relaxed);
    worker.join().map_err(|_| "the worker panicked")??;
    Arc::try_unwrap(qm).map_err(|_| "the store is still shared")?.close()?;
    Ok(())
}
