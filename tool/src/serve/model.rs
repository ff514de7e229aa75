//! The dashboard's timeline: where every movie was after every event,
//! built in one pass over the journal and extended as the event stream
//! brings new records. It answers "the queues as of record `s`" without a
//! replay: each movie keeps the list of its states (one per event that
//! concerns it), so the state at `s` is a binary search per movie.
//!
//! The library's projection (`QueueState`) is the authority; its `apply`
//! is not public API, and `state_at` replays the prefix (seconds on a
//! million events), so the dashboard keeps this narrower view: place,
//! order, retry count, last error, retry time and title. The unit tests
//! (`model_tests.rs`) compare it with `QueueManager::state_at` at every
//! record of randomized histories.

use std::collections::{BTreeMap, HashMap, VecDeque};

use movie_queue::{Event, EventRecord, Movie, Place, QueueEntry, QueueState};

/// An order key within a place: `(batch, index)`. A move to the back of a
/// place takes `(seq, index)`; a move to the front (`requeued`) takes
/// `(-seq, index)`, before every earlier key.
pub type OrderKey = (i64, u32);

/// One movie after one event that concerns it.
#[derive(Debug, Clone)]
pub struct State {
    /// The record that made it.
    pub seq: u64,
    /// Where the movie is (`None`: no longer in the store).
    pub place: Option<Place>,
    /// Its order within the place.
    pub key: OrderKey,
    /// How many times it failed.
    pub retry_count: u32,
    /// Its last error, interned in [`Model::errors`].
    pub error: Option<u32>,
    /// When it may be retried, Unix seconds.
    pub retry_after: Option<f64>,
    /// Its title and year, an index into its track's labels.
    pub label: u32,
}

/// One movie's id, titles and states.
#[derive(Debug, Clone)]
pub struct Track {
    /// The movie's id.
    pub id: String,
    /// Every (title, year) it has had, in order.
    pub labels: Vec<(String, String)>,
    /// Its states, in record order.
    pub states: Vec<State>,
}

impl Track {
    /// Its state as of record `seq` (`None`: unknown then).
    pub fn at(&self, seq: u64) -> Option<&State> {
        let after = self.states.partition_point(|state| state.seq <= seq);
        after.checked_sub(1).and_then(|index| self.states.get(index))
    }

    /// Its state now.
    pub fn now(&self) -> Option<&State> {
        self.states.last()
    }

    /// The (title, year) of `state`.
    pub fn label(&self, state: &State) -> (&str, &str) {
        self.labels
            .get(state.label as usize)
            .map_or(("", ""), |(title, year)| (title.as_str(), year.as_str()))
    }
}

/// What the dashboard knows of one record without reading it again.
#[derive(Debug, Clone, Copy)]
pub struct EventMeta {
    /// Its sequence number.
    pub seq: u64,
    /// Its time, Unix seconds.
    pub ts: f64,
    /// Its kind, an index into [`KINDS`].
    pub kind: u8,
}

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
    /// Every movie ever seen, by first appearance.
    pub tracks: Vec<Track>,
    by_id: HashMap<String, u32>,
    /// Every state change as (record, track), in record order.
    pub changes: Vec<(u64, u32)>,
    /// Every record read, in order.
    pub events: Vec<EventMeta>,
    /// The record the timeline starts after (0, or a compaction's base).
    pub start_seq: u64,
    /// Current movies per place, as [`Place::ALL`].
    counts: [usize; 5],
    /// Distinct error messages, and how many `failed` events carried each.
    pub errors: Vec<(String, u64)>,
    error_ids: HashMap<String, u32>,
    /// Events per hour (Unix seconds / 3600).
    pub hours: BTreeMap<i64, u64>,
    /// A failed movie that failed this often is a permanent failure.
    pub max_retries: u32,
    /// The last [`RECENT`] records, newest last.
    pub recent: VecDeque<EventRecord>,
}

/// How many of the latest records the overview lists.
pub const RECENT: usize = 12;

/// The index of `place` in [`Place::ALL`].
pub fn place_index(place: Place) -> usize {
    Place::ALL.iter().position(|known| *known == place).unwrap_or(0)
}

impl Model {
    /// An empty timeline; `max_retries` as the store's statistics count.
    pub fn new(max_retries: u32) -> Self {
        Model {
            tracks: Vec::new(),
            by_id: HashMap::new(),
            changes: Vec::new(),
            events: Vec::new(),
            start_seq: 0,
            counts: [0; 5],
            errors: Vec::new(),
            error_ids: HashMap::new(),
            hours: BTreeMap::new(),
            max_retries,
            recent: VecDeque::with_capacity(RECENT + 1),
        }
    }

    /// A timeline that starts from `state`, the store as of record `seq`
    /// (a compacted journal's base: the records before it are gone).
    pub fn starting_from(max_retries: u32, seq: u64, state: &QueueState) -> Self {
        let mut model = Model::new(max_retries);
        model.start_seq = seq;
        let mut index = 0;
        for place in Place::ALL {
            for entry in state.entries(place) {
                model.enter(seq, (0, index), place, &entry);
                index += 1;
            }
        }
        model
    }

    /// The last record applied (or the starting point).
    pub fn last_seq(&self) -> u64 {
        self.events.last().map_or(self.start_seq, |meta| meta.seq)
    }

    /// The first record the timeline can show (its starting point).
    pub fn first_seq(&self) -> u64 {
        self.start_seq
    }

    /// The movie `id`'s track.
    pub fn track(&self, id: &str) -> Option<&Track> {
        self.by_id.get(id).and_then(|&index| self.tracks.get(index as usize))
    }

    /// Current counts per place, as [`Place::ALL`].
    pub fn counts(&self) -> [usize; 5] {
        self.counts
    }

    /// The failed movies now that failed `max_retries` times or more.
    pub fn permanent_failures(&self) -> usize {
        self.tracks
            .iter()
            .filter_map(Track::now)
            .filter(|state| state.place == Some(Place::Failed) && state.retry_count >= self.max_retries)
            .count()
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
            .map_or(self.start_seq, |meta| meta.seq)
    }

    /// The time of record `seq`, if the timeline holds it.
    pub fn time_of(&self, seq: u64) -> Option<f64> {
        let first = self.events.first()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.events.get(index).map(|meta| meta.ts)
    }

    /// Applies the next record. A kind this build does not know is
    /// counted and otherwise skipped (FORMAT.md: consumers skip it).
    pub fn apply(&mut self, record: &EventRecord) {
        let seq = record.seq.0;
        let kind = record.event.kind();
        self.events.push(EventMeta {
            seq,
            ts: record.ts,
            kind: kind_index(kind),
        });
        // Whole hours since the epoch: far inside i64 for any event time.
        #[expect(clippy::cast_possible_truncation, reason = "an hour number fits i64")]
        let hour = (record.ts / 3600.0).floor() as i64;
        *self.hours.entry(hour).or_default() += 1;
        self.apply_event(seq, &record.event);
        self.recent.push_back(record.clone());
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    fn apply_event(&mut self, seq: u64, event: &Event) {
        let back = (i64::try_from(seq).unwrap_or(i64::MAX), 0);
        match event {
            Event::Added { movie } | Event::Completed { movie } => {
                let place = if matches!(event, Event::Added { .. }) {
                    Place::Pending
                } else {
                    Place::Completed
                };
                self.enter(seq, back, place, &QueueEntry::new(movie.clone()));
            }
            Event::Taken { id } => self.relocate(seq, id, back, Some(Place::InFlight)),
            Event::Failed {
                movie,
                error,
                retry_after,
            } => self.fail(seq, movie, error, *retry_after),
            Event::MovedToPending { id } | Event::Restored { id } => {
                self.relocate(seq, id, back, Some(Place::Pending));
            }
            Event::Reset { id } => self.reset(seq, id),
            Event::CleanedUp { ids, .. } => ids.iter().for_each(|id| self.relocate(seq, id, back, None)),
            Event::Forgotten { id } => self.relocate(seq, id, back, None),
            Event::Requeued { ids } => {
                let front = -i64::try_from(seq).unwrap_or(i64::MAX);
                for (index, id) in (0u32..).zip(ids) {
                    self.relocate(seq, id, (front, index), Some(Place::Pending));
                }
            }
            Event::Imported {
                pending,
                failed,
                completed,
                removed,
            } => self.import(seq, [pending, failed, completed, removed]),
            Event::Removed { movie } => self.remove(seq, movie.id(), Some(movie), back),
            Event::MarkedRemoved { ids } => {
                for (index, id) in (0u32..).zip(ids) {
                    self.remove(seq, id, None, (back.0, index));
                }
            }
            _ => {}
        }
    }

    /// The track of `id`, created if new.
    fn track_index(&mut self, id: &str) -> u32 {
        if let Some(&index) = self.by_id.get(id) {
            return index;
        }
        let index = u32::try_from(self.tracks.len()).unwrap_or(u32::MAX);
        self.tracks.push(Track {
            id: id.to_owned(),
            labels: Vec::new(),
            states: Vec::new(),
        });
        self.by_id.insert(id.to_owned(), index);
        index
    }

    /// The current state of `id`, if it is in the store.
    fn present(&self, id: &str) -> Option<State> {
        self.track(id)
            .and_then(Track::now)
            .filter(|state| state.place.is_some())
            .cloned()
    }

    /// Records `state` as the new state of track `index`.
    fn push(&mut self, index: u32, state: State) {
        let Some(track) = self.tracks.get_mut(index as usize) else {
            return;
        };
        if let Some(place) = track.now().and_then(|old| old.place) {
            self.counts[place_index(place)] -= 1;
        }
        if let Some(place) = state.place {
            self.counts[place_index(place)] += 1;
        }
        track.states.push(state);
        self.changes
            .push((track.states.last().map_or(0, |state| state.seq), index));
    }

    /// The label index of `movie` on track `index` (added if new).
    fn label(&mut self, index: u32, movie: &Movie) -> u32 {
        let title = movie.title().unwrap_or_default();
        let year = movie.year().map(ToString::to_string).unwrap_or_default();
        let Some(track) = self.tracks.get_mut(index as usize) else {
            return 0;
        };
        if let Some(last) = track.labels.last()
            && last.0 == title
            && last.1 == year
        {
            return u32::try_from(track.labels.len() - 1).unwrap_or(0);
        }
        track.labels.push((title.to_owned(), year));
        u32::try_from(track.labels.len() - 1).unwrap_or(0)
    }

    /// Interns an error message (counting one more `failed` event with it).
    fn intern(&mut self, error: &str, count: u64) -> u32 {
        let index = if let Some(&index) = self.error_ids.get(error) {
            index
        } else {
            let index = u32::try_from(self.errors.len()).unwrap_or(u32::MAX);
            self.errors.push((error.to_owned(), 0));
            self.error_ids.insert(error.to_owned(), index);
            index
        };
        if let Some(entry) = self.errors.get_mut(index as usize) {
            entry.1 += count;
        }
        index
    }

    /// `entry` (a new one, or replacing what its id had) at `key` in `place`.
    fn enter(&mut self, seq: u64, key: OrderKey, place: Place, entry: &QueueEntry) {
        let index = self.track_index(entry.id());
        let label = self.label(index, &entry.movie);
        let error = entry.last_error.as_deref().map(|error| self.intern(error, 0));
        let state = State {
            seq,
            place: Some(place),
            key,
            retry_count: entry.retry_count,
            error,
            retry_after: entry.retry_after,
            label,
        };
        self.push(index, state);
    }

    /// `id` moved, unchanged otherwise, to `key` in `place` (`None`: it
    /// left the store).
    fn relocate(&mut self, seq: u64, id: &str, key: OrderKey, place: Option<Place>) {
        if let Some(old) = self.present(id) {
            let index = self.track_index(id);
            let key = if place.is_some() { key } else { old.key };
            self.push(index, State { seq, place, key, ..old });
        }
    }

    /// `failed`: one more failure; a failed movie keeps its place in the
    /// queue, any other joins the back of failed.
    fn fail(&mut self, seq: u64, movie: &Movie, error: &str, retry_after: f64) {
        let old = self.present(movie.id());
        let index = self.track_index(movie.id());
        let label = self.label(index, movie);
        let error = self.intern(error, 1);
        let key = match &old {
            Some(old) if old.place == Some(Place::Failed) => old.key,
            _ => (i64::try_from(seq).unwrap_or(i64::MAX), 0),
        };
        let state = State {
            seq,
            place: Some(Place::Failed),
            key,
            retry_count: old.map_or(0, |old| old.retry_count).saturating_add(1),
            error: Some(error),
            retry_after: Some(retry_after),
            label,
        };
        self.push(index, state);
    }

    /// `reset`: back of pending as a fresh entry.
    fn reset(&mut self, seq: u64, id: &str) {
        if let Some(old) = self.present(id) {
            let index = self.track_index(id);
            let state = State {
                seq,
                place: Some(Place::Pending),
                key: (i64::try_from(seq).unwrap_or(i64::MAX), 0),
                retry_count: 0,
                error: None,
                retry_after: None,
                label: old.label,
            };
            self.push(index, state);
        }
    }

    /// `removed` / `marked_removed`: to `key` in removed, keeping what the
    /// queue knew of it; a `movie` given replaces its title.
    fn remove(&mut self, seq: u64, id: &str, movie: Option<&Movie>, key: OrderKey) {
        let old = self.present(id);
        if old.is_none() && movie.is_none() {
            return;
        }
        let index = self.track_index(id);
        let label = match movie {
            Some(movie) => self.label(index, movie),
            None => old.as_ref().map_or(0, |old| old.label),
        };
        let state = match old {
            Some(old) => State {
                seq,
                place: Some(Place::Removed),
                key,
                label,
                ..old
            },
            None => State {
                seq,
                place: Some(Place::Removed),
                key,
                retry_count: 0,
                error: None,
                retry_after: None,
                label,
            },
        };
        self.push(index, state);
    }

    /// `imported`: each entry whose id is not in the store joins the back
    /// of its place; one already there is left as it is (but the event
    /// still concerns it, so its track notes the record).
    fn import(&mut self, seq: u64, lists: [&Vec<QueueEntry>; 4]) {
        let batch = i64::try_from(seq).unwrap_or(i64::MAX);
        let mut position = 0u32;
        for (place, entries) in [Place::Pending, Place::Failed, Place::Completed, Place::Removed]
            .into_iter()
            .zip(lists)
        {
            for entry in entries {
                match self.present(entry.id()) {
                    Some(old) => {
                        let index = self.track_index(entry.id());
                        self.push(index, State { seq, ..old });
                    }
                    None => self.enter(seq, (batch, position), place, entry),
                }
                position += 1;
            }
        }
    }
}
