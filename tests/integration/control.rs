//! The control socket, in process: a manager opened for writing serves
//! `control.sock` (mode 0600, replacing whatever a killed holder left,
//! never through a link, at any path length), `Control` asks it what a
//! manager would be asked and the change is in the holder's projection at
//! once, and bad input — an unknown operation, a malformed line, a huge
//! line, a silent client, a thousand clients — gets a typed error or a
//! bounded wait while the application's own calls go on.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use movie_queue::{Control, Durability, Error, Place, QueueManager};
use serde_json::Value;

use crate::support::common::{movie, scratch};

fn socket(dir: &Path) -> std::path::PathBuf {
    dir.join("control.sock")
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_socket())
}

/// A raw connection: one line out, one line back.
fn raw(dir: &Path) -> (BufReader<UnixStream>, UnixStream) {
    let stream = UnixStream::connect(socket(dir)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    (BufReader::new(stream.try_clone().unwrap()), stream)
}

fn ask(reader: &mut BufReader<UnixStream>, writer: &mut UnixStream, line: &[u8]) -> Value {
    writer.write_all(line).unwrap();
    read_answer(reader)
}

fn read_answer(reader: &mut BufReader<UnixStream>) -> Value {
    let mut answer = String::new();
    reader.read_line(&mut answer).expect("an answer line");
    serde_json::from_str(&answer).unwrap_or_else(|error| panic!("{answer:?}: {error}"))
}

fn kind(answer: &Value) -> &str {
    answer["error"]["kind"].as_str().unwrap_or("")
}

#[test]
fn a_change_through_the_socket_is_in_the_holders_projection_at_once_and_in_the_journal() {
    let dir = scratch();
    let holder = QueueManager::options()
        .durability(Durability::Batched {
            max_delay: Duration::from_secs(3600),
        })
        .open(dir.path())
        .unwrap();
    holder.add_to_pending(movie("603")).unwrap();
    holder.add_to_pending(movie("604")).unwrap();
    let taken = holder.get_next_pending().unwrap().unwrap();
    holder.add_to_failed(taken, "timeout", Some(4e9)).unwrap();

    let mut control = Control::connect(dir.path()).unwrap();
    assert_eq!(control.holder().pid, std::process::id());
    assert_eq!(control.holder().protocol, 1);
    assert_eq!(control.get_statistics().unwrap(), holder.get_statistics());
    assert_eq!(control.get("603").unwrap(), holder.get("603"));
    assert_eq!(control.get("nosuch").unwrap(), None);
    assert!(control.reset_failed_movie("603").unwrap());
    // At once, in the application's own projection: the next take is it.
    assert_eq!(
        holder.get("603").map(|(place, entry)| (place, entry.retry_count)),
        Some((Place::Pending, 0))
    );
    assert!(
        !control.reset_failed_movie("603").unwrap(),
        "not failed any more: nothing written"
    );
    assert_eq!(
        control.list(Place::Pending, 0, None).unwrap(),
        holder.list(Place::Pending),
        "the same order"
    );
    assert_eq!(
        control.list(Place::Pending, 1, Some(1)).unwrap(),
        holder.list(Place::Pending)[1..2]
    );
    let invalid = control.check_addable(&movie("")).unwrap_err();
    assert!(matches!(invalid, Error::InvalidMovie(_)), "{invalid:?}");
    assert_eq!(control.add_many_to_pending(&[movie("605"), movie("603")]).unwrap(), 1);
    // Answered only once durable, in Batched mode too: a crash now (the
    // journal as the disk holds it, read by a second reader) keeps it.
    let reader = QueueManager::open_read_only(dir.path()).unwrap();
    assert!(reader.get("605").is_some(), "acknowledged, so in the journal");
    drop(reader);
    assert_eq!(
        holder.get_next_pending().unwrap().map(|movie| movie.id().to_owned()),
        Some("604".into())
    );
    drop(control);
    let history = holder.history("603").unwrap();
    assert_eq!(
        history.iter().map(|record| record.event.kind()).collect::<Vec<_>>(),
        ["added", "taken", "failed", "reset"],
        "the socket's change is in the audit trail like any other"
    );
    holder.close().unwrap();
    assert!(!socket(dir.path()).exists(), "closing removes the socket");
    let gone = Control::connect(dir.path()).unwrap_err();
    assert!(
        matches!(&gone, Error::ControlUnavailable { reason, .. } if reason.contains("serves no control socket")),
        "{gone}"
    );
}

#[test]
fn the_socket_is_the_users_alone_and_read_only_or_turned_off_stores_serve_none() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    let metadata = std::fs::symlink_metadata(socket(dir.path())).unwrap();
    assert!(is_socket(&socket(dir.path())));
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let reader = QueueManager::open_read_only(dir.path()).unwrap();
    drop(reader);
    assert!(
        socket(dir.path()).exists(),
        "a reader's close leaves the holder's socket"
    );
    drop(holder);
    assert!(!socket(dir.path()).exists());
    let quiet = QueueManager::options().control_socket(false).open(dir.path()).unwrap();
    assert!(!socket(dir.path()).exists(), "turned off");
    drop(quiet);
}

#[test]
fn what_a_killed_holder_left_is_replaced_never_followed() {
    let dir = scratch();
    let outside = scratch();
    let target = outside.path().join("target");
    std::fs::write(&target, "not yours").unwrap();
    // A link where the socket goes, and a killed holder's bind folder.
    std::os::unix::fs::symlink(&target, socket(dir.path())).unwrap();
    std::fs::create_dir(dir.path().join("control.999999.bind")).unwrap();
    let holder = QueueManager::open(dir.path()).unwrap();
    assert!(is_socket(&socket(dir.path())));
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "not yours",
        "the link was replaced, not followed"
    );
    assert!(
        !dir.path().join("control.999999.bind").exists(),
        "the leftover folder is gone"
    );
    let mut control = Control::connect(dir.path()).unwrap();
    assert_eq!(control.get_statistics().unwrap().pending, 0);
    drop(control);
    drop(holder);
    // A stale socket file (nothing listens): the next holder replaces it.
    drop(std::os::unix::net::UnixListener::bind(dir.path().join("stale")).unwrap());
    std::fs::rename(dir.path().join("stale"), socket(dir.path())).unwrap();
    let refused = Control::connect(dir.path()).unwrap_err();
    assert!(matches!(refused, Error::ControlUnavailable { .. }), "{refused}");
    let holder = QueueManager::open(dir.path()).unwrap();
    Control::connect(dir.path()).unwrap();
    drop(holder);
}

#[test]
fn a_store_whose_path_is_too_long_for_a_socket_address_still_serves_it() {
    let dir = scratch();
    let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
    assert!(deep.join("control.sock").as_os_str().len() > 108);
    let holder = QueueManager::open(&deep).unwrap();
    holder.add_to_pending(movie("1")).unwrap();
    let mut control = Control::connect(&deep).unwrap();
    assert_eq!(control.get_statistics().unwrap().pending, 1);
    drop(control);
    drop(holder);
    assert!(!deep.join("control.sock").exists());
}

#[test]
fn bad_requests_get_typed_errors_and_the_connection_goes_on() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    let (mut reader, mut writer) = raw(dir.path());
    let cases: [(&[u8], &str); 7] = [
        (b"{\"v\":1,\"id\":1,\"op\":\"drop_everything\"}\n", "bad_request"),
        (b"not json at all\n", "bad_request"),
        (b"{\"v\":9,\"id\":2,\"op\":\"stats\"}\n", "unsupported_version"),
        (b"{\"id\":2,\"op\":\"stats\"}\n", "bad_request"),
        (b"{\"v\":1,\"id\":3,\"op\":\"reset\"}\n", "bad_request"),
        (
            b"{\"v\":1,\"id\":4,\"op\":\"complete\",\"movie\":{\"id\":\"\"}}\n",
            "invalid_movie",
        ),
        (
            b"{\"v\":1,\"id\":5,\"op\":\"list\",\"place\":\"attic\"}\n",
            "invalid_argument",
        ),
    ];
    for (line, expected) in cases {
        let answer = ask(&mut reader, &mut writer, line);
        assert_eq!(kind(&answer), expected, "{}: {answer}", String::from_utf8_lossy(line));
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty())
        );
    }
    let answer = ask(&mut reader, &mut writer, b"{\"v\":1,\"id\":6,\"op\":\"stats\"}\n");
    assert_eq!(answer["id"], 6);
    assert_eq!(answer["ok"]["pending"], 0, "{answer}");
    assert_eq!(holder.last_seq().0, 0, "nothing was written");
}

#[test]
fn a_line_over_the_limit_is_refused_without_being_held_whole() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    let (mut reader, mut writer) = raw(dir.path());
    let chunk = vec![b'x'; 1 << 20];
    let sender = std::thread::spawn(move || {
        // 70 MiB with no newline: the server stops reading at 65 MiB (the
        // journal's record limit and room around it).
        for _ in 0..70 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
        writer
    });
    let answer = read_answer(&mut reader);
    assert_eq!(kind(&answer), "line_too_long", "{answer}");
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the connection is closed after it");
    drop(sender.join());
    holder.add_to_pending(movie("1")).unwrap();
    assert_eq!(
        Control::connect(dir.path()).unwrap().get_statistics().unwrap().pending,
        1
    );
}

#[test]
fn a_movie_of_several_mebibytes_and_a_big_batch_go_through_the_holder() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    let mut control = Control::connect(dir.path()).unwrap();
    let huge = movie_queue::Movie::new("huge", "t".repeat(5 << 20), 2026);
    assert_eq!(control.add_many_to_pending(&[huge]).unwrap(), 1);
    let batch: Vec<_> = (0..3_500).map(|number| movie(&number.to_string())).collect();
    assert_eq!(control.add_many_to_pending(&batch).unwrap(), 3_500);
    assert_eq!(holder.get_pending_count(), 3_501);
}

#[test]
fn a_listing_comes_in_pages_and_no_answer_is_built_whole() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    holder
        .add_many_to_pending((0..25_000).map(|number| movie(&number.to_string())))
        .unwrap();
    let mut control = Control::connect(dir.path()).unwrap();
    assert_eq!(
        control.list(Place::Pending, 0, None).unwrap(),
        holder.list(Place::Pending)
    );
    assert_eq!(
        control.list(Place::Pending, 24_990, Some(50)).unwrap(),
        holder.list(Place::Pending)[24_990..]
    );
    // Asked for everything at once, one answer holds 10,000 entries.
    let (mut reader, mut writer) = raw(dir.path());
    let answer = ask(
        &mut reader,
        &mut writer,
        b"{\"v\":1,\"id\":1,\"op\":\"list\",\"place\":\"pending\"}\n",
    );
    assert_eq!(answer["ok"].as_array().map(Vec::len), Some(10_000));
}

#[test]
fn a_socket_moved_from_another_store_is_not_trusted() {
    let one = scratch();
    let other = scratch();
    let holder_one = QueueManager::open(one.path()).unwrap();
    let holder_other = QueueManager::open(other.path()).unwrap();
    std::fs::remove_file(socket(other.path())).unwrap();
    std::fs::rename(socket(one.path()), socket(other.path())).unwrap();
    let refused = Control::connect(other.path()).unwrap_err();
    assert!(
        matches!(&refused, Error::ControlUnavailable { reason, .. } if reason.contains("holds another store")),
        "{refused}"
    );
    drop((holder_one, holder_other));
}

#[test]
fn a_directory_or_a_file_where_the_socket_goes_is_set_aside_and_the_socket_served() {
    let dir = scratch();
    std::fs::create_dir_all(socket(dir.path()).join("inside")).unwrap();
    let holder = QueueManager::open(dir.path()).unwrap();
    assert!(is_socket(&socket(dir.path())));
    assert!(
        dir.path().join("control.sock.in-the-way.broken/inside").is_dir(),
        "set aside, kept"
    );
    Control::connect(dir.path()).unwrap();
    drop(holder);
    // Someone's file at the name: its bytes are kept aside, never deleted.
    std::fs::write(socket(dir.path()), "notes").unwrap();
    let holder = QueueManager::open(dir.path()).unwrap();
    assert!(is_socket(&socket(dir.path())));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("control.sock.in-the-way.1.broken")).unwrap(),
        "notes"
    );
    Control::connect(dir.path()).unwrap();
    drop(holder);
}

#[test]
fn a_client_trickling_one_line_is_let_go_within_the_idle_limit() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    let (mut reader, mut writer) = raw(dir.path());
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let answered = std::sync::Arc::clone(&answered);
        std::thread::spawn(move || {
            // A byte every half second for up to a minute, never a newline.
            let mut still_sending_when_answered = false;
            for _ in 0..120 {
                if answered.load(std::sync::atomic::Ordering::SeqCst) {
                    still_sending_when_answered = true;
                    break;
                }
                if writer.write_all(b" ").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            still_sending_when_answered
        })
    };
    let answer = read_answer(&mut reader);
    answered.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(kind(&answer), "timeout", "{answer}");
    assert!(
        trickle.join().unwrap(),
        "let go while bytes still came, not after they stopped"
    );
    drop(holder);
}

#[test]
fn a_silent_client_is_let_go_and_does_not_hold_up_the_application() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    let (mut reader, _writer) = raw(dir.path());
    // Meanwhile the application goes on, and others are served.
    for id in 0..20 {
        holder.add_to_pending(movie(&id.to_string())).unwrap();
    }
    assert_eq!(
        Control::connect(dir.path()).unwrap().get_statistics().unwrap().pending,
        20
    );
    // The documented idle limit (10 s) ends the silent one with a typed error.
    let answer = read_answer(&mut reader);
    assert_eq!(kind(&answer), "timeout", "{answer}");
    assert!(answer["id"].is_null());
}

#[test]
fn a_thousand_clients_at_once_are_served_or_told_busy_and_the_application_goes_on() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    let mut connections = Vec::new();
    for _ in 0..1_000 {
        connections.push(raw(dir.path()));
    }
    holder.add_to_pending(movie("1")).unwrap();
    let (mut served, mut busy) = (0, 0);
    for (index, (reader, writer)) in connections.iter_mut().enumerate() {
        let line = format!("{{\"v\":1,\"id\":{index},\"op\":\"stats\"}}\n");
        // A refused client's write may meet a closed socket: its answer is already there.
        let _ = writer.write_all(line.as_bytes());
        let answer = read_answer(reader);
        match kind(&answer) {
            "" => {
                assert_eq!(answer["ok"]["pending"], 1);
                served += 1;
            }
            "busy" => busy += 1,
            other => panic!("client {index}: {other}: {answer}"),
        }
    }
    assert!((1..=16).contains(&served), "served {served}, busy {busy}");
    assert_eq!(served + busy, 1_000);
    drop(connections);
    holder.add_to_pending(movie("2")).unwrap();
    // Once they are gone, a new client is served again.
    let mut later = None;
    for _ in 0..200 {
        match Control::connect(dir.path()) {
            Ok(control) => {
                later = Some(control);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    assert_eq!(later.expect("served again").get_statistics().unwrap().pending, 2);
}

#[test]
fn closing_the_holder_closes_every_connection_and_frees_the_lock() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    let mut asking = Control::connect(dir.path()).unwrap();
    let mut changing = Control::connect(dir.path()).unwrap();
    let (mut reader, _writer) = raw(dir.path());
    holder.close().unwrap();
    let mut rest = String::new();
    assert_eq!(reader.read_line(&mut rest).unwrap(), 0, "closed: {rest:?}");
    // A question that meets a closed holder is not answered; a change's
    // outcome is unknown.
    let unanswered = asking.get_statistics().unwrap_err();
    assert!(matches!(unanswered, Error::ControlUnavailable { .. }), "{unanswered}");
    let lost = changing.reset_failed_movie("1").unwrap_err();
    assert!(matches!(lost, Error::OutcomeUnknown { .. }), "{lost}");
    // The lock is free: a new holder opens at once.
    drop(QueueManager::open(dir.path()).unwrap());
}

#[test]
fn a_client_told_busy_asks_again_until_a_connection_frees_up() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    // Sixteen connections served (each answered once, so each is surely served).
    let mut served = Vec::new();
    for index in 0..16 {
        let (mut reader, mut writer) = raw(dir.path());
        let answer = ask(
            &mut reader,
            &mut writer,
            format!("{{\"v\":1,\"id\":{index},\"op\":\"hello\"}}\n").as_bytes(),
        );
        assert_eq!(kind(&answer), "", "{answer}");
        served.push((reader, writer));
    }
    let (mut reader, _writer) = raw(dir.path());
    assert_eq!(
        kind(&read_answer(&mut reader)),
        "busy",
        "the seventeenth is told at once"
    );
    let freeing = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(served);
    });
    let mut control = Control::connect(dir.path()).expect("served once a connection frees up");
    assert_eq!(control.get_statistics().unwrap().pending, 0);
    freeing.join().unwrap();
    drop(holder);
}

#[test]
fn a_poisoned_holder_answers_no_question_from_a_state_that_never_became_durable() {
    use movie_queue::testing::{Fault, FaultyStorage};
    let dir = scratch();
    let faulty = FaultyStorage::new();
    let holder = QueueManager::options()
        .storage(std::sync::Arc::new(faulty.clone()))
        .open(dir.path())
        .unwrap();
    holder.add_to_pending(movie("1")).unwrap();
    let mut control = Control::connect(dir.path()).unwrap();
    faulty.inject(Fault::FailSync {
        index: faulty.sync_count(),
        errno: 28,
    });
    let failed = control.add_many_to_pending(&[movie("2")]).unwrap_err();
    assert!(
        matches!(&failed, Error::Remote { kind, .. } if kind == "poisoned"),
        "{failed}"
    );
    // The holder's own state shows "2"; the socket does not answer from it.
    let refused = control.get("2").unwrap_err();
    assert!(
        matches!(&refused, Error::Remote { kind, .. } if kind == "poisoned"),
        "{refused}"
    );
    let refused = control.get_statistics().unwrap_err();
    assert!(
        matches!(&refused, Error::Remote { kind, .. } if kind == "poisoned"),
        "{refused}"
    );
    drop(holder);
}

#[test]
fn a_listing_goes_on_after_its_last_entry_while_the_front_moves() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    holder
        .add_many_to_pending((0..200).map(|number| movie(&number.to_string())))
        .unwrap();
    let (mut reader, mut writer) = raw(dir.path());
    let page = ask(
        &mut reader,
        &mut writer,
        b"{\"v\":1,\"id\":1,\"op\":\"list\",\"place\":\"pending\",\"limit\":100}\n",
    );
    assert_eq!(page["ok"][99]["id"], "99");
    // The application takes from the front meanwhile.
    for _ in 0..30 {
        holder.get_next_pending().unwrap();
    }
    let next = ask(
        &mut reader,
        &mut writer,
        b"{\"v\":1,\"id\":2,\"op\":\"list\",\"place\":\"pending\",\"after\":\"99\",\"limit\":100}\n",
    );
    assert_eq!(next["ok"][0]["id"], "100", "nothing skipped: {next}");
    assert_eq!(next["ok"].as_array().map(Vec::len), Some(100));
    holder.get_next_pending().unwrap();
    let gone = ask(
        &mut reader,
        &mut writer,
        b"{\"v\":1,\"id\":3,\"op\":\"list\",\"place\":\"pending\",\"after\":\"0\"}\n",
    );
    assert_eq!(kind(&gone), "invalid_argument", "movie 0 left pending: {gone}");
}

#[test]
fn one_large_request_at_a_time_and_the_next_is_told_busy() {
    let dir = scratch();
    let holder = QueueManager::open(dir.path()).unwrap();
    let (mut first_reader, mut first) = raw(dir.path());
    let (mut second_reader, mut second) = raw(dir.path());
    // The first sends 2 MiB of a line and pauses: the large line is its.
    first.write_all(&vec![b' '; 2 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = second.write_all(&vec![b' '; 2 << 20]);
    assert_eq!(kind(&read_answer(&mut second_reader)), "busy");
    first.write_all(b"{\"v\":1,\"id\":1,\"op\":\"hello\"}\n").unwrap();
    let answer = read_answer(&mut first_reader);
    assert_eq!(answer["id"], 1, "{answer}");
    // Then another large one is taken.
    let mut control = Control::connect(dir.path()).unwrap();
    let big = movie_queue::Movie::new("big", "t".repeat(2 << 20), 2026);
    assert_eq!(control.add_many_to_pending(&[big]).unwrap(), 1);
    drop(holder);
}
