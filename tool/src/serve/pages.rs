//! The pages: one askama template each (`templates/`, checked at compile
//! time, every value HTML-escaped), over the same views the JSON
//! endpoints return.

use askama::Template;

use super::chart::{self, Bar};
use super::health::Health;
use super::history::{Journal, MovieView, place_names};
use super::views::{Overview, QueueTable, Travel, encode};

/// The navigation's entries: (address, label).
pub const NAV: [(&str, &str); 6] = [
    ("/", "Overview"),
    ("/queues", "Queues"),
    ("/journal", "Journal"),
    ("/travel", "Time travel"),
    ("/health", "Health"),
    ("/api/overview", "JSON"),
];

/// The templates' escaper (set in `askama.toml`): HTML escaping, after
/// control characters and text-direction overrides are made visible as
/// the command line shows them (`\x1b`, `\u{202e}`), so ids that differ
/// only by one cannot look alike and a page saved to a terminal cannot
/// drive it.
#[derive(Debug, Clone, Copy)]
pub struct Visible;

impl askama::filters::Escaper for Visible {
    fn write_escaped_str<W: std::fmt::Write>(&self, dest: W, string: &str) -> std::fmt::Result {
        askama::filters::Html.write_escaped_str(dest, &crate::output::safe(string))
    }
}

/// Is `href` the navigation entry of the page `nav`?
pub fn current(href: &str, nav: &str) -> bool {
    href == nav
}

/// One row of the latest events: the overview renders each with it, and
/// the live feed sends each new one rendered with it (`row`), so a row
/// added live is the row a page load shows.
#[derive(Template)]
#[template(path = "event_row.html")]
pub struct EventRow<'a> {
    pub event: &'a super::views::EventView,
}

/// `/`.
#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub nav: &'static str,
    pub view: Overview,
    pub bars: Vec<Bar>,
    pub chart_width: u32,
    pub chart_height: u32,
    pub chart_from: String,
    pub chart_to: String,
}

impl OverviewPage {
    /// The overview page of `view`.
    pub fn new(view: Overview) -> Self {
        let bars = chart::bars(&view.buckets, view.hours_per_bar);
        let (chart_from, chart_to) = chart::axis(&view.buckets, view.hours_per_bar);
        OverviewPage {
            nav: "/",
            chart_from,
            chart_to,
            view,
            bars,
            chart_width: chart::WIDTH,
            chart_height: chart::HEIGHT,
        }
    }
}

/// A link of a queue page: (address, label, is it the current one).
pub type Link = (String, String, bool);

/// `/queues`.
#[derive(Template)]
#[template(path = "queues.html")]
pub struct QueuesPage {
    pub nav: &'static str,
    pub table: QueueTable,
    pub search: String,
    /// One tab per queue, with its count.
    pub tabs: Vec<Link>,
    /// The column headers' sort links.
    pub sorts: Vec<Link>,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl QueuesPage {
    /// The page of `table`; `counts` per place as [`place_names`].
    pub fn new(table: QueueTable, search: String, sort: &str, descending: bool, counts: [usize; 5]) -> Self {
        let href = |place: &str, sort: &str, descending: bool, page: usize| {
            format!(
                "/queues?place={place}&q={}&sort={sort}&desc={}&page={page}",
                encode(&search),
                u8::from(descending)
            )
        };
        let tabs = place_names()
            .iter()
            .zip(counts)
            .map(|(place, count)| {
                (
                    href(place, "queue", false, 0),
                    format!("{} ({count})", place.replace('_', " ")),
                    *place == table.place,
                )
            })
            .collect();
        let sorts = [
            ("queue", "#"),
            ("id", "id"),
            ("title", "title"),
            ("retries", "retries"),
            ("retry_after", "retry after"),
        ]
        .iter()
        .map(|(key, label)| {
            let current = *key == sort;
            let arrow = match (current, descending) {
                (true, false) => " ▲",
                (true, true) => " ▼",
                _ => "",
            };
            (
                href(table.place, key, current && !descending, 0),
                format!("{label}{arrow}"),
                current,
            )
        })
        .collect();
        let previous = (table.page > 0).then(|| href(table.place, sort, descending, table.page - 1));
        let next = (table.page + 1 < table.pages).then(|| href(table.place, sort, descending, table.page + 1));
        QueuesPage {
            nav: "/queues",
            table,
            search,
            tabs,
            sorts,
            previous,
            next,
        }
    }
}

/// `/movie?id=ID`.
#[derive(Template)]
#[template(path = "movie.html")]
pub struct MoviePage {
    pub nav: &'static str,
    pub view: MovieView,
    pub journal: String,
    /// `--allow-actions` with a holder that answers: what can be done.
    pub buttons: Vec<super::actions::Button>,
    /// The token the buttons' requests carry (empty without buttons).
    pub csrf: String,
}

impl MoviePage {
    /// The page of `view`, with `buttons` that carry `csrf`.
    pub fn new(view: MovieView, buttons: Vec<super::actions::Button>, csrf: String) -> Self {
        MoviePage {
            nav: "",
            journal: format!("/journal?id={}", encode(&view.id)),
            view,
            buttons,
            csrf,
        }
    }
}

/// `/journal`.
#[derive(Template)]
#[template(path = "journal.html")]
pub struct JournalPage {
    pub nav: &'static str,
    pub view: Journal,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl JournalPage {
    /// The page of `view`.
    pub fn new(view: Journal) -> Self {
        let href = |from: u64| {
            format!(
                "/journal?from={from}&kind={}&id={}",
                encode(&view.kind),
                encode(&view.id)
            )
        };
        JournalPage {
            nav: "/journal",
            previous: view.previous_from.map(href),
            next: view.next_from.map(href),
            view,
        }
    }
}

/// `/travel`.
#[derive(Template)]
#[template(path = "travel.html")]
pub struct TravelPage {
    pub nav: &'static str,
    pub view: Travel,
    /// `seq` or `time`: what the slider moves over.
    pub mode: &'static str,
    pub step: u64,
    /// The slider's range and position in its mode's units.
    pub slider_min: String,
    pub slider_max: String,
    pub slider_value: String,
    /// Steps back and forward: (address, label).
    pub steps: Vec<(String, String)>,
    /// (label, count now, change since the previous step).
    pub counts: Vec<(&'static str, usize, String)>,
}

impl TravelPage {
    /// The page of `view`; `step` records a step.
    pub fn new(view: Travel, time_mode: bool, step: u64) -> Self {
        let mode = if time_mode { "time" } else { "seq" };
        let (slider_min, slider_max, slider_value) = if time_mode {
            // The record's own time, to the microsecond (the slider steps
            // by any amount): it sits where the page says it is.
            let value = view.ts.unwrap_or(view.first_ts);
            (
                format!("{:.0}", view.first_ts),
                format!("{:.0}", view.last_ts),
                format!("{value:.6}"),
            )
        } else {
            (
                view.first_seq.to_string(),
                view.last_seq.to_string(),
                view.seq.to_string(),
            )
        };
        let target = |seq: u64| format!("/travel?seq={seq}&prev={}&step={step}&mode={mode}", view.seq);
        let mut steps = Vec::new();
        for (label, seq) in [
            ("« first", Some(view.first_seq)),
            ("◀ back", view.seq.checked_sub(step)),
            ("forward ▶", view.seq.checked_add(step)),
            ("last »", Some(view.last_seq)),
        ] {
            if let Some(seq) = seq {
                steps.push((target(seq.clamp(view.first_seq, view.last_seq)), label.to_owned()));
            }
        }
        let counts = super::views::labelled(&view.counts)
            .iter()
            .zip(super::views::labelled(&view.counts_before))
            .map(|((label, now), (_, before))| {
                let delta = i64::try_from(*now).unwrap_or(0) - i64::try_from(before).unwrap_or(0);
                let delta = if delta == 0 {
                    String::new()
                } else {
                    format!("{delta:+}")
                };
                (*label, *now, delta)
            })
            .collect();
        TravelPage {
            nav: "/travel",
            mode,
            step,
            slider_min,
            slider_max,
            slider_value,
            steps,
            counts,
            view,
        }
    }
}

/// `/health`.
#[derive(Template)]
#[template(path = "health.html")]
pub struct HealthPage {
    pub nav: &'static str,
    pub health: Health,
}

/// A page for an error: its status line and message.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub nav: &'static str,
    pub title: String,
    pub message: String,
}
