//! Setting damaged journal bytes aside: find the first damage, copy
//! everything from there on to `*.broken` files, then cut. Never deletes.

use std::path::{Path, PathBuf};

use super::format::SEGMENT_HEADER_BYTES;
use super::reader::{OnRecord, TailPolicy, replay};
use super::segment::{self, BROKEN_EXTENSION};
use crate::error::{Error, Result};
use crate::seq::Seq;
use crate::storage::{self, Storage};

/// What [`crate::repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The damage found (`None`: the journal was sound and nothing changed).
    pub damage: Option<String>,
    /// Files written with the bytes set aside (`*.broken`).
    pub set_aside: Vec<PathBuf>,
    /// The last sequence number kept.
    pub last_seq: Seq,
}

/// Repairs the journal: finds the first damage (as replay with `on_record`
/// sees it), copies everything from there on aside to `*.broken` files,
/// truncates the damaged segment to its last valid record, and fsyncs.
/// Every valid record before the damage is kept; nothing is deleted.
///
/// # Errors
/// An I/O error naming its path; a damage this cannot locate.
pub fn repair(storage: &dyn Storage, journal_dir: &Path, on_record: &mut OnRecord<'_>) -> Result<RepairReport> {
    let damage = match replay(storage, journal_dir, TailPolicy::Reject, Seq(0), on_record) {
        Ok(report) => {
            return Ok(RepairReport {
                damage: None,
                set_aside: Vec::new(),
                last_seq: report.last_seq,
            });
        }
        Err(error) => error,
    };
    let Some((path, offset)) = damage.place().map(|(path, offset)| (path.to_path_buf(), offset)) else {
        return Err(damage);
    };
    let files = segment::list_segments(storage, journal_dir)?;
    let mut set_aside = Vec::new();
    let mut after_damage = false;
    for file in &files {
        if file.path == path {
            after_damage = true;
            let keep = if offset < SEGMENT_HEADER_BYTES as u64 {
                0
            } else {
                offset
            };
            set_aside.push(cut_segment(storage, &file.path, keep)?);
        } else if after_damage {
            set_aside.push(move_aside(storage, &file.path)?);
        }
    }
    storage::sync_parent(storage, &path)?;
    let last_seq = replay(storage, journal_dir, TailPolicy::Reject, Seq(u64::MAX), &mut |_| Ok(()))?.last_seq;
    Ok(RepairReport {
        damage: Some(damage.to_string()),
        set_aside,
        last_seq,
    })
}

fn broken_path(path: &Path, offset: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{offset}.{BROKEN_EXTENSION}"));
    path.with_file_name(name)
}

/// Copies `path[keep..]` aside, then truncates `path` to `keep` (or moves
/// the whole file aside when not even its header is sound).
fn cut_segment(storage: &dyn Storage, path: &Path, keep: u64) -> Result<PathBuf> {
    if keep == 0 {
        return move_aside(storage, path);
    }
    let bytes = storage.read(path).map_err(|error| Error::io("read", path, error))?;
    let start = usize::try_from(keep).unwrap_or(usize::MAX).min(bytes.len());
    let aside = broken_path(path, keep);
    storage::write_synced(storage, &aside, bytes.get(start..).unwrap_or_default())?;
    storage::sync_parent(storage, &aside)?;
    drop(bytes);
    storage
        .truncate(path, keep)
        .map_err(|error| Error::io("truncate", path, error))?;
    tracing::warn!(path = %path.display(), offset = keep, aside = %aside.display(), "repair cut the segment");
    Ok(aside)
}

fn move_aside(storage: &dyn Storage, path: &Path) -> Result<PathBuf> {
    let aside = broken_path(path, 0);
    storage
        .rename(path, &aside)
        .map_err(|error| Error::io("rename aside", path, error))?;
    tracing::warn!(path = %path.display(), aside = %aside.display(), "repair set the segment aside");
    Ok(aside)
}
