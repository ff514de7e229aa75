//! Reading the store into the timeline. `serve` answers at once on any
//! store: it reads for at most [`LOAD_BUDGET`] before it starts to serve,
//! and goes on reading in the background while the pages show what is
//! known so far (the banner says how far it has to go). The timeline is
//! filled in batches of [`BATCH`] records under its lock, so pages are
//! answered between them.

use std::path::Path;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use movie_queue::{QueueManager, RetryPolicy, Seq, Until};

use super::model::Model;

/// How long `serve` reads before it starts to serve.
pub const LOAD_BUDGET: Duration = Duration::from_secs(1);
/// Records applied under one hold of the timeline's lock.
const BATCH: u64 = 4096;

/// Reads the store in `dir` whole (what `serve` does in the background,
/// for a caller that waits).
///
/// # Errors
/// As [`load_into`].
pub fn load(dir: &Path) -> anyhow::Result<(Model, Option<String>)> {
    let slot = RwLock::new(Model::new(RetryPolicy::default().max_retries));
    let damage = load_into(dir, &slot, &std::sync::atomic::AtomicUsize::new(0), &mut |_| {})?;
    Ok((slot.into_inner().unwrap_or_else(PoisonError::into_inner), damage))
}

/// Reads the store in `dir` into `slot`: every record the journal holds,
/// from the state its first record continues (nothing, or after `compact`
/// the state as of the compaction base), `progress` told the last record
/// applied after each batch; between batches, the readers counted in
/// `waiting` get the lock first. Damage part-way does not stop it: the
/// timeline ends before it, and the damage is said (the `Some`), so the
/// dashboard starts on any store it can read some of, and its Health page
/// says the rest.
///
/// # Errors
/// The directory holds no store, or not even its start can be read.
pub fn load_into(
    dir: &Path,
    slot: &RwLock<Model>,
    waiting: &std::sync::atomic::AtomicUsize,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Option<String>> {
    let max_retries = RetryPolicy::default().max_retries;
    let mut events = movie_queue::events(dir, Seq(0))?;
    let head = events.next();
    let first = match &head {
        Some(Ok(record)) => Some(record.seq),
        Some(Err(_)) | None => None,
    };
    let start = match first {
        Some(Seq(1)) => Model::new(max_retries),
        Some(first) => {
            let base = earliest_state(dir, first.previous())?;
            Model::starting_from(max_retries, base.seq.0, base.state)
        }
        // No records (a legacy store never opened by a writer), or the
        // first cannot be read: the state an open would start from.
        None => Model::starting_from(max_retries, 0, QueueManager::open_read_only(dir)?.state()),
    };
    let write = || slot.write().unwrap_or_else(PoisonError::into_inner);
    let mut model = write();
    *model = start;
    let mut head = head;
    let mut applied = 0_u64;
    while let Some(record) = head.take().or_else(|| events.next()) {
        let record = match record {
            Ok(record) => record,
            Err(error) => return Ok(Some(crate::describe(&error))),
        };
        if let Some(skipped) = events.take_skipped() {
            *model = after_skip(dir, max_retries, &skipped)?;
        }
        // Records a compaction base already holds are not the timeline's.
        if record.seq.0 > model.first_seq()
            && let Err(error) = model.apply(&record)
        {
            return Ok(Some(crate::describe(&error)));
        }
        applied += 1;
        if applied.is_multiple_of(BATCH) {
            progress(model.last_seq());
            // Let the pages in: a lock released and taken again at once
            // would keep a waiting reader out until the end.
            drop(model);
            for _ in 0..1_000 {
                if waiting.load(std::sync::atomic::Ordering::Acquire) == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            model = write();
        }
    }
    model.shrink();
    progress(model.last_seq());
    Ok(None)
}

/// The timeline after records the stream stepped over (damaged records
/// `repair` set aside): the events after them do not continue the states
/// before them, so it starts again from the earliest state the store can
/// rebuild after them (the compaction base that holds what they made).
pub fn after_skip(dir: &Path, max_retries: u32, skipped: &movie_queue::Skipped) -> anyhow::Result<Model> {
    let base = earliest_state(dir, skipped.to)?;
    Ok(Model::starting_from(max_retries, base.seq.0, base.state))
}

/// The earliest state the store can rebuild at or after record `from`
/// (after `compact`, the journal keeps records from before its base,
/// which cannot be rebuilt): the states it can rebuild are a range, found
/// by doubling steps, then halving them.
fn earliest_state(dir: &Path, from: Seq) -> anyhow::Result<movie_queue::Replayed> {
    let replay = |seq: u64| movie_queue::replay(dir, Until::Seq(Seq(seq)));
    let refusal = match replay(from.0) {
        Ok(replayed) => return Ok(replayed),
        Err(error) => error,
    };
    // The steps stop at the journal's last record: past it nothing can be
    // rebuilt, and the compaction base may be exactly there.
    let last = movie_queue::JournalEnd::new(dir, Seq(0))?.last_seq()?.0;
    let (mut refused, mut step) = (from.0, 1u64);
    let (mut found, mut replayed) = loop {
        let seq = refused.saturating_add(step).min(last);
        match replay(seq) {
            Ok(replayed) => break (seq, replayed),
            Err(_) if seq >= last => return Err(refusal.into()),
            Err(_) => (refused, step) = (seq, step * 2),
        }
    };
    while found - refused > 1 {
        let middle = refused + (found - refused) / 2;
        match replay(middle) {
            Ok(better) => (found, replayed) = (middle, better),
            Err(_) => refused = middle,
        }
    }
    Ok(replayed)
}
