//! `movie-queue serve` on a store that is damaged, compacted or replaced
//! underneath it, its strict edges (API errors as JSON, travel targets
//! checked), and `/metrics` read by a real Prometheus text-format parser.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use movie_queue::{Durability, Movie, Options};

use crate::support::cli::{mq, stats};
use crate::support::http::{PATIENCE, Response, get, serve};

fn demo() -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    mq(&dir, &["demo"]).ok();
    (scratch, dir)
}

/// Asks `path` until `done` holds for the answer (within [`PATIENCE`]).
fn wait_for(addr: std::net::SocketAddr, path: &str, done: impl Fn(&Response) -> bool) -> Response {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = get(addr, path);
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|sample| sample.metric == name && label.is_none_or(|(key, value)| sample.labels.get(key) == Some(value)))
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(value)
            | prometheus_parse::Value::Gauge(value)
            | prometheus_parse::Value::Untyped(value) => value,
            _ => f64::NAN,
        })
}

#[test]
fn metrics_parse_as_prometheus_text_and_agree_with_the_store() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    // The verify and the lag are measured by the server's own threads, soon after it starts.
    let answer = wait_for(server.addr, "/metrics", |answer| {
        answer.body.contains("movie_queue_verify_ok") && answer.body.contains("movie_queue_follower_lag_records")
    });
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{answer:#?}"
    );
    let scrape = parse_metrics(&answer.body);
    let names: std::collections::BTreeSet<&str> = scrape.samples.iter().map(|sample| sample.metric.as_str()).collect();
    for name in &names {
        assert!(scrape.docs.contains_key(*name), "{name} has its HELP");
    }
    for name in [
        "movie_queue_movies",
        "movie_queue_permanent_failures",
        "movie_queue_events_total",
        "movie_queue_last_record",
        "movie_queue_last_record_age_seconds",
        "movie_queue_journal_bytes",
        "movie_queue_snapshot_age_seconds",
        "movie_queue_verify_ok",
        "movie_queue_follower_up",
        "movie_queue_follower_lag_records",
    ] {
        assert!(names.contains(name), "{name} is served: {names:?}");
    }
    let counts = stats(&dir);
    for queue in ["pending", "in_flight", "failed", "completed", "removed"] {
        assert_eq!(
            sample(&scrape, "movie_queue_movies", Some(("queue", queue))),
            Some(counts[queue].as_f64().unwrap()),
            "{queue}"
        );
    }
    assert_eq!(sample(&scrape, "movie_queue_verify_ok", None), Some(1.0));
    let overview = get(server.addr, "/api/overview").json();
    assert_eq!(
        sample(&scrape, "movie_queue_last_record", None),
        overview["last_seq"].as_f64()
    );
    let added = sample(&scrape, "movie_queue_events_total", Some(("kind", "added"))).unwrap();
    assert!(added > 0.0, "events by kind are counted");
    // A write moves them.
    mq(
        &dir,
        &["add", "--id", "metric-1", "--title", "Counted", "--year", "2024"],
    )
    .ok();
    let later = wait_for(server.addr, "/metrics", |answer| {
        sample(
            &parse_metrics(&answer.body),
            "movie_queue_events_total",
            Some(("kind", "added")),
        ) == Some(added + 1.0)
    });
    let scrape = parse_metrics(&later.body);
    assert_eq!(
        sample(&scrape, "movie_queue_movies", Some(("queue", "pending"))),
        Some(counts["pending"].as_f64().unwrap() + 1.0)
    );
}

#[test]
fn metrics_need_the_token_like_every_page() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &["--token", "3f9c2b7a1e8d4c6b9a0f5e2d7c1b8a4e"]);
    assert_eq!(get(server.addr, "/metrics").status, 401);
    let answer = crate::support::http::request(
        "GET",
        server.addr,
        "/metrics",
        &[("Authorization", "Bearer 3f9c2b7a1e8d4c6b9a0f5e2d7c1b8a4e")],
    );
    assert_eq!(answer.status, 200);
}

#[test]
fn api_errors_are_json_and_travel_targets_outside_the_range_are_refused_naming_it() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    let last = get(server.addr, "/api/overview").json()["last_seq"].as_u64().unwrap();
    for (path, status, words) in [
        ("/api/travel?time=NaN", 400, "time must be from".to_owned()),
        ("/api/travel?time=-5", 400, "time must be from".to_owned()),
        ("/api/travel?time=99999999999", 400, "time must be from".to_owned()),
        (
            "/api/travel?seq=99999999",
            400,
            format!("a record number from 0 to {last}"),
        ),
        ("/api/travel?seq=-1", 400, format!("a record number from 0 to {last}")),
        ("/api/travel?seq=2&step=0", 400, "step must be".to_owned()),
        ("/api/journal?from=abc", 400, format!("a record number (0 to {last})")),
        ("/api/movie", 400, "id".to_owned()),
        ("/api/movie?id=nobody", 404, "no movie with id".to_owned()),
        ("/api/nothing-here", 404, "no such page".to_owned()),
        ("/api/queues?place=attic", 400, "place is one of".to_owned()),
        ("/api/queues?sort=bogus", 400, "sort is one of".to_owned()),
        ("/api/queues?desc=2", 400, "desc is 1 or true".to_owned()),
        ("/api/journal?kind=bogus", 400, "kind is one of".to_owned()),
    ] {
        let answer = get(server.addr, path);
        assert_eq!(answer.status, status, "{path}: {answer:#?}");
        let body = answer.json();
        assert_eq!(body["status"], status, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains(&words), "{path}: {body}");
    }
    // The pages keep their HTML errors; the form's empty record box is no error.
    let page = get(server.addr, "/travel?seq=99999999");
    assert_eq!(page.status, 400);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let jump = get(server.addr, "/journal?kind=&id=&from=&time=2000-01-01T00:00:00Z");
    assert_eq!(jump.status, 200, "{jump:#?}");
    assert_eq!(get(server.addr, &format!("/api/travel?seq={last}")).status, 200);
}

/// Flips one byte inside the `n`-th record's payload of the first segment.
fn damage_record(dir: &Path, needle: &[u8]) {
    let segment = dir.join("journal").join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(needle.len()).position(|window| window == needle).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
}

#[test]
fn serve_starts_on_a_damaged_store_shows_how_far_it_reads_and_health_names_the_damage() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    for id in 1..=6 {
        mq(
            &dir,
            &[
                "add",
                "--id",
                &id.to_string(),
                "--title",
                &format!("Movie {id}"),
                "--year",
                "2020",
            ],
        )
        .ok();
    }
    damage_record(&dir, b"Movie 3");
    mq(&dir, &["verify"]).fails_with(1);
    let server = serve(&dir, &[]);
    let page = get(server.addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("cannot be read past record 2"), "{}", page.body);
    let health = get(server.addr, "/api/health").json();
    assert_eq!(health["ok"], false, "{health}");
    assert!(health["file"].as_str().unwrap().ends_with(".seg"), "{health}");
    assert!(get(server.addr, "/health").body.contains("movie-queue repair"));
    // Repaired underneath, the server says the live feed goes on.
    mq(&dir, &["repair"]).ok();
    mq(&dir, &["add", "--id", "7", "--title", "After", "--year", "2021"]).ok();
    let after = wait_for(server.addr, "/", |answer| answer.body.contains("live updates go on"));
    assert!(after.body.contains("live updates go on"), "{}", after.body);
}

#[test]
fn a_store_replaced_under_the_server_is_loaded_and_said_on_every_page() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    mq(&dir, &["add", "--id", "old-1", "--title", "Old", "--year", "2020"]).ok();
    let server = serve(&dir, &[]);
    std::fs::rename(&dir, scratch.path().join("moved-away")).unwrap();
    for id in 1..=3 {
        mq(
            &dir,
            &["add", "--id", &format!("new-{id}"), "--title", "New", "--year", "2024"],
        )
        .ok();
    }
    let page = wait_for(server.addr, "/queues?place=pending", |answer| {
        answer.body.contains("new-3")
    });
    assert!(
        page.body.contains("new-3") && !page.body.contains("old-1"),
        "{}",
        page.body
    );
    assert!(page.body.contains("another store is in the directory"), "{}", page.body);
    assert!(
        get(server.addr, "/journal")
            .body
            .contains("another store is in the directory")
    );
}

#[test]
fn compacted_events_are_named_as_compacted_never_as_damage() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    let options = || {
        Options::default()
            .durability(Durability::Immediate)
            .segment_bytes_max(4096)
    };
    {
        let qm = options().open(&dir).unwrap();
        for id in 0..100 {
            qm.add_to_pending(Movie::new(format!("c-{id}"), "Compacted", "2020"))
                .unwrap();
        }
        qm.close().unwrap();
    }
    let server = serve(&dir, &[]);
    let before = get(server.addr, "/api/movie?id=c-1").json();
    assert_eq!(before["timeline"].as_array().unwrap().len(), 1);
    {
        let qm = options().open(&dir).unwrap();
        qm.add_to_pending(Movie::new("c-late", "Late", "2021")).unwrap();
        let report = qm.compact().unwrap();
        assert!(!report.removed.is_empty(), "{report:?}");
        qm.close().unwrap();
    }
    let page = wait_for(server.addr, "/", |answer| {
        answer.body.contains("the compaction base changed")
    });
    assert!(page.body.contains("the compaction base changed"), "{}", page.body);
    let movie = get(server.addr, "/api/movie?id=c-1");
    assert_eq!(movie.status, 200, "{movie:#?}");
    assert_eq!(movie.json()["compacted"], 1);
    let html = get(server.addr, "/movie?id=c-1");
    assert!(
        html.body.contains("1 earlier event was compacted away"),
        "{}",
        html.body
    );
    let journal = get(server.addr, "/api/journal?from=0");
    assert_eq!(journal.status, 200, "{journal:#?}");
}

/// What a new user trips on first: an empty queue says so, the chart's
/// axis names two different times, and in time mode the travel slider
/// sits at the shown record's own time.
#[test]
fn an_empty_queue_says_so_the_axis_has_two_times_and_the_slider_sits_where_the_page_is() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    for id in 1..=3 {
        mq(
            &dir,
            &["add", "--id", &id.to_string(), "--title", "One hour", "--year", "2020"],
        )
        .ok();
    }
    let server = serve(&dir, &[]);
    let failed = get(server.addr, "/queues?place=failed");
    assert!(failed.body.contains("failed is empty"), "{}", failed.body);
    let search = get(server.addr, "/queues?place=pending&q=nothing-like-it");
    assert!(search.body.contains("no movie in pending matches"), "{}", search.body);
    let overview = get(server.addr, "/").body;
    let axis = overview.split("<div class=\"axis\">").nth(1).unwrap();
    let times: Vec<&str> = axis
        .split("<span>")
        .skip(1)
        .take(2)
        .map(|part| part.split("</span>").next().unwrap())
        .collect();
    assert_eq!(times.len(), 2, "{axis}");
    assert_ne!(times[0], times[1], "the axis names two different times");
    let travel = get(server.addr, "/api/travel?seq=2").json();
    let ts = travel["ts"].as_f64().unwrap();
    let page = get(server.addr, "/travel?seq=2&mode=time").body;
    assert!(
        page.contains(&format!("value=\"{ts:.6}\"")) && page.contains("step=\"any\""),
        "the slider at {ts:.6}: {page}"
    );
}

/// A store `repair` mended past a hole under its snapshot: `serve` starts
/// on it and its counts are the store's; a server that was running when
/// the damage came and the repair went goes on to the same counts.
#[test]
fn a_store_repaired_past_a_hole_is_served_with_the_stores_counts() {
    let (_scratch, dir) = demo();
    let running = serve(&dir, &[]);
    damage_record(&dir, b"Heat");
    mq(&dir, &["repair"]).ok();
    mq(&dir, &["verify"]).ok();
    let expected = stats(&dir);
    let server = serve(&dir, &[]);
    assert_eq!(get(server.addr, "/api/stats").json(), expected, "a fresh server");
    let caught = wait_for(running.addr, "/api/stats", |answer| answer.json() == expected);
    assert_eq!(caught.json(), expected, "the server that was running");
}

/// Damage the journal's reader cannot see (the last record torn, the
/// snapshot holding it) is said: verify's finding reaches the banner and
/// the metrics, and the pages move on to the state the store opens to.
#[test]
fn damage_the_pages_cannot_show_is_said_in_the_banner_and_the_metrics() {
    let (_scratch, dir) = demo();
    let segment = dir.join("journal").join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = written_end(&bytes) - 10;
    bytes[at] ^= 0x55;
    std::fs::write(&segment, bytes).unwrap();
    let expected = stats(&dir);
    let server = serve(&dir, &[]);
    let page = wait_for(server.addr, "/", |answer| {
        answer.body.contains("the journal ends at record 32")
    });
    assert!(page.body.contains("the journal ends at record 32"), "{}", page.body);
    assert!(page.body.contains("verify found"), "{}", page.body);
    assert_eq!(get(server.addr, "/api/stats").json(), expected, "the store's counts");
    let metrics = parse_metrics(&get(server.addr, "/metrics").body);
    assert_eq!(sample(&metrics, "movie_queue_counts_agree", None), Some(1.0));
    assert!(sample(&metrics, "movie_queue_verify_problems", None).unwrap() >= 1.0);
}

/// Damage made while the server runs is said once Health has been looked at.
#[test]
fn damage_made_under_a_running_server_is_said_once_health_checks() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    assert!(!get(server.addr, "/").body.contains("verify"), "no finding yet");
    damage_record(&dir, b"Heat");
    let health = get(server.addr, "/health");
    assert!(
        health.body.contains("the store opens, with") || health.body.contains("does not open"),
        "{}",
        health.body
    );
    let page = get(server.addr, "/journal");
    assert!(page.body.contains("verify"), "every page says it: {}", page.body);
}

/// The journal's torn end cut by `repair`, the store's compaction base
/// holding the record it lost: the server moves its pages on to the
/// store's state (its counts become `stats`'), and says so.
#[test]
fn a_journal_end_repair_cut_is_shown_as_the_store_holds_it() {
    let (_scratch, dir) = demo();
    let segment = dir.join("journal").join("00000000000000000001.seg");
    let written = written_end(&std::fs::read(&segment).unwrap()) as u64;
    let file = std::fs::OpenOptions::new().write(true).open(&segment).unwrap();
    file.set_len(written - 10).unwrap();
    drop(file);
    mq(&dir, &["repair"]).ok();
    let expected = stats(&dir);
    let server = serve(&dir, &[]);
    let answer = wait_for(server.addr, "/api/stats", |answer| answer.json() == expected);
    assert_eq!(answer.json(), expected, "the store's counts");
    assert!(
        get(server.addr, "/").body.contains("the journal ends at record"),
        "said"
    );
    let status = get(server.addr, "/api/status").json();
    assert_eq!(status["stopped"], serde_json::Value::Null, "{status}");
}

/// Damage in the middle of the journal while a server follows it, then
/// `repair`: the server goes on by itself (no write needed), with the
/// store's counts and no error left.
#[test]
fn a_running_server_goes_on_by_itself_after_a_repair() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    // Damage a record the server has read, then make it read past it.
    damage_record(&dir, b"Third Man");
    mq(&dir, &["repair"]).ok();
    let expected = stats(&dir);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = get(server.addr, "/api/status").json();
        let counts = get(server.addr, "/api/stats").json();
        if (status["stopped"].is_null() && counts == expected) || Instant::now() > deadline {
            assert_eq!(counts, expected, "{status}");
            assert!(status["stopped"].is_null(), "{status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A running server stops, naming `file`, then goes on by itself once
/// `mend` put the store right, with the store's counts.
fn stops_naming_then_goes_on(
    server: &crate::support::http::Server,
    file: &str,
    mend: impl FnOnce(),
    expected: &serde_json::Value,
) -> Response {
    let stopped = wait_for(server.addr, "/api/status", |answer| !answer.json()["stopped"].is_null());
    let reason = stopped.json()["stopped"].as_str().map(str::to_owned);
    assert!(
        reason.as_deref().is_some_and(|reason| reason.contains(file)),
        "{}",
        stopped.body
    );
    mend();
    let status = wait_for(server.addr, "/api/status", |answer| answer.json()["stopped"].is_null());
    assert!(status.json()["stopped"].is_null(), "{}", status.body);
    assert_eq!(&get(server.addr, "/api/stats").json(), expected);
    status
}

#[test]
fn a_server_that_finds_its_store_unreadable_for_a_moment_reads_it_again_by_itself() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    let expected = stats(&dir);
    // What a rewrite in place (`fs::write`, an editor) shows a reader
    // midway: the segment empty, then whole again.
    let segment = dir.join("journal").join("00000000000000000001.seg");
    let bytes = std::fs::read(&segment).unwrap();
    std::fs::File::create(&segment).unwrap();
    stops_naming_then_goes_on(
        &server,
        "00000000000000000001.seg",
        || std::fs::write(&segment, bytes).unwrap(),
        &expected,
    );
}

#[test]
fn a_follower_stopped_at_the_journals_end_goes_on_once_the_cause_is_gone_with_no_new_record() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    let expected = stats(&dir);
    // A stray file where the next segment would be: the follower, at the
    // end of the log, cannot read past it.
    let stray = dir.join("journal").join("00000000000000000034.seg");
    std::fs::write(&stray, b"not a segment").unwrap();
    let status = stops_naming_then_goes_on(
        &server,
        "00000000000000000034.seg",
        || std::fs::remove_file(&stray).unwrap(),
        &expected,
    );
    assert!(
        status.body.contains("live updates go on from record 33"),
        "{}",
        status.body
    );
}

/// Where a segment's records end: the zeros after them are the room its
/// writer laid down ahead of them.
fn written_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&byte| byte != 0).map_or(0, |at| at + 1)
}
