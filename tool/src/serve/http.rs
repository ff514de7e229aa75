//! The routes: every page (`GET`, HTML) and the JSON endpoint behind it
//! (`/api/...`), the live feed (server-sent events), and the two embedded
//! assets. Only `GET` (and `HEAD`) is served, and with `--allow-actions`
//! `POST /api/action` (`actions.rs`), which asks the process holding the
//! store: nothing here writes to the store itself.

use std::convert::Infallible;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::App;
use super::health::Health;
use super::history::{self, JournalQuery};
use super::pages::{ErrorPage, HealthPage, JournalPage, MoviePage, OverviewPage, QueuesPage, TravelPage};
use super::views::{self, Sort, TableQuery};

/// The dashboard's script and style, compiled into the binary.
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// Rows a queue page lists.
const QUEUE_ROWS: usize = 50;
/// Events a journal page lists.
const JOURNAL_ROWS: usize = 50;

/// Every route of the dashboard.
pub fn router(app: Arc<App>) -> Router {
    let router = if app.actions.is_some() {
        Router::new().route("/api/action", post(super::actions::act))
    } else {
        Router::new()
    };
    router
        .route("/", get(overview_page))
        .route("/queues", get(queues_page))
        .route("/movie", get(movie_page))
        .route("/journal", get(journal_page))
        .route("/travel", get(travel_page))
        .route("/health", get(health_page))
        .route("/api/overview", get(overview_json))
        .route("/api/stats", get(stats_json))
        .route("/api/queues", get(queues_json))
        .route("/api/movie", get(movie_json))
        .route("/api/journal", get(journal_json))
        .route("/api/travel", get(travel_json))
        .route("/api/health", get(health_json))
        .route("/api/live", get(live))
        .route(
            "/api/status",
            get(|| async { Json(super::status::get()).into_response() }),
        )
        .route("/metrics", get(metrics))
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .fallback(|| async { failure(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            super::security::guard,
        ))
        .with_state(app)
}

/// `/metrics`, in the Prometheus text format.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    // It lists the journal folder: off the runtime's threads.
    let text = tokio::task::spawn_blocking(move || super::metrics::render(&app))
        .await
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A request refused or failed: its status and why (shown as a page).
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        failure(self.0, &self.1)
    }
}

/// An error as a page (its message escaped like every value); under
/// `/api/` the guard (`security.rs`) answers it as JSON instead, from the
/// message this carries.
fn failure(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        nav: "",
        title: status.to_string(),
        message: message.to_owned(),
    };
    let mut response = (status, html(&page)).into_response();
    response
        .extensions_mut()
        .insert(super::security::ErrorMessage(message.to_owned()));
    response
}

fn html(page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => Html(body).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering failed: {error}\n"),
        )
            .into_response(),
    }
}

/// What reading the journal met.
fn journal_error(error: &movie_queue::Error) -> Refusal {
    Refusal(StatusCode::INTERNAL_SERVER_ERROR, crate::describe(error))
}

async fn overview_page(State(app): State<Arc<App>>) -> Response {
    let view = views::overview(&app.model());
    html(&OverviewPage::new(view))
}

async fn overview_json(State(app): State<Arc<App>>) -> Response {
    Json(views::overview(&app.model())).into_response()
}

async fn stats_json(State(app): State<Arc<App>>) -> Response {
    Json(app.model().statistics()).into_response()
}

/// `?place=failed&q=matrix&sort=title&desc=1&page=0`.
#[derive(Debug, Deserialize)]
struct QueueParams {
    place: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    desc: Option<String>,
    page: Option<usize>,
}

impl QueueParams {
    fn query(&self) -> Result<TableQuery, Refusal> {
        let name = self.place.as_deref().unwrap_or("pending");
        let Some(place) = views::parse_place(name) else {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                "place is one of pending, in_flight, failed, completed, removed".to_owned(),
            ));
        };
        let refuse = |message: &str| Err(Refusal(StatusCode::BAD_REQUEST, message.to_owned()));
        let Some(sort) = Sort::parse(self.sort.as_deref().unwrap_or("queue")) else {
            return refuse("sort is one of queue, id, title, retries, retry_after");
        };
        let descending = match self.desc.as_deref().unwrap_or("") {
            "" | "0" | "false" => false,
            "1" | "true" => true,
            _ => return refuse("desc is 1 or true (descending), 0 or false"),
        };
        Ok(TableQuery {
            place,
            search: self.q.clone().unwrap_or_default(),
            sort,
            descending,
            page: self.page.unwrap_or(0),
            per_page: QUEUE_ROWS,
        })
    }
}

async fn queues_page(State(app): State<Arc<App>>, Query(params): Query<QueueParams>) -> Response {
    let query = match params.query() {
        Ok(query) => query,
        Err(refusal) => return refusal.into_response(),
    };
    let (table, counts) = {
        let model = app.model();
        (
            views::queue_table(&model, &query),
            movie_queue::Place::ALL.map(|place| model.count(place)),
        )
    };
    let sort = params.sort.as_deref().unwrap_or("queue");
    html(&QueuesPage::new(table, query.search, sort, query.descending, counts))
}

async fn queues_json(State(app): State<Arc<App>>, Query(params): Query<QueueParams>) -> Response {
    match params.query() {
        Ok(query) => Json(views::queue_table(&app.model(), &query)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct MovieParams {
    id: String,
}

fn movie_view(app: &App, id: &str) -> Result<history::MovieView, Refusal> {
    match history::movie(&app.dir, &app.model(), id) {
        Ok(Some(view)) => Ok(view),
        Ok(None) => Err(Refusal(
            StatusCode::NOT_FOUND,
            format!("no movie with id {} in the journal", crate::output::quoted(id)),
        )),
        Err(error) => Err(journal_error(&error)),
    }
}

async fn movie_page(State(app): State<Arc<App>>, Query(params): Query<MovieParams>) -> Response {
    match movie_view(&app, &params.id) {
        Ok(view) => {
            // Asking whether a holder answers may wait (3 s for a stuck one): off the runtime's threads.
            let (asking, place) = (Arc::clone(&app), view.now.place);
            let buttons = tokio::task::spawn_blocking(move || super::actions::buttons(&asking, place))
                .await
                .unwrap_or_default();
            let csrf = app
                .actions
                .as_ref()
                .map(|actions| actions.csrf().to_owned())
                .unwrap_or_default();
            html(&MoviePage::new(view, buttons, csrf))
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn movie_json(State(app): State<Arc<App>>, Query(params): Query<MovieParams>) -> Response {
    match movie_view(&app, &params.id) {
        Ok(view) => Json(view).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `?from=SEQ&kind=failed&id=603&time=2025-10-18T12:00:00Z` (an empty
/// box of the page's form sends an empty value: as if absent).
#[derive(Debug, Deserialize)]
struct JournalParams {
    from: Option<String>,
    kind: Option<String>,
    id: Option<String>,
    time: Option<String>,
}

fn journal_view(app: &App, params: &JournalParams) -> Result<history::Journal, Refusal> {
    let model = app.model();
    let from = match params.time.as_deref().filter(|time| !time.is_empty()) {
        Some(time) => match parse_time(time) {
            Some(time) => model.seq_at_time(time),
            None => {
                return Err(Refusal(
                    StatusCode::BAD_REQUEST,
                    "time is Unix seconds or a date-time such as 2025-10-18T12:00:00Z".to_owned(),
                ));
            }
        },
        None => match params.from.as_deref().map(str::trim).filter(|from| !from.is_empty()) {
            None => 0,
            Some(from) => from.parse().map_err(|_| {
                Refusal(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "from is a record number ({} to {}), or leave it empty",
                        model.first_seq(),
                        model.last_seq()
                    ),
                )
            })?,
        },
    };
    let kind = params.kind.clone().unwrap_or_default();
    if !kind.is_empty() && !super::model::KINDS.contains(&kind.as_str()) {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("kind is one of {}, or empty for any", super::model::KINDS.join(", ")),
        ));
    }
    let query = JournalQuery {
        from,
        kind,
        id: params.id.clone().unwrap_or_default(),
        per_page: JOURNAL_ROWS,
    };
    history::journal(&app.dir, &model, &query).map_err(|error| journal_error(&error))
}

/// Unix seconds, or an RFC 3339 date-time.
fn parse_time(text: &str) -> Option<f64> {
    if let Ok(secs) = text.parse::<f64>() {
        return secs.is_finite().then_some(secs);
    }
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    #[expect(clippy::cast_precision_loss, reason = "microseconds since 1970 fit f64's precision")]
    Some(time.timestamp_micros() as f64 / 1e6)
}

async fn journal_page(State(app): State<Arc<App>>, Query(params): Query<JournalParams>) -> Response {
    match journal_view(&app, &params) {
        Ok(view) => html(&JournalPage::new(view)),
        Err(refusal) => refusal.into_response(),
    }
}

async fn journal_json(State(app): State<Arc<App>>, Query(params): Query<JournalParams>) -> Response {
    match journal_view(&app, &params) {
        Ok(view) => Json(view).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `?seq=N` or `?time=T`, `&prev=M` (the step before), `&step=K`,
/// `&mode=seq|time`; each is read as text and checked here, so a refusal
/// names the range it must be in.
#[derive(Debug, Deserialize)]
struct TravelParams {
    seq: Option<String>,
    time: Option<String>,
    prev: Option<String>,
    step: Option<String>,
    mode: Option<String>,
}

/// The records a time-travel step moves by default.
const STEP: u64 = 1;

/// A present, non-empty parameter.
fn given(value: Option<&String>) -> Option<&str> {
    value.map(|value| value.trim()).filter(|value| !value.is_empty())
}

/// The travel target and step `params` name, checked against what the
/// timeline holds: a record from its first to its last, a time from its
/// first event's to its last's (Unix seconds or RFC 3339), a step of at
/// least 1.
fn travel_target(model: &super::model::Model, params: &TravelParams) -> Result<(u64, u64, u64), Refusal> {
    let (first, last) = (model.first_seq(), model.last_seq());
    let records = || format!("a record number from {first} to {last}");
    let refuse = |message: String| Refusal(StatusCode::BAD_REQUEST, message);
    let record = |name: &str, value: &str| match value.parse::<u64>() {
        Ok(seq) if (first..=last).contains(&seq) => Ok(seq),
        _ => Err(refuse(format!("{name} must be {}; got {value:?}", records()))),
    };
    let step = match given(params.step.as_ref()) {
        None => STEP,
        Some(step) => match step.parse::<u64>() {
            Ok(step) if step >= 1 => step,
            _ => {
                return Err(refuse(format!(
                    "step must be a whole number of records, 1 or more; got {step:?}"
                )));
            }
        },
    };
    let seq = match (given(params.seq.as_ref()), given(params.time.as_ref())) {
        (Some(seq), _) => record("seq", seq)?,
        (None, Some(time)) => {
            let (from, to) = (
                model.events.first().map_or(0.0, |meta| meta.ts.floor()),
                model.events.last().map_or(0.0, |meta| meta.ts.ceil()),
            );
            match parse_time(time) {
                Some(secs) if (from..=to).contains(&secs) => model.seq_at_time(secs),
                _ => {
                    return Err(refuse(format!(
                        "time must be from {} to {} (Unix seconds {from:.0} to {to:.0}, or an RFC 3339 date-time); got {time:?}",
                        crate::output::local_time(from),
                        crate::output::local_time(to)
                    )));
                }
            }
        }
        (None, None) => last,
    };
    // The step before is where the page came from: kept in range (a
    // compaction may have moved the start since), refused only when it is
    // not a number.
    let previous = match given(params.prev.as_ref()) {
        Some(prev) => prev
            .parse::<u64>()
            .map_err(|_| refuse(format!("prev must be {}; got {prev:?}", records())))?
            .clamp(first, last),
        None => seq.saturating_sub(step).max(first),
    };
    Ok((seq, previous, step))
}

fn travel_view(app: &App, params: &TravelParams) -> Result<(views::Travel, u64), Refusal> {
    let model = app.model();
    let (seq, previous, step) = travel_target(&model, params)?;
    Ok((views::travel(&model, seq, previous), step))
}

async fn travel_page(State(app): State<Arc<App>>, Query(params): Query<TravelParams>) -> Response {
    match travel_view(&app, &params) {
        Ok((view, step)) => {
            let time_mode = params.mode.as_deref() == Some("time");
            html(&TravelPage::new(view, time_mode, step))
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn travel_json(State(app): State<Arc<App>>, Query(params): Query<TravelParams>) -> Response {
    match travel_view(&app, &params) {
        Ok((view, _)) => Json(view).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn checked(app: Arc<App>) -> Result<Health, Refusal> {
    tokio::task::spawn_blocking(move || {
        let health = super::health::shared(&app.dir);
        super::metrics::report(&app, &health);
        health
    })
    .await
    .map_err(|_| Refusal(StatusCode::INTERNAL_SERVER_ERROR, "verify stopped".to_owned()))
}

async fn health_page(State(app): State<Arc<App>>) -> Response {
    match checked(app).await {
        Ok(health) => html(&HealthPage { nav: "/health", health }),
        Err(refusal) => refusal.into_response(),
    }
}

async fn health_json(State(app): State<Arc<App>>) -> Response {
    match checked(app).await {
        Ok(health) => Json(health).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The live feed, from the moment of connecting: `hello` (`{last_seq,
/// shown}`: the indicator's words and the banner's lines), then at most ten times a second a `records` event with the
/// newest records applied since the last (`{records: [{event, row}],
/// omitted, last_seq, counts, shown}`: at most 12, `omitted` the older
/// ones not sent), a
/// `status` event when the server's view of the store changes
/// (`status.rs`), and `lagged` (`{missed}`) when this client read too
/// slowly and records were dropped for it (the page reads the counts
/// again; the feed goes on).
async fn live(State(app): State<Arc<App>>, client: Option<axum::Extension<super::listen::Client>>) -> Response {
    // A request without its address (none here: every connection has one)
    // counts as the unspecified address's.
    let client = client.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |axum::Extension(client)| {
        client.0
    });
    let Some(place) = LIVE.admit(client) else {
        return Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many live feeds open ({LIVE_MAX} in all, {LIVE_PER_CLIENT} from one address); the pages work without one"
            ),
        )
        .into_response();
    };
    // Subscribed first: no record falls between the greeting and the feed.
    let receiver = app.live.subscribe();
    let hello = serde_json::json!({ "last_seq": app.model().last_seq(), "shown": super::status::shown() }).to_string();
    let first = tokio_stream::once(Ok(Event::default().event("hello").data(hello)));
    let records = BroadcastStream::new(receiver).map(move |message| {
        // The feed's place is given back when the stream is dropped.
        let _place = &place;
        Ok::<_, Infallible>(match message {
            Ok((name, data)) => Event::default().event(name).data(data),
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(missed)) => Event::default()
                .event("lagged")
                .data(serde_json::json!({ "missed": missed }).to_string()),
        })
    });
    Sse::new(first.chain(records))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Live feeds open at once: they never end, so they are capped apart
/// from other connections, which stay free for pages and the API.
const LIVE_MAX: usize = 64;
/// Live feeds open at once from one address.
const LIVE_PER_CLIENT: usize = 8;

/// The live feeds open.
static LIVE: std::sync::LazyLock<super::listen::Caps> =
    std::sync::LazyLock::new(|| super::listen::Caps::new(LIVE_MAX, LIVE_PER_CLIENT));
