//! The manifest: writing a snapshot (the documented files plus
//! `queue_snapshot.json`) atomically, and loading it only when every
//! checksum agrees.
//!
//! Write (numbered as in `docs/DURABILITY.md`):
//! 1. serialize `queue_pending.json` (in-flight entries first, then
//!    pending), `queue_failed.json`, `queue_completed.json`,
//!    `queue_removed.json`;
//! 2. write each to `<name>.tmp` and fsync it;
//! 3. write the manifest (covered sequence number, in-flight count, each
//!    file's length and CRC32) to `queue_snapshot.json.tmp` and fsync it;
//! 4. rename the four files into place, fsync the directory;
//! 5. rename the manifest into place, fsync the directory.
//!
//! A crash before 5 leaves the old manifest beside (some) new files: their
//! checksums disagree and start-up falls back to the journal. The manifest
//! is never durable before the files it describes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::entries::Entries;
use super::files::render_files;
use super::{
    MANIFEST_FILE, MANIFEST_VERSION, PENDING_FILE, QUEUE_FILES, Rejected, SnapshotData, Unsealed, push, seal, unseal,
};

/// The files a manifest of `version` lists: the first three before version 3.
fn files_of(version: u32) -> &'static [&'static str] {
    if version >= 3 { &QUEUE_FILES } else { &QUEUE_FILES[..3] }
}
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::projection::{Place, QueueState};
use crate::seq::Seq;
use crate::storage::{self, Storage};

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
/// A step that fails (a full disk, say) leaves no `*.tmp` file behind: the
/// ones written are removed (they hold nothing anyone needs).
///
/// # Errors
/// [`Error::Io`] naming the file of the step that failed.
pub fn write_files(storage: &dyn Storage, dir: &Path, files: &[Vec<u8>; 4], seq: Seq, in_flight: u64) -> Result<()> {
    let written = write_files_steps(storage, dir, files, seq, in_flight);
    if written.is_err() {
        for name in QUEUE_FILES.iter().chain([&MANIFEST_FILE]) {
            let _ = storage.remove_file(&crate::layout::temporary_path(&dir.join(name)));
        }
    }
    written
}

fn write_files_steps(storage: &dyn Storage, dir: &Path, files: &[Vec<u8>; 4], seq: Seq, in_flight: u64) -> Result<()> {
    let mut digests = Vec::with_capacity(QUEUE_FILES.len());
    for (name, bytes) in QUEUE_FILES.iter().zip(files) {
        let temporary = crate::layout::temporary_path(&dir.join(name));
        storage::remove_if_present(storage, &temporary)?;
        storage::write_new(storage, &temporary, bytes)?;
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
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|error| Error::InvalidArgument(format!("manifest cannot be serialized: {error}")))?;
    let manifest_bytes = seal("manifest", &body);
    let manifest_path = Layout::new(dir).manifest();
    let temporary = crate::layout::temporary_path(&manifest_path);
    storage::remove_if_present(storage, &temporary)?;
    storage::write_new(storage, &temporary, &manifest_bytes)?;
    for name in QUEUE_FILES {
        let path = dir.join(name);
        storage::set_directory_aside(storage, &path)?;
        storage
            .rename(&crate::layout::temporary_path(&path), &path)
            .map_err(|error| Error::io("rename to", &path, error))?;
    }
    storage::sync_parent(storage, &manifest_path)?;
    storage::set_directory_aside(storage, &manifest_path)?;
    storage
        .rename(&crate::layout::temporary_path(&manifest_path), &manifest_path)
        .map_err(|error| Error::io("rename to", &manifest_path, error))?;
    storage::sync_parent(storage, &manifest_path)
}

/// Loads the snapshot of `dir` if its manifest and all its files agree (a
/// manifest older than version 3 lists three files and no removed movie).
/// `Ok(None)`: there is no manifest. `Err(Rejected)`: there is one, but the
/// set is inconsistent or unreadable (a crash mid-snapshot, a hand edit).
///
/// # Errors
/// [`Rejected`] saying which file disagrees and how.
pub fn load_snapshot(storage: &dyn Storage, dir: &Path) -> std::result::Result<Option<SnapshotData>, Rejected> {
    load_snapshot_noting(storage, dir, &mut Vec::new())
}

/// [`load_snapshot`], adding to `pinned` each documented file that is
/// missing but whose digest in the manifest pins it as an empty queue: a
/// file of at most four bytes is fixed by its length and CRC32 (CRC32 is a
/// bijection on 32-bit inputs), and the only such documented file is `[]`
/// and a newline. The snapshot then holds with that file read as empty.
///
/// # Errors
/// As [`load_snapshot`].
pub fn load_snapshot_noting(
    storage: &dyn Storage,
    dir: &Path,
    pinned: &mut Vec<std::path::PathBuf>,
) -> std::result::Result<Option<SnapshotData>, Rejected> {
    let manifest_path = Layout::new(dir).manifest();
    if !storage.exists(&manifest_path) {
        return Ok(None);
    }
    let reject = |detail: String| Rejected::new(&manifest_path, detail);
    let bytes = storage
        .read(&manifest_path)
        .map_err(|error| reject(error.to_string()))?;
    let manifest = parse_manifest(&bytes).map_err(reject)?;
    let names: Vec<&str> = manifest.files.iter().map(|digest| digest.name.as_str()).collect();
    let expected = files_of(manifest.version);
    if names != expected {
        return Err(reject(format!("manifest lists {names:?}, expected {expected:?}")));
    }
    let in_flight = usize::try_from(manifest.in_flight).unwrap_or(usize::MAX);
    let mut state = QueueState::new();
    for (digest, places) in manifest.files.iter().zip(FILE_PLACES) {
        let path = dir.join(&digest.name);
        match load_checked(storage, &path, digest, &mut state, places, in_flight) {
            Ok(count) if places.0 == Place::InFlight && count < in_flight => {
                return Err(reject(format!(
                    "{} in-flight entries announced, {PENDING_FILE} holds {count}",
                    manifest.in_flight
                )));
            }
            Ok(_) => {}
            // A missing file the manifest pins as the empty queue (never
            // a file that was there: its entries may be in the state).
            Err(LoadError::Missing(_)) if pins_empty(digest) => {
                if places.0 == Place::InFlight && in_flight > 0 {
                    return Err(reject(format!(
                        "{} in-flight entries announced, {PENDING_FILE} holds 0",
                        manifest.in_flight
                    )));
                }
                pinned.push(path);
            }
            Err(LoadError::Missing(rejected) | LoadError::Rejected(rejected)) => return Err(rejected),
        }
    }
    Ok(Some(SnapshotData::new(manifest.seq, state)))
}

/// The places each documented file's entries go to, in [`QUEUE_FILES`]
/// order: the first `in_flight` entries of the pending file are in flight.
const FILE_PLACES: [(Place, Place); 4] = [
    (Place::InFlight, Place::Pending),
    (Place::Failed, Place::Failed),
    (Place::Completed, Place::Completed),
    (Place::Removed, Place::Removed),
];

/// The record the manifest says its snapshot covers, reading the manifest
/// only (the files are checked when the snapshot is loaded). `None`: no
/// manifest, or one that does not parse.
#[must_use]
pub fn snapshot_seq(storage: &dyn Storage, dir: &Path) -> Option<Seq> {
    let manifest_path = Layout::new(dir).manifest();
    if !storage.exists(&manifest_path) {
        return None;
    }
    let bytes = storage.read(&manifest_path).ok()?;
    parse_manifest(&bytes).ok().map(|manifest| manifest.seq)
}

/// A manifest's content: version 3 (four files) or 2 (three) sealed with
/// its own checksum, or version 1 as the first release wrote it.
fn parse_manifest(bytes: &[u8]) -> std::result::Result<Manifest, String> {
    let (manifest, versions): (Manifest, std::ops::RangeInclusive<u32>) = match unseal(bytes)? {
        Unsealed::Body(body) => (
            serde_json::from_str(body).map_err(|error| error.to_string())?,
            2..=MANIFEST_VERSION,
        ),
        Unsealed::NotSealed => (serde_json::from_slice(bytes).map_err(|error| error.to_string())?, 1..=1),
    };
    if !versions.contains(&manifest.version) {
        return Err(format!("unsupported manifest version {}", manifest.version));
    }
    if manifest.seq.0 >= crate::seq::SEQ_MAX {
        return Err(format!(
            "sequence number {} is out of range (no record could follow it)",
            manifest.seq
        ));
    }
    Ok(manifest)
}

/// The documented file of an empty queue, as the library writes it.
const EMPTY_FILE: &[u8] = b"[]\n";

/// Does `digest` fix its file's content as the empty queue's?
fn pins_empty(digest: &FileDigest) -> bool {
    digest.bytes == EMPTY_FILE.len() as u64 && digest.crc32 == crc32fast::hash(EMPTY_FILE)
}

/// The size of the pieces a documented file is read in.
const READ_PIECE: usize = 1 << 20;

/// Why a documented file did not load.
enum LoadError {
    /// It is not there (a manifest may pin it as an empty queue).
    Missing(Rejected),
    /// It is there and does not hold up; entries may have gone into the
    /// state already.
    Rejected(Rejected),
}

/// Loads the documented file at `path` into `state`, read in pieces
/// (neither the file nor a list of its entries is held whole): its first
/// `first_count` entries in `places.0`, the rest in `places.1`. Returns
/// how many entries it held.
///
/// Two passes over the open file: the first checks its length and CRC32
/// against the manifest (a damaged file costs one read, and nothing goes
/// into the state); the second parses it, hashing again, so bytes that
/// changed in between are refused too.
fn load_checked(
    storage: &dyn Storage,
    path: &Path,
    digest: &FileDigest,
    state: &mut QueueState,
    places: (Place, Place),
    first_count: usize,
) -> std::result::Result<usize, LoadError> {
    let reject = |detail: String| LoadError::Rejected(Rejected::new(path, detail));
    let mut file = storage.open_read(path).map_err(|error| {
        let rejected = Rejected::new(path, error.to_string());
        if error.kind() == std::io::ErrorKind::NotFound {
            LoadError::Missing(rejected)
        } else {
            LoadError::Rejected(rejected)
        }
    })?;
    let mut piece = vec![0; READ_PIECE];
    let (length, crc32) = read_pieces(file.as_mut(), &mut piece, |_| Ok(())).map_err(reject)?;
    if length != digest.bytes || crc32 != digest.crc32 {
        return Err(reject(format!(
            "{length} bytes with CRC32 {crc32:#010x}, the manifest recorded {} bytes with {:#010x} \
             (an interrupted snapshot or an edit by hand)",
            digest.bytes, digest.crc32
        )));
    }
    let mut index = 0;
    let mut each = |entry| {
        let place = if index < first_count { places.0 } else { places.1 };
        index += 1;
        push(state, place, &entry)
    };
    let mut entries = Entries::new(&mut each);
    let mut pending = Vec::new();
    let again = read_pieces(file.as_mut(), &mut piece, |read| {
        pending.extend_from_slice(read);
        let used = entries.feed(&pending, read.is_empty())?;
        entries.advance(used);
        pending.drain(..used);
        Ok(())
    })
    .map_err(reject)?;
    if again != (length, crc32) {
        return Err(reject("the file changed while it was read".into()));
    }
    Ok(entries.count())
}

/// Reads `file` from its start in pieces of `piece`'s size, handing each
/// piece to `each` (an empty one at the end); returns the length and
/// CRC32 of everything read.
fn read_pieces(
    file: &mut dyn crate::storage::ReadableFile,
    piece: &mut [u8],
    mut each: impl FnMut(&[u8]) -> std::result::Result<(), String>,
) -> std::result::Result<(u64, u32), String> {
    let (mut hasher, mut length) = (crc32fast::Hasher::new(), 0_u64);
    loop {
        let read = file.read_at(length, piece).map_err(|error| error.to_string())?;
        hasher.update(&piece[..read]);
        length += read as u64;
        each(&piece[..read])?;
        if read == 0 {
            return Ok((length, hasher.finalize()));
        }
    }
}

/// Removes `*.tmp` files an interrupted snapshot left in `dir` (writer only).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn remove_leftovers(storage: &dyn Storage, dir: &Path) -> Result<()> {
    for name in QUEUE_FILES.iter().chain(std::iter::once(&MANIFEST_FILE)) {
        storage::remove_if_present(storage, &crate::layout::temporary_path(&dir.join(name)))?;
    }
    Ok(())
}
