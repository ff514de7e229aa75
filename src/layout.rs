//! The store's layout: every file and folder of a store directory, and the
//! names of what the store sets aside, spelt in this one place.
//!
//! ```text
//! <dir>/
//!   queue_pending.json  queue_failed.json      the documented files (the
//!   queue_completed.json  queue_removed.json   snapshot's state)
//!   queue_snapshot.json                        the manifest: which snapshot, which record
//!   queue_snapshot.idx                         the snapshot's index: where each entry is
//!   LOCK                                       the writer's lock
//!   control.sock                               the holder's control socket (see `control/`)
//!   control.<pid>.bind/                        where a holder binds it before the rename into place
//!   journal/
//!     <first seq, 20 digits>.seg               the segments, in order
//!     base.json                                the compaction base
//!     tail  times  holes                       the tail marker, the times index, recorded holes
//!   journal.import/                            an import being staged
//!   <name>.tmp                                 a file being written (renamed into place)
//!   <name>.<tag>[.<n>].broken                  bytes set aside (never read, never deleted)
//! ```
//!
//! [`Layout`] gives the paths of one store; the constants are the names.

use std::path::{Path, PathBuf};

use crate::seq::Seq;

/// The journal folder of a store.
pub const JOURNAL_DIR: &str = "journal";
/// Where `import DIR` stages a journal before it replaces the store's.
pub const STAGING_DIR: &str = "journal.import";
/// Movies waiting (and, first, those in flight), in the seed's format.
pub const PENDING_FILE: &str = "queue_pending.json";
/// Movies that failed, with their retry information.
pub const FAILED_FILE: &str = "queue_failed.json";
/// Movies done.
pub const COMPLETED_FILE: &str = "queue_completed.json";
/// Movies that left the watchlist, waiting for their files' deletion.
pub const REMOVED_FILE: &str = "queue_removed.json";
/// The manifest naming the sequence number the files cover and their checksums.
pub const MANIFEST_FILE: &str = "queue_snapshot.json";
/// The snapshot's index: where each entry of the documented files is.
pub const INDEX_FILE: &str = "queue_snapshot.idx";
/// The four documented files, in the order the manifest lists them.
pub const QUEUE_FILES: [&str; 4] = [PENDING_FILE, FAILED_FILE, COMPLETED_FILE, REMOVED_FILE];
/// The folder of the shippers' registered positions (see `shipping.rs`).
pub const SHIPPERS_DIR: &str = "shippers";
/// The file whose `flock` marks the writer.
pub const LOCK_FILE: &str = "LOCK";

/// The Unix socket the process holding the store answers on (`control/`).
pub const CONTROL_SOCKET: &str = "control.sock";
/// The extension of the private folder a holder binds its control socket
/// in (`control.<pid>.bind`), before renaming it into place.
pub const CONTROL_BIND_EXTENSION: &str = "bind";

/// The extension of a segment file.
pub const SEGMENT_EXTENSION: &str = "seg";
/// The compaction base kept beside the segments (see `snapshot/base.rs`).
pub const BASE_FILE: &str = "base.json";
/// The tail marker: where the journal ends (see `journal/tail.rs`).
pub const TAIL_FILE: &str = "tail";
/// The index of record times (see `journal/times.rs`).
pub const TIMES_FILE: &str = "times";
/// The holes repair recorded in the history (see `journal/holes.rs`).
pub const HOLES_FILE: &str = "holes";
/// The id filters of the sealed segments (see `journal/ids.rs`).
pub const IDS_FILE: &str = "ids";
/// The store's identity (see `journal/identity.rs`).
pub const IDENTITY_FILE: &str = "identity";

/// The extension of a file being written, before its rename into place.
pub const TEMPORARY_EXTENSION: &str = "tmp";
/// The extension of everything set aside (never read, never deleted).
pub const ASIDE_EXTENSION: &str = "broken";
/// The tag of the copies repair makes before it changes a file.
pub const BEFORE_REPAIR_TAG: &str = "before-repair";
/// The tag of a directory set aside where a file goes.
pub const IN_THE_WAY_TAG: &str = "in-the-way";
/// The tag of a link or special file set aside where the lock file goes.
pub const NOT_A_FILE_TAG: &str = "not-a-file";
/// The tag of a checkpoint or documented file set aside because it does
/// not hold up.
pub const DAMAGED_TAG: &str = "damaged";
/// The tag of a segment's damaged header, copied aside before repair
/// writes it anew.
pub const HEADER_TAG: &str = "header";
/// The tag of something that has no business where it was found (a link,
/// a special file, a segment of another store).
pub const FOREIGN_TAG: &str = "foreign";
/// The tag of a file found where the store keeps a directory.
pub const NOT_A_DIRECTORY_TAG: &str = "not-a-directory";
/// The tag of an empty last segment set aside.
pub const EMPTY_TAG: &str = "empty";
/// The tag of the journal a legacy import replaced.
pub const BEFORE_IMPORT_TAG: &str = "before-import";
/// The tag of a whole segment set aside: its bytes from offset 0 (a cut
/// is tagged with the offset it starts at).
pub const WHOLE_TAG: &str = "0";
/// The store's folder under the home directory when none is given.
pub const DEFAULT_DIR: &str = ".movie_sync";

/// The paths of one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The layout of the store in `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> Layout {
        Layout { dir: dir.to_path_buf() }
    }

    /// The store directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal folder.
    #[must_use]
    pub fn journal(&self) -> PathBuf {
        self.dir.join(JOURNAL_DIR)
    }

    /// The snapshot manifest.
    #[must_use]
    pub fn manifest(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }

    /// The snapshot's index.
    #[must_use]
    pub fn index(&self) -> PathBuf {
        self.dir.join(INDEX_FILE)
    }

    /// The four documented queue files: pending, failed, completed, removed.
    #[must_use]
    pub fn queue_files(&self) -> [PathBuf; 4] {
        QUEUE_FILES.map(|name| self.dir.join(name))
    }

    /// The writer's lock file.
    #[must_use]
    pub fn lock(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// The compaction base.
    #[must_use]
    pub fn base(&self) -> PathBuf {
        self.journal().join(BASE_FILE)
    }

    /// The holder's control socket.
    #[must_use]
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join(CONTROL_SOCKET)
    }
}

/// The private folder process `pid` binds its control socket in.
#[must_use]
pub fn control_bind_dir(pid: u32) -> String {
    format!("control.{pid}.{CONTROL_BIND_EXTENSION}")
}

/// Is `name` a folder a holder bound its control socket in
/// (`control.<pid>.bind`: a leftover once no process holds the store)?
#[must_use]
pub fn is_control_bind_dir(name: &str) -> bool {
    name.strip_prefix("control.")
        .and_then(|rest| rest.strip_suffix(CONTROL_BIND_EXTENSION))
        .and_then(|pid| pid.strip_suffix('.'))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|byte| byte.is_ascii_digit()))
}

/// The file name of the segment starting at `first_seq`.
#[must_use]
pub fn segment_name(first_seq: Seq) -> String {
    format!("{:020}.{SEGMENT_EXTENSION}", first_seq.0)
}

/// The first sequence number a segment file name stands for, if it is one.
#[must_use]
pub fn parse_segment_name(name: &str) -> Option<Seq> {
    let digits = name.strip_suffix(SEGMENT_EXTENSION)?.strip_suffix('.')?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Seq)
}

/// Is `name` a file of the journal folder that is not a segment and not a
/// leftover: the base, a marker, the times index or the holes?
#[must_use]
pub fn is_journal_companion(name: &str) -> bool {
    [BASE_FILE, TAIL_FILE, TIMES_FILE, HOLES_FILE, IDS_FILE, IDENTITY_FILE].contains(&name)
}

/// Is `name` an interrupted creation (`*.tmp`) or bytes set aside (`*.broken`)?
#[must_use]
pub fn is_leftover(name: &str) -> bool {
    is_temporary(name) || is_aside(name)
}

/// Is `name` a file being written (`*.tmp`)?
#[must_use]
pub fn is_temporary(name: &str) -> bool {
    temporary_of(name).is_some()
}

/// The name a file being written will have: `x` for `x.tmp`.
#[must_use]
pub fn temporary_of(name: &str) -> Option<&str> {
    name.strip_suffix(TEMPORARY_EXTENSION)?.strip_suffix('.')
}

/// Is `name` set aside (`*.broken`)?
#[must_use]
pub fn is_aside(name: &str) -> bool {
    name.strip_suffix(ASIDE_EXTENSION)
        .is_some_and(|stem| stem.ends_with('.'))
}

/// `<name>.tmp` beside `path`.
#[must_use]
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(TEMPORARY_EXTENSION);
    path.with_file_name(name)
}

/// The `attempt`-th candidate name to set `path` aside under `tag`:
/// `<name>.<tag>.broken`, then `<name>.<tag>.<attempt>.broken`.
#[must_use]
pub fn aside_path(path: &Path, tag: &str, attempt: u32) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    if attempt == 0 {
        path.with_file_name(format!("{name}.{tag}.{ASIDE_EXTENSION}"))
    } else {
        path.with_file_name(format!("{name}.{tag}.{attempt}.{ASIDE_EXTENSION}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_nothing_else_parses() {
        assert_eq!(segment_name(Seq(7)), "00000000000000000007.seg");
        assert_eq!(parse_segment_name(&segment_name(Seq(7))), Some(Seq(7)));
        for name in [
            "7.seg",
            "0000000000000000000x.seg",
            "00000000000000000007seg",
            "base.json",
        ] {
            assert_eq!(parse_segment_name(name), None, "{name}");
        }
    }

    #[test]
    fn leftovers_are_named_by_their_extension_only() {
        assert!(is_leftover("00000000000000000001.seg.tmp"));
        assert!(is_leftover("00000000000000000001.seg.494.broken"));
        assert!(!is_leftover("tmp"));
        assert!(!is_leftover("broken"));
        assert!(!is_leftover("00000000000000000001.seg"));
        assert_eq!(temporary_of("base.json.tmp"), Some("base.json"));
        assert_eq!(temporary_of("base.jsontmp"), None);
        assert_eq!(temporary_path(Path::new("d/x.json")), Path::new("d/x.json.tmp"));
        assert_eq!(aside_path(Path::new("d/x"), "t", 0), Path::new("d/x.t.broken"));
        assert_eq!(aside_path(Path::new("d/x"), "t", 2), Path::new("d/x.t.2.broken"));
    }
}
