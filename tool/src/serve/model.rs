//! The dashboard's timeline: where every movie was after every event,
//! built in one pass over the journal and extended as the event stream
//! brings new records. It answers "the queues as of record `s`" without a
//! replay: each movie keeps the list of its states (one per event that
//! concerns it), so the state at `s` is a binary search per movie.
//!
//! Nothing here knows how an event moves a movie: every record is applied
//! to a `QueueState` by the library's own `QueueState::apply_record` (the
//! function replay and the manager use), and each movie the event names
//! is then read back from that state (place, order key, retry count, last
//! error, retry time, title) as its new state. The counts are the state's
//! `Statistics`. The unit tests (`model_tests.rs`) compare the timeline
//! with `movie_queue::replay` at every record of randomized histories.

use std::collections::{BTreeMap, HashMap, VecDeque};

use movie_queue::{EventRecord, Movie, Place, QueueState, Statistics};

/// An order key within a place, as `QueueState::position` gives it:
/// ascending from front to back, kept while the movie stays.
pub type OrderKey = i64;

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
}

/// How many of the latest records the overview lists.
pub const RECENT: usize = 12;

impl Model {
    /// An empty timeline; `max_retries` as the store's statistics count.
    pub fn new(max_retries: u32) -> Self {
        Model {
            tracks: Vec::new(),
            by_id: HashMap::new(),
            changes: Vec::new(),
            events: Vec::new(),
            start_seq: 0,
            state: QueueState::new(),
            errors: Vec::new(),
            error_ids: HashMap::new(),
            hours: BTreeMap::new(),
            max_retries,
            recent: VecDeque::with_capacity(RECENT + 1),
            kind_counts: [0; KINDS.len()],
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
            .map_or(self.start_seq, |meta| meta.seq)
    }

    /// The time of record `seq`, if the timeline holds it.
    pub fn time_of(&self, seq: u64) -> Option<f64> {
        let first = self.events.first()?.seq;
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
        self.events.push(EventMeta {
            seq,
            ts: record.ts,
            kind,
        });
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

    /// Notes, as of record `seq`, where the state puts `id` now (a movie
    /// that left the store keeps its last fields with no place). Returns
    /// its interned last error.
    fn observe(&mut self, seq: u64, id: &str) -> Option<u32> {
        let found = self.state.get(id).zip(self.state.position(id));
        let (index, state) = if let Some(((place, entry), (_, key))) = found {
            let index = self.track_index(id);
            let label = self.label(index, &entry.movie);
            let error = entry.last_error.as_deref().map(|error| self.intern(error));
            let state = State {
                seq,
                place: Some(place),
                key,
                retry_count: entry.retry_count,
                error,
                retry_after: entry.retry_after,
                label,
            };
            (index, state)
        } else {
            let index = *self.by_id.get(id)?;
            let old = self.tracks.get(index as usize)?.now()?.clone();
            old.place?;
            (
                index,
                State {
                    seq,
                    place: None,
                    ..old
                },
            )
        };
        let error = state.error;
        if let Some(track) = self.tracks.get_mut(index as usize) {
            track.states.push(state);
            self.changes.push((seq, index));
        }
        error
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

    /// Interns an error message.
    fn intern(&mut self, error: &str) -> u32 {
        if let Some(&index) = self.error_ids.get(error) {
            return index;
        }
        let index = u32::try_from(self.errors.len()).unwrap_or(u32::MAX);
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
