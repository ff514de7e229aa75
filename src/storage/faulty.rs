//! A fault-injecting [`Storage`] over the real file system, for tests.
//!
//! It writes real files, and remembers what a power loss would take away:
//! bytes written since a file's last `fdatasync`, and directory changes
//! (creations, renames, removals) since the directory's last `fsync`.
//! [`FaultyStorage::power_loss`] undoes exactly those, optionally keeping
//! a prefix of the unsynced bytes (a torn write). Scheduled [`Fault`]s fail
//! a given write or fsync, or cut the power right after a given fsync.
//! After a power loss every call fails with EIO, as a dead machine would;
//! reopen with a new `FaultyStorage` (or [`RealStorage`]).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{FileBytes, RealStorage, Storage, WritableFile};

/// A failure to inject. Indexes count from 0 over the storage's lifetime:
/// every `sync_data` and `sync_dir` is one fsync, every `write_all` one write.
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
    /// The power goes out right after the fsync with this index succeeds,
    /// keeping `torn_bytes` of each file's unsynced bytes (0: none).
    PowerLossAfterSync {
        /// Which fsync.
        index: u64,
        /// How many unsynced bytes of each file survive.
        torn_bytes: u64,
    },
}

#[derive(Debug, Default)]
struct FileState {
    len: u64,
    durable_len: u64,
}

#[derive(Debug)]
enum DirectoryChange {
    Created(PathBuf),
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<Vec<u8>>,
    },
    Removed {
        path: PathBuf,
        content: Vec<u8>,
    },
}

impl DirectoryChange {
    fn directory(&self) -> Option<&Path> {
        match self {
            DirectoryChange::Created(path)
            | DirectoryChange::Renamed { to: path, .. }
            | DirectoryChange::Removed { path, .. } => path.parent(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    faults: Vec<Fault>,
    syncs: u64,
    writes: u64,
    crashed: bool,
    files: HashMap<PathBuf, FileState>,
    unsynced_changes: Vec<DirectoryChange>,
    read_corruptions: Vec<(PathBuf, u64, u8)>,
}

/// The fault-injecting storage. Clones share their state.
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    state: Arc<Mutex<State>>,
}

fn dead() -> io::Error {
    io::Error::other("injected: the machine lost power")
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

    /// Cuts the power now: every file loses what was written since its last
    /// fsync except the first `torn_bytes`, and every directory change not
    /// made durable by a directory fsync is undone. Every later call fails.
    ///
    /// # Errors
    /// The real file system's error while rolling back.
    pub fn power_loss(&self, torn_bytes: u64) -> io::Result<()> {
        let mut state = self.lock();
        power_loss_locked(&mut state, torn_bytes)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one fsync; fails it or cuts the power after it as scheduled.
    fn sync_with(&self, sync: impl FnOnce(&mut State) -> io::Result<()>) -> io::Result<()> {
        let mut state = self.lock();
        if state.crashed {
            return Err(dead());
        }
        let index = state.syncs;
        state.syncs += 1;
        let mut power_loss = None;
        for fault in &state.faults {
            match *fault {
                Fault::FailSync { index: at, errno } if at == index => {
                    return Err(io::Error::from_raw_os_error(errno));
                }
                Fault::PowerLossBeforeSync { index: at, torn_bytes } if at == index => {
                    power_loss_locked(&mut state, torn_bytes)?;
                    return Err(dead());
                }
                Fault::PowerLossAfterSync { index: at, torn_bytes } if at == index => {
                    power_loss = Some(torn_bytes);
                }
                _ => {}
            }
        }
        sync(&mut state)?;
        if let Some(torn_bytes) = power_loss {
            power_loss_locked(&mut state, torn_bytes)?;
        }
        Ok(())
    }
}

fn power_loss_locked(state: &mut State, torn_bytes: u64) -> io::Result<()> {
    for (path, file) in &mut state.files {
        if file.len > file.durable_len && path.exists() {
            let keep = file.durable_len + torn_bytes.min(file.len - file.durable_len);
            fs::OpenOptions::new().write(true).open(path)?.set_len(keep)?;
            file.len = keep;
        }
    }
    while let Some(change) = state.unsynced_changes.pop() {
        match change {
            DirectoryChange::Created(path) => remove_if_present(&path)?,
            DirectoryChange::Renamed { from, to, replaced } => {
                fs::rename(&to, &from)?;
                if let Some(content) = replaced {
                    fs::write(&to, content)?;
                }
            }
            DirectoryChange::Removed { path, content } => fs::write(&path, content)?,
        }
    }
    state.crashed = true;
    Ok(())
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
}

impl WritableFile for FaultyFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.storage.lock();
        if state.crashed {
            return Err(dead());
        }
        let index = state.writes;
        state.writes += 1;
        for fault in &state.faults {
            if let Fault::FailWrite { index: at, errno } = *fault
                && at == index
            {
                return Err(io::Error::from_raw_os_error(errno));
            }
        }
        self.inner.write_all(bytes)?;
        state.files.entry(self.path.clone()).or_default().len += bytes.len() as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let storage = self.storage.clone();
        let path = self.path.clone();
        storage.sync_with(|state| {
            self.inner.sync_data()?;
            let file = state.files.entry(path).or_default();
            file.durable_len = file.len;
            Ok(())
        })
    }
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.live()?;
        RealStorage.create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.live()?;
        RealStorage.list_dir(path)
    }

    fn exists(&self, path: &Path) -> bool {
        RealStorage.exists(path)
    }

    fn read(&self, path: &Path) -> io::Result<FileBytes> {
        self.live()?;
        let bytes = RealStorage.read(path)?;
        let state = self.lock();
        let flips: Vec<_> = state.read_corruptions.iter().filter(|(p, ..)| p == path).collect();
        if flips.is_empty() {
            return Ok(bytes);
        }
        let mut owned = bytes.into_owned();
        for (_, offset, mask) in flips {
            if let Some(byte) = usize::try_from(*offset).ok().and_then(|offset| owned.get_mut(offset)) {
                *byte ^= mask;
            }
        }
        Ok(FileBytes::Owned(owned))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut state = self.lock();
        if state.crashed {
            return Err(dead());
        }
        let existed = path.exists();
        let inner = RealStorage.create(path)?;
        if !existed {
            state
                .unsynced_changes
                .push(DirectoryChange::Created(path.to_path_buf()));
        }
        state.files.insert(path.to_path_buf(), FileState::default());
        Ok(Box::new(FaultyFile {
            path: path.to_path_buf(),
            inner,
            storage: self.clone(),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut state = self.lock();
        if state.crashed {
            return Err(dead());
        }
        let inner = RealStorage.open_append(path)?;
        let len = fs::metadata(path)?.len();
        state
            .files
            .entry(path.to_path_buf())
            .or_insert(FileState { len, durable_len: len });
        Ok(Box::new(FaultyFile {
            path: path.to_path_buf(),
            inner,
            storage: self.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if state.crashed {
            return Err(dead());
        }
        let replaced = fs::read(to).ok();
        fs::rename(from, to)?;
        if let Some(file) = state.files.remove(from) {
            state.files.insert(to.to_path_buf(), file);
        }
        state.unsynced_changes.push(DirectoryChange::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            replaced,
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if state.crashed {
            return Err(dead());
        }
        let content = fs::read(path)?;
        fs::remove_file(path)?;
        state.files.remove(path);
        state.unsynced_changes.push(DirectoryChange::Removed {
            path: path.to_path_buf(),
            content,
        });
        Ok(())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.sync_with(|state| {
            RealStorage.truncate(path, len)?;
            state
                .files
                .insert(path.to_path_buf(), FileState { len, durable_len: len });
            Ok(())
        })
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.sync_with(|state| {
            RealStorage.sync_dir(path)?;
            state.unsynced_changes.retain(|change| change.directory() != Some(path));
            Ok(())
        })
    }
}

impl FaultyStorage {
    fn live(&self) -> io::Result<()> {
        if self.lock().crashed { Err(dead()) } else { Ok(()) }
    }
}
