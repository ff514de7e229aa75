//! The writer's linger: adaptive group commit.
//!
//! In `Immediate` mode: When a batch's fsync returns, the
//! events queued meanwhile are ready, but the callers the batch covered
//! have yet to be woken and to queue their next ones: taking only what is
//! queued would split the callers into groups that alternate, each paying
//! its own fsync. So the writer remembers how many events the last round
//! saw (its batch plus what was queued when its fsync returned: with one
//! event outstanding per caller, the number of callers) and, while fewer
//! are queued, lingers until that many have arrived or as long as the last
//! fsync took (at most [`LINGER_MAX`]). A lone caller is never delayed (its
//! rounds see one event), nor is an explicit flush. Lingering only delays a
//! write: every event is still acknowledged after the fsync that covers it.

use std::sync::atomic::Ordering;
use std::sync::atomic::fence;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::{Command, Durability, Shared};

/// The longest the writer lingers for more events before a batch.
pub(super) const LINGER_MAX: Duration = Duration::from_millis(1);

/// How long a lingering writer polls the channel, yielding its core to the
/// callers, before it sleeps until the last expected event wakes it. The
/// callers a batch released usually queue their next events within this
/// (waking a sleeping writer costs a few tens of microseconds more).
const LINGER_SPIN: Duration = Duration::from_micros(100);

/// Why the writer stopped lingering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LingerEnd {
    /// As many commands as it waited for are queued.
    Arrived,
    /// A flush is queued: it is written at once.
    Flush,
    /// The writer is being closed.
    Stopped,
    /// Its time ran out.
    Deadline,
}

/// `Shared::linger_for` while the writer polls (senders need not wake it).
pub(super) const POLLING: usize = usize::MAX;

/// Whether the writer lingers before taking its next batch, and for what:
/// only in `Immediate` mode, and only if the last round saw more than one
/// event (`expected`, already capped at the batch size). Returns how many
/// queued commands to wait for and for how long: as long as the last fsync
/// took (waiting longer would cost more than another fsync), at most
/// [`LINGER_MAX`].
pub(super) fn linger_plan(durability: Durability, expected: usize, last_sync: Duration) -> Option<(usize, Duration)> {
    if durability != Durability::Immediate || expected <= 1 {
        return None;
    }
    let budget = last_sync.min(LINGER_MAX);
    (!budget.is_zero()).then_some((expected, budget))
}

/// Waits until `wanted` commands are queued, a flush is asked for, the
/// writer is stopped, or `deadline`: first polling (for [`LINGER_SPIN`]),
/// then asleep until the sender of the last expected command wakes it
/// (see [`Shared::nudge`]). Says which ended it.
pub(super) fn linger(receiver: &Receiver<Command>, shared: &Shared, wanted: usize, deadline: Instant) -> LingerEnd {
    let poll_until = (Instant::now() + LINGER_SPIN).min(deadline);
    shared.linger_for.store(POLLING, Ordering::SeqCst);
    let end = loop {
        if shared.flushes.load(Ordering::SeqCst) != 0 {
            break LingerEnd::Flush;
        }
        if receiver.len() >= wanted {
            break LingerEnd::Arrived;
        }
        let now = Instant::now();
        if now >= deadline {
            break LingerEnd::Deadline;
        }
        match shared.linger_for.load(Ordering::SeqCst) {
            // Woken: by the last expected command (queued before it
            // woke us, so the channel shows it now), a flush or `stop`.
            0 if receiver.len() >= wanted => break LingerEnd::Arrived,
            0 if shared.flushes.load(Ordering::SeqCst) != 0 => break LingerEnd::Flush,
            0 => break LingerEnd::Stopped,
            POLLING if now < poll_until => std::thread::yield_now(),
            POLLING => {
                // From now on, the sender of the last expected command
                // wakes the writer; a failed exchange means it was
                // woken meanwhile, which the next turn reports.
                let _ = shared
                    .linger_for
                    .compare_exchange(POLLING, wanted, Ordering::SeqCst, Ordering::SeqCst);
                // Pairs with the fence in `Shared::nudge`; the loop looks
                // at the channel again before sleeping.
                fence(Ordering::SeqCst);
            }
            _ => std::thread::park_timeout(deadline - now),
        }
    };
    shared.linger_for.store(0, Ordering::SeqCst);
    end
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::thread;
    use std::time::{Duration, Instant};

    use crossbeam_channel::{Receiver, Sender};

    use super::super::{Command, Shared};
    use super::{LINGER_MAX, LingerEnd, linger, linger_plan};
    use crate::journal::writer::Durability;
    use crate::seq::Seq;

    /// A channel like the writer's and the state it shares with senders.
    fn channel() -> (Sender<Command>, Receiver<Command>, Arc<Shared>) {
        let (sender, receiver) = crossbeam_channel::bounded(16);
        (sender, receiver, Arc::new(Shared::default()))
    }

    /// Runs `linger` for `wanted` commands on a thread registered as the
    /// writer, with a deadline a minute away: an end before it was a
    /// wake-up (the thread reports `Deadline` for an end after it, whatever
    /// ended it).
    fn lingering(receiver: Receiver<Command>, shared: &Arc<Shared>, wanted: usize) -> thread::JoinHandle<LingerEnd> {
        let shared = Arc::clone(shared);
        thread::spawn(move || {
            shared.writer.get_or_init(thread::current);
            let deadline = Instant::now() + Duration::from_secs(60);
            let end = linger(&receiver, &shared, wanted, deadline);
            if Instant::now() < deadline {
                end
            } else {
                LingerEnd::Deadline
            }
        })
    }

    /// Waits until the lingering writer has stopped polling and sleeps,
    /// waiting to be woken for `wanted` commands (or has ended, wrongly).
    fn until_asleep(shared: &Shared, wanted: usize, writer: &thread::JoinHandle<LingerEnd>) {
        while shared.linger_for.load(Ordering::SeqCst) != wanted && !writer.is_finished() {
            thread::yield_now();
        }
    }

    /// Queues an append as `JournalWriter::send` does.
    fn send(sender: &Sender<Command>, shared: &Shared, seq: u64) {
        sender
            .send(Command::Append {
                seq: Seq(seq),
                payload: b"{}".to_vec(),
            })
            .expect("send");
        shared.nudge(|| sender.len());
    }

    #[test]
    fn lingers_only_for_concurrent_immediate_callers_and_at_most_linger_max() {
        let fsync = Duration::from_micros(200);
        assert_eq!(linger_plan(Durability::Immediate, 1, fsync), None, "a lone caller");
        assert_eq!(linger_plan(Durability::Immediate, 0, fsync), None, "a flush alone");
        let batched = Durability::Batched {
            max_delay: Duration::from_millis(5),
        };
        assert_eq!(linger_plan(batched, 8, fsync), None, "Batched waits its own way");
        assert_eq!(linger_plan(Durability::Immediate, 8, fsync), Some((8, fsync)));
        assert_eq!(
            linger_plan(Durability::Immediate, 8, Duration::from_secs(1)),
            Some((8, LINGER_MAX)),
            "a slow disk does not make the linger longer than LINGER_MAX"
        );
        assert_eq!(
            linger_plan(Durability::Immediate, 8, Duration::ZERO),
            None,
            "no fsync yet"
        );
    }

    #[test]
    fn a_sleeping_linger_is_woken_by_the_last_expected_command() {
        let (sender, receiver, shared) = channel();
        let writer = lingering(receiver, &shared, 3);
        until_asleep(&shared, 3, &writer);
        for seq in 1..=3 {
            send(&sender, &shared, seq);
        }
        assert_eq!(writer.join().expect("writer"), LingerEnd::Arrived);
        assert_eq!(shared.linger_for.load(Ordering::SeqCst), 0, "no linger left behind");
    }

    #[test]
    fn commands_already_queued_end_a_linger_at_once() {
        let (sender, receiver, shared) = channel();
        send(&sender, &shared, 1);
        send(&sender, &shared, 2);
        let writer = lingering(receiver, &shared, 2);
        assert_eq!(writer.join().expect("writer"), LingerEnd::Arrived);
    }

    #[test]
    fn a_flush_ends_a_sleeping_linger() {
        let (sender, receiver, shared) = channel();
        let writer = lingering(receiver, &shared, 8);
        until_asleep(&shared, 8, &writer);
        send(&sender, &shared, 1);
        shared.queue_flush(&sender).expect("flush queued");
        assert_eq!(writer.join().expect("writer"), LingerEnd::Flush);
    }

    #[test]
    fn closing_ends_a_sleeping_linger() {
        let (_sender, receiver, shared) = channel();
        let writer = lingering(receiver, &shared, 8);
        until_asleep(&shared, 8, &writer);
        shared.stop_linger();
        assert_eq!(writer.join().expect("writer"), LingerEnd::Stopped);
    }

    #[test]
    fn a_linger_nobody_joins_ends_at_its_deadline() {
        let (_sender, receiver, shared) = channel();
        let deadline = Instant::now() + Duration::from_millis(2);
        assert_eq!(linger(&receiver, &shared, 2, deadline), LingerEnd::Deadline);
        assert!(Instant::now() >= deadline);
    }
}
