//! Snapshots: the three documented JSON files plus a manifest, written
//! atomically, loaded only when every checksum agrees.
//!
//! Write (numbered as in `docs/DURABILITY.md`):
//! 1. serialize `queue_pending.json` (in-flight entries first, then
//!    pending), `queue_failed.json`, `queue_completed.json`;
//! 2. write each to `<name>.tmp` and fsync it;
//! 3. write the manifest (covered sequence number, in-flight count, each
//!    file's length and CRC32) to `queue_snapshot.json.tmp` and fsync it;
//! 4. rename the three files into place, fsync the directory;
//! 5. rename the manifest into place, fsync the directory.
//!
//! A crash before 5 leaves the old manifest beside (some) new files: their
//! checksums disagree and start-up falls back to the journal. The manifest
//! is never durable before the files it describes.

use std::path::Path;

use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{QueueEntry, Seq};
use crate::movie::RawFields;
use crate::projection::{Place, QueueState};
use crate::storage::{self, Storage};

/// Movies waiting (and, first, those in flight).
pub const PENDING_FILE: &str = "queue_pending.json";
/// Movies that failed, with their retry information.
pub const FAILED_FILE: &str = "queue_failed.json";
/// Movies done.
pub const COMPLETED_FILE: &str = "queue_completed.json";
/// The manifest naming the sequence number the files cover and their checksums.
pub const MANIFEST_FILE: &str = "queue_snapshot.json";
/// The three documented files, in the order the manifest lists them.
pub const QUEUE_FILES: [&str; 3] = [PENDING_FILE, FAILED_FILE, COMPLETED_FILE];
/// The manifest format this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileDigest {
    name: String,
    bytes: u64,
    crc32: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    seq: Seq,
    in_flight: u64,
    files: Vec<FileDigest>,
}

/// A snapshot's content: the queues as of journal record `seq`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotData {
    /// The last journal record the snapshot covers (`Seq(0)`: a legacy
    /// store's files, which no journal record covers).
    pub seq: Seq,
    /// Movies in flight, oldest first.
    pub in_flight: Vec<QueueEntry>,
    /// Pending, front first.
    pub pending: Vec<QueueEntry>,
    /// Failed, in failed order.
    pub failed: Vec<QueueEntry>,
    /// Completed, in completion order.
    pub completed: Vec<QueueEntry>,
}

/// Serializes the three documented files of `state` (pretty-printed, as
/// the application's own writer does), from the entries' stored JSON.
#[must_use]
pub fn render_files(state: &QueueState) -> [Vec<u8>; 3] {
    let pending = state
        .entries_json(Place::InFlight)
        .chain(state.entries_json(Place::Pending));
    [
        render(pending),
        render(state.entries_json(Place::Failed)),
        render(state.entries_json(Place::Completed)),
    ]
}

/// Renders entries (each as compact JSON) as a pretty-printed JSON array,
/// one entry at a time, each indented by two spaces as Python's
/// `json.dump(..., indent=2)` writes it.
fn render<'a>(entries: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut out = b"[".to_vec();
    let mut empty = true;
    for json in entries {
        out.extend_from_slice(if empty { b"\n  " } else { b",\n  " });
        empty = false;
        write_pretty(&mut out, json.as_bytes(), b"  ");
    }
    out.extend_from_slice(if empty { b"]\n" } else { b"\n]\n" });
    out
}

/// Writes compact JSON as `serde_json::to_vec_pretty` would write the same
/// value, with `margin` after every line break, without parsing it into a
/// tree. `compact` must be the compact output of `serde_json` (no whitespace
/// outside strings), as every entry the state stores is.
fn write_pretty(out: &mut Vec<u8>, compact: &[u8], margin: &[u8]) {
    let line = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend_from_slice(margin);
        for _ in 0..depth {
            out.extend_from_slice(b"  ");
        }
    };
    let mut depth = 0_usize;
    let mut rest = compact;
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        match byte {
            b'"' => {
                // Copy the string through its closing quote, escapes and all.
                let mut end = 0;
                let mut escaped = false;
                for &inner in rest {
                    end += 1;
                    match inner {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => break,
                        _ => {}
                    }
                }
                out.push(b'"');
                out.extend_from_slice(&rest[..end]);
                rest = &rest[end..];
            }
            b'{' | b'[' => {
                out.push(byte);
                let close = if byte == b'{' { b'}' } else { b']' };
                if let Some(after_close) = rest.strip_prefix(&[close]) {
                    out.push(close);
                    rest = after_close;
                } else {
                    depth += 1;
                    line(out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                line(out, depth);
                out.push(byte);
            }
            b',' => {
                out.push(b',');
                line(out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(byte),
        }
    }
}

/// Writes a snapshot of `state`, which reflects every journal record up to
/// `seq` and no other, into `dir` (steps 1–5 above).
///
/// # Errors
/// [`Error::Io`] naming the file of the step that failed.
pub fn write_snapshot(storage: &dyn Storage, dir: &Path, state: &QueueState, seq: Seq) -> Result<()> {
    let files = render_files(state);
    write_files(storage, dir, &files, seq, state.in_flight_count() as u64)
}

/// Writes already rendered files as a snapshot covering `seq` (steps 2–5).
///
/// # Errors
/// [`Error::Io`] naming the file of the step that failed.
pub fn write_files(storage: &dyn Storage, dir: &Path, files: &[Vec<u8>; 3], seq: Seq, in_flight: u64) -> Result<()> {
    let mut digests = Vec::with_capacity(3);
    for (name, bytes) in QUEUE_FILES.iter().zip(files) {
        storage::write_synced(storage, &storage::temporary_path(&dir.join(name)), bytes)?;
        digests.push(FileDigest {
            name: (*name).to_owned(),
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
        });
    }
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        seq,
        in_flight,
        files: digests,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|error| Error::InvalidArgument(format!("manifest cannot be serialized: {error}")))?;
    let manifest_path = dir.join(MANIFEST_FILE);
    storage::write_synced(storage, &storage::temporary_path(&manifest_path), &manifest_bytes)?;
    for name in QUEUE_FILES {
        let path = dir.join(name);
        storage
            .rename(&storage::temporary_path(&path), &path)
            .map_err(|error| Error::io("rename to", &path, error))?;
    }
    storage::sync_parent(storage, &manifest_path)?;
    storage
        .rename(&storage::temporary_path(&manifest_path), &manifest_path)
        .map_err(|error| Error::io("rename to", &manifest_path, error))?;
    storage::sync_parent(storage, &manifest_path)
}

/// Why a snapshot was not used (logged; start-up then falls back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

/// Loads the snapshot of `dir` if its manifest and all three files agree.
/// `Ok(None)`: there is no manifest. `Err(Rejected)`: there is one, but the
/// set is inconsistent or unreadable (a crash mid-snapshot, a hand edit).
///
/// # Errors
/// [`Rejected`] saying which file disagrees and how.
pub fn load_snapshot(storage: &dyn Storage, dir: &Path) -> std::result::Result<Option<SnapshotData>, Rejected> {
    let manifest_path = dir.join(MANIFEST_FILE);
    if !storage.exists(&manifest_path) {
        return Ok(None);
    }
    let reject = |detail: String| Rejected(format!("{}: {detail}", manifest_path.display()));
    let bytes = storage
        .read(&manifest_path)
        .map_err(|error| reject(error.to_string()))?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|error| reject(error.to_string()))?;
    if manifest.seq.0 > crate::record::SEQ_MAX {
        return Err(reject(format!("sequence number {} is out of range", manifest.seq)));
    }
    if manifest.version != MANIFEST_VERSION {
        return Err(reject(format!("unsupported manifest version {}", manifest.version)));
    }
    let names: Vec<&str> = manifest.files.iter().map(|digest| digest.name.as_str()).collect();
    if names != QUEUE_FILES {
        return Err(reject(format!("manifest lists {names:?}, expected {QUEUE_FILES:?}")));
    }
    let mut lists = Vec::with_capacity(3);
    for digest in &manifest.files {
        lists.push(load_checked(storage, &dir.join(&digest.name), digest)?);
    }
    let [mut pending, failed, completed]: [Vec<QueueEntry>; 3] =
        lists.try_into().map_err(|_| reject("three files expected".into()))?;
    let in_flight_count = usize::try_from(manifest.in_flight).unwrap_or(usize::MAX);
    if in_flight_count > pending.len() {
        return Err(reject(format!(
            "{} in-flight entries announced, {PENDING_FILE} holds {}",
            manifest.in_flight,
            pending.len()
        )));
    }
    let rest = pending.split_off(in_flight_count);
    Ok(Some(SnapshotData {
        seq: manifest.seq,
        in_flight: pending,
        pending: rest,
        failed,
        completed,
    }))
}

fn load_checked(
    storage: &dyn Storage,
    path: &Path,
    digest: &FileDigest,
) -> std::result::Result<Vec<QueueEntry>, Rejected> {
    let reject = |detail: String| Rejected(format!("{}: {detail}", path.display()));
    let bytes = storage.read(path).map_err(|error| reject(error.to_string()))?;
    let crc32 = crc32fast::hash(&bytes);
    if bytes.len() as u64 != digest.bytes || crc32 != digest.crc32 {
        return Err(reject(format!(
            "{} bytes with CRC32 {crc32:#010x}, the manifest recorded {} bytes with {:#010x} \
             (an interrupted snapshot or an edit by hand)",
            bytes.len(),
            digest.bytes,
            digest.crc32
        )));
    }
    parse_entries(&bytes).map_err(reject)
}

/// Parses one documented file: a JSON array of entries, read in one pass
/// straight into entries (no intermediate tree of the whole file).
///
/// # Errors
/// A message naming the entry index and what is wrong with it, or where
/// the JSON itself is malformed.
pub fn parse_entries(bytes: &[u8]) -> std::result::Result<Vec<QueueEntry>, String> {
    let mut invalid = None;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = deserializer
        .deserialize_seq(EntriesVisitor { invalid: &mut invalid })
        .and_then(|entries| deserializer.end().map(|()| entries));
    match (parsed, invalid) {
        (Ok(entries), _) => Ok(entries),
        (Err(_), Some(invalid)) => Err(invalid),
        (Err(error), None) => Err(format!("not a JSON array of movies: {error}")),
    }
}

/// Reads a JSON array of entries, validating each as it comes; the first
/// invalid one stops the parse and is described in `invalid`.
struct EntriesVisitor<'a> {
    invalid: &'a mut Option<String>,
}

impl<'de> Visitor<'de> for EntriesVisitor<'_> {
    type Value = Vec<QueueEntry>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON array of movies")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> std::result::Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0));
        while let Some(raw) = access.next_element::<RawFields>()? {
            match QueueEntry::from_raw(raw) {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    let message = format!("entry {}: {error}", entries.len());
                    *self.invalid = Some(message.clone());
                    return Err(A::Error::custom(message));
                }
            }
        }
        Ok(entries)
    }
}

/// Reads the documented files of a store that has no manifest (a legacy
/// Movie Sync installation, or a directory given to `import`). Missing
/// files are empty queues; an unreadable one is an error, never emptied.
///
/// # Errors
/// [`Error::BadQueueFile`] naming the file; [`Error::Io`].
pub fn load_legacy(storage: &dyn Storage, dir: &Path) -> Result<Option<SnapshotData>> {
    let mut lists: [Vec<QueueEntry>; 3] = Default::default();
    let mut found = false;
    for (name, list) in QUEUE_FILES.iter().zip(&mut lists) {
        let path = dir.join(name);
        if !storage.exists(&path) {
            continue;
        }
        found = true;
        let bytes = storage.read(&path).map_err(|error| Error::io("read", &path, error))?;
        *list = parse_entries(&bytes).map_err(|detail| Error::BadQueueFile {
            path: path.clone(),
            detail: format!("{detail}; there is no journal to rebuild it from, so fix or move the file"),
        })?;
    }
    let [pending, failed, completed] = lists;
    Ok(found.then_some(SnapshotData {
        seq: Seq(0),
        in_flight: Vec::new(),
        pending,
        failed,
        completed,
    }))
}

/// Removes `*.tmp` files an interrupted snapshot left in `dir` (writer only).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn remove_leftovers(storage: &dyn Storage, dir: &Path) -> Result<()> {
    for name in QUEUE_FILES.iter().chain(std::iter::once(&MANIFEST_FILE)) {
        let temporary = storage::temporary_path(&dir.join(name));
        if storage.exists(&temporary) {
            storage
                .remove_file(&temporary)
                .map_err(|error| Error::io("remove", &temporary, error))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::from),
            "[ a\"\\\\/:,{}\\[\\]\n\t\u{1}\u{e9}]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::vec(("[a\"\\\\:,{ ]{0,3}", inner), 0..5)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn pretty_writing_of_compact_json_matches_serde_json(value in json_value()) {
            let compact = serde_json::to_string(&value).expect("serializes");
            let mut out = Vec::new();
            write_pretty(&mut out, compact.as_bytes(), b"");
            prop_assert_eq!(String::from_utf8(out).expect("UTF-8"), serde_json::to_string_pretty(&value).expect("serializes"));
        }
    }

    #[test]
    fn rendered_files_are_indented_like_python_json_dump() {
        let entries = [
            r#"{"id":"1","title":"A, B: \"C\"","year":1999,"tags":[],"more":{"a":[1,{}]}}"#,
            r#"{"id":"2","title":"x","year":"2000"}"#,
        ];
        let text = String::from_utf8(render(entries.into_iter())).expect("UTF-8");
        let expected = "[\n  {\n    \"id\": \"1\",\n    \"title\": \"A, B: \\\"C\\\"\",\n    \"year\": 1999,\n    \"tags\": [],\n    \"more\": {\n      \"a\": [\n        1,\n        {}\n      ]\n    }\n  },\n  {\n    \"id\": \"2\",\n    \"title\": \"x\",\n    \"year\": \"2000\"\n  }\n]\n";
        assert_eq!(text, expected);
        assert_eq!(render(std::iter::empty()), b"[]\n");
    }
}
