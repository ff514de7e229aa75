//! A fault-injecting [`Storage`] over the real file system, for tests.
//!
//! It writes real files and models what the kernel and the disk would keep:
//!
//! * **the page cache**: bytes written since a file's last `fdatasync`, and
//!   directory changes (creations, renames, removals, new directories)
//!   since the directory's last `fsync`, survive a killed process but not
//!   a power loss. [`FaultyStorage::kill`] ends a "process" (its handles
//!   fail from then on) and keeps the page cache;
//!   [`FaultyStorage::revive`] hands out a handle of the next process,
//!   which sees the same files and the same unsynced state.
//! * **power loss** ([`FaultyStorage::power_loss`]): every unsynced change
//!   is undone, except a prefix of each file's unsynced bytes, counted in
//!   the order they were written (a torn write), whose 512-byte sectors
//!   may survive out of order. A byte that did not reach the disk reads as
//!   what the disk held before: the bytes a write went over (a segment's
//!   zeros, or an older record), or zeros past the file's synced end.
//! * scheduled [`Fault`]s fail a given write or fsync, or cut the power
//!   before or after a given fsync.
//!
//! After a power loss every call fails with EIO, as a dead machine would;
//! reopen with a new `FaultyStorage` (or [`super::RealStorage`]).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Entry, ReadableFile, RealStorage, Storage, WritableFile};

/// The sector size of the modelled disk: unsynced data survives a power
/// loss in whole sectors, in any order.
const SECTOR_BYTES: u64 = 512;

/// A failure to inject. Indexes count from 0 over the storage's lifetime:
/// every `sync_data`, `sync_file`, `zero_from` and `sync_dir` is one fsync,
/// every `write_all` one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The fsync with this index fails with `errno` (e.g. `libc` EIO = 5).
    FailSync {
        /// Which fsync.
        index: u64,
        /// The error number returned.
        errno: i32,
    },
    /// The write with this index fails with `errno` (EIO = 5, ENOSPC = 28),
    /// having written nothing.
    FailWrite {
        /// Which write.
        index: u64,
        /// The error number returned.
        errno: i32,
    },
    /// The power goes out as the fsync with this index starts: it fails,
    /// and each file keeps `torn_bytes` of its unsynced bytes (a torn write).
    PowerLossBeforeSync {
        /// Which fsync.
        index: u64,
        /// How many unsynced bytes of each file survive.
        torn_bytes: u64,
    },
    /// The power goes out as the fsync with this index starts, and the
    /// unsynced sectors reach the disk out of order: each file keeps
    /// `torn_bytes` of its unsynced bytes, of which the sectors
    /// `lost_sectors` marks read as zeros (see [`PowerLoss`]).
    PowerLossBeforeSyncReordered {
        /// Which fsync.
        index: u64,
        /// How many unsynced bytes of each file survive.
        torn_bytes: u64,
        /// Which of their sectors are lost.
        lost_sectors: u64,
    },
    /// The process is killed as the fsync with this index starts: the fsync
    /// fails, every later call of this process fails, and what it wrote
    /// stays in the page cache, unsynced (see [`FaultyStorage::revive`]).
    KillBeforeSync {
        /// Which fsync.
        index: u64,
    },
    /// The power goes out right after the fsync with this index succeeds,
    /// keeping `torn_bytes` of each file's unsynced bytes (0: none).
    PowerLossAfterSync {
        /// Which fsync.
        index: u64,
        /// How many unsynced bytes of each file survive.
        torn_bytes: u64,
    },
}

/// What a power loss keeps of the unsynced bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PowerLoss {
    /// How many unsynced bytes of each file may survive (its length after).
    pub torn_bytes: u64,
    /// Which of those bytes' sectors reached the disk: sector `k` of the
    /// unsynced part is lost (reads as zeros) when bit `k % 64` is set.
    /// 0: all of them (an in-order torn write).
    pub lost_sectors: u64,
}

#[derive(Debug, Default, Clone)]
struct FileState {
    len: u64,
    durable_len: u64,
    /// The writes since the last sync, in order.
    unsynced: Vec<Write>,
}

/// An unsynced write: where, how long, and the bytes it went over (those
/// below the file's length then; past it there was nothing).
#[derive(Debug, Clone)]
struct Write {
    offset: u64,
    len: u64,
    old: Vec<u8>,
}

impl FileState {
    fn synced(&mut self) {
        self.durable_len = self.len;
        self.unsynced.clear();
    }
}

#[derive(Debug)]
enum DirectoryChange {
    Created(PathBuf),
    CreatedDirectory(PathBuf),
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<Vec<u8>>,
        /// Has the source's directory been synced since?
        source_synced: bool,
        /// Has the target's directory been synced since?
        target_synced: bool,
    },
    Removed {
        path: PathBuf,
        content: Vec<u8>,
    },
    RemovedDirectory(PathBuf),
}

impl DirectoryChange {
    /// Records an fsync of `directory`; says whether the change is still
    /// not durable.
    fn sync(&mut self, directory: &Path) -> bool {
        match self {
            DirectoryChange::Created(path)
            | DirectoryChange::CreatedDirectory(path)
            | DirectoryChange::RemovedDirectory(path)
            | DirectoryChange::Removed { path, .. } => super::parent_of(path) != directory,
            DirectoryChange::Renamed {
                from,
                to,
                source_synced,
                target_synced,
                ..
            } => {
                *source_synced |= super::parent_of(from) == directory;
                *target_synced |= super::parent_of(to) == directory;
                !(*source_synced && *target_synced)
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    faults: Vec<Fault>,
    syncs: u64,
    writes: u64,
    crashed: bool,
    /// The process whose handles work; older ones were killed.
    generation: u64,
    files: HashMap<PathBuf, FileState>,
    unsynced_changes: Vec<DirectoryChange>,
    read_corruptions: Vec<(PathBuf, u64, u8)>,
}

/// The fault-injecting storage. Clones share their state (and process).
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    state: Arc<Mutex<State>>,
    generation: u64,
}

fn dead() -> io::Error {
    io::Error::other("injected: the machine lost power")
}

fn killed() -> io::Error {
    io::Error::other("injected: the process was killed")
}

impl FaultyStorage {
    /// A storage with no faults scheduled.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules a fault.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// XORs the byte at `offset` of `path` with `mask` whenever it is read.
    pub fn corrupt_reads(&self, path: &Path, offset: u64, mask: u8) {
        self.lock().read_corruptions.push((path.to_path_buf(), offset, mask));
    }

    /// How many fsyncs (file and directory) have succeeded or failed so far.
    #[must_use]
    pub fn sync_count(&self) -> u64 {
        self.lock().syncs
    }

    /// How many writes have been attempted so far.
    #[must_use]
    pub fn write_count(&self) -> u64 {
        self.lock().writes
    }

    /// Has the power gone out?
    #[must_use]
    pub fn has_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Kills the process using this storage: its handles (and every clone
    /// of them) fail from now on, but what it wrote stays in the page
    /// cache, unsynced, for the next process to see.
    pub fn kill(&self) {
        let mut state = self.lock();
        state.generation = state.generation.max(self.generation) + 1;
    }

    /// A handle for the next process after [`FaultyStorage::kill`]: the same
    /// files and the same unsynced state (a later power loss still undoes
    /// what nobody synced).
    #[must_use]
    pub fn revive(&self) -> FaultyStorage {
        let generation = self.lock().generation;
        FaultyStorage {
            state: Arc::clone(&self.state),
            generation,
        }
    }

    /// Cuts the power now: every file loses what was written since its last
    /// fsync except the first `torn_bytes`, and every directory change not
    /// made durable by a directory fsync is undone. Every later call fails.
    ///
    /// # Errors
    /// The real file system's error while rolling back.
    pub fn power_loss(&self, torn_bytes: u64) -> io::Result<()> {
        self.power_loss_with(PowerLoss {
            torn_bytes,
            lost_sectors: 0,
        })
    }

    /// Cuts the power now, keeping what `loss` says of the unsynced bytes.
    ///
    /// # Errors
    /// The real file system's error while rolling back.
    pub fn power_loss_with(&self, loss: PowerLoss) -> io::Result<()> {
        let mut state = self.lock();
        power_loss_locked(&mut state, loss)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state, if this handle's process is alive and the power is on.
    fn live(&self) -> io::Result<MutexGuard<'_, State>> {
        let state = self.lock();
        if state.crashed {
            Err(dead())
        } else if state.generation != self.generation {
            Err(killed())
        } else {
            Ok(state)
        }
    }

    /// Counts one fsync; fails it or cuts the power around it as scheduled.
    fn sync_with(&self, sync: impl FnOnce(&mut State) -> io::Result<()>) -> io::Result<()> {
        let mut state = self.live()?;
        let index = state.syncs;
        state.syncs += 1;
        let mut power_loss = None;
        for fault in &state.faults {
            match *fault {
                Fault::FailSync { index: at, errno } if at == index => {
                    return Err(io::Error::from_raw_os_error(errno));
                }
                Fault::PowerLossBeforeSync { index: at, torn_bytes } if at == index => {
                    power_loss_locked(
                        &mut state,
                        PowerLoss {
                            torn_bytes,
                            lost_sectors: 0,
                        },
                    )?;
                    return Err(dead());
                }
                Fault::PowerLossBeforeSyncReordered {
                    index: at,
                    torn_bytes,
                    lost_sectors,
                } if at == index => {
                    power_loss_locked(
                        &mut state,
                        PowerLoss {
                            torn_bytes,
                            lost_sectors,
                        },
                    )?;
                    return Err(dead());
                }
                Fault::KillBeforeSync { index: at } if at == index => {
                    state.generation += 1;
                    return Err(killed());
                }
                Fault::PowerLossAfterSync { index: at, torn_bytes } if at == index => {
                    power_loss = Some(torn_bytes);
                }
                _ => {}
            }
        }
        sync(&mut state)?;
        if let Some(torn_bytes) = power_loss {
            power_loss_locked(
                &mut state,
                PowerLoss {
                    torn_bytes,
                    lost_sectors: 0,
                },
            )?;
        }
        Ok(())
    }
}

fn power_loss_locked(state: &mut State, loss: PowerLoss) -> io::Result<()> {
    for (path, file) in &mut state.files {
        // The log of unsynced writes is kept: a later `power_loss` (a test
        // that let everything survive at first) may tear them further.
        if !file.unsynced.is_empty() && path.exists() {
            file.len = undo_unsynced(path, file, loss)?;
        }
    }
    while let Some(change) = state.unsynced_changes.pop() {
        match change {
            DirectoryChange::Created(path) => remove_if_present(&path)?,
            DirectoryChange::CreatedDirectory(path) => {
                if path.exists() {
                    fs::remove_dir_all(&path)?;
                }
            }
            DirectoryChange::Renamed { from, to, replaced, .. } => {
                fs::rename(&to, &from)?;
                if let Some(content) = replaced {
                    fs::write(&to, content)?;
                }
            }
            DirectoryChange::Removed { path, content } => fs::write(&path, content)?,
            DirectoryChange::RemovedDirectory(path) => fs::create_dir_all(&path)?,
        }
    }
    state.crashed = true;
    Ok(())
}

/// Puts `path` back as the disk would have it after a power loss: of the
/// unsynced writes, in the order they were made, the first
/// `loss.torn_bytes` bytes survive (less the sectors `loss.lost_sectors`
/// marks); every other byte reads as what it went over, or is gone past
/// the synced end. Returns the file's length after.
fn undo_unsynced(path: &Path, file: &FileState, loss: PowerLoss) -> io::Result<u64> {
    let mut image = fs::read(path)?;
    let mut budget = loss.torn_bytes;
    let mut sector = 0_u64;
    let mut len = file.durable_len;
    // Which bytes of each write survive, in write order.
    let mut kept = Vec::with_capacity(file.unsynced.len());
    for write in &file.unsynced {
        let surviving = write.len.min(budget);
        budget -= surviving;
        let mut dropped = Vec::new();
        let mut start = write.offset;
        while start < write.offset + surviving {
            let end = ((start / SECTOR_BYTES + 1) * SECTOR_BYTES).min(write.offset + surviving);
            if loss.lost_sectors & (1 << (sector % 64)) != 0 {
                dropped.push((start, end));
            }
            start = end;
            sector += 1;
        }
        if surviving > 0 {
            len = len.max(write.offset + surviving);
        }
        kept.push((surviving, dropped));
    }
    // Undone from the last write back, so each puts back what it went over.
    for (write, (surviving, dropped)) in file.unsynced.iter().zip(&kept).rev() {
        let mut undo = dropped.clone();
        undo.push((write.offset + surviving, write.offset + write.len));
        for (from, to) in undo {
            for at in from..to {
                let index = usize::try_from(at).unwrap_or(usize::MAX);
                let before = usize::try_from(at - write.offset)
                    .ok()
                    .and_then(|at| write.old.get(at))
                    .copied()
                    .unwrap_or(0);
                if let Some(byte) = image.get_mut(index) {
                    *byte = before;
                }
            }
        }
    }
    image.resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
    fs::write(path, &image)?;
    Ok(len)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

struct FaultyFile {
    path: PathBuf,
    inner: Box<dyn WritableFile>,
    storage: FaultyStorage,
    /// Where `write_all` writes next.
    position: u64,
}

impl WritableFile for FaultyFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all_at(self.position, bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.storage.live()?;
        let index = state.writes;
        state.writes += 1;
        for fault in &state.faults {
            if let Fault::FailWrite { index: at, errno } = *fault
                && at == index
            {
                return Err(io::Error::from_raw_os_error(errno));
            }
        }
        // What the write goes over, for a power loss to put back.
        let len = bytes.len() as u64;
        let mut old = vec![0_u8; usize::try_from(len).unwrap_or(0)];
        let read = RealStorage.open_read(&self.path)?.read_at(offset, &mut old)?;
        old.truncate(read);
        self.inner.write_all_at(offset, bytes)?;
        let file = state.files.entry(self.path.clone()).or_default();
        file.len = file.len.max(offset + len);
        file.unsynced.push(Write { offset, len, old });
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let storage = self.storage.clone();
        let path = self.path.clone();
        storage.sync_with(|state| {
            self.inner.sync_data()?;
            state.files.entry(path).or_default().synced();
            Ok(())
        })
    }
}

/// The directories `create_dir_all` would create for `path`, outermost first.
fn missing_directories(path: &Path) -> Vec<PathBuf> {
    let mut missing = Vec::new();
    let mut current = Some(path);
    while let Some(directory) = current {
        if directory.as_os_str().is_empty() || directory.exists() {
            break;
        }
        missing.push(directory.to_path_buf());
        current = directory.parent();
    }
    missing.reverse();
    missing
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.live()?;
        let missing = missing_directories(path);
        RealStorage.create_dir_all(path)?;
        for directory in missing {
            state
                .unsynced_changes
                .push(DirectoryChange::CreatedDirectory(directory));
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        drop(self.live()?);
        RealStorage.list_dir(path)
    }

    fn entry(&self, path: &Path) -> io::Result<Entry> {
        drop(self.live()?);
        RealStorage.entry(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        drop(self.live()?);
        let mut bytes = RealStorage.read(path)?;
        let state = self.lock();
        for (_, offset, mask) in state.read_corruptions.iter().filter(|(p, ..)| p == path) {
            if let Some(byte) = usize::try_from(*offset).ok().and_then(|offset| bytes.get_mut(offset)) {
                *byte ^= mask;
            }
        }
        Ok(bytes)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>> {
        drop(self.live()?);
        RealStorage.open_read(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut state = self.live()?;
        let inner = RealStorage.create_new(path)?;
        state
            .unsynced_changes
            .push(DirectoryChange::Created(path.to_path_buf()));
        state.files.insert(path.to_path_buf(), FileState::default());
        Ok(Box::new(FaultyFile {
            path: path.to_path_buf(),
            inner,
            storage: self.clone(),
            position: 0,
        }))
    }

    fn open_write(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        let mut state = self.live()?;
        let inner = RealStorage.open_write(path, offset)?;
        let len = fs::metadata(path)?.len();
        state.files.entry(path.to_path_buf()).or_insert(FileState {
            len,
            durable_len: len,
            unsynced: Vec::new(),
        });
        Ok(Box::new(FaultyFile {
            path: path.to_path_buf(),
            inner,
            storage: self.clone(),
            position: offset,
        }))
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.sync_with(|state| {
            RealStorage.sync_file(path)?;
            if let Some(file) = state.files.get_mut(path) {
                file.synced();
            }
            Ok(())
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.live()?;
        let replaced = fs::read(to).ok();
        fs::rename(from, to)?;
        if let Some(file) = state.files.remove(from) {
            state.files.insert(to.to_path_buf(), file);
        }
        state.unsynced_changes.push(DirectoryChange::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            replaced,
            source_synced: false,
            target_synced: false,
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.live()?;
        let content = fs::read(path).unwrap_or_default();
        fs::remove_file(path)?;
        state.files.remove(path);
        state.unsynced_changes.push(DirectoryChange::Removed {
            path: path.to_path_buf(),
            content,
        });
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.live()?;
        fs::remove_dir(path)?;
        state
            .unsynced_changes
            .push(DirectoryChange::RemovedDirectory(path.to_path_buf()));
        Ok(())
    }

    fn zero_from(&self, path: &Path, offset: u64) -> io::Result<()> {
        self.sync_with(|state| {
            RealStorage.zero_from(path, offset)?;
            let len = fs::metadata(path)?.len();
            state.files.insert(
                path.to_path_buf(),
                FileState {
                    len,
                    durable_len: len,
                    unsynced: Vec::new(),
                },
            );
            Ok(())
        })
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.sync_with(|state| {
            RealStorage.sync_dir(path)?;
            // A change is durable once its directory is synced; a rename
            // between directories once both are (until then a power loss
            // undoes it, the conservative reading).
            state.unsynced_changes.retain_mut(|change| change.sync(path));
            Ok(())
        })
    }
}
