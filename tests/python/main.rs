//! The Python package's tests, run by `cargo test`: builds the package
//! (`python/`, PyO3 + maturin) into a virtual environment under `target/`
//! with one `pip install` of its path, then runs its pytest suite
//! (`python/tests/`: every method with the application's semantics, the
//! threads of the application, a `kill -9` with an acknowledgment oracle).
//!
//! How: `python3 -m venv <target>/tmp/python-venv` once; `pip install
//! ./python pytest` (maturin from PyPI, PyO3 from crates.io, the build in
//! `<target>/python-build` so it is incremental) whenever a source the
//! package is built from changed (a hash of them is kept beside the
//! environment); then `python -m pytest python/tests`, with
//! `$MOVIE_QUEUE_BIN` naming the tool (built here if it is not yet). A missing Python is
//! a failure, never a skip. `$PYTHON` names another interpreter.
//!
//! Its own test binary: it starts processes (pip, pytest) and holds no
//! store's `LOCK`, so the fork-lends-the-lock problem of
//! `tests/integration/` cannot arise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (recursively, sorted), build outputs left out.
fn files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if matches!(name.to_str(), Some("target" | "__pycache__" | ".pytest_cache")) {
            continue;
        }
        if path.is_dir() {
            files(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// A hash of the sources the package is built from (the library and the
/// bindings); its tests are read fresh on every run and left out.
fn sources_hash() -> String {
    let root = repo();
    let mut found = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    files(&root.join("src"), &mut found);
    files(&root.join("python"), &mut found);
    found.retain(|path| !path.starts_with(root.join("python").join("tests")));
    found.sort();
    let mut hasher = DefaultHasher::new();
    for path in found {
        hasher.write(path.to_string_lossy().as_bytes());
        hasher.write(&std::fs::read(&path).unwrap_or_default());
    }
    format!("{:016x}", hasher.finish())
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: could not start {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The `movie-queue` binary of this test's profile, for `test_control.py`
/// (it runs it beside a Python holder): the one `cargo test` built, when
/// it is newer than every source of the library and the tool; else built
/// here (a build of its own features, without the tests' `testing`).
fn tool_binary() -> PathBuf {
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
        .expect("the test binary is in <target>/<profile>/deps");
    let binary = profile_dir.join("movie-queue");
    let built = std::fs::metadata(&binary).and_then(|metadata| metadata.modified()).ok();
    let mut sources = Vec::new();
    files(&repo().join("src"), &mut sources);
    files(&repo().join("tool").join("src"), &mut sources);
    let newest = sources
        .iter()
        .filter_map(|path| std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok())
        .max();
    if built.is_some() && built >= newest {
        return binary;
    }
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    build
        .args(["build", "--quiet", "-p", "movie-queue-tool", "--bin", "movie-queue"])
        .current_dir(repo());
    if profile_dir.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    run(&mut build, "cargo build -p movie-queue-tool");
    binary
}

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let found = Command::new(&python).arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|output| output.status.success()),
        "the Python tests need a Python 3.9+ interpreter ({python:?}, or set $PYTHON): {found:?}"
    );
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = target.join("python-venv");
    let bin = venv.join("bin");
    if !bin.join("python").exists() {
        run(Command::new(&python).args(["-m", "venv"]).arg(&venv), "python3 -m venv");
    }
    let stamp = venv.join("movie-queue-sources");
    let hash = sources_hash();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(hash.as_str()) {
        run(
            Command::new(bin.join("python"))
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .arg(repo().join("python"))
                .arg("pytest")
                .env("CARGO_TARGET_DIR", target.join("python-build")),
            "pip install ./python",
        );
        std::fs::write(&stamp, &hash).expect("write the build stamp");
    }
    let output = run(
        Command::new(bin.join("python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(repo().join("python").join("tests"))
            .env("MOVIE_QUEUE_BIN", tool_binary())
            .current_dir(&target),
        "pytest python/tests",
    );
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(report.contains(" passed"), "pytest ran no test:\n{report}");
}
