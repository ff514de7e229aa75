//! A storage that reports every byte it reads: the progress of long work
//! (`verify`, `replay`, an open or `compact` of a large store) without
//! threading a counter through every layer.

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{Entry, ReadableFile, Storage, WritableFile};

/// Called with the number of bytes of each read, as it completes.
pub type OnRead = Arc<dyn Fn(u64) + Send + Sync>;

/// `inner`, reporting the bytes of every read to `on_read`.
#[derive(Clone)]
pub struct CountingStorage {
    inner: Arc<dyn Storage>,
    on_read: OnRead,
}

impl CountingStorage {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn Storage>, on_read: OnRead) -> Self {
        CountingStorage { inner, on_read }
    }
}

impl Debug for CountingStorage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_tuple("CountingStorage").field(&self.inner).finish()
    }
}

struct CountingReader {
    inner: Box<dyn ReadableFile>,
    on_read: OnRead,
}

impl ReadableFile for CountingReader {
    fn read_from(&mut self, offset: u64) -> io::Result<Vec<u8>> {
        let bytes = self.inner.read_from(offset)?;
        (self.on_read)(bytes.len() as u64);
        Ok(bytes)
    }

    fn read_at(&mut self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read_at(offset, buffer)?;
        (self.on_read)(read as u64);
        Ok(read)
    }

    fn file_len(&mut self) -> io::Result<u64> {
        self.inner.file_len()
    }
}

impl Storage for CountingStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn entry(&self, path: &Path) -> io::Result<Entry> {
        self.inner.entry(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let bytes = self.inner.read(path)?;
        (self.on_read)(bytes.len() as u64);
        Ok(bytes)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>> {
        Ok(Box::new(CountingReader {
            inner: self.inner.open_read(path)?,
            on_read: Arc::clone(&self.on_read),
        }))
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.inner.create_new(path)
    }
    fn open_write(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        self.inner.open_write(path, offset)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir(path)
    }
    fn zero_from(&self, path: &Path, offset: u64) -> io::Result<()> {
        self.inner.zero_from(path, offset)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
}
