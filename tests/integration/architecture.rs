//! The architecture invariants of `docs/ARCHITECTURE.md` that a reading of
//! the library's source can check: the layers import only downwards, no
//! file imports another in a circle at any level (the files of a folder
//! included), the journal never sees an event, the projection does no I/O
//! and reads no clock, and the library depends on the engine's crates only.
//! (That the tool uses only the public API is the compiler's to check: the
//! tool is a package of its own, `tool/`.)
//!
//! How: every `crate::`, `super::` and `self::` path in each file of `src/`
//! (comments left out, `use` groups expanded) is resolved to the module it
//! names, through the re-exports of a folder's `mod.rs`; the layer table
//! below says which top-level module may import which.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The library's top-level modules from the bottom layer up: a module may
/// import only modules of lower layers (and its own submodules).
const LAYERS: &[&[&str]] = &[
    &["seq", "json"],
    &["error", "clock", "fork", "layout"],
    &["movie"],
    &["entry"],
    &["event"],
    &["storage", "retry"],
    &["journal"],
    &["projection"],
    &["snapshot"],
    &["lock", "recovery"],
    &["shipping"],
    &["audit", "maintenance", "control"],
    &["options"],
    &["manager"],
    &["testing"],
];

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

/// A module's path from the crate root (`["journal", "reader"]`; the root
/// is empty).
type ModulePath = Vec<String>;

/// The module a file of `src/` is (`src/journal/mod.rs` is `journal`).
fn module_path(root: &Path, path: &Path) -> ModulePath {
    let relative = path.strip_prefix(root).expect("under the crate's source folder");
    let mut parts: ModulePath = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.strip_suffix(".rs").unwrap_or(&last).to_owned();
    if !matches!(stem.as_str(), "mod" | "lib" | "main") {
        parts.push(stem);
    }
    parts
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    let characters: Vec<char> = text.chars().collect();
    let mut kept = String::with_capacity(text.len());
    let mut index = 0;
    let mut in_string = false;
    while index < characters.len() {
        let character = characters[index];
        let next = characters.get(index + 1).copied();
        if in_string {
            kept.push(character);
            if character == '\\' {
                kept.extend(next);
                index += 2;
                continue;
            }
            in_string = character != '"';
            index += 1;
            continue;
        }
        match (character, next) {
            ('/', Some('/')) => {
                // A line comment (doc comments too): up to the line's end.
                while index < characters.len() && characters[index] != '\n' {
                    index += 1;
                }
            }
            ('/', Some('*')) => {
                let mut depth = 0;
                while index < characters.len() {
                    match (characters[index], characters.get(index + 1)) {
                        ('/', Some('*')) => depth += 1,
                        ('*', Some('/')) => depth -= 1,
                        _ => {
                            index += 1;
                            continue;
                        }
                    }
                    index += 2;
                    if depth == 0 {
                        break;
                    }
                }
            }
            // A character literal: '"' must not open a string.
            ('\'', Some('\\')) if characters.get(index + 3) == Some(&'\'') => {
                kept.extend(&characters[index..index + 4]);
                index += 4;
            }
            ('\'', Some(_)) if characters.get(index + 2) == Some(&'\'') => {
                kept.extend(&characters[index..index + 3]);
                index += 3;
            }
            _ => {
                in_string = character == '"';
                kept.push(character);
                index += 1;
            }
        }
    }
    kept
}

fn is_ident(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

/// Every path a file names that starts at `crate`, `super` or `self`, as
/// its segments (`use` groups expanded: `use super::{a::B, c};` is
/// `super::a::B` and `super::c`).
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let characters: Vec<char> = code.chars().collect();
    let mut index = 0;
    while index < characters.len() {
        let starts_word = index == 0 || !is_ident(characters[index - 1]);
        let rest: String = characters[index..characters.len().min(index + 7)].iter().collect();
        let head = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|head| rest.starts_with(head) && starts_word);
        match head {
            Some(_) => {
                let (expanded, end) = expand(&characters, index);
                found.extend(expanded);
                index = end.max(index + 1);
            }
            None => index += 1,
        }
    }
    found
}

/// The paths of the tree that starts at `start` (`a::b::{c, d::e}`), and
/// where it ends.
fn expand(characters: &[char], start: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut index = start;
    loop {
        while characters.get(index).is_some_and(|c| c.is_whitespace()) {
            index += 1;
        }
        if characters.get(index) == Some(&'{') {
            let mut found = Vec::new();
            index += 1;
            loop {
                while characters.get(index).is_some_and(|c| c.is_whitespace() || *c == ',') {
                    index += 1;
                }
                match characters.get(index) {
                    None => return (found, index),
                    Some('}') => return (found, index + 1),
                    _ => {}
                }
                let (inner, end) = expand(characters, index);
                found.extend(
                    inner
                        .into_iter()
                        .map(|tail| prefix.iter().cloned().chain(tail).collect()),
                );
                index = end.max(index + 1);
            }
        }
        let word: String = characters[index..].iter().take_while(|c| is_ident(**c)).collect();
        if word.is_empty() {
            return (vec![prefix], index);
        }
        index += word.chars().count();
        prefix.push(word);
        let separator: String = characters[index..characters.len().min(index + 2)].iter().collect();
        if separator != "::" {
            return (vec![prefix], index);
        }
        index += 2;
    }
}

/// The library's files: each module with its code (comments left out).
/// Unit tests (`tests/` folders below a module) may use the test seams
/// above them, so they are left out.
fn library() -> BTreeMap<ModulePath, (PathBuf, String)> {
    crate_files(&src())
}

/// The tool's source folder (the package `tool/`, a crate of its own).
fn tool_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tool/src")
}

/// The files of the crate whose source folder is `root`, as [`library`].
fn crate_files(root: &Path) -> BTreeMap<ModulePath, (PathBuf, String)> {
    let mut files = Vec::new();
    source_files(root, &mut files);
    files
        .into_iter()
        .filter(|path| {
            let relative = path.strip_prefix(root).expect("under the crate's source folder");
            !relative.components().any(|part| part.as_os_str() == "tests")
        })
        .map(|path| {
            let text = code(&fs::read_to_string(&path).expect("read a source file"));
            (module_path(root, &path), (path, text))
        })
        .collect()
}

/// The module a path names: the longest known module it starts with,
/// followed through a folder's re-exports (`super::Reader`, where
/// `mod.rs` says `pub use reader::Reader`, names `reader`).
fn resolve(
    from: &ModulePath,
    path: &[String],
    modules: &BTreeMap<ModulePath, (PathBuf, String)>,
    reexports: &BTreeMap<(ModulePath, String), ModulePath>,
) -> Option<ModulePath> {
    let mut absolute: ModulePath = Vec::new();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => rest = &rest[1..],
        Some("self" | "super") => {
            absolute.clone_from(from);
            while let Some(head) = rest.first().map(String::as_str) {
                match head {
                    "self" => {}
                    "super" => {
                        absolute.pop()?;
                    }
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    for segment in rest {
        let mut deeper = absolute.clone();
        deeper.push(segment.clone());
        if modules.contains_key(&deeper) {
            absolute = deeper;
        } else if let Some(target) = reexports.get(&(absolute.clone(), segment.clone())) {
            return Some(target.clone());
        } else {
            break;
        }
    }
    Some(absolute)
}

/// Every import between two files of the library: `(from, to)`.
fn file_imports() -> BTreeSet<(ModulePath, ModulePath)> {
    imports_between(&library())
}

/// The `use` trees of a file's code: `self::x::{A, B}` of `pub use self::x::{A, B};`.
fn use_trees(text: &str) -> Vec<String> {
    text.split(';')
        .filter_map(|statement| {
            let at = statement.match_indices("use ").find(|(at, _)| {
                let before = statement[..*at].trim_end();
                before.is_empty() || before.ends_with(')') || before.ends_with("pub") || before.ends_with(']')
            })?;
            Some(statement[at.0 + "use ".len()..].trim().to_owned())
        })
        .collect()
}

/// What each module makes visible under a name of its own with `use`
/// (a folder's `mod.rs` re-exporting a child's item, the crate root a
/// folder's): `(module, name)` to the module that defines it, followed
/// through chains of re-exports.
fn reexports(modules: &BTreeMap<ModulePath, (PathBuf, String)>) -> BTreeMap<(ModulePath, String), ModulePath> {
    let mut found: BTreeMap<(ModulePath, String), ModulePath> = BTreeMap::new();
    loop {
        let mut changed = false;
        for (module, (_, text)) in modules {
            for tree in use_trees(text) {
                let rooted = ["self::", "super::", "crate::"]
                    .iter()
                    .any(|head| tree.starts_with(head));
                let tree = if rooted { tree } else { format!("self::{tree}") };
                for path in paths(&tree) {
                    let Some(name) = path.last() else { continue };
                    let key = (module.clone(), name.clone());
                    if found.contains_key(&key) {
                        continue;
                    }
                    if let Some(target) = resolve(module, &path, modules, &found)
                        && target != *module
                    {
                        found.insert(key, target);
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            return found;
        }
    }
}

/// Every import between two of `modules`: `(from, to)`.
fn imports_between(modules: &BTreeMap<ModulePath, (PathBuf, String)>) -> BTreeSet<(ModulePath, ModulePath)> {
    let reexports = reexports(modules);
    let mut imports = BTreeSet::new();
    for (module, (_, text)) in modules {
        for path in paths(text) {
            if let Some(target) = resolve(module, &path, modules, &reexports)
                && target != *module
            {
                imports.insert((module.clone(), target));
            }
        }
    }
    imports
}

/// The top-level module a module belongs to (`None`: the crate root).
fn top(module: &ModulePath) -> Option<&str> {
    module.first().map(String::as_str)
}

/// Every `(file, its top-level module, the top-level modules it imports)`
/// of the library (the crate root left out).
fn library_files() -> Vec<(PathBuf, String, BTreeSet<String>)> {
    let imports = file_imports();
    library()
        .into_iter()
        .filter_map(|(module, (path, _))| {
            let own = top(&module)?.to_owned();
            let imported = imports
                .iter()
                .filter(|(from, _)| *from == module)
                .filter_map(|(_, to)| top(to).map(str::to_owned))
                .collect();
            Some((path, own, imported))
        })
        .collect()
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer of this test; add it to LAYERS"))
}

#[test]
fn modules_import_only_lower_layers() {
    let modules = library();
    let mut upward = Vec::new();
    for (from, to) in file_imports() {
        let (Some(from_top), Some(to_top)) = (top(&from), top(&to)) else {
            continue;
        };
        if from_top != to_top && layer_of(to_top) >= layer_of(from_top) {
            upward.push(format!("{} ({from_top}) imports {to_top}", modules[&from].0.display()));
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up or sideways:\n{}",
        upward.join("\n")
    );
}

/// The import graph between the children of each folder: an import from
/// `journal::writer::thread` to `journal::segment` is an arrow from
/// `writer` to `segment` in `journal/`. A folder's `mod.rs` declares and
/// re-exports its children, so arrows to and from it are not counted
/// (a re-exported name counts as an import of the child that defines it).
fn folder_graphs(
    imports: BTreeSet<(ModulePath, ModulePath)>,
) -> BTreeMap<ModulePath, BTreeMap<String, BTreeSet<String>>> {
    let mut graphs: BTreeMap<ModulePath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, to) in imports {
        let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        if from.len() > common && to.len() > common {
            graphs
                .entry(from[..common].to_vec())
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .insert(to[common].clone());
        }
    }
    graphs
}

#[test]
fn no_file_imports_another_in_a_circle_at_any_level() {
    let graphs = folder_graphs(file_imports());
    assert!(
        graphs
            .get(&vec!["journal".to_owned()])
            .is_some_and(|graph| !graph.is_empty()),
        "the check sees the imports between the journal's files"
    );
    assert_no_cycle(&graphs, "src");
}

#[test]
fn no_file_of_the_tool_imports_another_in_a_circle_at_any_level() {
    let graphs = folder_graphs(imports_between(&crate_files(&tool_src())));
    assert!(
        graphs
            .get(&vec!["serve".to_owned()])
            .is_some_and(|graph| !graph.is_empty()),
        "the check sees the imports between the dashboard's files"
    );
    assert_no_cycle(&graphs, "tool/src");
}

fn assert_no_cycle(graphs: &BTreeMap<ModulePath, BTreeMap<String, BTreeSet<String>>>, root: &str) {
    let mut cycles = BTreeSet::new();
    for (folder, graph) in graphs {
        for start in graph.keys() {
            if let Some(cycle) = cycle_from(start, graph, &mut Vec::new(), &mut BTreeSet::new()) {
                cycles.insert(format!("{root}/{}: {}", folder.join("/"), cycle.join(" -> ")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles:\n{}",
        cycles.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// A cycle reachable from `module`, as the modules along it.
fn cycle_from(
    module: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|seen| seen == module) {
        let mut cycle = path[at..].to_vec();
        cycle.push(module.to_owned());
        return Some(cycle);
    }
    if done.contains(module) {
        return None;
    }
    path.push(module.to_owned());
    for next in graph.get(module).into_iter().flatten() {
        if let Some(cycle) = cycle_from(next, graph, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(module.to_owned());
    None
}

#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    // The check itself: a two-file cycle written the ways the source
    // writes imports (a `use` group through `super`, a full path).
    let a = paths("use super::{b::Thing, c};\nfn f() { crate::x::b::g(); }");
    assert_eq!(
        a,
        vec![
            vec!["super", "b", "Thing"],
            vec!["super", "c"],
            vec!["crate", "x", "b", "g"],
        ]
    );
    // ...a cycle through a folder's re-export: `a` names `super::Thing`,
    // which `x/mod.rs` re-exports from `b`, and `b` imports `a`.
    let module = |path: &str, text: &str| {
        let name: ModulePath = path
            .split('/')
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect();
        (name, (PathBuf::from(path), code(text)))
    };
    let planted: BTreeMap<ModulePath, (PathBuf, String)> = [
        module("", "mod x;"),
        module("x", "mod a;\nmod b;\npub use self::b::Thing; // \"a // in a string\""),
        module("x/a", "let _ = \"http://example\"; use super::Thing;"),
        module("x/b", "/* use super::a::nothing; */ pub struct Thing; use super::a::f;"),
    ]
    .into_iter()
    .collect();
    let graphs = folder_graphs(imports_between(&planted));
    let folder = &graphs[&vec!["x".to_owned()]];
    assert!(folder["a"].contains("b"), "a -> b through the re-export: {graphs:?}");
    assert!(folder["b"].contains("a"), "b -> a: {graphs:?}");
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    let cycle = cycle_from("a", &graph, &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(cycle, Some(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()]));
}

#[test]
fn a_stores_file_and_folder_names_are_spelt_in_layout_only() {
    // The names `layout.rs` gives files, folders and extensions (its tags
    // are ordinary words, used elsewhere as words): no other file of the
    // library or the tool writes one as a string literal.
    let layout = fs::read_to_string(src().join("layout.rs")).expect("read layout.rs");
    let names: Vec<String> = layout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .filter_map(|line| line.split_once(": &str = "))
        .filter(|(constant, _)| {
            ["_FILE", "_DIR", "_EXTENSION"]
                .iter()
                .any(|end| constant.ends_with(end))
        })
        .filter_map(|(_, value)| value.strip_suffix(';'))
        .map(str::to_owned)
        .collect();
    assert!(
        names.contains(&"\"queue_pending.json\"".to_owned()),
        "layout.rs was read: {names:?}"
    );
    let mut spelt = Vec::new();
    for root in [src(), tool_src()] {
        for (_, (path, text)) in crate_files(&root) {
            if path.ends_with("layout.rs") {
                continue;
            }
            spelt.extend(
                names
                    .iter()
                    .filter(|name| text.contains(name.as_str()))
                    .map(|name| format!("{}: {name}", path.display())),
            );
        }
    }
    assert!(
        spelt.is_empty(),
        "store names spelt outside layout.rs:\n{}",
        spelt.join("\n")
    );
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
fn the_only_unsafe_code_is_the_fork_handler_and_the_control_sockets_calls() {
    // The crate root denies `unsafe_code`; `fork.rs` makes two exceptions
    // (installing the `pthread_atfork` handler, and `close` in it) and
    // `control/socket.rs` three (`SO_PEERCRED`, `geteuid`, `send` with
    // `MSG_NOSIGNAL`: no std wrapper on stable), each with a SAFETY comment.
    let root = fs::read_to_string(src().join("lib.rs")).expect("read");
    assert!(root.contains("#![deny(unsafe_code)]"), "lib.rs denies unsafe code");
    let mut files = Vec::new();
    source_files(&src(), &mut files);
    let allowed = [("fork.rs", 2), ("control/socket.rs", 3)];
    for path in files {
        let text = code(&fs::read_to_string(&path).expect("read"));
        let unsafe_blocks = text.matches("unsafe {").count();
        if let Some((_, expected)) = allowed.iter().find(|(name, _)| path.ends_with(name)) {
            assert_eq!(unsafe_blocks, *expected, "{}: its unsafe blocks", path.display());
            let comments = fs::read_to_string(&path).expect("read").matches("// SAFETY:").count();
            assert_eq!(comments, unsafe_blocks, "every unsafe block has a SAFETY comment");
        } else {
            assert!(
                text.replace("unsafe_code", "").find("unsafe").is_none(),
                "{} has unsafe code (only fork.rs and control/socket.rs may)",
                path.display()
            );
        }
    }
}

/// The crates the storage engine may depend on (issue 25): everything the
/// tool needs (argument parsing, a web server, ...) is in `tool/`.
const ENGINE_CRATES: [&str; 9] = [
    "serde",
    "serde_json",
    "crc32fast",
    "crossbeam-channel",
    "thiserror",
    "libc",
    "hashbrown",
    "tracing",
    "memchr",
];

#[test]
fn the_library_depends_on_the_engine_crates_only() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).expect("read");
    let names = dependencies(&manifest);
    assert!(
        names.iter().any(|name| name == "serde_json"),
        "the manifest was read: {names:?}"
    );
    for name in names {
        assert!(
            ENGINE_CRATES.contains(&name.as_str()),
            "the library depends on {name}, which is not an engine crate"
        );
    }
}

/// The crates a manifest depends on outside its dev-dependencies: every
/// `[dependencies]`, `[build-dependencies]` and
/// `[target.'cfg(..)'.dependencies]` table, and `[dependencies.NAME]`.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_table = false;
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|line| line.strip_suffix(']')) {
            let header = header.trim_matches(|character| character == '[' || character == ']');
            let parts: Vec<&str> = header.split('.').collect();
            let table = |part: &&str| matches!(*part, "dependencies" | "build-dependencies");
            in_table = parts.last().is_some_and(table);
            if let Some(at) = parts.iter().position(table)
                && at + 1 < parts.len()
            {
                names.push(parts[at + 1].to_owned());
            }
        } else if in_table
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            names.push(name.trim().to_owned());
        }
    }
    names
}

#[test]
fn the_dependency_reader_sees_every_kind_of_table() {
    let manifest = "[dependencies]\na = \"1\"\n[dev-dependencies]\nb = \"1\"\n\
                    [target.'cfg(unix)'.dependencies]\nc = \"1\"\n[build-dependencies]\nd = \"1\"\n\
                    [dependencies.e]\nversion = \"1\"\n";
    assert_eq!(dependencies(manifest), ["a", "c", "d", "e"]);
}
