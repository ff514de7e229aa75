//! The pages that show whole events (the journal, a movie's timeline):
//! the timeline says which records to show, and only those are read from
//! the journal, through the library's event stream.

use std::path::Path;

use movie_queue::{EventRecord, Events, Seq};
use serde::Serialize;

use super::model::{EventMeta, KINDS, Model, kind_index};
use super::views::{EventView, Row, place_name};

/// A gap between two wanted records past which a new stream is opened
/// instead of reading on.
const SKIP_MAX: u64 = 512;

/// The records `seqs` (ascending) of the store in `dir`, and how many of
/// them a `compact` removed since the timeline noted them (their events
/// are gone; their effect lives on in the compaction base): the pages
/// name those as compacted, never as damage.
///
/// # Errors
/// What reading the journal met (damage).
pub fn read_records(dir: &Path, seqs: &[u64]) -> movie_queue::Result<(Vec<EventRecord>, usize)> {
    let mut records = Vec::with_capacity(seqs.len());
    let mut compacted = 0;
    let mut stream: Option<Events> = None;
    for &seq in seqs {
        let reuse = stream
            .as_ref()
            .is_some_and(|events| events.next_seq().0 <= seq && seq - events.next_seq().0 <= SKIP_MAX);
        if !reuse {
            stream = Some(movie_queue::events(dir, Seq(seq))?);
        }
        let Some(events) = stream.as_mut() else { break };
        let mut found = false;
        for record in events.by_ref() {
            let record = match record {
                Ok(record) => record,
                Err(movie_queue::Error::CompactedAway { .. }) => break,
                Err(error) => return Err(error),
            };
            if record.seq.0 >= seq {
                if record.seq.0 == seq {
                    records.push(record);
                    found = true;
                }
                break;
            }
        }
        if !found {
            compacted += 1;
            stream = None;
        }
    }
    Ok((records, compacted))
}

/// What the journal page asks for.
#[derive(Debug, Clone, Default)]
pub struct JournalQuery {
    /// The first record to show (or after: the first that matches).
    pub from: u64,
    /// Only events of this kind.
    pub kind: String,
    /// Only events that concern this id.
    pub id: String,
    pub per_page: usize,
}

/// One page of the journal.
#[derive(Debug, Clone, Serialize)]
pub struct Journal {
    pub from: u64,
    pub kind: String,
    pub id: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub events: Vec<EventView>,
    /// Events of this page a `compact` removed since the server read them.
    pub compacted: usize,
    /// Where the next page starts (`None`: this is the last).
    pub next_from: Option<u64>,
    /// Where the previous page starts (`None`: this is the first).
    pub previous_from: Option<u64>,
    pub kinds: Vec<&'static str>,
}

/// The records that match `query`: ascending, from `from` on (`after`)
/// or before it (the page before), at most `count`.
fn matching(model: &Model, query: &JournalQuery, count: usize, before: bool) -> Vec<u64> {
    let kind = (!query.kind.is_empty()).then(|| kind_index(&query.kind));
    let candidates: Box<dyn DoubleEndedIterator<Item = u64>> = if query.id.is_empty() {
        Box::new(
            model
                .events
                .iter()
                .filter(move |meta| kind.is_none_or(|kind| meta.kind() == kind))
                .map(EventMeta::seq),
        )
    } else {
        let Some(track) = model.track(&query.id) else {
            return Vec::new();
        };
        let kinds = kind;
        Box::new(
            track
                .states()
                .into_iter()
                .map(|state| state.seq)
                .filter(move |&seq| seq > model.start_seq)
                .filter(move |&seq| {
                    kinds.is_none_or(|kind| {
                        let index = seq.checked_sub(model.events.first().map_or(0, EventMeta::seq));
                        index
                            .and_then(|index| model.events.get(usize::try_from(index).ok()?))
                            .is_some_and(|meta| meta.kind() == kind)
                    })
                }),
        )
    };
    let mut seqs: Vec<u64> = if before {
        candidates.rev().filter(|&seq| seq < query.from).take(count).collect()
    } else {
        candidates.filter(|&seq| seq >= query.from).take(count).collect()
    };
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}

/// One page of the journal.
///
/// # Errors
/// What reading the journal met.
pub fn journal(dir: &Path, model: &Model, query: &JournalQuery) -> movie_queue::Result<Journal> {
    let per_page = query.per_page.max(1);
    let mut seqs = matching(model, query, per_page + 1, false);
    let next_from = (seqs.len() > per_page).then(|| seqs.pop()).flatten();
    let previous_from = matching(model, query, per_page, true).first().copied();
    let (records, compacted) = read_records(dir, &seqs)?;
    let events = records.iter().map(EventView::of).collect();
    Ok(Journal {
        from: query.from,
        kind: query.kind.clone(),
        id: query.id.clone(),
        first_seq: model.events.first().map_or(0, EventMeta::seq),
        last_seq: model.last_seq(),
        events,
        compacted,
        next_from,
        previous_from,
        kinds: KINDS.to_vec(),
    })
}

/// The movie page: where it is now and every event about it.
#[derive(Debug, Clone, Serialize)]
pub struct MovieView {
    pub id: String,
    /// Its row now (`place` is `gone` once it left the store).
    pub now: Row,
    pub timeline: Vec<EventView>,
    /// Its events a `compact` removed since the server read them.
    pub compacted: usize,
}

/// The movie `id`'s page (`None`: the journal never named it).
///
/// # Errors
/// What reading the journal met.
pub fn movie(dir: &Path, model: &Model, id: &str) -> movie_queue::Result<Option<MovieView>> {
    let Some(track) = model.track(id) else {
        return Ok(None);
    };
    let seqs: Vec<u64> = track
        .states()
        .iter()
        .map(|state| state.seq)
        .filter(|&seq| seq > model.start_seq)
        .collect();
    let (records, compacted) = read_records(dir, &seqs)?;
    let timeline = records.iter().map(EventView::of).collect();
    let now = track
        .now()
        .map(|state| Row::of(model, track, state, movie_queue::now()));
    Ok(now.map(|now| MovieView {
        id: id.to_owned(),
        now,
        timeline,
        compacted,
    }))
}

impl Journal {
    /// "N events of this page were", each noun as its count wants it.
    #[must_use]
    pub fn compacted_words(&self) -> String {
        crate::output::counted(
            self.compacted as u64,
            "event of this page was",
            "events of this page were",
        )
    }
}

impl MovieView {
    /// "N earlier events were", each noun as its count wants it.
    #[must_use]
    pub fn compacted_words(&self) -> String {
        crate::output::counted(self.compacted as u64, "earlier event was", "earlier events were")
    }
}

/// The place names, for the pages' links.
pub fn place_names() -> [&'static str; 5] {
    movie_queue::Place::ALL.map(place_name)
}
