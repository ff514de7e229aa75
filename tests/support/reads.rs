//! A storage over the real file system that remembers every file read,
//! for the tests that check a query reads only what it needs.
#![allow(dead_code, clippy::unwrap_used)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use movie_queue::testing::{Entry, ReadableFile, RealStorage, Storage, WritableFile};

/// The real file system, remembering every file read.
#[derive(Debug, Default)]
pub struct Reads(Mutex<Vec<PathBuf>>);

impl Reads {
    /// Was `path` read?
    pub fn of(&self, path: &Path) -> bool {
        self.0.lock().unwrap().iter().any(|read| read == path)
    }

    /// Every file read, in order.
    pub fn all(&self) -> Vec<PathBuf> {
        self.0.lock().unwrap().clone()
    }

    fn note(&self, path: &Path) {
        self.0.lock().unwrap().push(path.to_path_buf());
    }
}

impl Storage for Reads {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        RealStorage.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        RealStorage.list_dir(path)
    }
    fn entry(&self, path: &Path) -> io::Result<Entry> {
        RealStorage.entry(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.note(path);
        RealStorage.read(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>> {
        self.note(path);
        RealStorage.open_read(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        RealStorage.create_new(path)
    }
    fn open_write(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        RealStorage.open_write(path, offset)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        RealStorage.sync_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealStorage.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealStorage.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        RealStorage.remove_dir(path)
    }
    fn zero_from(&self, path: &Path, offset: u64) -> io::Result<()> {
        RealStorage.zero_from(path, offset)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        RealStorage.sync_dir(path)
    }
}
