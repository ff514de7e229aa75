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
//! * a writer's throughput (2,000 `Immediate` adds to a fresh store, one
//!   caller) while `movie-queue ship` follows it, against the same writer
//!   alone in the same round (target ≥ 0.9×).
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
    fn start() -> Self {
        let scratch = common::scratch_dir();
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

/// 2,000 `Immediate` adds by one caller to a fresh store in `dir`; adds a second.
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

fn main() {
    let adds = common::size(500_000, 1_000) as u64;
    let rounds = common::size(3, 1);
    let writes = common::size(2_000, 50) as u64;
    let store = common::audit_store(adds);
    let records = adds * 2;
    let dir = store.to_str().expect("a UTF-8 path");
    let last = records.to_string();
    let server = Server::start();

    let (mut ship_rates, mut restore_ratios, mut restores, mut replays) = (vec![], vec![], vec![], vec![]);
    let (mut writer_ratios, mut alone_rates, mut beside_rates) = (vec![], vec![], vec![]);
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
        restores.push(restore);
        replays.push(replay);
        restore_ratios.push(restore / replay);

        // The writer alone, then beside a shipper following its store.
        let alone = common::scratch_dir();
        let alone_rate = writer_rate(alone.path(), writes);
        let beside = common::scratch_dir();
        QueueManager::open(beside.path())
            .expect("create")
            .close()
            .expect("close");
        let follow_stream = format!("follow-{round}");
        let follow_subject = format!("follow{round}");
        let mut shipper = Command::new(TOOL)
            .arg("--dir")
            .arg(beside.path())
            .args([
                "ship",
                "--to",
                &server.url,
                "--stream",
                &follow_stream,
                "--subject",
                &follow_subject,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the shipper starts");
        std::thread::sleep(Duration::from_millis(300));
        let beside_rate = writer_rate(beside.path(), writes);
        std::thread::sleep(Duration::from_secs(1));
        let _ = shipper.kill();
        let _ = shipper.wait();
        assert_eq!(
            shipped_count(&server, &follow_stream),
            writes as usize,
            "the shipper kept up with the writer"
        );
        alone_rates.push(alone_rate);
        beside_rates.push(beside_rate);
        writer_ratios.push(beside_rate / alone_rate);
        eprintln!(
            "round {round}: ship {:.0} records/s, restore {restore:.2} s, replay {replay:.2} s, writer {alone_rate:.0} \
             alone / {beside_rate:.0} beside a shipper adds/s",
            records as f64 / secs
        );
    }
    common::print_figure(
        &format!("ship --once of {records} records, median"),
        Some(median(&mut ship_rates)),
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
        "writer alone, 1 caller, Immediate, median",
        Some(median(&mut alone_rates)),
        "adds/s",
    );
    common::print_figure(
        "writer beside a following shipper, median",
        Some(median(&mut beside_rates)),
        "adds/s",
    );
    let ship = median(&mut ship_rates);
    common::print_ratio("ship records/s (not a ratio: a rate)", Some(ship), ">= 50000", |rate| {
        rate >= 50_000.0
    });
    common::print_ratio(
        "restore / replay of the same journal",
        Some(median(&mut restore_ratios)),
        "<= 2",
        |ratio| ratio <= 2.0,
    );
    common::print_ratio(
        "writer beside a shipper / alone",
        Some(median(&mut writer_ratios)),
        ">= 0.9",
        |ratio| ratio >= 0.9,
    );
}
