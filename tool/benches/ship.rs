//! Shipping to NATS JetStream (issue 26), against a local `nats-server -js`
//! (file storage, one replica) started on a free loopback port, on the
//! audit bench's store (1,000,000 records: 500,000 adds, then 500,000
//! takes; built once under `target/bench-data/`):
//!
//! * `movie-queue ship --once` of every record to a new stream: records a
//!   second (target ≥ 50,000);
//! * `movie-queue restore --from` of that stream into a new directory,
//!   against `movie-queue replay --until <last>` of the same journal in the
//!   same round (target ≤ 2×);
//! * a writer's throughput (10,000 `Immediate` adds to a fresh store, one
//!   caller) while `movie-queue ship` follows it, against the same writer
//!   alone in the same round (target ≥ 0.9×), with the server's streams on
//!   this disk and in memory (`/dev/shm`, standing for a server on another
//!   machine); `MOVIE_QUEUE_BENCH_SHIP_NICE=19` runs the shipper at that
//!   niceness;
//! * receiving the stream's messages and nothing else, against the same
//!   replay: the floor a restore through this client and server has.
//!
//! Each measurement is a whole command (the release binary), over
//! interleaved rounds; the figures are medians and each ratio is of the
//! same round's two figures (median over rounds). Needs `nats-server`
//! (Debian's package) on the PATH or in /usr/sbin. Run: `cargo bench -p
//! movie-queue-tool --bench ship`.

#[path = "../../benches/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use movie_queue::{Durability, QueueManager};

const TOOL: &str = env!("CARGO_BIN_EXE_movie-queue");

/// `nats-server -js` on a free port with its own store; killed on drop.
struct Server {
    child: Child,
    url: String,
    _scratch: tempfile::TempDir,
}

impl Server {
    /// A server keeping its streams in a scratch directory under `root`
    /// (`None`: the benches' scratch root, on the repository's disk).
    fn start(root: Option<&Path>) -> Self {
        let scratch = match root {
            Some(root) => tempfile::tempdir_in(root).expect("a scratch directory"),
            None => common::scratch_dir(),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        let binary = ["nats-server", "/usr/sbin/nats-server"]
            .into_iter()
            .find(|name| Command::new(name).arg("--version").output().is_ok())
            .expect("nats-server is needed for this bench: apt-get install -y nats-server");
        let log = scratch.path().join("server.log");
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(scratch.path().join("js"))
            .stderr(std::fs::File::create(&log).expect("the server's log"))
            .spawn()
            .expect("nats-server starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Server is ready")
        {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _scratch: scratch,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the tool; the seconds it took. Panics with its output on failure.
fn timed(args: &[&str]) -> f64 {
    let started = Instant::now();
    let output = Command::new(TOOL).args(args).output().expect("the tool runs");
    let secs = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "{args:?}: {output:?}");
    secs
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `adds` `Immediate` adds by one caller to a fresh store in `dir`; adds a second.
fn writer_rate(dir: &Path, adds: u64) -> f64 {
    let manager = common::options(Durability::Immediate).open(dir).expect("open");
    let started = Instant::now();
    for number in 0..adds {
        assert!(manager.add_to_pending(common::movie(number)).expect("add"));
    }
    let rate = adds as f64 / started.elapsed().as_secs_f64();
    manager.close().expect("close");
    rate
}

/// How many messages stream `name` holds, by `restore` of its end into a
/// scratch directory (the test of the shipper's completeness, not timed).
fn shipped_count(server: &Server, name: &str) -> usize {
    let scratch = common::scratch_dir();
    let target = scratch.path().join("check");
    let output = Command::new(TOOL)
        .args(["restore", "--from", &server.url, "--stream", name])
        .arg(&target)
        .output()
        .expect("restore runs");
    if !output.status.success() {
        return 0;
    }
    movie_queue::events(&target, movie_queue::Seq(0))
        .expect("events")
        .count()
}

/// One caller's `Immediate` adds a second with `ship` following the
/// store, streaming to `server` (after the writer, the shipper must have
/// shipped every record: it kept up).
fn writer_beside_shipper(server: &Server, name: &str, writes: u64) -> f64 {
    let beside = common::scratch_dir();
    QueueManager::open(beside.path())
        .expect("create")
        .close()
        .expect("close");
    // `MOVIE_QUEUE_BENCH_SHIP_NICE=10`: the shipper at that niceness.
    let mut shipper = match std::env::var("MOVIE_QUEUE_BENCH_SHIP_NICE") {
        Ok(nice) => {
            let mut command = Command::new("nice");
            command.args(["-n", &nice, TOOL]);
            command
        }
        Err(_) => Command::new(TOOL),
    };
    let mut shipper = shipper
        .arg("--dir")
        .arg(beside.path())
        .args(["ship", "--to", &server.url, "--stream", name, "--subject", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the shipper starts");
    std::thread::sleep(Duration::from_millis(300));
    let rate = writer_rate(beside.path(), writes);
    std::thread::sleep(Duration::from_secs(1));
    let _ = shipper.kill();
    let _ = shipper.wait();
    assert_eq!(
        shipped_count(server, name),
        writes as usize,
        "the shipper kept up with the writer"
    );
    rate
}

/// Seconds to receive every message of `stream` and do nothing with them
/// (a consumer pulling 4,096 a batch, as `restore` does): the floor of a
/// restore through this client and server.
fn consume_only(server: &Server, stream: &str) -> f64 {
    use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull};
    use futures_util::StreamExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let client = async_nats::connect(server.url.as_str()).await.expect("connect");
        let context = jetstream::new(client);
        let mut stream = context.get_stream(stream).await.expect("the stream");
        let end = stream.info().await.expect("its state").state.last_sequence;
        let consumer = stream
            .create_consumer(pull::Config {
                ack_policy: AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("a consumer");
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(4096)
            .messages()
            .await
            .expect("messages");
        let mut count = 0;
        while let Some(message) = messages.next().await {
            std::hint::black_box(message.expect("a message"));
            count += 1;
            if count >= end {
                break;
            }
        }
        started.elapsed().as_secs_f64()
    })
}

/// One caller's `Immediate` adds a second with `log --follow --json`
/// following the store (its lines thrown away): the journal's follower
/// alone, without a server.
fn writer_beside_follower(writes: u64) -> f64 {
    let beside = common::scratch_dir();
    QueueManager::open(beside.path())
        .expect("create")
        .close()
        .expect("close");
    let mut follower = Command::new(TOOL)
        .arg("--dir")
        .arg(beside.path())
        .args(["log", "--follow", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the follower starts");
    std::thread::sleep(Duration::from_millis(300));
    let rate = writer_rate(beside.path(), writes);
    let _ = follower.kill();
    let _ = follower.wait();
    rate
}

fn main() {
    let adds = common::size(500_000, 1_000) as u64;
    let rounds = common::size(3, 1);
    let writer_rounds = common::size(5, 1);
    let writes = common::size(10_000, 50) as u64;
    let store = common::audit_store(adds);
    let records = adds * 2;
    let dir = store.to_str().expect("a UTF-8 path");
    let last = records.to_string();
    let server = Server::start(None);

    let (mut ship_rates, mut restore_ratios, mut restores, mut replays) = (vec![], vec![], vec![], vec![]);
    let (mut consumes, mut consume_ratios) = (vec![], vec![]);
    // `MOVIE_QUEUE_BENCH_SHIP_WRITER_ONLY=1`: the writer's rounds only.
    let rounds = if std::env::var_os("MOVIE_QUEUE_BENCH_SHIP_WRITER_ONLY").is_some() {
        0
    } else {
        rounds
    };
    for round in 0..rounds {
        let stream = format!("bench-{round}");
        let subject = format!("bench{round}");
        let secs = timed(&[
            "--dir",
            dir,
            "ship",
            "--to",
            &server.url,
            "--stream",
            &stream,
            "--subject",
            &subject,
            "--once",
        ]);
        ship_rates.push(records as f64 / secs);
        let scratch = common::scratch_dir();
        let target: PathBuf = scratch.path().join("restored");
        let restore = timed(&[
            "restore",
            "--from",
            &server.url,
            "--stream",
            &stream,
            target.to_str().expect("a UTF-8 path"),
        ]);
        let replay = timed(&["--dir", dir, "replay", "--until", &last, "--json"]);
        let consume = consume_only(&server, &stream);
        consumes.push(consume);
        consume_ratios.push(consume / replay);
        restores.push(restore);
        replays.push(replay);
        restore_ratios.push(restore / replay);
        eprintln!(
            "round {round}: ship {:.0} records/s, restore {restore:.2} s, replay {replay:.2} s, receiving only \
             {consume:.2} s",
            records as f64 / secs
        );
    }

    // The writer alone, beside a shipper to a server whose streams are on
    // this disk, and beside one whose streams are in memory (/dev/shm, as
    // a server on another machine: its disk is not the writer's), in turn.
    let shm = Path::new("/dev/shm");
    let memory = shm.is_dir().then(|| Server::start(Some(shm)));
    let (mut alone_rates, mut disk_ratios, mut memory_ratios) = (vec![], vec![], vec![]);
    let mut follower_ratios = vec![];
    for round in 0..writer_rounds {
        let alone = common::scratch_dir();
        let alone_rate = writer_rate(alone.path(), writes);
        let follower_rate = writer_beside_follower(writes);
        follower_ratios.push(follower_rate / alone_rate);
        let disk_rate = writer_beside_shipper(&server, &format!("disk{round}"), writes);
        alone_rates.push(alone_rate);
        disk_ratios.push(disk_rate / alone_rate);
        let memory_rate = memory
            .as_ref()
            .map(|memory| writer_beside_shipper(memory, &format!("memory{round}"), writes));
        if let Some(memory_rate) = memory_rate {
            memory_ratios.push(memory_rate / alone_rate);
        }
        eprintln!(
            "writer round {round}: {alone_rate:.0} adds/s alone, {follower_rate:.0} beside log --follow, \
             {disk_rate:.0} beside a shipper to this disk, {memory_rate:?} beside a shipper to a server in memory"
        );
    }

    common::print_figure(
        "writer alone, 1 caller, Immediate, median",
        Some(median(&mut alone_rates)),
        "adds/s",
    );
    common::print_figure(
        "writer beside log --follow / alone (the journal's follower, no server), median",
        Some(median(&mut follower_ratios)),
        "(a ratio)",
    );
    common::print_ratio(
        "writer beside a shipper / alone, the server's streams on this disk",
        Some(median(&mut disk_ratios)),
        ">= 0.9",
        |ratio| ratio >= 0.9,
    );
    common::print_ratio(
        "writer beside a shipper / alone, the server's streams in memory",
        (!memory_ratios.is_empty()).then(|| median(&mut memory_ratios)),
        ">= 0.9",
        |ratio| ratio >= 0.9,
    );
    if ship_rates.is_empty() {
        return;
    }
    let ship = median(&mut ship_rates);
    common::print_figure(
        &format!("ship --once of {records} records, median"),
        Some(ship),
        "records/s",
    );
    common::print_figure(
        &format!("restore --from of {records} records, median"),
        Some(median(&mut restores)),
        "s",
    );
    common::print_figure(
        &format!("replay --until {records} of the same journal, median"),
        Some(median(&mut replays)),
        "s",
    );
    common::print_figure(
        &format!("receiving the {records} messages only (the client's floor), median"),
        Some(median(&mut consumes)),
        "s",
    );
    common::print_figure(
        "receiving only / replay of the same journal, median",
        Some(median(&mut consume_ratios)),
        "(a ratio)",
    );
    common::print_ratio("ship records/s (a rate, not a ratio)", Some(ship), ">= 50000", |rate| {
        rate >= 50_000.0
    });
    common::print_ratio(
        "restore / replay of the same journal",
        Some(median(&mut restore_ratios)),
        "<= 2",
        |ratio| ratio <= 2.0,
    );
}
