//! The event stream: the journal's events from a sequence number on, read
//! lazily (one record at a time, only bytes not read before), either to
//! the journal's end or following it as it grows. This is the contract
//! for leaving one machine: every event once, in order, resumable by
//! `seq` (see `docs/FORMAT.md`, "The event stream").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{EventRecord, PayloadError, decode_payload};
use crate::journal::follow::{Follower, OwnedRecord};
use crate::journal::writer::DurableWatch;
use crate::layout::Layout;
use crate::seq::{SEQ_MAX, Seq};
use crate::storage::{RealStorage, Storage};

/// How long a follower in another process than the writer sleeps before it
/// looks for new bytes again.
const POLL: Duration = Duration::from_millis(5);

/// How long a subscription waits on the writer before it checks again
/// that the writer is still there.
const WAIT: Duration = Duration::from_millis(200);

/// The journal's events from a sequence number on, in order, read lazily:
/// an iterator of `Result<EventRecord>` (see [`crate::QueueManager::events_from`],
/// [`crate::QueueManager::subscribe`], [`events`] and [`follow`]).
///
/// An item is `Err` (and the last one) where the next record due cannot
/// be read: damage with valid records after it, a gap, records compacted
/// away before they were read. [`Events::next_seq`] says where a consumer
/// that stopped would resume.
#[derive(Debug)]
pub struct Events {
    follower: Follower,
    storage: Arc<dyn Storage>,
    journal_dir: PathBuf,
    mode: Mode,
    done: bool,
    /// Records stepped over before the next item, until taken, oldest
    /// first (a stream that hands on only some records may step over
    /// several holes before its next item).
    skipped: std::collections::VecDeque<Skipped>,
    /// Only the events of this movie (its id, and the id as a JSON string,
    /// which a record's payload must hold to be decoded at all; see
    /// [`Events::concerning`]).
    concerning: Option<(String, memchr::memmem::Finder<'static>)>,
    /// Where it reads, shared with its manager (`compact` keeps what a
    /// subscription has yet to read).
    position: Option<Arc<AtomicU64>>,
}

/// Records the event stream stepped over, said in-band: an item after
/// them comes only once [`Events::take_skipped`] could tell of them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skipped {
    /// The first record skipped.
    pub from: Seq,
    /// The last record skipped.
    pub to: Seq,
    /// Why they are not in the stream.
    pub reason: SkipReason,
    /// Where their bytes were copied (a `*.broken` file in `journal/`), if
    /// anywhere.
    pub set_aside: Option<PathBuf>,
}

/// Why records are not in the event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Their bytes were damaged; `repair` copied them aside and recorded
    /// the hole (`journal/holes`). The checkpoint covers the state they made.
    Damaged,
    /// Recovery or `repair` cut them (set aside in `*.broken` files) under
    /// a compaction base that holds the state they made.
    SetAsideUnderBase,
}

impl SkipReason {
    /// Its name in the JSON stream: `damaged` or `set_aside_under_base`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::Damaged => "damaged",
            SkipReason::SetAsideUnderBase => "set_aside_under_base",
        }
    }
}

#[derive(Debug)]
enum Mode {
    /// To the end as it is (no record after `limit`).
    ToEnd { limit: Seq },
    /// Following a writer in this process: records once durable.
    Subscribed { watch: DurableWatch },
    /// Following whatever is on disk (a writer in another process), polling.
    Polling,
}

impl Events {
    pub(crate) fn to_end(storage: Arc<dyn Storage>, dir: &Path, from: Seq, limit: Seq) -> Self {
        Self::new(storage, dir, from, Mode::ToEnd { limit })
    }

    /// Where the journal ends, once the stream has ended without an error:
    /// the last segment, its first record and the offset after its last
    /// record, when no bytes follow it (see [`Follower::clean_end`]).
    pub(crate) fn clean_end(&self) -> Option<(PathBuf, Seq, u64)> {
        self.follower.clean_end()
    }

    /// See [`Follower::empty_end`].
    pub(crate) fn empty_end(&self) -> Option<Seq> {
        self.follower.empty_end()
    }

    pub(crate) fn subscribed(storage: Arc<dyn Storage>, dir: &Path, from: Seq, watch: DurableWatch) -> Self {
        Self::new(storage, dir, from, Mode::Subscribed { watch })
    }

    pub(crate) fn polling(storage: Arc<dyn Storage>, dir: &Path, from: Seq) -> Self {
        Self::new(storage, dir, from, Mode::Polling)
    }

    fn new(storage: Arc<dyn Storage>, dir: &Path, from: Seq, mode: Mode) -> Self {
        let journal_dir = Layout::new(dir).journal();
        Events {
            follower: Follower::new(Arc::clone(&storage), &journal_dir, from),
            storage,
            journal_dir,
            mode,
            done: false,
            skipped: std::collections::VecDeque::new(),
            concerning: None,
            position: None,
        }
    }

    /// The records it stepped over just before the item it yielded last
    /// (records `repair` set aside as damaged, or cut under the compaction
    /// base), once: a consumer that asks after every item learns of every
    /// hole where it is, and can tell "skipped" from "never existed". A
    /// stream [`Events::concerning`] one movie may have stepped over
    /// several before an item (or after its last): ask until `None`.
    pub fn take_skipped(&mut self) -> Option<Skipped> {
        self.skipped.pop_front()
    }

    /// Only the events concerning the movie `id` (those whose
    /// [`crate::Event::concerns`] it): a record whose payload does not
    /// hold the id as a JSON string is passed over without being decoded,
    /// and a sealed segment whose id filter (`journal/ids`) says none of
    /// its records names the movie is not read, so finding one movie's
    /// history reads only the segments that may hold it and decodes only
    /// its records. Holes are still told, in order (a segment with a hole
    /// is always read).
    #[must_use]
    pub fn concerning(mut self, id: &str) -> Self {
        // A string always serializes.
        let quoted = serde_json::to_vec(id).unwrap_or_default();
        self.concerning = Some((id.to_owned(), memchr::memmem::Finder::new(&quoted).into_owned()));
        // The sealed segments whose id filter (`journal/ids`) says no
        // record there names the movie are not read at all.
        let spared = crate::journal::ids::read(self.storage.as_ref(), &self.journal_dir)
            .into_iter()
            .filter(|filter| !filter.may_hold(id))
            .map(|filter| (filter.first_seq, filter.last_seq))
            .collect();
        self.follower.spare(spared);
        self
    }

    /// Publishes where it reads (the next record due) to `position`.
    pub(crate) fn sharing_position(mut self, position: Arc<AtomicU64>) -> Self {
        position.store(self.next_seq().0, Ordering::Release);
        self.position = Some(position);
        self
    }

    /// The sequence number of the next event it will yield: where a
    /// consumer resumes (`follow(dir, next_seq)`) after it stops here
    /// (`Seq(0)` before a stream from the first record has read one).
    #[must_use]
    pub fn next_seq(&self) -> Seq {
        self.follower.next_seq()
    }

    /// The highest record it may hand on now, and whether to wait for
    /// more once it has (`None`: the writer is gone and everything it
    /// wrote is durable: read to the end).
    fn limit(&self) -> (Seq, bool) {
        match &self.mode {
            Mode::ToEnd { limit } => (*limit, false),
            Mode::Subscribed { watch } => match watch.synced_through() {
                Some(synced) => (synced, true),
                None => (Seq(SEQ_MAX), false),
            },
            Mode::Polling => (Seq(SEQ_MAX), true),
        }
    }

    /// Are records `expected..found` absent from the journal because the
    /// compaction base covers them? Recovery that keeps a snapshot ahead
    /// of a journal cut below it records that snapshot as the base, so the
    /// journal goes on at the record after the base: those records are
    /// part of the state, but no longer events anyone can read.
    fn base_covers(&self, error: &Error) -> Option<Seq> {
        let Error::SequenceGap { expected, found, .. } = *error else {
            return None;
        };
        let path = self.journal_dir.join(crate::layout::BASE_FILE);
        let base = crate::snapshot::base::sealed_seq(self.storage.as_ref(), &path)?;
        (expected < found && found <= base.0.saturating_add(1)).then_some(Seq(found))
    }

    /// Waits for more after finding nothing new.
    fn wait(&self) -> Result<()> {
        if let Mode::Subscribed { watch } = &self.mode {
            watch.wait_beyond(self.next_seq().previous(), WAIT).map(drop)
        } else {
            std::thread::sleep(POLL);
            Ok(())
        }
    }
}

impl Iterator for Events {
    type Item = Result<EventRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let (limit, waits) = self.limit();
            // Only records that hold the id are copied out and decoded.
            let keep = self
                .concerning
                .as_ref()
                .map(|(_, finder)| move |payload: &[u8]| finder.find(payload).is_some());
            let polled = self.follower.poll_where(
                limit,
                keep.as_ref().map(|keep| keep as crate::journal::follow::Keep<'_>),
            );
            while let Some(hole) = self.follower.take_skipped() {
                self.skipped.push_back(Skipped {
                    from: hole.first,
                    to: hole.last,
                    reason: SkipReason::Damaged,
                    set_aside: hole.set_aside.map(|name| self.journal_dir.join(name)),
                });
            }
            let step = match polled {
                Ok(Some(record)) => {
                    if let Some(position) = &self.position {
                        position.store(self.follower.next_seq().0, Ordering::Release);
                    }
                    let decoded = decode(&record).inspect_err(|_| self.done = true);
                    if let (Some((id, _)), Ok(event)) = (&self.concerning, &decoded)
                        && !event.event.concerns(id)
                    {
                        // The id's text elsewhere (a title, an error).
                        continue;
                    }
                    return Some(decoded);
                }
                Ok(None) if waits => self.wait(),
                Ok(None) => {
                    self.done = true;
                    // The end of what is there; a last segment the tail
                    // marker names is gone with its records: never a quiet end.
                    match crate::journal::tail::names_missing_segment(self.storage.as_ref(), &self.journal_dir) {
                        Some(first) => Err(crate::journal::tail::missing_segment(&self.journal_dir, first)),
                        None => Ok(()),
                    }
                }
                Err(error) => match self.base_covers(&error) {
                    Some(found) => {
                        tracing::info!(
                            from = %self.follower.next_seq(), to = %found.previous(),
                            "records not in the journal (the compaction base covers them): going on after them"
                        );
                        self.skipped.push_back(Skipped {
                            from: self.follower.next_seq(),
                            to: found.previous(),
                            reason: SkipReason::SetAsideUnderBase,
                            set_aside: None,
                        });
                        self.follower.skip_to(found);
                        Ok(())
                    }
                    None => Err(error),
                },
            };
            if let Err(error) = step {
                self.done = true;
                return Some(Err(error));
            }
        }
        None
    }
}

fn decode(record: &OwnedRecord) -> Result<EventRecord> {
    let at = |detail: String| Error::Corrupt {
        path: record.path.clone(),
        offset: record.offset,
        detail,
    };
    match decode_payload(&record.payload) {
        Ok(decoded) => Ok(EventRecord::new(record.seq, decoded.ts, decoded.event).with_version(decoded.version)),
        Err(PayloadError::Version(version)) => Err(Error::UnsupportedVersion {
            path: record.path.clone(),
            offset: record.offset,
            version,
            supported: crate::event::EVENT_VERSION,
        }),
        Err(PayloadError::Malformed(detail)) => {
            Err(at(format!("record's checksum is valid but its event is not: {detail}")))
        }
    }
}

/// The events of the store in `dir` from record `from` on (`Seq(0)`: from
/// the first the journal still holds), to the end of the journal as it is
/// when they are read; needs no lock, changes nothing.
///
/// # Errors
/// [`Error::Io`] naming the directory when it cannot be read (errors
/// reading the journal come as items).
pub fn events(dir: &Path, from: Seq) -> Result<Events> {
    crate::lock::require_directory(dir)?;
    Ok(Events::to_end(Arc::new(RealStorage), dir, from, Seq(SEQ_MAX)))
}

/// The events of the store in `dir` from record `from` on (`Seq(0)`: from
/// the first the journal still holds), and then each new one as a writer — in this process or another — appends it: a
/// blocking iterator that never ends by itself. It reads only bytes it has
/// not read before, goes on across segment rolls, a `compact` and a
/// writer's restart, and sees a record only once it is whole on disk. A
/// writer in this process should be followed with
/// [`crate::QueueManager::subscribe`] instead, which yields a record only
/// once it is durable; a record this one yields is in the file (it
/// survives the writer's crash) but may not be fsynced yet when the
/// writer runs in `Batched` mode.
///
/// # Errors
/// [`Error::Io`] naming the directory when it cannot be read (errors
/// reading the journal come as items).
pub fn follow(dir: &Path, from: Seq) -> Result<Events> {
    crate::lock::require_directory(dir)?;
    Ok(Events::new(Arc::new(RealStorage), dir, from, Mode::Polling))
}

/// Where the journal of a store ends, kept up to date cheaply: a reader
/// that steps over records without copying or decoding one, and on each
/// call reads only the bytes appended since the last. A follower compares
/// it with the last record it has applied to say how far behind it is.
#[derive(Debug)]
pub struct JournalEnd {
    follower: Follower,
}

impl JournalEnd {
    /// A reader of the journal of `dir` from record `from` on (`Seq(0)`:
    /// from the first the journal holds).
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory when it cannot be read.
    pub fn new(dir: &Path, from: Seq) -> Result<Self> {
        crate::lock::require_directory(dir)?;
        let journal_dir = Layout::new(dir).journal();
        Ok(JournalEnd {
            follower: Follower::new(Arc::new(RealStorage), &journal_dir, from),
        })
    }

    /// The last whole record on disk now (the one before `from` when none
    /// after it is there yet). Records a `compact` deleted before they were
    /// stepped over are stepped over too: the end is after them.
    ///
    /// # Errors
    /// What a follower meets: [`Error::Io`], damage with valid records
    /// after it, a gap.
    pub fn last_seq(&mut self) -> Result<Seq> {
        let refuse = |_: &[u8]| false;
        loop {
            match self.follower.poll_where(Seq(SEQ_MAX), Some(&refuse)) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(Error::CompactedAway { resumes, .. }) => self.follower.skip_to(Seq(resumes)),
                Err(error) => return Err(error),
            }
        }
        // Holes `repair` recorded are stepped over; nobody asks for them here.
        while self.follower.take_skipped().is_some() {}
        Ok(self.follower.next_seq().previous())
    }
}
