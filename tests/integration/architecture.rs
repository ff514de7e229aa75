//! The architecture invariants of `docs/ARCHITECTURE.md` that a reading of
//! the source can check: the layers import only downwards (so no module
//! imports another in a circle), the journal never sees an event, the
//! projection does no I/O and reads no clock, the command-line tool uses
//! only the public API, and no source file grows past its budget.
//!
//! How: every `crate::<module>` path in each file of `src/` (comments
//! left out) is an import of that top-level module; the layer table below
//! says which may import which.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The library's top-level modules from the bottom layer up: a module may
/// import only modules of lower layers (and its own submodules).
const LAYERS: &[&[&str]] = &[
    &["seq", "json"],
    &["error", "clock", "fork"],
    &["movie"],
    &["entry"],
    &["event"],
    &["storage", "retry"],
    &["journal"],
    &["projection"],
    &["snapshot"],
    &["lock", "recovery"],
    &["audit", "maintenance"],
    &["options"],
    &["manager"],
    &["testing"],
];

/// The longest a source file may grow (docs/ARCHITECTURE.md).
const FILE_LINES_MAX: usize = 600;

fn source_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file of `src/` belongs to (`None`: the crate
/// root or the binary).
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).expect("under src/");
    let first = relative.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file names as `crate::<module>`.
fn imports(text: &str) -> BTreeSet<String> {
    let code = code(text);
    let mut found = BTreeSet::new();
    for (index, _) in code.match_indices("crate::") {
        let before = code[..index].chars().next_back();
        if before.is_some_and(|character| character.is_alphanumeric() || character == '_') {
            continue;
        }
        let rest = &code[index + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|character| character.is_ascii_lowercase() || *character == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer of this test; add it to LAYERS"))
}

/// Every `(file, its module, the modules it imports)` of the library.
fn library_files() -> Vec<(PathBuf, String, BTreeSet<String>)> {
    let mut files = Vec::new();
    source_files(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let module = module_of(&path)?;
            // The binary is checked on its own; unit tests (`tests/` below a
            // module) may use the test seams above them.
            if module == "cli" || path.components().any(|part| part.as_os_str() == "tests") {
                return None;
            }
            let text = fs::read_to_string(&path).expect("read a source file");
            Some((path, module, imports(&text)))
        })
        .collect()
}

#[test]
fn modules_import_only_lower_layers_so_there_is_no_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (path, module, imported) in library_files() {
        for other in imported.iter().filter(|other| **other != module) {
            graph.entry(module.clone()).or_default().insert(other.clone());
            if layer_of(other) >= layer_of(&module) {
                upward.push(format!("{} ({module}) imports {other}", path.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up or sideways:\n{}",
        upward.join("\n")
    );
    // The layering implies it; checked on its own all the same.
    let mut done = BTreeSet::new();
    for start in graph.keys() {
        assert_no_cycle_from(start, &graph, &mut Vec::new(), &mut done);
    }
}

fn assert_no_cycle_from(
    module: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) {
    if done.contains(module) {
        return;
    }
    assert!(
        !path.iter().any(|seen| seen == module),
        "import cycle: {} -> {module}",
        path.join(" -> ")
    );
    path.push(module.to_owned());
    for next in graph.get(module).into_iter().flatten() {
        assert_no_cycle_from(next, graph, path, done);
    }
    path.pop();
    done.insert(module.to_owned());
}

#[test]
fn the_journal_knows_bytes_and_sequence_numbers_never_events() {
    let forbidden = ["event", "entry", "movie", "projection", "snapshot"];
    for (path, module, imported) in library_files() {
        if module == "journal" {
            let seen: Vec<_> = imported
                .iter()
                .filter(|name| forbidden.contains(&name.as_str()))
                .collect();
            assert!(seen.is_empty(), "{} imports {seen:?}", path.display());
        }
    }
}

#[test]
fn the_projection_does_no_io_and_reads_no_clock() {
    let forbidden = [
        "std::fs",
        "std::io",
        "std::time",
        "SystemTime",
        "Instant",
        "std::env",
        "std::thread",
    ];
    for (path, module, imported) in library_files() {
        if module != "projection" {
            continue;
        }
        let text = code(&fs::read_to_string(&path).expect("read"));
        for word in forbidden {
            assert!(!text.contains(word), "{} uses {word}", path.display());
        }
        assert!(!imported.contains("storage"), "{} imports storage", path.display());
    }
}

#[test]
fn the_command_line_tool_uses_only_the_public_api() {
    let mut files = Vec::new();
    source_files(&src().join("cli"), &mut files);
    files.push(src().join("main.rs"));
    for path in files {
        let text = code(&fs::read_to_string(&path).expect("read"));
        assert!(
            !text.contains("movie_queue::testing"),
            "{} uses the test seams",
            path.display()
        );
    }
}

#[test]
fn the_only_unsafe_code_is_the_fork_handler() {
    // The crate root denies `unsafe_code`; `fork.rs` alone makes the two
    // exceptions (installing the `pthread_atfork` handler, and `close` in
    // it), each with a SAFETY comment.
    let root = fs::read_to_string(src().join("lib.rs")).expect("read");
    assert!(root.contains("#![deny(unsafe_code)]"), "lib.rs denies unsafe code");
    let mut files = Vec::new();
    source_files(&src(), &mut files);
    for path in files {
        let text = code(&fs::read_to_string(&path).expect("read"));
        let unsafe_blocks = text.matches("unsafe {").count();
        if path.ends_with("fork.rs") {
            assert_eq!(unsafe_blocks, 2, "fork.rs: the handler's installation and its close");
            let comments = fs::read_to_string(&path).expect("read").matches("// SAFETY:").count();
            assert_eq!(comments, unsafe_blocks, "every unsafe block has a SAFETY comment");
        } else {
            assert!(
                text.replace("unsafe_code", "").find("unsafe").is_none(),
                "{} has unsafe code (only fork.rs may)",
                path.display()
            );
        }
    }
}

/// The crates of `movie-queue serve` (the `dashboard` feature).
const WEB_CRATES: [&str; 5] = ["axum", "tokio", "tokio_stream", "askama", "hyper"];

#[test]
fn the_library_compiles_no_web_server() {
    // The library's files (and the crate root) never name a web crate:
    // they belong to the binary's `cli/serve/`, behind the feature.
    let mut files: Vec<PathBuf> = library_files().into_iter().map(|(path, _, _)| path).collect();
    files.push(src().join("lib.rs"));
    for path in files {
        let text = code(&fs::read_to_string(&path).expect("read"));
        for name in WEB_CRATES {
            assert!(!text.contains(&format!("{name}::")), "{} uses {name}", path.display());
        }
    }
    // ...and the manifest makes every one optional, enabled only by `dashboard`.
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).expect("read");
    for name in WEB_CRATES
        .iter()
        .map(|name| name.replace('_', "-"))
        .filter(|name| name != "hyper")
    {
        let line = manifest
            .lines()
            .find(|line| line.starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("{name} is not in Cargo.toml"));
        assert!(line.contains("optional = true"), "{name} is optional: {line}");
        assert!(
            manifest.contains(&format!("\"dep:{name}\"")),
            "the dashboard feature enables {name}"
        );
    }
    let serve = fs::read_to_string(src().join("cli/mod.rs")).expect("read");
    assert!(
        serve.contains("#[cfg(feature = \"dashboard\")]\nmod serve;"),
        "serve is behind the feature"
    );
}

#[test]
fn no_source_file_is_over_its_budget() {
    let mut files = Vec::new();
    source_files(&src(), &mut files);
    let over: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = fs::read_to_string(path).expect("read").lines().count();
            (lines > FILE_LINES_MAX).then(|| format!("{}: {lines} lines", path.display()))
        })
        .collect();
    assert!(over.is_empty(), "over {FILE_LINES_MAX} lines:\n{}", over.join("\n"));
}
