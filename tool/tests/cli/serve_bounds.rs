//! `movie-queue serve` under abuse stays useful to everyone else: a
//! client that never finishes its headers (slowloris), a thousand idle
//! connections, a process out of file descriptors, a client that reads
//! the live feed too slowly. Each test then asks for a page as a normal
//! client would and checks it is answered while the abuse goes on (not
//! after it ended by itself); none measures speed.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use movie_queue::{Durability, Movie, Options};

use crate::support::cli::mq;
use crate::support::http::{PATIENCE, Response, Server, get, serve, serve_with};

/// The server's caps (`serve/listen.rs`).
const PER_CLIENT_MAX: usize = 32;
const CONNECTIONS_MAX: usize = 256;

fn demo() -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    mq(&dir, &["demo"]).ok();
    (scratch, dir)
}

/// Lets this process open the sockets a test needs (a CI machine's soft
/// limit may be 1,024).
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
        }
    }
}

/// A connection to `server` from the loopback address `from`.
fn connect_from(from: [u8; 4], server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(IpAddr::from(from), 0).into())?;
    socket.connect(&server.into())?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE))?;
    Ok(stream)
}

/// `GET path` from the loopback address `from`, as a normal client.
fn get_from(from: [u8; 4], server: SocketAddr, path: &str) -> Response {
    let mut stream = connect_from(from, server).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        server.port()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    Response {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
    }
}

/// Is `stream` still open (nothing to read yet, no end)?
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0_u8; 1];
    let open = matches!((&*stream).read(&mut byte), Err(error) if error.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

/// Waits until the server closes `stream` (reads to its end).
fn closed_within_patience(mut stream: TcpStream) -> bool {
    let deadline = Instant::now() + PATIENCE;
    let mut buffer = [0_u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock || error.kind() == ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn slowloris_connections_are_capped_and_closed_while_others_are_served() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    // Headers begun and never finished, one byte now and then.
    let slow: Vec<TcpStream> = (0..PER_CLIENT_MAX)
        .map(|_| {
            let mut stream = connect_from([127, 0, 0, 1], server.addr).unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .unwrap();
            stream
        })
        .collect();
    // The same client's next connection is over its cap: a JSON 503 at once.
    let refused = get_from([127, 0, 0, 1], server.addr, "/api/stats");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.body.contains("too many connections"), "{refused:?}");
    // Another client is served while the slow ones still hang.
    let answer = get_from([127, 0, 0, 2], server.addr, "/api/stats");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        slow.iter().all(still_open),
        "answered while the slow connections were still open"
    );
    // The header timeout closes each slow connection by itself.
    for mut stream in slow {
        let _ = stream.write_all(b"a");
        assert!(closed_within_patience(stream), "a slow connection was closed");
    }
    assert_eq!(get(server.addr, "/api/stats").status, 200, "its client is served again");
}

#[test]
fn a_thousand_idle_connections_leave_room_for_a_normal_request() {
    raise_descriptor_limit();
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    // From one address: its cap admits a few, the rest are refused.
    let idle: Vec<TcpStream> = (0..1_000)
        .filter_map(|_| connect_from([127, 0, 0, 1], server.addr).ok())
        .collect();
    assert_eq!(idle.len(), 1_000, "each connection was made (and most refused at once)");
    let answer = get_from([127, 0, 0, 3], server.addr, "/");
    assert_eq!(answer.status, 200, "{answer:?}");
    drop(idle);
    // From many addresses: the total cap is reached; beyond it, a JSON 503
    // until idle connections time out; then the normal request is served.
    let many: Vec<TcpStream> = (0..1_000_u32)
        .filter_map(|index| {
            let [_, _, high, low] = (index / 8).to_be_bytes();
            connect_from([127, 1, high, low], server.addr).ok()
        })
        .collect();
    assert_eq!(many.len(), 1_000);
    let deadline = Instant::now() + PATIENCE;
    let first = get_from([127, 0, 0, 4], server.addr, "/api/stats");
    let mut answer = first.clone();
    while answer.status != 200 && Instant::now() < deadline {
        assert_eq!(answer.status, 503, "full: refused, not hung: {answer:?}");
        std::thread::sleep(Duration::from_millis(200));
        answer = get_from([127, 0, 0, 4], server.addr, "/api/stats");
    }
    assert_eq!(
        answer.status, 200,
        "served once the idle connections timed out: {answer:?}"
    );
    assert_eq!(
        first.status, 503,
        "at first the total cap ({CONNECTIONS_MAX}) refused it: {first:?}"
    );
}

/// Starts `serve` on `dir` under a shell that gives it at most `files`
/// descriptors.
fn serve_limited(dir: &Path, files: u32) -> Server {
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_movie-queue"))
        .arg("--dir")
        .arg(dir)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env_remove("MOVIE_QUEUE_DIR")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "off")
        .stdin(std::process::Stdio::null());
    serve_with(&mut command)
}

fn last_seq(server: &Server) -> u64 {
    get(server.addr, "/api/overview").json()["last_seq"].as_u64().unwrap()
}

#[test]
fn out_of_descriptors_the_server_and_its_live_feed_recover_by_themselves() {
    let (_scratch, dir) = demo();
    let server = serve_limited(&dir, 48);
    // A writer with small segments: each roll makes the follower open a file.
    let writer = Options::default()
        .durability(Durability::Immediate)
        .segment_bytes_max(4096)
        .open(&dir)
        .unwrap();
    // Take every descriptor the server has, from several addresses.
    let hogs: Vec<TcpStream> = (0..120_u8)
        .filter_map(|index| connect_from([127, 0, 2, index], server.addr).ok())
        .collect();
    for id in 0..200 {
        writer
            .add_to_pending(Movie::new(format!("fd-{id}"), "Starved", "2020"))
            .unwrap();
    }
    let last = writer.get_statistics().pending;
    assert!(last > 0);
    drop(hogs);
    // Accepting resumes, and the live feed catches up with every record.
    let expected = {
        let events = movie_queue::events(&dir, movie_queue::Seq(0)).unwrap();
        events.last().unwrap().unwrap().seq.0
    };
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| last_seq(&server))).ok() == Some(expected) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        last_seq(&server),
        expected,
        "the live feed caught up after the descriptors came back"
    );
    let page = get(server.addr, "/queues?place=pending&q=fd-199");
    assert!(page.body.contains("fd-199"), "the last record is on the pages");
    writer.close().unwrap();
}

#[test]
fn a_client_reading_the_live_feed_too_slowly_holds_nobody_up_and_catches_up_when_it_reads() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    let mut slow = connect_from([127, 0, 0, 1], server.addr).unwrap();
    slow.write_all(
        format!(
            "GET /api/live HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            server.addr.port()
        )
        .as_bytes(),
    )
    .unwrap();
    // Records one by one while it reads nothing, with long titles: more
    // than the socket buffers hold.
    let writer = Options::default()
        .durability(Durability::Batched {
            max_delay: Duration::from_millis(5),
        })
        .open(&dir)
        .unwrap();
    let title = "x".repeat(8_000);
    for id in 0..1_500 {
        writer
            .add_to_pending(Movie::new(format!("slow-{id}"), title.as_str(), "2020"))
            .unwrap();
    }
    writer.close().unwrap();
    let last = {
        let events = movie_queue::events(&dir, movie_queue::Seq(0)).unwrap();
        events.last().unwrap().unwrap().seq.0
    };
    let answer = get_from([127, 0, 0, 5], server.addr, "/api/stats");
    assert_eq!(answer.status, 200, "another client is served beside the slow one");
    let deadline = Instant::now() + PATIENCE;
    while last_seq(&server) < last && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(last_seq(&server), last, "the pages have every record");
    // The slow client, reading at last, reaches the present (told what it
    // missed, if the feed dropped messages for it).
    let deadline = Instant::now() + PATIENCE;
    let wanted = format!("\"last_seq\":{last},");
    let mut seen = Vec::new();
    let mut buffer = vec![0_u8; 1 << 16];
    while Instant::now() < deadline && !String::from_utf8_lossy(&seen).contains(&wanted) {
        match slow.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => seen.extend_from_slice(&buffer[..read]),
        }
    }
    assert!(
        String::from_utf8_lossy(&seen).contains(&wanted),
        "the slow client reached record {last}"
    );
}

/// Live feeds never end, so they are capped apart from other connections:
/// one address holding its share of them leaves pages and the API free.
#[test]
fn live_feeds_are_capped_apart_and_pages_stay_free() {
    let (_scratch, dir) = demo();
    let server = serve(&dir, &[]);
    let open_feed = |from: [u8; 4]| {
        let mut stream = connect_from(from, server.addr).unwrap();
        stream
            .write_all(
                format!(
                    "GET /api/live HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
                    server.addr.port()
                )
                .as_bytes(),
            )
            .unwrap();
        let mut head = [0_u8; 12];
        stream.read_exact(&mut head).unwrap();
        (stream, String::from_utf8_lossy(&head).into_owned())
    };
    let feeds: Vec<(TcpStream, String)> = (0..8).map(|_| open_feed([127, 0, 0, 1])).collect();
    assert!(
        feeds.iter().all(|(_, head)| head.contains("200")),
        "eight feeds from one address"
    );
    let (_, refused) = open_feed([127, 0, 0, 1]);
    assert!(refused.contains("503"), "the ninth is refused: {refused}");
    let api = get_from([127, 0, 0, 1], server.addr, "/api/live");
    assert!(api.body.contains("too many live feeds"), "{api:?}");
    assert_eq!(
        get_from([127, 0, 0, 1], server.addr, "/api/stats").status,
        200,
        "its pages are served"
    );
    let (_, other) = open_feed([127, 0, 0, 2]);
    assert!(other.contains("200"), "another address has its own");
}
