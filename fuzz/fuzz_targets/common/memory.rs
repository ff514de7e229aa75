//! An in-memory [`Storage`]: fast enough to build and load snapshots at
//! fuzzing speed, and a way to compute files (a consistent manifest, a
//! compaction base) with the library's own writers before copying them into
//! a real directory.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use movie_queue::testing::{Entry, ReadableFile, Storage, WritableFile};

#[derive(Debug, Default)]
struct Tree {
    files: BTreeMap<PathBuf, Vec<u8>>,
    dirs: BTreeSet<PathBuf>,
}

/// Files and directories held in memory; clones share them.
#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    tree: Arc<Mutex<Tree>>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl MemoryStorage {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts a file (and its parent directories) in place.
    pub fn put(&self, path: &Path, bytes: &[u8]) {
        let mut tree = self.lock();
        for ancestor in path.ancestors().skip(1) {
            tree.dirs.insert(ancestor.to_path_buf());
        }
        tree.files.insert(path.to_path_buf(), bytes.to_vec());
    }

    /// Every file under `root`, as (path relative to `root`, bytes).
    pub fn files_under(&self, root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        self.lock()
            .files
            .iter()
            .filter_map(|(path, bytes)| Some((path.strip_prefix(root).ok()?.to_path_buf(), bytes.clone())))
            .collect()
    }

    /// The bytes of one file.
    pub fn get(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().files.get(path).cloned()
    }
}

struct MemoryFile {
    path: PathBuf,
    storage: MemoryStorage,
    position: u64,
}

impl WritableFile for MemoryFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all_at(self.position, bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut tree = self.storage.lock();
        let file = tree.files.get_mut(&self.path).ok_or_else(|| not_found(&self.path))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(bytes.len());
        if file.len() < end {
            file.resize(end, 0);
        }
        file[start..end].copy_from_slice(bytes);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file read by name each time (a deleted file reads as missing).
struct MemoryReader {
    path: PathBuf,
    storage: MemoryStorage,
}

impl ReadableFile for MemoryReader {
    fn read_from(&mut self, offset: u64) -> io::Result<Vec<u8>> {
        let bytes = self.storage.get(&self.path).ok_or_else(|| not_found(&self.path))?;
        Ok(bytes
            .get(usize::try_from(offset).unwrap_or(usize::MAX)..)
            .unwrap_or_default()
            .to_vec())
    }

    fn file_len(&mut self) -> io::Result<u64> {
        let len = self.storage.lock().files.get(&self.path).map(Vec::len);
        len.map(|len| len as u64).ok_or_else(|| not_found(&self.path))
    }
}

impl Storage for MemoryStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        for ancestor in path.ancestors() {
            tree.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let tree = self.lock();
        if !tree.dirs.contains(path) {
            return Err(not_found(path));
        }
        let children = tree.files.keys().chain(&tree.dirs);
        let mut names: Vec<String> = children
            .filter(|child| child.parent() == Some(path))
            .filter_map(|child| Some(child.file_name()?.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn entry(&self, path: &Path) -> io::Result<Entry> {
        let tree = self.lock();
        Ok(match tree.files.get(path) {
            Some(bytes) => Entry::File(bytes.len() as u64),
            None if tree.dirs.contains(path) => Entry::Directory,
            None => Entry::Missing,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.get(path).ok_or_else(|| not_found(path))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>> {
        self.read(path)?;
        Ok(Box::new(MemoryReader {
            path: path.to_path_buf(),
            storage: self.clone(),
        }))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut tree = self.lock();
        let parent = path.parent().unwrap_or(Path::new(""));
        if !tree.dirs.contains(parent) {
            return Err(not_found(parent));
        }
        if tree.files.contains_key(path) || tree.dirs.contains(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", path.display()),
            ));
        }
        tree.files.insert(path.to_path_buf(), Vec::new());
        Ok(Box::new(MemoryFile {
            path: path.to_path_buf(),
            storage: self.clone(),
            position: 0,
        }))
    }

    fn open_write(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        if !self.lock().files.contains_key(path) {
            return Err(not_found(path));
        }
        Ok(Box::new(MemoryFile {
            path: path.to_path_buf(),
            storage: self.clone(),
            position: offset,
        }))
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        if self.lock().files.contains_key(path) {
            Ok(())
        } else {
            Err(not_found(path))
        }
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        if tree
            .files
            .keys()
            .chain(&tree.dirs)
            .any(|child| child.parent() == Some(path))
        {
            return Err(io::Error::new(io::ErrorKind::DirectoryNotEmpty, "not empty"));
        }
        tree.dirs.remove(path).then_some(()).ok_or_else(|| not_found(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        let bytes = tree.files.remove(from).ok_or_else(|| not_found(from))?;
        tree.files.insert(to.to_path_buf(), bytes);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.lock().files.remove(path).map(drop).ok_or_else(|| not_found(path))
    }

    fn zero_from(&self, path: &Path, offset: u64) -> io::Result<()> {
        let mut tree = self.lock();
        let file = tree.files.get_mut(path).ok_or_else(|| not_found(path))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(file.len());
        file[start..].fill(0);
        Ok(())
    }

    fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
}
