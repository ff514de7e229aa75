//! The removed queue from the command line: `mark-removed` with ids as
//! arguments or on stdin moves pending and completed movies off the
//! watchlist (in flight and failed stay), `list removed` and `removed`
//! show them, `removed --ready --grace` waits out the grace period,
//! `restore` and `forget` take them back out, and `stats` counts them.

use crate::support::cli as cli_support;

use cli_support::{add, mq, mq_stdin, stats};
use serde_json::Value;

fn ids(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|entry| entry["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[test]
fn mark_removed_restore_forget_and_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["1", "2", "3", "4", "5"] {
        add(dir.path(), id);
    }
    mq(dir.path(), &["next"]).ok(); // 1 in flight
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["complete", "2"]).ok();
    mq(dir.path(), &["fail", "3", "--error", "boom", "--retry-in", "1h"]).ok();
    let run = mq(dir.path(), &["mark-removed", "5"]).ok();
    assert!(run.stdout.starts_with("removed 2 movies"), "{run:?}");
    let removed = mq(dir.path(), &["list", "removed", "--json"]).ok().json();
    assert_eq!(ids(&removed), ["4", "2"], "pending first, then completed; 1 and 3 stay");
    assert_eq!(removed[0]["status"], "removed");
    assert!(removed[1]["removed_at"].is_u64() && removed[1]["completed_at"].is_u64());
    assert_eq!(stats(dir.path())["removed"], 2);

    let waiting = mq(dir.path(), &["removed", "--ready", "--json"]).ok().json();
    assert_eq!(ids(&waiting), Vec::<String>::new(), "within the 7-day grace period");
    let ready = mq(dir.path(), &["removed", "--ready", "--grace", "0s", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&ready), ["4", "2"]);
    let table = mq(dir.path(), &["removed"]).ok();
    assert!(table.stdout.contains("REMOVED AT"), "{table:?}");

    let run = mq(dir.path(), &["restore", "4"]).ok();
    assert!(run.stdout.starts_with("restored 4"), "{run:?}");
    let pending = mq(dir.path(), &["list", "pending", "--json"]).ok().json();
    assert_eq!(ids(&pending), ["5", "4"]);
    assert_eq!(pending[1]["status"], "pending");
    assert!(pending[1].get("removed_at").is_none());
    mq(dir.path(), &["forget", "2"]).ok();
    assert_eq!(stats(dir.path())["removed"], 0);
    let refused = mq(dir.path(), &["forget", "3"]).fails_with(1);
    assert!(refused.stderr.contains("not removed"), "{refused:?}");

    // Ids on stdin, one a line: an id not in the list leaves.
    mq_stdin(dir.path(), &["mark-removed", "-"], "4\n\n").ok();
    let removed = mq(dir.path(), &["list", "removed", "--json"]).ok().json();
    assert_eq!(ids(&removed), ["5"]);
    mq(dir.path(), &["mark-removed"]).fails_with(2);
}
