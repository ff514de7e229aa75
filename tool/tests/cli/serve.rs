//! `movie-queue serve` over HTTP: every page and JSON endpoint answers
//! with its status and the security headers; hostile titles, ids and
//! errors come back escaped; the store's files are byte-for-byte the same
//! after every page was read, while a writer in another process is never
//! blocked; a write reaches the live feed; a non-loopback address needs a
//! token, and then every request must carry it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::cli::{add, mq, mq_args, stats};
use crate::support::http::{Feed, Response, get, request, serve};

/// Every page and JSON endpoint of a store holding movie "949".
const PATHS: [&str; 16] = [
    "/",
    "/queues",
    "/queues?place=failed&sort=retry_after&desc=1",
    "/queues?place=completed&q=heat",
    "/movie?id=949",
    "/journal",
    "/journal?kind=failed&from=3",
    "/journal?id=949",
    "/travel",
    "/travel?seq=5&prev=2&mode=time",
    "/health",
    "/api/overview",
    "/api/queues?place=failed",
    "/api/movie?id=949",
    "/api/journal?time=0",
    "/api/travel?seq=3",
];

/// A scratch directory holding the demo's store (`store/` in it).
fn demo() -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    mq(&dir, &["demo"]).ok();
    (scratch, dir)
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// What a browser shows for `html`'s character references.
fn unescape(html: &str) -> String {
    [
        ("&lt;", "<"),
        ("&#60;", "<"),
        ("&gt;", ">"),
        ("&#62;", ">"),
        ("&quot;", "\""),
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&#x27;", "'"),
        ("&amp;", "&"),
        ("&#38;", "&"),
    ]
    .iter()
    .fold(html.to_owned(), |text, (reference, character)| {
        text.replace(reference, character)
    })
}

#[track_caller]
fn assert_headers(response: &Response) {
    let csp = response.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{response:#?}"
    );
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("x-frame-options"), Some("DENY"));
}

#[test]
fn every_page_and_endpoint_answers_with_its_status_and_headers() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    for path in PATHS {
        let response = get(server.addr, path);
        assert_eq!(response.status, 200, "{path}: {response:#?}");
        assert_headers(&response);
        if path.starts_with("/api/") {
            response.json();
        } else {
            assert!(response.body.contains("</html>"), "{path}: a whole page");
        }
    }
    for (path, status) in [
        ("/no-such-page", 404),
        ("/movie?id=nobody", 404),
        ("/api/movie?id=nobody", 404),
        ("/movie", 400),
        ("/queues?place=nowhere", 400),
        ("/travel?seq=not-a-number", 400),
        ("/journal?time=yesterday", 400),
    ] {
        let response = get(server.addr, path);
        assert_eq!(response.status, status, "{path}: {response:#?}");
        assert_headers(&response);
    }
    for method in ["POST", "PUT", "DELETE"] {
        let response = request(method, server.addr, "/", &[]);
        assert_eq!(response.status, 405, "{method} is refused: {response:#?}");
    }
    let script = get(server.addr, "/static/app.js");
    assert!(script.header("content-type").unwrap().starts_with("text/javascript"));
    assert_eq!(
        get(server.addr, "/api/stats").json(),
        stats(&dir),
        "the counts are `stats --json`"
    );
    let overview = get(server.addr, "/api/overview").json();
    assert_eq!(overview["counts"], stats(&dir));
    assert_eq!(overview["failures"][0]["message"], "No seeders");
    let movie = get(server.addr, "/api/movie?id=949").json();
    let kinds: Vec<&str> = movie["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["added", "taken", "failed", "moved_to_pending", "taken", "completed"]
    );
    let travel = get(server.addr, "/api/travel?seq=1&prev=0").json();
    assert_eq!(travel["counts"]["pending"], 1);
    assert_eq!(travel["changes"][0]["after"], "pending");
    // A step back: "before" is the step the slider left, "after" the one shown.
    let back = get(server.addr, "/api/travel?seq=0&prev=1").json();
    assert_eq!(back["changes"][0]["before"], "pending", "{back}");
    assert_eq!(back["changes"][0]["after"], "(not in the store)", "{back}");
    assert_ne!(
        back["changes"][0]["title"], "",
        "the movie is named from the step it left: {back}"
    );
    let health = get(server.addr, "/api/health").json();
    assert_eq!(health["ok"], true, "{health}");
}

#[test]
fn hostile_titles_ids_and_errors_are_escaped() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    let id = "<img src=x onerror=alert(1)>&\"'";
    let movie = serde_json::json!({"id": id, "title": "<script>alert('title')</script>", "year": 1999});
    mq(&dir, &["add", "--json", &movie.to_string()]).ok();
    mq(&dir, &["next"]).ok();
    mq(
        &dir,
        &["fail", id, "--error", "<iframe src=//evil>", "--retry-in", "1h"],
    )
    .ok();
    let server = serve(&dir, &[]);
    let encoded = "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%26%22%27";
    for path in [
        "/".to_owned(),
        "/queues?place=failed".to_owned(),
        format!("/movie?id={encoded}"),
        "/journal".to_owned(),
        format!("/journal?id={encoded}"),
        "/travel?seq=3&prev=0".to_owned(),
        "/movie?id=%3Cscript%3E".to_owned(),
    ] {
        let response = get(server.addr, &path);
        assert!(matches!(response.status, 200 | 404), "{path}: {response:#?}");
        for raw in ["<script>alert", "<img src=x", "<iframe", "'title'"] {
            assert!(
                !response.body.contains(raw),
                "{path} holds {raw} unescaped:\n{}",
                response.body
            );
        }
    }
    let page = get(server.addr, &format!("/movie?id={encoded}"));
    assert_eq!(page.status, 200, "the movie's page is found by its encoded id");
    let text = unescape(&page.body);
    for shown in [id, "<script>alert('title')</script>", "<iframe src=//evil>"] {
        assert!(text.contains(shown), "the page shows {shown} as text:\n{}", page.body);
    }
    let journal = get(server.addr, "/journal").body;
    assert!(
        unescape(&journal).contains(&format!("/movie?id={encoded}")),
        "links carry the id encoded"
    );
    let api = get(server.addr, &format!("/api/movie?id={encoded}")).json();
    assert_eq!(api["id"], id, "JSON keeps the exact text");
    assert_eq!(api["now"]["title"], "<script>alert('title')</script>");
}

#[test]
fn control_characters_and_direction_overrides_are_shown_not_sent() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    let movie = serde_json::json!({"id": "ctl\u{1b}[31m\u{7}", "title": "abc\u{202e}fed", "year": 1999});
    mq(&dir, &["add", "--json", &movie.to_string()]).ok();
    let server = serve(&dir, &[]);
    for path in ["/", "/queues?place=pending", "/journal", "/travel?seq=1&prev=0"] {
        let body = get(server.addr, path).body;
        assert!(
            !body.contains('\u{1b}') && !body.contains('\u{7}') && !body.contains('\u{202e}'),
            "{path} sends a control character or an override raw"
        );
    }
    let journal = get(server.addr, "/journal").body;
    assert!(
        journal.contains("ctl\\x1b[31m\\x07"),
        "shown as the command line shows it:\n{journal}"
    );
    assert!(journal.contains("abc\\u{202e}fed"), "{journal}");
}

#[test]
fn the_store_is_never_written_and_a_writer_is_never_blocked() {
    let (_scratch, dir) = demo();
    let before = files(&dir);
    let server = serve(&dir, &[]);
    for path in PATHS {
        assert_eq!(get(server.addr, path).status, 200, "{path}");
    }
    assert_eq!(files(&dir), before, "serving changed nothing in the store");
    // The writer's lock is free: a writer in another process goes ahead.
    add(&dir, "7001");
    mq(&dir, &["next"]).ok();
    mq(&dir, &["fail", "7001", "--error", "Disk full", "--retry-in", "2h"]).ok();
    assert_eq!(stats(&dir)["failed"], 2);
}

#[test]
fn a_write_reaches_the_live_feed_and_the_pages() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    let mut feed = Feed::open(server.addr);
    let hello: serde_json::Value = serde_json::from_str(&feed.next("hello")).unwrap();
    let last = hello["last_seq"].as_u64().unwrap();
    add(&dir, "8001");
    let message: serde_json::Value = serde_json::from_str(&feed.next("records")).unwrap();
    let record = &message["records"][0];
    assert_eq!(record["event"]["seq"], last + 1, "{message}");
    assert_eq!(record["event"]["kind"], "added");
    assert_eq!(record["event"]["ids"][0], "8001");
    assert!(
        record["row"].as_str().unwrap().contains("kind-added"),
        "the row as the page draws it: {message}"
    );
    assert_eq!(message["last_seq"], last + 1);
    assert_eq!(message["omitted"], 0);
    assert_eq!(message["counts"], stats(&dir), "the feed carries the new counts");
    // Once announced, every page shows it.
    assert_eq!(get(server.addr, "/api/stats").json(), stats(&dir));
    assert!(get(server.addr, "/queues?place=pending").body.contains("Movie 8001"));
}

/// A strong token, as `openssl rand -hex 16` makes one.
const TOKEN: &str = "3f9c2b7a1e8d4c6b9a0f5e2d7c1b8a4e";

#[test]
fn a_non_loopback_address_needs_a_token_and_then_every_request_carries_it() {
    let (_scratch, dir) = demo();
    let dir_text = dir.to_str().unwrap();
    let refused = mq_args(&["--dir", dir_text, "serve", "--addr", "0.0.0.0:0"]).fails_with(2);
    assert!(refused.stderr.contains("--token"), "{refused:#?}");
    mq_args(&["--dir", dir_text, "serve", "--token", ""]).fails_with(2);
    // Guessable tokens are refused, naming how to make one.
    for weak in [
        "s3cret",
        "correcthorsebatterystaple",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "3f9c2b7a1e8d4c6b9a0f5e2d7c1b8a4",
    ] {
        let refused = mq_args(&["--dir", dir_text, "serve", "--token", weak]).fails_with(2);
        assert!(
            refused.stderr.contains("too easy to guess") && refused.stderr.contains("openssl rand -hex 16"),
            "{weak}: {refused:#?}"
        );
    }

    let server = serve(&dir, &["--token", TOKEN]);
    assert_eq!(get(server.addr, "/").status, 401);
    let unauthorized = get(server.addr, "/api/stats");
    assert_eq!(unauthorized.status, 401);
    assert_eq!(
        unauthorized.json()["status"],
        401,
        "an API refusal is JSON: {unauthorized:#?}"
    );
    assert_eq!(get(server.addr, "/static/app.js").status, 401);
    let wrong = request("GET", server.addr, "/", &[("Authorization", "Bearer nope")]);
    assert_eq!(wrong.status, 401);
    let bearer_header = format!("Bearer {TOKEN}");
    let bearer = request(
        "GET",
        server.addr,
        "/api/stats",
        &[("Authorization", bearer_header.as_str())],
    );
    assert_eq!(bearer.status, 200);
    let query = get(server.addr, &format!("/?token={TOKEN}"));
    assert_eq!(query.status, 200);
    let cookie = query.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(TOKEN), "the cookie never holds the token: {cookie}");
    let pair = cookie.split(';').next().unwrap();
    let with_cookie = request("GET", server.addr, "/queues", &[("Cookie", pair)]);
    assert_eq!(
        with_cookie.status, 200,
        "the cookie stands for the token on the next pages"
    );
    let token_as_cookie = format!("movie_queue_session={TOKEN}");
    let forged = request("GET", server.addr, "/queues", &[("Cookie", token_as_cookie.as_str())]);
    assert_eq!(forged.status, 401, "the token is not a session id");
    drop(server);
    let restarted = serve(&dir, &["--token", TOKEN]);
    let stale = request("GET", restarted.addr, "/queues", &[("Cookie", pair)]);
    assert_eq!(stale.status, 401, "a session id ends with its server");
}

/// An address this machine does not have is refused at start, naming it;
/// a loopback address other than 127.0.0.1 answers to its own name.
#[test]
fn an_address_the_machine_lacks_fails_at_start_and_another_loopback_one_works() {
    let (_scratch, dir) = demo();
    let dir_text = dir.to_str().unwrap();
    let refused = mq_args(&["--dir", dir_text, "serve", "--addr", "192.0.2.1:0", "--token", TOKEN]).fails_with(1);
    assert!(
        refused.stderr.contains("this machine has no address 192.0.2.1"),
        "{refused:#?}"
    );
    let server = crate::support::http::serve_on(&dir, "127.0.0.2:0", &[]);
    let own = format!("127.0.0.2:{}", server.addr.port());
    let answer = request("GET", server.addr, "/api/stats", &[("Host", own.as_str())]);
    assert_eq!(answer.status, 200, "{answer:#?}");
}

#[test]
fn a_loopback_dashboard_answers_only_to_loopback_host_names() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    let port = server.addr.port();
    let rebound = request("GET", server.addr, "/api/stats", &[("Host", "evil.example")]);
    assert_eq!(
        rebound.status, 421,
        "a page under another name cannot read it: {rebound:#?}"
    );
    let localhost = format!("localhost:{port}");
    let local = request("GET", server.addr, "/api/stats", &[("Host", localhost.as_str())]);
    assert_eq!(local.status, 200);
}

/// A store whose history `repair` set a damaged record aside in (a hole
/// under the snapshot): the dashboard reads past it to the end (its
/// timeline starts again from the compaction base that holds the state the
/// hole made), its counts are the store's, its journal page lists the
/// records written since, and a write reaches the live feed.
#[test]
fn the_dashboard_reads_past_a_hole_repair_recorded() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    for id in 1..=6 {
        add(&dir, &id.to_string());
    }
    let segment = dir.join("journal").join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(7).position(|window| window == b"Movie 3").unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    mq(&dir, &["repair"]).ok();
    mq(&dir, &["verify"]).ok();
    add(&dir, "7");
    let server = serve(&dir, &[]);
    assert_eq!(get(server.addr, "/api/stats").json(), stats(&dir));
    let journal = get(server.addr, "/journal").body;
    assert!(
        journal.contains("Movie 7"),
        "the journal page reads past the hole: {journal}"
    );
    let mut feed = Feed::open(server.addr);
    feed.next("hello");
    add(&dir, "8");
    let message: serde_json::Value = serde_json::from_str(&feed.next("records")).unwrap();
    assert_eq!(message["counts"], stats(&dir), "{message}");
    assert_eq!(get(server.addr, "/health").status, 200);
}
