//! Builds a store for the command-line figures of `docs/PERFORMANCE.md`
//! §11 (issue 21): `cargo run --release --example lean_store -- DIR [MOVIES]`
//! (default 1,000,000) adds MOVIES movies (about 200 bytes of JSON each),
//! takes 2,000 (a third failed, a third completed, a third left in flight),
//! writes a snapshot, then adds 20 movies and completes 10 more after it:
//! the shape a store has between snapshots, with records the snapshot does
//! not cover.

/// The workload of `examples/memory.rs` (its movies and options), shared.
#[path = "memory.rs"]
#[allow(dead_code, reason = "the example's own main and report are not used here")]
mod memory;

use memory::{movie, options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), movies) = (args.next(), args.next()) else {
        return Err("usage: lean_store DIR [MOVIES]".into());
    };
    let movies: u64 = movies.map_or(Ok(1_000_000), |movies| movies.parse())?;
    let qm = options().open(&dir)?;
    for number in 0..movies {
        qm.add_to_pending(movie(number))?;
    }
    for _ in 0..2_000 {
        let Some(taken) = qm.get_next_pending()? else { break };
        match taken.id().parse::<u64>()? % 3 {
            0 => drop(qm.add_to_failed(taken, "no seeders", None)?),
            1 => drop(qm.add_to_completed(taken)?),
            _ => {}
        }
    }
    qm.flush()?;
    qm.snapshot()?;
    for number in movies..movies + 20 {
        qm.add_to_pending(movie(number))?;
    }
    for _ in 0..10 {
        if let Some(taken) = qm.get_next_pending()? {
            qm.add_to_completed(taken)?;
        }
    }
    qm.close()?;
    println!("{movies} movies in {dir}");
    Ok(())
}
