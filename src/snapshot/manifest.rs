//! The manifest: writing a snapshot (the documented files plus
//! `queue_snapshot.json`) atomically, and loading it only when every
//! checksum agrees.
//!
//! Write (numbered as in `docs/DURABILITY.md`):
//! 1. serialize `queue_pending.json` (in-flight entries first, then
//!    pending), `queue_failed.json`, `queue_completed.json`,
//!    `queue_removed.json`;
//! 2. write each, and the index (`index.rs`), to `<name>.tmp` and fsync it;
//! 3. write the manifest (covered sequence number, in-flight count, each
//!    file's length and CRC32, the index's and the counts) to
//!    `queue_snapshot.json.tmp` and fsync it;
//! 4. rename the four files and the index into place, fsync the directory;
//! 5. rename the manifest into place, fsync the directory.
//!
//! A crash before 5 leaves the old manifest beside (some) new files: their
//! checksums disagree and start-up falls back to the journal. The manifest
//! is never durable before the files it describes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::entries::{Entries, Pieces, parse_entry};
use super::files::{self, Rendered, render_file};
use super::index::{Index, IndexBuilder, Located, entry_crc};
use super::{
    MANIFEST_FILE, MANIFEST_VERSION, PENDING_FILE, QUEUE_FILES, Rejected, SnapshotData, Unsealed, seal, unseal,
};
use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::layout::{INDEX_FILE, Layout};
use crate::projection::{Place, QueueState};
use crate::seq::Seq;
use crate::storage::{self, Entry, Storage};

/// The files a manifest of `version` lists: the first three before version 3.
fn files_of(version: u32) -> &'static [&'static str] {
    if version >= 3 { &QUEUE_FILES } else { &QUEUE_FILES[..3] }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileDigest {
    name: String,
    bytes: u64,
    crc32: u32,
}

impl FileDigest {
    /// Is the file at `path` (this one's) of the length recorded? A file
    /// of another length is never read.
    fn sized(&self, storage: &dyn Storage, path: &Path) -> bool {
        matches!(storage.entry(path), Ok(Entry::File(size)) if size == self.bytes)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    seq: Seq,
    in_flight: u64,
    files: Vec<FileDigest>,
    /// The index and the counts (version 4; absent from a snapshot written
    /// from files rendered elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<IndexDigest>,
    /// When it was written, Unix seconds by the wall clock (version 4):
    /// the age the snapshot policy reads at close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    written_at: Option<f64>,
}

/// The manifest's account of the index and of the state's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IndexDigest {
    bytes: u64,
    crc32: u32,
    counts: Counts,
    /// `[retry_count, entries]` of the failed queue, ascending.
    failed_retries: Vec<(u32, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Counts {
    pending: u64,
    in_flight: u64,
    failed: u64,
    completed: u64,
    removed: u64,
}

impl Counts {
    fn of(counts: [u64; 5]) -> Counts {
        let [pending, in_flight, failed, completed, removed] = counts;
        Counts {
            pending,
            in_flight,
            failed,
            completed,
            removed,
        }
    }

    fn get(self, place: Place) -> u64 {
        match place {
            Place::Pending => self.pending,
            Place::InFlight => self.in_flight,
            Place::Failed => self.failed,
            Place::Completed => self.completed,
            Place::Removed => self.removed,
        }
    }
}

/// Writes a snapshot of `state`, which reflects every journal record up to
/// `seq` and no other, into `dir` (steps 1–5 above).
///
/// # Errors
/// [`Error::Io`] naming the file of the step that failed.
#[cfg(any(test, feature = "testing"))]
pub fn write_snapshot(storage: &dyn Storage, dir: &Path, state: &QueueState, seq: Seq) -> Result<()> {
    write_snapshot_keeping(storage, dir, state, seq, &OnDisk::default())
}

/// The documented files a snapshot was read from or written as, as its
/// manifest records them (a manifest with an index only): what a later
/// snapshot of the same store keeps, instead of rewriting, for each file
/// whose queues did not change since. Empty: nothing to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnDisk(Vec<FileDigest>);

/// [`write_snapshot`], keeping as they are the documented files of
/// `on_disk` whose queues did not change in `state` since it matched them
/// ([`QueueState::forget_changes`]): a change to one queue rewrites that
/// queue's file, the index and the manifest, not every file. A file is
/// kept only while the manifest on disk still records it as `on_disk`
/// does, it has that length, and that manifest's index holds up (its
/// records for the kept files go into the new index).
///
/// # Errors
/// As [`write_snapshot`].
pub fn write_snapshot_keeping(
    storage: &dyn Storage,
    dir: &Path,
    state: &QueueState,
    seq: Seq,
    on_disk: &OnDisk,
) -> Result<()> {
    cleaning(storage, dir, write_state_steps(storage, dir, state, seq, on_disk))
}

/// Which documented files a snapshot of `state` keeps (see
/// [`write_snapshot_keeping`]), and the index their records come from.
fn kept_files(storage: &dyn Storage, dir: &Path, state: &QueueState, on_disk: &OnDisk) -> Option<([bool; 4], Index)> {
    if on_disk.0.len() != QUEUE_FILES.len() {
        return None;
    }
    let unchanged: [bool; 4] = std::array::from_fn(|file| !state.changed_any(files::FILE_PLACES[file]));
    if !unchanged.contains(&true) {
        return None;
    }
    let summary = read_summary(storage, dir).ok()??;
    let keep: [bool; 4] = std::array::from_fn(|file| {
        let digest = &on_disk.0[file];
        unchanged[file] && summary.files.get(file) == Some(digest) && digest.sized(storage, &dir.join(&digest.name))
    });
    if !keep.contains(&true) {
        return None;
    }
    let index = summary.load_index(storage, dir).ok()?;
    Some((keep, index))
}

/// Steps 2–5 for a state: each documented file it does not keep rendered
/// straight into its temporary file in pieces (never held whole), then
/// the index and the manifest.
fn write_state_steps(storage: &dyn Storage, dir: &Path, state: &QueueState, seq: Seq, on_disk: &OnDisk) -> Result<()> {
    let mut index = IndexBuilder::default();
    let mut kept = [false; 4];
    if let Some((keep, old)) = kept_files(storage, dir, state, on_disk) {
        let mut carried = IndexBuilder::default();
        let records: std::result::Result<(), String> = old.records().try_for_each(|record| {
            let (hash, located) = record?;
            if keep[file_of(located.place)] {
                carried.push_located(hash, located);
            }
            Ok(())
        });
        if records.is_ok() {
            (kept, index) = (keep, carried);
        }
    }
    let mut digests = Vec::with_capacity(QUEUE_FILES.len());
    for (file, name) in QUEUE_FILES.iter().enumerate() {
        if kept[file] {
            digests.push(on_disk.0[file].clone());
            continue;
        }
        let temporary = crate::layout::temporary_path(&dir.join(name));
        storage::remove_if_present(storage, &temporary)?;
        let mut writer = storage
            .create_new(&temporary)
            .map_err(|error| Error::io("create", &temporary, error))?;
        let (bytes, crc32) = render_file(state, file, Some(&mut index), &mut |piece| writer.write_all(piece))
            .map_err(|error| Error::io("write", &temporary, error))?;
        writer
            .sync_data()
            .map_err(|error| Error::io("fsync", &temporary, error))?;
        digests.push(FileDigest {
            name: (*name).to_owned(),
            bytes,
            crc32,
        });
    }
    let counts = Place::ALL.map(|place| state.count(place) as u64);
    let index = write_index(storage, dir, &index.finish(), counts, state.failed_retry_counts())?;
    let in_flight = Counts::of(counts).in_flight;
    finish_snapshot(storage, dir, seq, in_flight, digests, Some(index), kept)
}

/// Writes a rendered snapshot covering `seq`, its index included (steps
/// 2–5).
///
/// # Errors
/// As [`write_files`].
pub fn write_rendered(storage: &dyn Storage, dir: &Path, rendered: &Rendered, seq: Seq) -> Result<()> {
    let written = Written {
        files: &rendered.files,
        seq,
        in_flight: Counts::of(rendered.counts).in_flight,
        rendered: Some(rendered),
    };
    write_steps_cleaning(storage, dir, &written)
}

/// Writes already rendered files as a snapshot covering `seq` (steps 2–5),
/// without an index (a reader of it loads the files).
/// A step that fails (a full disk, say) leaves no `*.tmp` file behind: the
/// ones written are removed (they hold nothing anyone needs).
///
/// # Errors
/// [`Error::Io`] naming the file of the step that failed.
#[cfg(any(test, feature = "testing"))]
pub fn write_files(storage: &dyn Storage, dir: &Path, files: &[Vec<u8>; 4], seq: Seq, in_flight: u64) -> Result<()> {
    let written = Written {
        files,
        seq,
        in_flight,
        rendered: None,
    };
    write_steps_cleaning(storage, dir, &written)
}

/// What one snapshot write puts down: the files, the record they cover,
/// how many leading pending entries are in flight, and (with an index)
/// the whole rendering.
struct Written<'a> {
    files: &'a [Vec<u8>; 4],
    seq: Seq,
    in_flight: u64,
    rendered: Option<&'a Rendered>,
}

fn write_steps_cleaning(storage: &dyn Storage, dir: &Path, written: &Written<'_>) -> Result<()> {
    cleaning(storage, dir, write_files_steps(storage, dir, written))
}

/// A snapshot write's `outcome`, after removing its temporary files when
/// it failed (they hold nothing anyone needs).
fn cleaning(storage: &dyn Storage, dir: &Path, outcome: Result<()>) -> Result<()> {
    if outcome.is_err() {
        for name in SNAPSHOT_FILES {
            let _ = storage.remove_file(&crate::layout::temporary_path(&dir.join(name)));
        }
    }
    outcome
}

/// Every file a snapshot writes.
const SNAPSHOT_FILES: [&str; 6] = [
    QUEUE_FILES[0],
    QUEUE_FILES[1],
    QUEUE_FILES[2],
    QUEUE_FILES[3],
    INDEX_FILE,
    MANIFEST_FILE,
];

fn write_files_steps(storage: &dyn Storage, dir: &Path, written: &Written<'_>) -> Result<()> {
    let Written {
        files,
        seq,
        in_flight,
        rendered,
    } = *written;
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
    let index = match rendered {
        Some(rendered) => Some(write_index(
            storage,
            dir,
            &rendered.index,
            rendered.counts,
            rendered.failed_retries.clone(),
        )?),
        None => None,
    };
    finish_snapshot(storage, dir, seq, in_flight, digests, index, [false; 4])
}

/// Writes the index's temporary file; its digest for the manifest.
fn write_index(
    storage: &dyn Storage,
    dir: &Path,
    index: &[u8],
    counts: [u64; 5],
    failed_retries: Vec<(u32, u64)>,
) -> Result<IndexDigest> {
    let temporary = crate::layout::temporary_path(&Layout::new(dir).index());
    storage::remove_if_present(storage, &temporary)?;
    storage::write_new(storage, &temporary, index)?;
    Ok(IndexDigest {
        bytes: index.len() as u64,
        crc32: crc32fast::hash(index),
        counts: Counts::of(counts),
        failed_retries,
    })
}

/// Steps 4–5 once the documented files (and the index) are in their
/// temporary files: the manifest written, then every file renamed into
/// place (but those `kept` as they are), the manifest last.
fn finish_snapshot(
    storage: &dyn Storage,
    dir: &Path,
    seq: Seq,
    in_flight: u64,
    digests: Vec<FileDigest>,
    index: Option<IndexDigest>,
    kept: [bool; 4],
) -> Result<()> {
    let index_path = Layout::new(dir).index();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        seq,
        in_flight,
        files: digests,
        index,
        written_at: Some(crate::clock::now()),
    };
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|error| Error::InvalidArgument(format!("manifest cannot be serialized: {error}")))?;
    let manifest_bytes = seal("manifest", &body);
    let manifest_path = Layout::new(dir).manifest();
    let temporary = crate::layout::temporary_path(&manifest_path);
    storage::remove_if_present(storage, &temporary)?;
    storage::write_new(storage, &temporary, &manifest_bytes)?;
    let renamed = QUEUE_FILES
        .iter()
        .zip(kept)
        .filter(|&(_, kept)| !kept)
        .map(|(name, _)| dir.join(name));
    for path in renamed.chain(manifest.index.is_some().then_some(index_path)) {
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
    let reject = |detail: String| Rejected::new(&manifest_path, detail);
    let Some(manifest) = read_manifest(storage, dir).map_err(reject)? else {
        return Ok(None);
    };
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
    let mut data = SnapshotData::new(manifest.seq, state);
    if manifest.index.is_some() {
        data.on_disk = OnDisk(manifest.files);
    }
    Ok(Some(data))
}

/// The places each documented file's entries go to, in [`QUEUE_FILES`]
/// order: the first `in_flight` entries of the pending file are in flight.
const FILE_PLACES: [(Place, Place); 4] = [
    (Place::InFlight, Place::Pending),
    (Place::Failed, Place::Failed),
    (Place::Completed, Place::Completed),
    (Place::Removed, Place::Removed),
];

/// Does `state`, rendered, give the snapshot of record `seq` on disk byte
/// for byte: each documented file its manifest names, whose length and
/// CRC32 the manifest records, and its in-flight count? Each file is
/// compared as it renders, in pieces, against the file read at the same
/// pace: neither is held whole, and no second state is built (`verify`).
/// `false` when anything differs or cannot be read, or the manifest covers
/// another record.
#[must_use]
pub fn renders_as_files(storage: &dyn Storage, dir: &Path, state: &QueueState, seq: Seq) -> bool {
    let Ok(Some(manifest)) = read_manifest(storage, dir) else {
        return false;
    };
    let names: Vec<&str> = manifest.files.iter().map(|digest| digest.name.as_str()).collect();
    let holds_removed = files_of(manifest.version).len() == QUEUE_FILES.len();
    if manifest.seq != seq
        || names != files_of(manifest.version)
        || manifest.in_flight != state.count(Place::InFlight) as u64
        || (!holds_removed && state.count(Place::Removed) > 0)
    {
        return false;
    }
    manifest.files.iter().enumerate().all(|(file, digest)| {
        let Ok(mut reader) = storage.open_read(&dir.join(&digest.name)) else {
            return false;
        };
        let (mut offset, mut buffer) = (0_u64, vec![0; READ_PIECE]);
        let mut compare = |piece: &[u8]| -> std::io::Result<()> {
            let mut at = 0;
            while at < piece.len() {
                let want = (piece.len() - at).min(buffer.len());
                let read = reader.read_at(offset, &mut buffer[..want])?;
                if read == 0 || buffer[..read] != piece[at..at + read] {
                    return Err(std::io::Error::other("differs"));
                }
                at += read;
                offset += read as u64;
            }
            Ok(())
        };
        let rendered = render_file(state, file, None, &mut compare);
        // Nothing after what the state renders.
        let ends = reader.read_at(offset, &mut buffer[..1]).is_ok_and(|read| read == 0);
        rendered.is_ok_and(|found| found == (digest.bytes, digest.crc32)) && ends
    })
}

/// The record the manifest says its snapshot covers, reading the manifest
/// only (the files are checked when the snapshot is loaded). `None`: no
/// manifest, or one that does not parse.
#[must_use]
pub fn snapshot_seq(storage: &dyn Storage, dir: &Path) -> Option<Seq> {
    Some(read_manifest(storage, dir).ok()??.seq)
}

/// The manifest of `dir`, read and parsed. `Ok(None)`: there is none.
fn read_manifest(storage: &dyn Storage, dir: &Path) -> std::result::Result<Option<Manifest>, String> {
    let manifest_path = Layout::new(dir).manifest();
    if !storage.exists(&manifest_path) {
        return Ok(None);
    }
    let bytes = storage.read(&manifest_path).map_err(|error| error.to_string())?;
    parse_manifest(&bytes).map(Some)
}

/// What a reader answers from without loading the documented files: a
/// manifest's record and counts, and the way to its index. Every value
/// comes from the manifest (its own checksum holds); the index is read
/// only whole and only when it matches, and each entry it points to is
/// checked against its own CRC32.
#[derive(Debug, Clone)]
pub struct Summary {
    seq: Seq,
    written_at: Option<f64>,
    in_flight: u64,
    files: Vec<FileDigest>,
    index: IndexDigest,
}

/// The manifest's summary. `Ok(None)`: no manifest, or one without an
/// index (written by an older version, or from files rendered elsewhere).
///
/// # Errors
/// A message when the manifest cannot be read or does not hold up.
pub fn read_summary(storage: &dyn Storage, dir: &Path) -> std::result::Result<Option<Summary>, String> {
    let Some(manifest) = read_manifest(storage, dir)? else {
        return Ok(None);
    };
    let names: Vec<&str> = manifest.files.iter().map(|digest| digest.name.as_str()).collect();
    if names != QUEUE_FILES {
        return Ok(None);
    }
    Ok(manifest.index.map(|index| Summary {
        seq: manifest.seq,
        written_at: manifest.written_at,
        in_flight: manifest.in_flight,
        files: manifest.files,
        index,
    }))
}

impl Summary {
    /// The record the snapshot covers.
    #[must_use]
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// When the snapshot was written (Unix seconds, the wall clock).
    #[must_use]
    pub fn written_at(&self) -> Option<f64> {
        self.written_at
    }

    /// How many entries `place` held.
    #[must_use]
    pub fn count(&self, place: Place) -> u64 {
        self.index.counts.get(place)
    }

    /// How many failed entries had `retry_count >= max_retries`.
    #[must_use]
    pub fn permanent_failures(&self, max_retries: u32) -> u64 {
        let at_least = |&&(count, _): &&(u32, u64)| count >= max_retries;
        self.index
            .failed_retries
            .iter()
            .filter(at_least)
            .map(|(_, entries)| entries)
            .sum()
    }

    /// Hands the entries of `place` in the snapshot to `each`, in file
    /// order, until it returns `false`; first `None`, once the file is
    /// checked whole against the manifest (read in pieces, never held; the
    /// same open file is then read again, so a snapshot renamed over it
    /// meanwhile changes nothing). `Ok(false)` when it does not match, and
    /// nothing was handed on.
    ///
    /// # Errors
    /// A message when the file changed in place between the check and the
    /// read.
    pub fn each_entry(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        place: Place,
        each: &mut dyn FnMut(Option<QueueEntry>) -> bool,
    ) -> std::result::Result<bool, Rejected> {
        let digest = &self.files[file_of(place)];
        let path = dir.join(&digest.name);
        let sized = digest.sized(storage, &path);
        let (true, Ok(mut file)) = (sized, storage.open_read(&path)) else {
            return Ok(false);
        };
        let mut piece = vec![0; READ_PIECE];
        let checked = read_pieces(file.as_mut(), &mut piece, |_| Ok(()));
        if checked != Ok((digest.bytes, digest.crc32)) {
            return Ok(false);
        }
        if !each(None) {
            return Ok(true);
        }
        // In flight: the first `in_flight` entries of the pending file;
        // pending: the rest.
        let in_flight = usize::try_from(self.in_flight).unwrap_or(usize::MAX);
        let (skip, take) = match place {
            Place::InFlight => (0, in_flight),
            Place::Pending => (in_flight, usize::MAX),
            _ => (0, usize::MAX),
        };
        let (mut index, mut stopped) = (0_usize, false);
        let mut handle = |entry| {
            let at = index;
            index += 1;
            if at < skip {
                return Ok(());
            }
            if at - skip >= take || !each(Some(entry)) {
                stopped = true;
                return Err(String::new());
            }
            Ok(())
        };
        match read_entries(file.as_mut(), &mut handle) {
            Err(_) if stopped => Ok(true),
            Err(error) => Err(Rejected::new(&path, error)),
            Ok(again) if again != (digest.bytes, digest.crc32) => {
                Err(Rejected::new(&path, "the file changed while it was read".into()))
            }
            Ok(_) => Ok(true),
        }
    }

    /// Do the documented files all have the length the manifest recorded?
    /// (Their bytes are checked where they are read: whole for a listing,
    /// one entry against its index record for a lookup.)
    #[must_use]
    pub fn files_sized(&self, storage: &dyn Storage, dir: &Path) -> bool {
        self.files
            .iter()
            .all(|digest| digest.sized(storage, &dir.join(&digest.name)))
    }

    /// The first entry of `place` in the snapshot, in file order, that
    /// `wanted` accepts, reading the file from its start only as far as
    /// that entry. Each entry looked at is checked against its own index
    /// record (place, offset, length and CRC32), so nothing is trusted
    /// that the index does not vouch for, and the file is never read whole.
    ///
    /// # Errors
    /// A message when an entry does not match the index, or the file is
    /// not the manifest's.
    pub fn first_entry_where(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        index: &Index,
        place: Place,
        wanted: &mut dyn FnMut(&QueueEntry) -> bool,
    ) -> std::result::Result<Option<QueueEntry>, String> {
        let digest = &self.files[file_of(place)];
        let path = dir.join(&digest.name);
        let named = |error: String| format!("{}: {error}", path.display());
        if !digest.sized(storage, &path) {
            return Err(named("not the size the manifest recorded".into()));
        }
        let mut file = storage.open_read(&path).map_err(|error| named(error.to_string()))?;
        let in_flight = usize::try_from(self.in_flight).unwrap_or(usize::MAX);
        let (mut ordinal, mut found, mut stopped) = (0_usize, None, false);
        let mut each = |offset: u64, bytes: &[u8]| {
            let at = ordinal;
            ordinal += 1;
            let holds = match place {
                Place::Pending if at < in_flight => return Ok(()),
                Place::InFlight if at >= in_flight => {
                    stopped = true;
                    return Err(String::new());
                }
                Place::InFlight => Place::InFlight,
                other => other,
            };
            let entry = parse_entry(bytes)?;
            let vouched = index.candidates(entry.id())?.iter().any(|located| {
                located.place == holds
                    && located.offset == offset
                    && located.length as usize == bytes.len()
                    && located.crc32 == entry_crc(holds, bytes)
            });
            if !vouched {
                return Err(format!("the entry at byte {offset} is not the one the index recorded"));
            }
            if wanted(&entry) {
                found = Some(entry);
                stopped = true;
                return Err(String::new());
            }
            Ok(())
        };
        match split_pieces(file.as_mut(), Entries::raw(&mut each)) {
            Err(_) if stopped => Ok(found),
            Err(error) => Err(named(error)),
            Ok(again) if again != (digest.bytes, digest.crc32) => {
                Err(named("the file is not the one the manifest recorded".into()))
            }
            Ok(_) => Ok(None),
        }
    }

    /// Reads the index whole and checks it against the manifest.
    ///
    /// # Errors
    /// A message when it is missing, damaged or another snapshot's.
    pub fn load_index(&self, storage: &dyn Storage, dir: &Path) -> std::result::Result<Index, String> {
        let path = Layout::new(dir).index();
        // Its size first: a file of another length is never read.
        match storage.entry(&path) {
            Ok(Entry::File(size)) if size == self.index.bytes => {}
            found => {
                return Err(format!(
                    "{}: {found:?}, the manifest recorded a file of {} bytes",
                    path.display(),
                    self.index.bytes
                ));
            }
        }
        let bytes = storage
            .read(&path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let (length, crc32) = (bytes.len() as u64, crc32fast::hash(&bytes));
        if (length, crc32) != (self.index.bytes, self.index.crc32) {
            return Err(format!(
                "{}: {length} bytes with CRC32 {crc32:#010x}, the manifest recorded {} bytes with {:#010x}",
                path.display(),
                self.index.bytes,
                self.index.crc32
            ));
        }
        Index::parse(bytes).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Reads the entry an index record points to, checked against the
    /// record's CRC32 (the file may have changed since the index was
    /// written).
    ///
    /// # Errors
    /// A message when it cannot be read or does not match.
    pub fn read_entry(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        located: &Located,
    ) -> std::result::Result<QueueEntry, String> {
        let digest = &self.files[file_of(located.place)];
        let path = dir.join(&digest.name);
        let end = located.offset.checked_add(u64::from(located.length));
        if end.is_none_or(|end| end > digest.bytes) {
            return Err(format!("{}: the index points past its end", path.display()));
        }
        let mut bytes = vec![0; located.length as usize];
        let mut file = storage
            .open_read(&path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let mut filled = 0;
        while filled < bytes.len() {
            let read = file
                .read_at(located.offset + filled as u64, &mut bytes[filled..])
                .map_err(|error| format!("{}: {error}", path.display()))?;
            if read == 0 {
                return Err(format!("{}: shorter than the index says", path.display()));
            }
            filled += read;
        }
        if entry_crc(located.place, &bytes) != located.crc32 {
            return Err(format!(
                "{}: the entry at byte {} is not the one the index recorded",
                path.display(),
                located.offset
            ));
        }
        parse_entry(&bytes).map_err(|error| format!("{}: {error}", path.display()))
    }
}

/// The documented file (its index in [`QUEUE_FILES`]) that holds `place`.
fn file_of(place: Place) -> usize {
    match place {
        Place::Pending | Place::InFlight => 0,
        Place::Failed => 1,
        Place::Completed => 2,
        Place::Removed => 3,
    }
}

/// A manifest's content: version 4 (the index and counts too) or 3 (four
/// files) or 2 (three) sealed with its own checksum, or version 1 as the
/// first release wrote it.
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
    drop(piece);
    let (count, again) = super::halves::load(
        storage,
        path,
        file.as_mut(),
        length,
        state,
        places,
        first_count,
        READ_PIECE,
    )
    .map_err(reject)?;
    if again != (length, crc32) {
        return Err(reject("the file changed while it was read".into()));
    }
    Ok(count)
}

/// Reads the documented file `file` from its start in pieces, handing
/// each entry to `each` as its bytes come (the file is never held whole);
/// returns the length and CRC32 of everything read.
fn read_entries(
    file: &mut dyn crate::storage::ReadableFile,
    each: &mut dyn FnMut(QueueEntry) -> std::result::Result<(), String>,
) -> std::result::Result<(u64, u32), String> {
    split_pieces(file, Entries::new(each))
}

/// Reads `file` from its start in pieces into the splitter `entries` (each
/// value handed on as its bytes come); returns the length and CRC32 of
/// everything read.
fn split_pieces(
    file: &mut dyn crate::storage::ReadableFile,
    mut entries: Entries<'_>,
) -> std::result::Result<(u64, u32), String> {
    let mut pieces = Pieces::new(file, 0, READ_PIECE);
    pieces.feed(&mut entries, None)?;
    let (length, hasher) = pieces.read();
    Ok((length, hasher.finalize()))
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
    for name in SNAPSHOT_FILES {
        storage::remove_if_present(storage, &crate::layout::temporary_path(&dir.join(name)))?;
    }
    Ok(())
}
