//! The dashboard in a real browser: headless Chromium (the Debian package
//! `chromium`; `.ci/run` installs it, and a missing browser fails this
//! test) loads every page of a demo store. Each page's script ran
//! (`data-js="ready"`), wrote no error into the page (the script catches
//! errors, unhandled rejections and Content-Security-Policy violations)
//! and the browser's console printed nothing; the overview's numbers are
//! `movie-queue stats --json`; the time-travel slider, moved to a record,
//! shows the queues as they were there; screenshots are saved under
//! `target/dashboard-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{mq, output, stats};
use crate::support::http::serve;

/// The browser: `$CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    let name = std::env::var_os("CHROMIUM").unwrap_or_else(|| "chromium".into());
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(&name))
        .find(|path| path.is_file())
        .or_else(|| Path::new(&name).is_file().then(|| PathBuf::from(&name)));
    found.unwrap_or_else(|| {
        panic!("headless Chromium is needed for this test: `apt-get install -y chromium` (.ci/run does it)")
    })
}

/// The flags every run of the browser here has.
const HEADLESS: [&str; 5] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--window-size=1280,860",
];

/// Runs the browser headless on `url` with `args`; its stdout and stderr.
fn browse(profile: &Path, url: &str, args: &[&str]) -> (String, String) {
    let result = output(
        Command::new(chromium())
            .args(HEADLESS)
            .args(["--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url),
    );
    assert!(result.status.success(), "chromium failed on {url}: {result:?}");
    (
        String::from_utf8_lossy(&result.stdout).into_owned(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    )
}

/// The page's DOM after its script ran; fails on any console message.
fn dom(profile: &Path, url: &str) -> String {
    let (dom, log) = browse(profile, url, &["--dump-dom"]);
    let console: Vec<&str> = log.lines().filter(|line| line.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "{url}: the console printed\n{}", console.join("\n"));
    assert!(
        dom.contains("data-js=\"ready\""),
        "{url}: the script did not run:\n{dom}"
    );
    assert!(!dom.contains("js-errors"), "{url}: the script reported errors:\n{dom}");
    dom
}

/// The number the page shows for `label` (`data-count="label">N<`).
fn shown(dom: &str, label: &str) -> u64 {
    let marker = format!("data-count=\"{label}\">");
    let start = dom.find(&marker).unwrap_or_else(|| panic!("no {label} on the page")) + marker.len();
    dom[start..]
        .split('<')
        .next()
        .and_then(|number| number.trim().parse().ok())
        .unwrap_or_else(|| panic!("no number for {label}"))
}

#[test]
fn every_page_loads_in_chromium_without_errors_and_shows_the_store() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    mq(&dir, &["demo"]).ok();
    let profile = scratch.path().join("profile");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let server = serve(&dir, &[]);
    let base = format!("http://{}", server.addr);

    let overview = dom(&profile, &format!("{base}/"));
    let expected = stats(&dir);
    for (label, key) in [
        ("pending", "pending"),
        ("in flight", "in_flight"),
        ("failed", "failed"),
        ("permanent failures", "permanent_failures"),
        ("completed", "completed"),
        ("removed", "removed"),
    ] {
        assert_eq!(shown(&overview, label), expected[key].as_u64().unwrap(), "{label}");
    }
    assert!(overview.contains("<rect"), "the chart is drawn");
    assert!(overview.contains("No seeders"), "the failure messages are listed");

    for path in [
        "/queues?place=failed",
        "/queues?place=completed&sort=title",
        "/movie?id=949",
        "/journal",
        "/health",
    ] {
        let page = dom(&profile, &format!("{base}{path}"));
        assert!(page.contains("<main>"), "{path}");
    }

    // The slider moved to record 3: the queues as they were there.
    let travel = dom(&profile, &format!("{base}/travel?seq=3&prev=2"));
    assert!(travel.contains("id=\"travel-seq\">3<"), "{travel}");
    assert!(
        travel.contains("slider at record 3"),
        "the script follows the slider: {travel}"
    );
    assert_eq!(shown(&travel, "pending"), 3, "three movies were pending after record 3");
    assert_eq!(shown(&travel, "completed"), 0);

    for (name, path) in [
        ("overview", "/"),
        ("travel", "/travel?seq=12&prev=11"),
        ("queues", "/queues?place=completed"),
    ] {
        let file = shots.join(format!("{name}.png"));
        let flag = format!("--screenshot={}", file.display());
        browse(&profile, &format!("{base}{path}"), &[&flag]);
        let bytes = std::fs::read(&file).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{name}.png is a PNG");
    }
}

/// A page driven through the DevTools protocol: headless Chromium with
/// `--remote-debugging-port=0`, one tab, one session.
struct Tab {
    browser: std::process::Child,
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    session: String,
    next: u64,
}

impl Drop for Tab {
    fn drop(&mut self) {
        let _ = self.browser.kill();
        let _ = self.browser.wait();
    }
}

impl Tab {
    fn open(profile: &Path, url: &str) -> Tab {
        use std::io::BufRead;
        let mut browser = crate::support::cli::spawn(
            Command::new(chromium())
                .args(HEADLESS)
                .arg("--remote-debugging-port=0")
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("about:blank")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped()),
        );
        let stderr = std::io::BufReader::new(browser.stderr.take().expect("piped stderr"));
        let endpoint = stderr
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.split("DevTools listening on ").nth(1).map(str::to_owned))
            .expect("chromium says where its DevTools listen");
        let (socket, _) = tungstenite::connect(endpoint.trim()).expect("connect to DevTools");
        let mut tab = Tab {
            browser,
            socket,
            session: String::new(),
            next: 1,
        };
        let target = tab.call("Target.createTarget", serde_json::json!({ "url": url }));
        let target = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = tab.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": target, "flatten": true }),
        );
        tab.session = attached["sessionId"].as_str().expect("a session id").to_owned();
        tab
    }

    /// Sends `method` (to the tab's session once there is one); its result.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.request(method, params)
            .unwrap_or_else(|reply| panic!("{method}: {reply}"))
    }

    /// Sends `method`; its result, or the whole reply when it is an error.
    fn request(&mut self, method: &str, params: serde_json::Value) -> Result<serde_json::Value, serde_json::Value> {
        let id = self.next;
        self.next += 1;
        let mut message = serde_json::json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = self.session.clone().into();
        }
        self.socket
            .send(tungstenite::Message::Text(message.to_string().into()))
            .expect("send to DevTools");
        loop {
            let reply = self.socket.read().expect("read from DevTools");
            let tungstenite::Message::Text(text) = reply else {
                continue;
            };
            let value: serde_json::Value = serde_json::from_str(text.as_str()).expect("DevTools speaks JSON");
            if value["id"] == id {
                if value.get("error").is_some() {
                    return Err(value);
                }
                return Ok(value["result"].clone());
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let result = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "returnByValue": true }),
        );
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page. An evaluation that
    /// meets the page navigating (a reload under way) is not yet true.
    fn wait_for(&mut self, expression: &str) {
        let deadline = std::time::Instant::now() + crate::support::http::PATIENCE;
        let params = serde_json::json!({ "expression": expression, "returnByValue": true });
        while self
            .request("Runtime.evaluate", params.clone())
            .map_or(serde_json::Value::Null, |result| result["result"]["value"].clone())
            != serde_json::Value::Bool(true)
        {
            assert!(std::time::Instant::now() < deadline, "never true: {expression}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[test]
fn retry_now_clicked_in_chromium_moves_the_failed_movie_through_the_holder() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    for id in ["1", "2"] {
        crate::support::cli::add(&dir, id);
    }
    mq(&dir, &["next"]).ok();
    mq(&dir, &["fail", "1", "--error", "No seeders", "--retry-in", "2h"]).ok();
    let holder = movie_queue::QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(&dir)
        .unwrap();
    let server = serve(&dir, &["--allow-actions"]);
    let mut tab = Tab::open(
        &scratch.path().join("profile"),
        &format!("http://{}/movie?id=1", server.addr),
    );
    tab.wait_for("document.body !== null && document.body.getAttribute('data-js') === 'ready'");
    assert_eq!(tab.eval("document.querySelector('h1 .place').textContent"), "failed");
    tab.screenshot("movie-actions.png");

    tab.eval("document.querySelector('button[data-action=retry]').click()");
    // The page reads itself again once the holder has made the change.
    tab.wait_for(
        "document.querySelector('h1 .place') !== null && document.querySelector('h1 .place').textContent === 'pending'",
    );
    assert_eq!(
        holder.get("1").map(|(place, _)| place),
        Some(movie_queue::Place::Pending),
        "the application's own queue has it"
    );
    assert_eq!(
        tab.eval("document.getElementById('js-errors') === null"),
        true,
        "no script error"
    );
    let kinds: Vec<String> = holder
        .history("1")
        .unwrap()
        .iter()
        .map(|record| record.event.kind().to_owned())
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("moved_to_pending"), "{kinds:?}");
}

impl Tab {
    /// Saves a screenshot as `name` under `target/dashboard-screenshots/`.
    fn screenshot(&mut self, name: &str) {
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let shot = self.call("Page.captureScreenshot", serde_json::json!({ "format": "png" }));
        let png = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            shot["data"].as_str().expect("the screenshot's data"),
        )
        .expect("base64");
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(shots.join(name), png).unwrap();
    }
}

/// The overview open in Chromium while the store changes underneath: a
/// new record arrives as the row a page load draws (kind badge, id link),
/// the failure and retry panels follow a new failure, a store replaced in
/// the directory's place brings a banner and its own data, and when the
/// server stops the page says it is disconnected.
#[test]
fn the_overview_follows_live_says_when_the_store_is_replaced_and_when_the_server_is_gone() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    for id in ["1", "2"] {
        crate::support::cli::add(&dir, id);
    }
    let server = serve(&dir, &[]);
    let mut tab = Tab::open(&scratch.path().join("profile"), &format!("http://{}/", server.addr));
    tab.wait_for("document.body !== null && document.body.getAttribute('data-js') === 'ready'");
    tab.wait_for("document.getElementById('live').classList.contains('on')");
    assert_eq!(tab.eval("document.getElementById('failures').hidden"), true);

    mq(&dir, &["next"]).ok();
    mq(&dir, &["fail", "1", "--error", "No <b>seeders</b>", "--retry-in", "2h"]).ok();
    tab.wait_for("document.querySelector('#recent tbody tr .kind-failed') !== null");
    // The live row is the row a page load draws.
    assert_eq!(
        tab.eval("document.querySelector('#recent tbody tr a').getAttribute('href')"),
        "/movie?id=1"
    );
    assert_eq!(
        tab.eval("document.querySelector('#recent tbody tr td.num').textContent"),
        "4"
    );
    tab.wait_for("!document.getElementById('failures').hidden");
    assert_eq!(
        tab.eval("document.querySelector('#failures tbody td:nth-child(2)').textContent"),
        "No <b>seeders</b>",
        "the message as text"
    );
    assert_eq!(tab.eval("document.querySelector('#retries tbody a').textContent"), "1");
    assert_eq!(tab.eval("document.querySelector('#failures b') === null"), true);
    tab.screenshot("overview-live.png");

    // Another store in the directory's place.
    std::fs::rename(&dir, scratch.path().join("moved-away")).unwrap();
    for id in ["n1", "n2", "n3"] {
        crate::support::cli::add(&dir, id);
    }
    tab.wait_for("document.getElementById('banner').textContent.includes('another store is in the directory')");
    tab.wait_for("document.getElementById('banner').textContent.includes('now show the store found in its place')");
    // The old page's mark goes first, so the wait is for the new page's script.
    tab.eval("document.body.removeAttribute('data-js'); location.reload()");
    tab.wait_for("document.body !== null && document.body.getAttribute('data-js') === 'ready'");
    assert_eq!(
        tab.eval("document.querySelector('#counts [data-count=\"pending\"]').textContent"),
        "3"
    );
    assert_eq!(tab.eval("document.getElementById('banner').hidden"), false);
    tab.screenshot("overview-replaced.png");

    // The server stops: the page says so.
    drop(server);
    tab.wait_for("document.body.getAttribute('data-disconnected') === 'yes'");
    assert_eq!(
        tab.eval("document.getElementById('live').textContent.includes('disconnected')"),
        true
    );
    tab.screenshot("overview-disconnected.png");
    assert_eq!(
        tab.eval("document.getElementById('js-errors') === null"),
        true,
        "no script error"
    );
}
