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

/// Runs the browser headless on `url` with `args`; its stdout and stderr.
fn browse(profile: &Path, url: &str, args: &[&str]) -> (String, String) {
    let result = output(
        Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1280,860",
            ])
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
