//! The dashboard's timeline: where every movie was after every event,
//! built in one pass over the journal and extended as the event stream
//! brings new records. It answers "the queues as of record `s`" without a
//! replay: every movie's state after every event that concerns it is kept,
//! in record order, each linked to the one before it of the same movie,
//! so the state at `s` is a short walk back from the movie's latest.
//!
//! It is laid out for a million movies in little memory: states are one
//! flat vector of small records; ids, titles and the lower-case search
//! text live end to end in three buffers; the id table stores indexes, not
//! copies of the ids. A title or id search is one substring scan of the
//! search buffer (`memchr::memmem`).
//!
//! Nothing here knows how an event moves a movie: every record is applied
//! to a `QueueState` by the library's own `QueueState::apply_record` (the
//! function replay and the manager use), and each movie the event names
//! is then read back from that state (place, order key, retry count, last
//! error, retry time, title) as its new state. The counts are the state's
//! `Statistics`. The unit tests (`model_tests.rs`) compare the timeline
//! with `movie_queue::replay` at every record of randomized histories.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use movie_queue::{EventRecord, Movie, Place, QueueState, Statistics};

/// An order key within a place, as `QueueState::position` gives it:
/// ascending from front to back, kept while the movie stays.
pub type OrderKey = i64;

/// "None" in an index field.
const NONE: u32 = u32::MAX;

/// One movie after one event that concerns it.
#[derive(Debug, Clone)]
pub struct State {
    /// The record that made it.
    pub seq: u64,
    /// Its order within the place.
    pub key: OrderKey,
    /// When it may be retried, Unix seconds (NaN: not set).
    retry_after: f64,
    /// How many times it failed.
    pub retry_count: u32,
    /// Its last error, interned in [`Model::errors`] ([`NONE`]: none).
    error: u32,
    /// Its title and year, an index into the model's labels.
    pub label: u32,
    /// The movie (its track).
    pub track: u32,
    /// The movie's state before this one ([`NONE`]: none).
    previous: u32,
    /// Where the movie is (`None`: no longer in the store).
    pub place: Option<Place>,
}

impl State {
    /// When it may be retried, Unix seconds.
    pub fn retry_after(&self) -> Option<f64> {
        (!self.retry_after.is_nan()).then_some(self.retry_after)
    }

    /// Its last error, interned in [`Model::errors`].
    pub fn error(&self) -> Option<u32> {
        (self.error != NONE).then_some(self.error)
    }
}

/// Strings stored end to end in one buffer, each found by its index (the
/// buffer holds at most 4 GiB: a string past that is stored as empty).
#[derive(Debug, Clone, Default)]
struct Strings {
    text: Vec<u8>,
    ends: Vec<u32>,
}

impl Strings {
    fn push(&mut self, parts: &[&str]) -> u32 {
        let length: usize = parts.iter().map(|part| part.len()).sum();
        if u32::try_from(self.text.len() + length).is_ok() {
            for part in parts {
                self.text.extend_from_slice(part.as_bytes());
            }
        }
        self.ends.push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
        u32::try_from(self.ends.len() - 1).unwrap_or(NONE)
    }

    /// The bytes of string `index`.
    fn bytes(&self, index: u32) -> std::ops::Range<usize> {
        let index = index as usize;
        let Some(&end) = self.ends.get(index) else {
            return 0..0;
        };
        let start = index
            .checked_sub(1)
            .and_then(|before| self.ends.get(before))
            .copied()
            .unwrap_or(0);
        start as usize..end as usize
    }

    fn get(&self, index: u32) -> &str {
        self.text
            .get(self.bytes(index))
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or("")
    }

    /// Blanks string `index` out (its bytes become zeros: no search finds
    /// text in it any more).
    fn blank(&mut self, index: u32) {
        let range = self.bytes(index);
        if let Some(bytes) = self.text.get_mut(range) {
            bytes.fill(0);
        }
    }

    /// The string holding byte `offset`.
    fn holding(&self, offset: usize) -> u32 {
        u32::try_from(self.ends.partition_point(|&end| (end as usize) <= offset)).unwrap_or(NONE)
    }

    fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// One movie: its id and its states, as a handle on the model.
#[derive(Debug, Clone, Copy)]
pub struct Track<'a> {
    model: &'a Model,
    index: u32,
}

impl<'a> Track<'a> {
    /// The movie's id.
    pub fn id(self) -> &'a str {
        self.model.ids.get(self.index)
    }

    /// Its index among the model's movies.
    pub fn index(self) -> u32 {
        self.index
    }

    /// Its state now.
    pub fn now(self) -> Option<&'a State> {
        let last = *self.model.last.get(self.index as usize)?;
        self.model.states.get(last as usize)
    }

    /// Its state as of record `seq` (`None`: unknown then).
    pub fn at(self, seq: u64) -> Option<&'a State> {
        let mut state = self.now()?;
        while state.seq > seq {
            state = self.model.states.get(state.previous as usize)?;
        }
        Some(state)
    }

    /// Its states, oldest first.
    pub fn states(self) -> Vec<&'a State> {
        let mut states: Vec<&State> =
            std::iter::successors(self.now(), |state| self.model.states.get(state.previous as usize)).collect();
        states.reverse();
        states
    }

    /// The (title, year) of `state`.
    pub fn label(self, state: &State) -> (&'a str, &'a str) {
        self.model
            .labels
            .get(state.label)
            .split_once('\u{1f}')
            .unwrap_or(("", ""))
    }
}

/// What the dashboard knows of one record without reading it again: 16
/// bytes, its kind in the top byte of its sequence number (which stays
/// below 2^56).
#[derive(Debug, Clone, Copy)]
pub struct EventMeta {
    seq_kind: u64,
    /// Its time, Unix seconds.
    pub ts: f64,
}

impl EventMeta {
    fn new(seq: u64, ts: f64, kind: u8) -> Self {
        EventMeta {
            seq_kind: (seq & SEQ_BITS) | (u64::from(kind) << 56),
            ts,
        }
    }

    /// Its sequence number.
    pub fn seq(&self) -> u64 {
        self.seq_kind & SEQ_BITS
    }

    /// Its kind, an index into [`KINDS`].
    pub fn kind(&self) -> u8 {
        u8::try_from(self.seq_kind >> 56).unwrap_or(u8::MAX)
    }
}

/// The bits of a record's sequence number in [`EventMeta`].
const SEQ_BITS: u64 = (1 << 56) - 1;

/// The event kinds, as `Event::kind` names them (FORMAT.md).
pub const KINDS: [&str; 13] = [
    "added",
    "taken",
    "failed",
    "moved_to_pending",
    "reset",
    "completed",
    "cleaned_up",
    "requeued",
    "imported",
    "removed",
    "marked_removed",
    "restored",
    "forgotten",
];

/// The index of `kind` in [`KINDS`] (an unknown kind: past the end).
pub fn kind_index(kind: &str) -> u8 {
    let index = KINDS.iter().position(|known| *known == kind).unwrap_or(KINDS.len());
    u8::try_from(index).unwrap_or(u8::MAX)
}

/// The timeline of a whole store.
#[derive(Debug, Clone)]
pub struct Model {
    /// Every movie's state after every event that concerns it, in record order.
    pub states: Vec<State>,
    /// Every movie ever seen, by first appearance: its id, its latest state.
    ids: Strings,
    last: Vec<u32>,
    /// The movies by id (their indexes; the ids are read from `ids`).
    by_id: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Every (title, year) a movie has had, as `title\u{1f}year`.
    labels: Strings,
    /// The lower-case `id\u{1f}title\0` of each label, by the label's
    /// index (the search buffer; a movie's labels but its current one are
    /// blanked out), and whose movie each is.
    search: Strings,
    search_owner: Vec<u32>,
    /// Every record read, in order.
    pub events: Vec<EventMeta>,
    /// The record the timeline starts after (0, or a compaction's base).
    pub start_seq: u64,
    /// The store as of the last record: what every record is applied to.
    state: QueueState,
    /// Distinct error messages, and how many `failed` events carried each
    /// (and, at a compaction base, how many failed movies it held with it).
    pub errors: Vec<(String, u64)>,
    error_ids: HashMap<String, u32>,
    /// Events per hour (Unix seconds / 3600).
    pub hours: BTreeMap<i64, u64>,
    /// A failed movie that failed this often is a permanent failure.
    pub max_retries: u32,
    /// The last [`RECENT`] records, newest last.
    pub recent: VecDeque<EventRecord>,
    /// Records applied per kind, as [`KINDS`].
    pub kind_counts: [u64; KINDS.len()],
    /// The record a [`Model::rebase`] moved the timeline on to (0: none).
    rebased: u64,
}

/// How many of the latest records the overview lists.
pub const RECENT: usize = 12;

impl Model {
    /// An empty timeline; `max_retries` as the store's statistics count.
    pub fn new(max_retries: u32) -> Self {
        Model {
            states: Vec::new(),
            ids: Strings::default(),
            last: Vec::new(),
            by_id: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            labels: Strings::default(),
            search: Strings::default(),
            search_owner: Vec::new(),
            events: Vec::new(),
            start_seq: 0,
            state: QueueState::new(),
            errors: Vec::new(),
            error_ids: HashMap::new(),
            hours: BTreeMap::new(),
            max_retries,
            recent: VecDeque::with_capacity(RECENT + 1),
            kind_counts: [0; KINDS.len()],
            rebased: 0,
        }
    }

    /// A timeline that starts from `state`, the store as of record `seq`
    /// (a compacted journal's base: the records before it are gone). The
    /// failure messages of its failed movies count once each, so the
    /// failures panel does not go blank after a compaction.
    pub fn starting_from(max_retries: u32, seq: u64, state: QueueState) -> Self {
        let mut model = Model::new(max_retries);
        model.start_seq = seq;
        model.state = state;
        let ids: Vec<String> = Place::ALL
            .into_iter()
            .flat_map(|place| {
                model
                    .state
                    .entries(place)
                    .map(|entry| entry.id().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        for id in &ids {
            if let Some(error) = model.observe(seq, id)
                && model.state.place(id) == Some(Place::Failed)
            {
                model.count_error(error);
            }
        }
        model
    }

    /// Gives back memory kept for growth (once a whole journal is read).
    pub fn shrink(&mut self) {
        self.states.shrink_to_fit();
        self.ids.shrink();
        self.last.shrink_to_fit();
        self.labels.shrink();
        self.search.shrink();
        self.search_owner.shrink_to_fit();
        self.events.shrink_to_fit();
        let hasher = &self.hasher;
        let ids = &self.ids;
        self.by_id.shrink_to_fit(|&index| hasher.hash_one(ids.get(index)));
    }

    /// The last record applied (or the starting point, or the state it
    /// was moved on to).
    pub fn last_seq(&self) -> u64 {
        self.events
            .last()
            .map_or(self.start_seq, EventMeta::seq)
            .max(self.rebased)
    }

    /// Moves the timeline on to `state`, the store as of record `seq` (past
    /// its last record: the journal lost records its compaction base or
    /// snapshot holds), as one step: every movie's state there is noted
    /// as of `seq`, those no longer in it as gone.
    pub fn rebase(&mut self, seq: u64, state: QueueState) {
        let present: Vec<String> = self
            .tracks()
            .filter(|track| track.now().is_some_and(|state| state.place.is_some()))
            .map(|track| track.id().to_owned())
            .collect();
        self.state = state;
        let ids: Vec<String> = Place::ALL
            .into_iter()
            .flat_map(|place| self.state.ids(place).map(str::to_owned).collect::<Vec<_>>())
            .chain(present)
            .collect();
        let mut seen = std::collections::HashSet::new();
        for id in &ids {
            if seen.insert(id.as_str()) {
                self.observe(seq, id);
            }
        }
        self.rebased = seq;
    }

    /// The first record the timeline can show (its starting point).
    pub fn first_seq(&self) -> u64 {
        self.start_seq
    }

    /// Every movie ever seen, by first appearance.
    pub fn tracks(&self) -> impl Iterator<Item = Track<'_>> {
        (0..u32::try_from(self.last.len()).unwrap_or(NONE)).map(|index| Track { model: self, index })
    }

    /// The movie at `index` among [`Model::tracks`].
    pub fn track_at(&self, index: u32) -> Option<Track<'_>> {
        ((index as usize) < self.last.len()).then_some(Track { model: self, index })
    }

    /// The movie `id`.
    pub fn track(&self, id: &str) -> Option<Track<'_>> {
        let hash = self.hasher.hash_one(id);
        let &index = self.by_id.find(hash, |&index| self.ids.get(index) == id)?;
        self.track_at(index)
    }

    /// The movies whose id or current title contains `needle` (lower-case).
    pub fn search(&self, needle: &str) -> Vec<u32> {
        if needle.is_empty() || needle.contains('\0') {
            return Vec::new();
        }
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let mut found = Vec::new();
        let mut previous = NONE;
        for offset in finder.find_iter(&self.search.text) {
            let entry = self.search.holding(offset);
            if entry == previous {
                continue;
            }
            previous = entry;
            if let Some(&owner) = self.search_owner.get(entry as usize) {
                found.push(owner);
            }
        }
        found
    }

    /// The movies in `place` now, in queue order: the state's own order.
    pub fn ids_in(&self, place: Place) -> impl Iterator<Item = &str> {
        self.state.ids(place)
    }

    /// How many movies `place` holds now.
    pub fn count(&self, place: Place) -> usize {
        self.state.count(place)
    }

    /// The counts now, as the library's statistics give them.
    pub fn statistics(&self) -> Statistics {
        self.state.statistics(self.max_retries)
    }

    /// The text of an interned error.
    pub fn error_text(&self, error: Option<u32>) -> &str {
        error
            .and_then(|index| self.errors.get(index as usize))
            .map_or("", |(text, _)| text.as_str())
    }

    /// The last record stamped at or before `time` (the starting point if none).
    pub fn seq_at_time(&self, time: f64) -> u64 {
        let after = self.events.partition_point(|meta| meta.ts <= time);
        after
            .checked_sub(1)
            .and_then(|index| self.events.get(index))
            .map_or(self.start_seq, EventMeta::seq)
    }

    /// The time of record `seq`, if the timeline holds it.
    pub fn time_of(&self, seq: u64) -> Option<f64> {
        let first = self.events.first()?.seq();
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.events.get(index).map(|meta| meta.ts)
    }

    /// Applies the next record through the library's projection, then
    /// notes the new state of every movie it names.
    ///
    /// # Errors
    /// The record does not apply to the state before it (`QueueState::apply_record`);
    /// the timeline is then unchanged.
    pub fn apply(&mut self, record: &EventRecord) -> movie_queue::Result<()> {
        self.state.apply_record(record)?;
        let seq = record.seq.0;
        let kind = kind_index(record.event.kind());
        self.events.push(EventMeta::new(seq, record.ts, kind));
        if let Some(count) = self.kind_counts.get_mut(usize::from(kind)) {
            *count += 1;
        }
        // Whole hours since the epoch: far inside i64 for any event time.
        #[expect(clippy::cast_possible_truncation, reason = "an hour number fits i64")]
        let hour = (record.ts / 3600.0).floor() as i64;
        *self.hours.entry(hour).or_default() += 1;
        let ids: Vec<&str> = record.event.ids().collect();
        for id in ids {
            let error = self.observe(seq, id);
            if let (movie_queue::Event::Failed { .. }, Some(error)) = (&record.event, error) {
                self.count_error(error);
            }
        }
        self.recent.push_back(record.clone());
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        Ok(())
    }

    /// The movie `id`'s index, a new one if it is new.
    fn track_index(&mut self, id: &str) -> u32 {
        if let Some(track) = self.track(id) {
            return track.index;
        }
        let index = self.ids.push(&[id]);
        self.last.push(NONE);
        let (hasher, ids) = (&self.hasher, &self.ids);
        self.by_id
            .insert_unique(hasher.hash_one(id), index, |&index| hasher.hash_one(ids.get(index)));
        index
    }

    /// Notes, as of record `seq`, where the state puts `id` now (a movie
    /// that left the store keeps its last fields with no place). Returns
    /// its interned last error.
    fn observe(&mut self, seq: u64, id: &str) -> Option<u32> {
        let found = self.state.get(id).zip(self.state.position(id));
        let state = if let Some(((place, entry), (_, key))) = found {
            let track = self.track_index(id);
            let label = self.label(track, &entry.movie);
            let error = entry.last_error.as_deref().map_or(NONE, |error| self.intern(error));
            State {
                seq,
                key,
                retry_after: entry.retry_after.unwrap_or(f64::NAN),
                retry_count: entry.retry_count,
                error,
                label,
                track,
                previous: NONE,
                place: Some(place),
            }
        } else {
            let old = self.track(id)?.now()?.clone();
            old.place?;
            State {
                seq,
                place: None,
                ..old
            }
        };
        let error = state.error();
        let track = state.track as usize;
        let index = u32::try_from(self.states.len()).unwrap_or(NONE);
        let previous = self.last.get(track).copied().unwrap_or(NONE);
        self.states.push(State { previous, ..state });
        if let Some(last) = self.last.get_mut(track) {
            *last = index;
        }
        error
    }

    /// The label index of `movie` on track `track` (a new one if it
    /// differs from the track's current one; the search text follows).
    fn label(&mut self, track: u32, movie: &Movie) -> u32 {
        let title = movie.title().unwrap_or_default();
        let year = movie.year().map(ToString::to_string).unwrap_or_default();
        let current = self.track_at(track).and_then(Track::now).map(|state| state.label);
        if let Some(current) = current {
            let (old_title, old_year) = self.labels.get(current).split_once('\u{1f}').unwrap_or(("", ""));
            if old_title == title && old_year == year {
                return current;
            }
            // Its old title is no longer the one a search finds it by.
            self.search.blank(current);
        }
        let label = self.labels.push(&[title, "\u{1f}", &year]);
        let id = self.ids.get(track).to_lowercase();
        self.search.push(&[&id, "\u{1f}", &title.to_lowercase(), "\0"]);
        self.search_owner.push(track);
        label
    }

    /// Interns an error message.
    fn intern(&mut self, error: &str) -> u32 {
        if let Some(&index) = self.error_ids.get(error) {
            return index;
        }
        let index = u32::try_from(self.errors.len()).unwrap_or(NONE);
        self.errors.push((error.to_owned(), 0));
        self.error_ids.insert(error.to_owned(), index);
        index
    }

    /// One more failure with the interned message `error`.
    fn count_error(&mut self, error: u32) {
        if let Some(entry) = self.errors.get_mut(error as usize) {
            entry.1 += 1;
        }
    }
}
