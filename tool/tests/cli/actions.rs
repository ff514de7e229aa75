//! `serve --allow-actions`: a movie page's buttons, carried out by the
//! process holding the store (this test process, through the library)
//! through its control socket. Without the flag or without a holder there
//! are no buttons and no route that changes anything; an action needs the
//! page's CSRF token and a JSON body; a done action is the holder's own
//! change and reaches the live feed like any other.

use std::path::Path;

use crate::support::cli::{add, mq};
use crate::support::http::{Feed, get, post, serve};
use movie_queue::{Place, QueueManager};

/// A store with movie 2 failed and 3 removed.
fn store(dir: &Path) {
    for id in ["1", "2", "3"] {
        add(dir, id);
    }
    mq(dir, &["next"]).ok();
    mq(dir, &["next"]).ok();
    mq(dir, &["fail", "2", "--error", "no seeders", "--retry-in", "2h"]).ok();
    mq(dir, &["mark-removed", "1", "2"]).ok();
}

fn hold(dir: &Path) -> QueueManager {
    QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(dir)
        .unwrap()
}

/// `POST /api/action` with `body`, as JSON, carrying `token`.
fn act(addr: std::net::SocketAddr, token: &str, body: &str) -> crate::support::http::Response {
    post(
        addr,
        "/api/action",
        &[("Content-Type", "application/json"), ("X-CSRF-Token", token)],
        body,
    )
}

/// The CSRF token a movie page hands its buttons, if it shows any.
fn csrf(page: &str) -> Option<String> {
    let start = page.find("data-csrf=\"")? + "data-csrf=\"".len();
    Some(page[start..].split('"').next()?.to_owned())
}

#[test]
fn without_the_flag_or_a_holder_the_dashboard_changes_nothing_and_shows_no_button() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let holder = hold(dir.path());
    let plain = serve(dir.path(), &[]);
    let page = get(plain.addr, "/movie?id=2");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("id=\"actions\""), "no buttons without the flag");
    assert!(page.body.contains("read-only"), "{}", page.body);
    let refused = act(plain.addr, "x", r#"{"action":"retry","id":"2"}"#);
    assert_eq!(refused.status, 404, "no such route without the flag: {refused:?}");
    drop(plain);
    drop(holder);
    // The flag, but nobody holds the store: no buttons either.
    let allowed = serve(dir.path(), &["--allow-actions"]);
    let page = get(allowed.addr, "/movie?id=2");
    assert!(!page.body.contains("id=\"actions\""), "no holder, no buttons");
    let refused = act(allowed.addr, "guessed", r#"{"action":"retry","id":"2"}"#);
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(mq(dir.path(), &["show", "2", "--json"]).ok().json()["place"], "failed");
}

#[test]
fn an_action_needs_the_pages_token_and_is_the_holders_own_change() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let holder = hold(dir.path());
    let server = serve(dir.path(), &["--allow-actions"]);
    let page = get(server.addr, "/movie?id=2").body;
    for label in ["retry now", "reset", "complete"] {
        assert!(
            page.contains(&format!(">{label}</button>")),
            "{label} on a failed movie's page: {page}"
        );
    }
    let removed = get(server.addr, "/movie?id=3").body;
    assert!(
        removed.contains(">restore</button>") && !removed.contains(">retry now<"),
        "{removed}"
    );
    let token = csrf(&page).expect("the page carries the token");
    assert_eq!(token.len(), 64);
    let body = r#"{"action":"retry","id":"2"}"#;
    for (headers, status) in [
        (vec![("Content-Type", "application/json")], 403),
        (
            vec![
                ("Content-Type", "application/json"),
                ("X-CSRF-Token", "0".repeat(64).leak() as &str),
            ],
            403,
        ),
        (
            vec![
                ("Content-Type", "application/json"),
                ("X-CSRF-Token", token.as_str()),
                ("Origin", "http://evil.example"),
            ],
            403,
        ),
        (
            vec![("Content-Type", "text/plain"), ("X-CSRF-Token", token.as_str())],
            415,
        ),
    ] {
        let refused = post(server.addr, "/api/action", &headers, body);
        assert_eq!(refused.status, status, "{headers:?}: {refused:?}");
    }
    assert_eq!(
        holder.get("2").map(|(place, _)| place),
        Some(Place::Failed),
        "nothing changed yet"
    );
    let mut feed = Feed::open(server.addr);
    feed.next("hello");
    let done = act(server.addr, &token, body);
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.json()["ok"], true);
    // The application's own projection has it at once, and so does the live feed.
    assert_eq!(holder.get("2").map(|(place, _)| place), Some(Place::Pending));
    let message: serde_json::Value = serde_json::from_str(&feed.next("records")).unwrap();
    assert_eq!(message["records"][0]["event"]["kind"], "moved_to_pending", "{message}");
    // The same action again changes nothing, and says so.
    let again = act(server.addr, &token, body);
    assert_eq!(again.status, 409, "{again:?}");
    assert!(
        again.json()["error"].as_str().unwrap().contains("nothing changed"),
        "{again:?}"
    );
}
