//! `movie-queue ship` and `restore --from` against a real `nats-server -js`
//! (issue 26): every record reaches the stream once and in order, through
//! kill -9 of the shipper and a restart of the server; a compaction while
//! the shipper is down keeps what it has not shipped; a second store is
//! refused; a restore at the end and at points between gives the answers
//! of `replay --until` on the source.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use movie_queue::{Durability, Movie, QueueManager};
use serde_json::Value;

use crate::support::cli::{command, events, mq, stats};
use crate::support::nats::{NatsServer, messages, publish};

/// A store with `movies` movies added, then some taken, completed, failed,
/// reset and removed: about three records a movie, of eight kinds.
fn busy_store(dir: &Path, movies: usize) {
    let manager = QueueManager::options()
        .durability(Durability::Batched {
            max_delay: Duration::from_millis(5),
        })
        .open(dir)
        .unwrap();
    for index in 0..movies {
        let movie = Movie::new(
            index.to_string(),
            format!("Movie {index} «ü»"),
            1990 + (index % 30) as i64,
        );
        manager.add_to_pending(movie).unwrap();
    }
    for index in 0..movies {
        let Some(entry) = manager.take_next_pending().unwrap() else {
            break;
        };
        let movie = entry.movie;
        match index % 5 {
            0 | 1 => {
                manager.add_to_completed(movie).unwrap();
            }
            2 => {
                manager.add_to_failed(movie, "timeout", Some(1.0e9)).unwrap();
            }
            3 => {
                manager.add_to_failed(movie.clone(), "no seeds", None).unwrap();
                manager.reset_failed_movie(movie.id()).unwrap();
            }
            _ => {
                manager.add_to_removed(movie).unwrap();
            }
        }
    }
    manager.close().unwrap();
}

/// Asserts the stream holds this store's records `1..=last`, each once, in
/// order, one message each, and returns the store's id.
#[track_caller]
fn assert_exactly_once(url: &str, stream: &str, dir: &Path) {
    let found = messages(url, stream);
    let store = mq(dir, &["stats"]).ok().stdout;
    let id = store
        .lines()
        .find_map(|line| line.strip_prefix("store id"))
        .map(str::trim)
        .expect("stats names the store id")
        .to_owned();
    let journal = events(dir);
    assert_eq!(found.len(), journal.len(), "one message a record");
    for (index, (message, line)) in found.iter().zip(&journal).enumerate() {
        let seq = index as u64 + 1;
        assert_eq!(message.sequence, seq, "stream sequence");
        assert_eq!(message.id, format!("{id}:{seq}"));
        assert_eq!(&message.payload, line, "record {seq} as `log --json` prints it");
        assert_eq!(
            message.subject,
            format!("movie-queue.{}", line["type"].as_str().unwrap())
        );
    }
}

fn ship_once(dir: &Path, url: &str) -> crate::support::cli::Run {
    mq(dir, &["ship", "--to", url, "--once"])
}

fn restore(url: &str, target: &Path, until: Option<&str>) -> crate::support::cli::Run {
    let mut args = vec!["restore", "--from", url, "--stream", "movie-queue"];
    if let Some(until) = until {
        args.extend(["--until", until]);
    }
    let target = target.to_str().unwrap();
    args.push(target);
    crate::support::cli::mq_args(&args)
}

#[test]
fn a_shipped_store_restored_at_its_end_and_five_points_between_answers_as_replay_does() {
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 200);
    let shipped = ship_once(&dir, &server.url()).ok();
    assert!(shipped.stdout.starts_with("shipped "), "{shipped:#?}");
    assert_exactly_once(&server.url(), "movie-queue", &dir);
    let journal = events(&dir);
    let last = journal.len();

    let whole = scratch.path().join("restored");
    let restored = restore(&server.url(), &whole, None).ok();
    assert!(
        restored.stdout.contains(&format!("records 1 to {last}")),
        "{restored:#?}"
    );
    mq(&whole, &["verify"]).ok();
    assert_eq!(events(&whole), journal, "the same records, numbers and times");
    assert_eq!(
        without_id(stats(&whole)),
        without_id(stats(&dir)),
        "the same statistics"
    );
    assert_ne!(
        mq(&whole, &["stats"]).stdout.lines().last(),
        mq(&dir, &["stats"]).stdout.lines().last(),
        "a store of its own"
    );

    for point in [1, last / 7, last / 3, last / 2, last - 1] {
        let target = scratch.path().join(format!("at-{point}"));
        restore(&server.url(), &target, Some(&point.to_string())).ok();
        mq(&target, &["verify"]).ok();
        assert_eq!(events(&target), journal[..point], "records 1 to {point}");
        let replayed = mq(&dir, &["replay", "--until", &point.to_string(), "--json"])
            .ok()
            .json();
        assert_eq!(without_id(stats(&target)), without_id(replayed), "at record {point}");
        // `replay` of the restored store at any earlier point agrees too.
        let earlier = (point / 2).max(1).to_string();
        assert_eq!(
            mq(&target, &["replay", "--until", &earlier, "--json"]).ok().json(),
            mq(&dir, &["replay", "--until", &earlier, "--json"]).ok().json()
        );
    }

    // A time: through the last record stamped at or before it.
    let middle = &journal[last / 2];
    let time = middle["ts"].as_f64().unwrap();
    let target = scratch.path().join("at-time");
    restore(&server.url(), &target, Some(&format!("{time:.6}"))).ok();
    let replayed = mq(&dir, &["replay", "--until", &format!("{time:.6}"), "--json"])
        .ok()
        .json();
    assert_eq!(without_id(stats(&target)), without_id(replayed));
}

fn without_id(mut stats: Value) -> Value {
    if let Some(object) = stats.as_object_mut() {
        object.remove("store_id");
    }
    stats
}

#[test]
fn restoring_into_a_directory_that_is_not_empty_is_refused_and_touches_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 10);
    ship_once(&dir, &server.url()).ok();
    let target = scratch.path().join("full");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("notes.txt"), "mine").unwrap();
    let refused = restore(&server.url(), &target, None).fails_with(1);
    assert!(refused.stderr.contains("is not empty"), "{refused:#?}");
    let left: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(left, ["notes.txt"]);

    // A stream that does not exist: nothing is made.
    let missing = scratch.path().join("missing");
    let refused = crate::support::cli::mq_args(&[
        "restore",
        "--from",
        &server.url(),
        "--stream",
        "nothing-here",
        missing.to_str().unwrap(),
    ])
    .fails_with(1);
    assert!(refused.stderr.contains("nothing-here"), "{refused:#?}");
    assert!(!missing.exists(), "a failed restore leaves no directory behind");
}

#[test]
fn a_second_store_pointed_at_the_same_stream_is_refused_naming_both() {
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let first = scratch.path().join("first");
    let second = scratch.path().join("second");
    busy_store(&first, 5);
    busy_store(&second, 5);
    ship_once(&first, &server.url()).ok();
    let refused = ship_once(&second, &server.url()).fails_with(1);
    let id = |dir: &Path| movie_queue::store_id(dir).unwrap().unwrap().to_string();
    assert!(refused.stderr.contains(&id(&first)), "{refused:#?}");
    assert!(refused.stderr.contains(&id(&second)), "{refused:#?}");
    assert!(refused.stderr.contains("hint:"), "{refused:#?}");
    assert_exactly_once(&server.url(), "movie-queue", &first);

    // A stream holding someone else's messages is refused too.
    publish(&server.url(), "movie-queue.note", "{\"hello\":1}");
    let refused = ship_once(&first, &server.url()).fails_with(1);
    assert!(
        refused.stderr.contains("not a record a shipper published"),
        "{refused:#?}"
    );
}

#[test]
fn a_shipper_killed_at_random_points_and_restarted_ships_every_record_once_in_order() {
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 4000);
    let total = events(&dir).len();
    let mut seed = 0x9e37_79b9_u64 ^ u64::from(std::process::id());
    let mut cut_short = 0;
    for _ in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = command()
            .arg("--dir")
            .arg(&dir)
            .args(["ship", "--to", &server.url(), "--in-flight", "8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + seed % 60));
        child.kill().unwrap();
        child.wait().unwrap();
        let shipped = messages(&server.url(), "movie-queue").len();
        if shipped == total {
            break;
        }
        cut_short += 1;
    }
    assert!(cut_short >= 2, "the kills fell mid-stream ({cut_short} times)");
    // Whatever the kills left, a last run ships the rest.
    ship_once(&dir, &server.url()).ok();
    assert_exactly_once(&server.url(), "movie-queue", &dir);
    let registered = std::fs::read_to_string(dir.join("shippers/movie-queue")).unwrap();
    assert_eq!(registered, format!("MVQSHIP1 {}\n", events(&dir).len()));
}

#[test]
fn a_following_shipper_rides_out_a_server_restart_and_ships_what_came_meanwhile() {
    let scratch = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 50);
    let log = scratch.path().join("ship.log");
    let mut shipper = command()
        .arg("--dir")
        .arg(&dir)
        .args(["ship", "--to", &server.url()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_all(&server.url(), &dir);

    server.kill();
    let manager = QueueManager::open(&dir).unwrap();
    for index in 0..40 {
        manager
            .add_to_pending(Movie::new(format!("late-{index}"), "Late", 2024))
            .unwrap();
    }
    manager.close().unwrap();
    // Down longer than the shipper waits for an acknowledgment (10 s): it
    // gives up on what it published and reads the stream's end again.
    std::thread::sleep(Duration::from_secs(12));
    server.restart();
    wait_for_all(&server.url(), &dir);
    shipper.kill().unwrap();
    shipper.wait().unwrap();
    assert_exactly_once(&server.url(), "movie-queue", &dir);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("trying again in"),
        "the shipper said why it waited: {said}"
    );
}

/// Waits (up to 60 s) until the stream holds as many messages as the
/// journal has records.
fn wait_for_all(url: &str, dir: &Path) {
    let wanted = events(dir).len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while messages(url, "movie-queue").len() < wanted {
        assert!(
            Instant::now() < deadline,
            "the shipper did not ship {wanted} records in 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_compaction_while_the_shipper_is_down_keeps_what_it_has_not_shipped() {
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    // Small segments, so a compaction has whole segments to delete.
    let small = || QueueManager::options().segment_bytes_max(4096);
    let manager = small().open(&dir).unwrap();
    for index in 0..100 {
        manager
            .add_to_pending(Movie::new(index.to_string(), "Early", 2000))
            .unwrap();
    }
    manager.close().unwrap();
    ship_once(&dir, &server.url()).ok();
    let shipped = events(&dir).len();

    // The shipper is down; the application writes on, and compacts.
    let manager = small().open(&dir).unwrap();
    for index in 100..300 {
        manager
            .add_to_pending(Movie::new(index.to_string(), "Later", 2001))
            .unwrap();
    }
    let report = manager.compact().unwrap();
    manager.close().unwrap();
    assert!(!report.removed.is_empty(), "the compaction removed segments");
    let first_kept = events(&dir)[0]["seq"].as_u64().unwrap();
    assert!(first_kept <= shipped as u64 + 1, "record {} on are kept", shipped + 1);

    ship_once(&dir, &server.url()).ok();
    let found = messages(&server.url(), "movie-queue");
    let total = events(&dir).last().unwrap()["seq"].as_u64().unwrap();
    assert_eq!(found.len() as u64, total, "every record, once");
    for (index, message) in found.iter().enumerate() {
        assert_eq!(message.payload["seq"], index as u64 + 1);
    }

    // Unregistered, the shipper's records are not kept: it stops, naming them.
    let manager = small().open(&dir).unwrap();
    for index in 300..500 {
        manager
            .add_to_pending(Movie::new(index.to_string(), "Lost", 2002))
            .unwrap();
    }
    manager.close().unwrap();
    assert!(movie_queue::unregister_shipper(&dir, "movie-queue").unwrap());
    let manager = small().open(&dir).unwrap();
    manager.compact().unwrap();
    manager.close().unwrap();
    let stopped = ship_once(&dir, &server.url()).fails_with(1);
    assert!(stopped.stderr.contains("compacted"), "{stopped:#?}");
    assert!(
        stopped.stderr.contains(&format!("records {} to ", total + 1)),
        "names the records: {stopped:#?}"
    );
    assert!(stopped.stderr.contains("hint:"), "{stopped:#?}");
    assert_eq!(
        messages(&server.url(), "movie-queue").len() as u64,
        total,
        "nothing shipped past the hole"
    );
}

#[test]
fn ship_refuses_a_missing_store_a_bad_address_and_a_bad_stream_name() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = mq(
        &scratch.path().join("nowhere"),
        &["ship", "--to", "nats://127.0.0.1:1", "--once"],
    )
    .fails_with(1);
    assert!(missing.stderr.contains("no store"), "{missing:#?}");
    let dir = scratch.path().join("store");
    busy_store(&dir, 2);
    // Values waiting cannot mend are usage errors, refused before anything is opened.
    for address in [
        "http://127.0.0.1:4222",
        "nats://127.0.0.1:99999",
        "nats://",
        "nats://a:1,b:2",
    ] {
        let bad = mq(&dir, &["ship", "--to", address]).fails_with(2);
        assert!(bad.stderr.contains("nats://HOST:PORT"), "{bad:#?}");
    }
    let bad = mq(&dir, &["ship", "--to", "nats://127.0.0.1:1", "--stream", "a.b"]).fails_with(2);
    assert!(bad.stderr.contains("stream name"), "{bad:#?}");
    let bad = mq(&dir, &["ship", "--to", "nats://127.0.0.1:1", "--subject", "x.*"]).fails_with(2);
    assert!(bad.stderr.contains("prefix"), "{bad:#?}");
    let started = Instant::now();
    let down = mq(&dir, &["ship", "--to", "nats://127.0.0.1:1", "--once"]).fails_with(1);
    assert!(down.stderr.contains("cannot connect"), "{down:#?}");
    assert!(started.elapsed() < Duration::from_secs(60), "--once gives up");
}

#[test]
fn the_systemd_unit_of_the_readme_names_a_command_that_runs() {
    let unit = crate::readme::block("ini", "[Unit]\n");
    let exec = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("the unit starts something");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(
        words[0], "/usr/local/bin/movie-queue",
        "where `cargo install` puts it, as root"
    );
    assert!(
        unit.contains("Restart=always"),
        "a shipper that stops on an error is started again"
    );
    // Its arguments parse: the same words, with --once, on a scratch store and a real server.
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 3);
    let mut args: Vec<String> = words[1..].iter().map(|word| (*word).to_owned()).collect();
    let at = args.iter().position(|word| word == "--dir").unwrap();
    args[at + 1] = dir.to_str().unwrap().to_owned();
    let to = args.iter().position(|word| word == "--to").unwrap();
    args[to + 1] = server.url();
    args.push("--once".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::support::cli::mq_args(&args).ok();
    assert_exactly_once(&server.url(), "movie-queue", &dir);
}

#[test]
fn the_readme_ship_and_restore_commands_run_as_written() {
    let text = crate::readme::block("sh", "movie-queue ship --to nats://127.0.0.1:4222");
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 20);
    let restored = scratch.path().join("restored");
    let mut lines = text.lines().map(|line| {
        line.split('#')
            .next()
            .unwrap()
            .replace("nats://127.0.0.1:4222", &server.url())
            .replace("/srv/restored", restored.to_str().unwrap())
    });
    // The shipper follows until stopped: started, waited for, stopped.
    let ship = lines.next().unwrap();
    let words: Vec<&str> = ship.split_whitespace().collect();
    assert_eq!(words[..2], ["movie-queue", "ship"]);
    let mut shipper = command()
        .arg("--dir")
        .arg(&dir)
        .args(&words[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_all(&server.url(), &dir);
    shipper.kill().unwrap();
    shipper.wait().unwrap();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "movie-queue", "{line}");
        crate::support::cli::mq_args(&words[1..]).ok();
    }
    assert_eq!(events(&restored), events(&dir));
}

#[test]
fn the_consumer_example_of_the_readme_counts_what_stats_counts() {
    let text = crate::readme::block("sh", "pip install nats-py\n");
    assert_eq!(
        text,
        "pip install nats-py\npython3 examples/live_counts.py nats://127.0.0.1:4222\n"
    );
    let python = nats_python();
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 300);
    ship_once(&dir, &server.url()).ok();
    let example = crate::readme::root().join("examples/live_counts.py");
    let run = crate::support::cli::output(Command::new(&python).arg(&example).arg(server.url()).arg("--caught-up"));
    assert!(run.status.success(), "{run:?}");
    let counted: Value = serde_json::from_slice(&run.stdout).unwrap();
    let mut expected = stats(&dir);
    let expected = expected.as_object_mut().unwrap();
    expected.remove("permanent_failures");
    assert_eq!(&counted, &Value::Object(expected.clone()));
    assert!(counted["completed"].as_u64().unwrap() > 0 && counted["removed"].as_u64().unwrap() > 0);

    // Following: a change made now shows in a line it prints.
    let mut follower = Command::new(&python)
        .arg(&example)
        .arg(server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let manager = QueueManager::open(&dir).unwrap();
    manager.add_to_pending(Movie::new("new", "New", 2025)).unwrap();
    manager.close().unwrap();
    ship_once(&dir, &server.url()).ok();
    let pending = expected["pending"].as_u64().unwrap() + 1;
    let wanted = format!("pending {pending} ");
    let reader = std::io::BufReader::new(follower.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(reader) {
        let line = line.unwrap();
        if line.starts_with(&wanted) {
            break;
        }
        seen.push(line);
        assert!(Instant::now() < deadline, "no line with {wanted:?}: {seen:?}");
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
}

/// A Python with nats-py: a virtual environment under the target
/// directory, made (and nats-py installed from PyPI) on first use.
fn nats_python() -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nats-py-venv");
    let python = venv.join("bin/python");
    let has = |python: &Path| {
        python.exists()
            && Command::new(python)
                .args(["-c", "import nats"])
                .status()
                .is_ok_and(|status| status.success())
    };
    if !has(&python) {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .unwrap();
        assert!(made.success(), "python3 -m venv");
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "nats-py"])
            .status()
            .unwrap();
        assert!(installed.success(), "pip install nats-py");
    }
    python
}

#[test]
fn a_hole_repair_recorded_is_shipped_as_a_skipped_message_and_a_restore_stops_before_it() {
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    crate::verify_repair::five_adds(&dir);
    crate::verify_repair::flip_inside_record(&dir, 2);
    mq(&dir, &["repair"]).ok();
    crate::support::cli::add(&dir, "6");
    ship_once(&dir, &server.url()).ok();

    let found = messages(&server.url(), "movie-queue");
    assert_eq!(found.len(), 6, "{found:#?}");
    let gap = &found[2];
    assert_eq!(gap.subject, "movie-queue.skipped");
    assert!(gap.id.ends_with(":3"), "{gap:?}");
    assert_eq!(gap.payload, events(&dir)[2], "the `skipped` line of `log --json`");
    assert_eq!(
        (gap.payload["from"].as_u64(), gap.payload["to"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(found[3].payload["seq"], 4, "the stream goes on after the hole");

    let target = scratch.path().join("restored");
    let refused = restore(&server.url(), &target, None).fails_with(1);
    assert!(refused.stderr.contains("records 3 to 3 are missing"), "{refused:#?}");
    assert!(refused.stderr.contains("--until 2"), "{refused:#?}");
    assert!(!target.exists(), "nothing left behind");
    restore(&server.url(), &target, Some("2")).ok();
    assert_eq!(events(&target), events(&dir)[..2]);

    // A shipper resuming after the hole goes on from the stream's end.
    crate::support::cli::add(&dir, "7");
    ship_once(&dir, &server.url()).ok();
    assert_eq!(messages(&server.url(), "movie-queue").len(), 7);
}

#[test]
fn a_record_larger_than_the_server_takes_stops_the_shipper_before_it_with_no_hole() {
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start_with(scratch.path(), "max_payload: 4096\n");
    let dir = scratch.path().join("store");
    busy_store(&dir, 3);
    let before = events(&dir).len();
    let big = format!("{{\"id\":\"big\",\"title\":\"{}\",\"year\":1}}", "x".repeat(10_000));
    crate::support::cli::mq_stdin(&dir, &["add", "--json", "-"], &big).ok();
    crate::support::cli::add(&dir, "after");
    for in_flight in ["1", "1024"] {
        let stopped = mq(
            &dir,
            &["ship", "--to", &server.url(), "--once", "--in-flight", in_flight],
        )
        .fails_with(1);
        assert!(
            stopped.stderr.contains(&format!("record {}", before + 1)) && stopped.stderr.contains("max_payload"),
            "{stopped:#?}"
        );
        let found = messages(&server.url(), "movie-queue");
        assert_eq!(found.len(), before, "nothing after the record that is too large");
        assert_eq!(
            std::fs::read_to_string(dir.join("shippers/movie-queue")).unwrap(),
            format!("MVQSHIP1 {before}\n")
        );
    }
}

#[test]
fn a_stream_that_drops_or_lost_messages_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 10);
    crate::support::nats::create_limited_stream(&server.url(), "limited", 5);
    let refused = mq(
        &dir,
        &[
            "ship",
            "--to",
            &server.url(),
            "--stream",
            "limited",
            "--subject",
            "limited",
            "--once",
        ],
    )
    .fails_with(1);
    assert!(refused.stderr.contains("max_msgs 5"), "{refused:#?}");

    ship_once(&dir, &server.url()).ok();
    crate::support::nats::purge(&server.url(), "movie-queue");
    crate::support::cli::add(&dir, "late");
    let refused = ship_once(&dir, &server.url()).fails_with(1);
    assert!(refused.stderr.contains("lost messages"), "{refused:#?}");
    let target = scratch.path().join("restored");
    let refused = restore(&server.url(), &target, None).fails_with(1);
    assert!(refused.stderr.contains("holds no message"), "{refused:#?}");
}

#[test]
fn restore_refuses_an_until_the_stream_cannot_answer_and_a_directory_whose_parent_is_missing() {
    let scratch = tempfile::tempdir().unwrap();
    let server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 5);
    ship_once(&dir, &server.url()).ok();
    let last = events(&dir).len();
    let target = scratch.path().join("restored");
    let zero = restore(&server.url(), &target, Some("0")).fails_with(1);
    assert!(zero.stderr.contains("--until 0"), "{zero:#?}");
    let past = restore(&server.url(), &target, Some("1796691144")).fails_with(1);
    assert!(past.stderr.contains(&format!("ends at record {last}")), "{past:#?}");
    assert!(past.stderr.contains("decimal point"), "{past:#?}");
    assert!(!target.exists());
    let nested = scratch.path().join("nest/a/b");
    let refused = restore(&server.url(), &nested, None).fails_with(1);
    assert!(refused.stderr.contains("not a directory"), "{refused:#?}");
    assert!(!scratch.path().join("nest").exists(), "no folder made above it");
}

#[test]
fn a_restore_rides_out_a_server_killed_and_restarted_under_it() {
    let scratch = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(scratch.path());
    let dir = scratch.path().join("store");
    busy_store(&dir, 8000);
    ship_once(&dir, &server.url()).ok();
    let target = scratch.path().join("restored");
    let restoring = command()
        .args(["restore", "--from", &server.url(), "--stream", "movie-queue"])
        .arg(&target)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    server.kill();
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    let run = restoring.wait_with_output().unwrap();
    assert!(run.status.success(), "{run:?}");
    assert_eq!(events(&target), events(&dir));
}
