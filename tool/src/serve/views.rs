//! What each page shows, computed from the timeline: plain data (every
//! JSON endpoint serializes it as it is; each page's template renders it).

use std::fmt::Write as _;

use movie_queue::{EventRecord, Place, Statistics, now};
use serde::Serialize;

use super::model::{Model, State, Track};
use crate::output::{event_json, event_summary, local_time, relative_time};

/// The counts (as `movie-queue stats --json` names them) labelled in the
/// order the pages list them.
pub fn labelled(counts: &Statistics) -> [(&'static str, usize); 6] {
    [
        ("pending", counts.pending),
        ("in flight", counts.in_flight),
        ("failed", counts.failed),
        ("permanent failures", counts.permanent_failures),
        ("completed", counts.completed),
        ("removed", counts.removed),
    ]
}

/// Is a movie in `place` that failed `retry_count` times a permanent
/// failure? The library's rule ([`Statistics::count`]), not a copy of it.
fn permanent(place: Option<Place>, retry_count: u32, max_retries: u32) -> bool {
    let mut tally = Statistics::default();
    if let Some(place) = place {
        tally.count(place, retry_count, max_retries);
    }
    tally.permanent_failures == 1
}

pub(super) use crate::inspect::place_name;

/// The place a URL names.
pub fn parse_place(name: &str) -> Option<Place> {
    Place::ALL.into_iter().find(|place| place_name(*place) == name)
}

/// One movie in a queue table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    pub title: String,
    pub year: String,
    pub place: &'static str,
    pub retry_count: u32,
    pub last_error: String,
    pub retry_after: Option<f64>,
    /// `retry_after` in words relative to now (`in 1h 2m`, `ready`).
    pub retry_in: String,
    pub permanent: bool,
}

impl Row {
    pub fn of(model: &Model, track: Track<'_>, state: &State, now: f64) -> Self {
        let (title, year) = track.label(state);
        Row {
            id: track.id().to_owned(),
            title: title.to_owned(),
            year: year.to_owned(),
            place: state.place.map_or("gone", place_name),
            retry_count: state.retry_count,
            last_error: model.error_text(state.error()).to_owned(),
            retry_after: state.retry_after(),
            retry_in: match state.retry_after() {
                Some(time) if time <= now => "ready".to_owned(),
                Some(time) => relative_time(time, now),
                None => String::new(),
            },
            permanent: permanent(state.place, state.retry_count, model.max_retries),
        }
    }

    /// The retry time as a local date-time.
    pub fn retry_time(&self) -> String {
        self.retry_after.map(local_time).unwrap_or_default()
    }

    /// The movie page's address.
    pub fn href(&self) -> String {
        format!("/movie?id={}", encode(&self.id))
    }

    /// The retry time in whole seconds, for the page's countdown.
    pub fn retry_secs(&self) -> String {
        self.retry_after.map(|time| format!("{time:.0}")).unwrap_or_default()
    }
}

/// How a queue table is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// The queue's own order.
    Queue,
    Id,
    Title,
    Retries,
    RetryAfter,
}

impl Sort {
    /// The sort a URL names (`None`: no such sort).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "queue" | "" => Sort::Queue,
            "id" => Sort::Id,
            "title" => Sort::Title,
            "retries" => Sort::Retries,
            "retry_after" => Sort::RetryAfter,
            _ => return None,
        })
    }
}

/// The movies in `place` as of record `seq` (`None`: now), in queue order.
fn members(model: &Model, place: Place, seq: Option<u64>) -> Vec<(Track<'_>, &State)> {
    let Some(seq) = seq else {
        // Now: the state's own order, no sort.
        return model
            .ids_in(place)
            .filter_map(|id| {
                let track = model.track(id)?;
                Some((track, track.now()?))
            })
            .collect();
    };
    let mut members: Vec<(Track<'_>, &State)> = model
        .tracks()
        .filter_map(|track| {
            let state = track.at(seq)?;
            (state.place == Some(place)).then_some((track, state))
        })
        .collect();
    members.sort_unstable_by_key(|(_, state)| state.key);
    members
}

/// One page of a queue table.
#[derive(Debug, Clone, Serialize)]
pub struct QueueTable {
    pub place: &'static str,
    /// Movies in the queue that match the search.
    pub total: usize,
    pub rows: Vec<Row>,
    /// Zero-based page, and the number of pages.
    pub page: usize,
    pub pages: usize,
}

impl QueueTable {
    /// The place in words (`in flight`).
    #[must_use]
    pub fn place_words(&self) -> String {
        self.place.replace('_', " ")
    }
}

/// What a queue table asks for.
#[derive(Debug, Clone)]
pub struct TableQuery {
    pub place: Place,
    pub search: String,
    pub sort: Sort,
    pub descending: bool,
    pub page: usize,
    pub per_page: usize,
}

impl QueueTable {
    /// Page `query.page` (or the last) of `total` movies, whose rows `rows` gives
    /// from the page's number and size.
    fn paged(query: &TableQuery, total: usize, rows: impl FnOnce(usize, usize) -> Vec<Row>) -> Self {
        let per_page = query.per_page.max(1);
        let pages = total.div_ceil(per_page).max(1);
        let page = query.page.min(pages - 1);
        QueueTable {
            place: place_name(query.place),
            total,
            rows: rows(page, per_page),
            page,
            pages,
        }
    }
}

/// One page of a queue now in its own order: only the page's rows are read.
fn queue_page(model: &Model, query: &TableQuery, now: f64) -> QueueTable {
    QueueTable::paged(query, model.count(query.place), |page, per_page| {
        queue_rows(model, query, now, page, per_page)
    })
}

/// The rows of page `page` of a queue now, in its own order.
fn queue_rows(model: &Model, query: &TableQuery, now: f64, page: usize, per_page: usize) -> Vec<Row> {
    let total = model.count(query.place);
    let (skip, take) = if query.descending {
        let end = total.saturating_sub(page * per_page);
        (end.saturating_sub(per_page), end - end.saturating_sub(per_page))
    } else {
        (page * per_page, per_page)
    };
    let mut rows: Vec<Row> = model
        .ids_in(query.place)
        .skip(skip)
        .take(take)
        .filter_map(|id| {
            let track = model.track(id)?;
            Some(Row::of(model, track, track.now()?, now))
        })
        .collect();
    if query.descending {
        rows.reverse();
    }
    rows
}

/// One page of a queue now, searched and sorted. A search scans the
/// model's search buffer once; a page in the queue's own order reads only
/// its own rows.
pub fn queue_table(model: &Model, query: &TableQuery) -> QueueTable {
    let needle = query.search.to_lowercase();
    let now = now();
    if needle.is_empty() && query.sort == Sort::Queue {
        return queue_page(model, query, now);
    }
    let mut members: Vec<(Track<'_>, &State)> = if needle.is_empty() {
        members(model, query.place, None)
    } else {
        let mut found: Vec<(Track<'_>, &State)> = model
            .search(&needle)
            .into_iter()
            .filter_map(|index| {
                let track = model.track_at(index)?;
                let state = track.now()?;
                (state.place == Some(query.place)).then_some((track, state))
            })
            .collect();
        found.sort_unstable_by_key(|(_, state)| state.key);
        found
    };
    match query.sort {
        Sort::Queue => {}
        Sort::Id => members.sort_by(|a, b| a.0.id().cmp(b.0.id())),
        Sort::Title => members.sort_by(|a, b| a.0.label(a.1).0.cmp(b.0.label(b.1).0)),
        Sort::Retries => members.sort_by_key(|(_, state)| state.retry_count),
        Sort::RetryAfter => members.sort_by(|a, b| {
            a.1.retry_after()
                .unwrap_or(0.0)
                .total_cmp(&b.1.retry_after().unwrap_or(0.0))
        }),
    }
    if query.descending {
        members.reverse();
    }
    QueueTable::paged(query, members.len(), |page, per_page| {
        members
            .iter()
            .skip(page * per_page)
            .take(per_page)
            .map(|&(track, state)| Row::of(model, track, state, now))
            .collect()
    })
}

/// A failure message and how many `failed` events carried it.
#[derive(Debug, Clone, Serialize)]
pub struct FailureCount {
    pub message: String,
    pub count: u64,
}

/// One bar of the events-per-hour chart.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Its first hour, Unix seconds.
    pub start: f64,
    pub events: u64,
}

/// The overview page.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub last_seq: u64,
    pub counts: Statistics,
    /// Hours per bar (1 unless the journal spans more than [`BARS_MAX`] hours).
    pub hours_per_bar: i64,
    pub buckets: Vec<Bucket>,
    pub failures: Vec<FailureCount>,
    /// The failed movies due soonest (permanent failures left out).
    pub next_retries: Vec<Row>,
    pub recent: Vec<EventView>,
}

/// The most bars the chart draws.
pub const BARS_MAX: i64 = 120;

/// How many rows the overview's short lists have.
const SHORT_LIST: usize = 10;

/// The overview, as of now.
pub fn overview(model: &Model) -> Overview {
    let mut failures: Vec<FailureCount> = model
        .errors
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(message, count)| FailureCount {
            message: message.clone(),
            count: *count,
        })
        .collect();
    failures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.message.cmp(&b.message)));
    failures.truncate(SHORT_LIST);
    let now = now();
    let mut due: Vec<(Track<'_>, &State)> = members(model, Place::Failed, None)
        .into_iter()
        .filter(|(_, state)| !permanent(state.place, state.retry_count, model.max_retries))
        .collect();
    due.sort_by(|a, b| {
        a.1.retry_after()
            .unwrap_or(0.0)
            .total_cmp(&b.1.retry_after().unwrap_or(0.0))
    });
    let (hours_per_bar, buckets) = buckets(model);
    Overview {
        last_seq: model.last_seq(),
        counts: model.statistics(),
        hours_per_bar,
        buckets,
        failures,
        next_retries: due
            .iter()
            .take(SHORT_LIST)
            .map(|&(track, state)| Row::of(model, track, state, now))
            .collect(),
        recent: model.recent.iter().rev().map(EventView::of).collect(),
    }
}

/// The events per hour over the journal's life, in at most [`BARS_MAX`]
/// bars (several hours a bar for a long journal).
fn buckets(model: &Model) -> (i64, Vec<Bucket>) {
    let (Some((&first, _)), Some((&last, _))) = (model.hours.first_key_value(), model.hours.last_key_value()) else {
        return (1, Vec::new());
    };
    let span = last - first + 1;
    let width = (span + BARS_MAX - 1) / BARS_MAX;
    let bars = usize::try_from((span + width - 1) / width).unwrap_or(0);
    let mut buckets: Vec<Bucket> = (0..bars)
        .map(|bar| {
            let hour = first + i64::try_from(bar).unwrap_or(0) * width;
            #[expect(clippy::cast_precision_loss, reason = "an hour number far inside f64's range")]
            let start = (hour * 3600) as f64;
            Bucket { start, events: 0 }
        })
        .collect();
    for (&hour, &count) in &model.hours {
        if let Some(bucket) = usize::try_from((hour - first) / width)
            .ok()
            .and_then(|bar| buckets.get_mut(bar))
        {
            bucket.events += count;
        }
    }
    (width, buckets)
}

/// One event as the pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub seq: u64,
    pub ts: f64,
    /// `ts` as a local date-time.
    pub time: String,
    pub kind: &'static str,
    /// The ids it concerns (at most a few; `ids_more` says how many more).
    pub ids: Vec<String>,
    pub ids_more: usize,
    /// One line, as `movie-queue log` shows it after the id.
    pub summary: String,
    /// The line of `movie-queue log --json`.
    pub json: serde_json::Value,
}

/// How many ids of one event a page lists.
const IDS_SHOWN: usize = 5;

impl EventView {
    /// The view of one record.
    pub fn of(record: &EventRecord) -> Self {
        let ids: Vec<&str> = record.event.ids().collect();
        EventView {
            seq: record.seq.0,
            ts: record.ts,
            time: local_time(record.ts),
            kind: record.event.kind(),
            ids: ids.iter().take(IDS_SHOWN).map(|&id| id.to_owned()).collect(),
            ids_more: ids.len().saturating_sub(IDS_SHOWN),
            summary: event_summary(&record.event),
            json: event_json(record),
        }
    }

    /// The ids it concerns with their movie pages' addresses.
    pub fn id_links(&self) -> Vec<(&str, String)> {
        self.ids
            .iter()
            .map(|id| (id.as_str(), format!("/movie?id={}", encode(id))))
            .collect()
    }

    /// The JSON line, pretty-printed, a line each (a page writes the line
    /// breaks itself: the escaper shows a control character in a value as
    /// `\n`).
    pub fn pretty_lines(&self) -> Vec<String> {
        serde_json::to_string_pretty(&self.json)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// One movie whose place differs between two records.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub id: String,
    pub title: String,
    pub before: &'static str,
    pub after: &'static str,
}

/// One queue as of a record: its first rows and its size.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub place: &'static str,
    pub total: usize,
    pub rows: Vec<Row>,
}

/// The time-travel page: the queues as of record `seq`, and what changed
/// since record `previous`.
#[derive(Debug, Clone, Serialize)]
pub struct Travel {
    pub seq: u64,
    pub ts: Option<f64>,
    pub time: String,
    pub previous: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_ts: f64,
    pub last_ts: f64,
    pub counts: Statistics,
    pub counts_before: Statistics,
    pub queues: Vec<Snapshot>,
    /// The movies whose place changed (the latest first, at most [`CHANGES_SHOWN`]).
    pub changes: Vec<Change>,
    pub changes_total: usize,
    /// The events between the two records (at most [`CHANGES_SHOWN`]).
    pub events_between: u64,
}

impl Travel {
    /// "(N records, M movies moved)", each noun as its count wants it.
    #[must_use]
    pub fn between_words(&self) -> String {
        format!(
            "{}, {} moved",
            crate::output::counted(self.events_between, "record", "records"),
            crate::output::counted(self.changes_total as u64, "movie", "movies")
        )
    }
}

/// How many changes the page lists.
pub const CHANGES_SHOWN: usize = 100;

/// How many rows of each queue the page lists.
const TRAVEL_ROWS: usize = 20;

/// The time-travel view: `seq` and `previous` are clamped to what the
/// timeline holds. One pass over the movies finds each one's state at
/// both records; only each queue's first rows are put in order.
pub fn travel(model: &Model, seq: u64, previous: u64) -> Travel {
    let (first, last) = (model.first_seq(), model.last_seq());
    let seq = seq.clamp(first, last);
    let previous = previous.clamp(first, last);
    let (mut then, mut before) = (Statistics::default(), Statistics::default());
    let mut members: [Vec<(super::model::OrderKey, u32)>; 5] = Default::default();
    for track in model.tracks() {
        if let Some(state) = track.at(seq)
            && let Some(place) = state.place
        {
            then.count(place, state.retry_count, model.max_retries);
            members[place as usize].push((state.key, track.index()));
        }
        if let Some(state) = track.at(previous)
            && let Some(place) = state.place
        {
            before.count(place, state.retry_count, model.max_retries);
        }
    }
    let now = now();
    let queues = Place::ALL
        .into_iter()
        .zip(members)
        .map(|(place, mut members)| {
            let total = members.len();
            if members.len() > TRAVEL_ROWS {
                members.select_nth_unstable(TRAVEL_ROWS);
                members.truncate(TRAVEL_ROWS);
            }
            members.sort_unstable();
            let rows = members
                .iter()
                .filter_map(|&(_, index)| {
                    let track = model.track_at(index)?;
                    Some(Row::of(model, track, track.at(seq)?, now))
                })
                .collect();
            Snapshot {
                place: place_name(place),
                total,
                rows,
            }
        })
        .collect();
    let (changes, changes_total) = changes(model, previous, seq);
    let ts = model.time_of(seq);
    Travel {
        seq,
        ts,
        time: ts.map(local_time).unwrap_or_default(),
        previous,
        first_seq: first,
        last_seq: last,
        first_ts: model.events.first().map_or(0.0, |meta| meta.ts.floor()),
        last_ts: model.events.last().map_or(0.0, |meta| meta.ts.ceil()),
        counts: then,
        counts_before: before,
        queues,
        changes,
        changes_total,
        events_between: seq.abs_diff(previous),
    }
}

/// The movies whose place differs between record `from` (the step before)
/// and record `to` (the one shown), either way in time: "before" is at
/// `from`, "after" at `to`. The latest change in the span first.
fn changes(model: &Model, from: u64, to: u64) -> (Vec<Change>, usize) {
    let start = model.states.partition_point(|state| state.seq <= from.min(to));
    let end = model.states.partition_point(|state| state.seq <= from.max(to));
    let mut seen = std::collections::HashSet::new();
    let mut changes = Vec::new();
    let mut total = 0;
    for changed in model.states.get(start..end).unwrap_or_default().iter().rev() {
        if !seen.insert(changed.track) {
            continue;
        }
        let Some(track) = model.track_at(changed.track) else {
            continue;
        };
        let before = track.at(from).and_then(|state| state.place);
        let after_state = track.at(to);
        let after = after_state.and_then(|state| state.place);
        if before == after {
            continue;
        }
        total += 1;
        if changes.len() < CHANGES_SHOWN {
            changes.push(Change {
                id: track.id().to_owned(),
                title: after_state
                    .or_else(|| track.at(from))
                    .map(|state| track.label(state).0.to_owned())
                    .unwrap_or_default(),
                before: before.map_or("(not in the store)", place_name),
                after: after.map_or("(not in the store)", place_name),
            });
        }
    }
    (changes, total)
}

/// `text` percent-encoded for a URL's query (everything but the unreserved
/// characters), so an id such as `a&b=c` or `"><script>` is one value.
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}
