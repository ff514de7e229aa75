//! A storage over the real file system whose fsyncs can be held at a gate
//! (a disk that stalls) and whose writes can panic (a bug in the writer's
//! path), for the tests of the writer's edges.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use movie_queue::testing::{Entry, ReadableFile, RealStorage, Storage, WritableFile};

/// Shared switches of a [`GatedStorage`].
#[derive(Debug, Default)]
pub struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    /// fsyncs waiting at the gate.
    pub waiting: AtomicU64,
    /// Make the next file write panic.
    pub panic_on_write: AtomicBool,
}

impl Gate {
    /// Holds every fsync from now on until [`Gate::open`].
    pub fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }

    /// Lets every held fsync through.
    pub fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The real file system behind a [`Gate`].
#[derive(Debug, Clone, Default)]
pub struct GatedStorage {
    /// The switches.
    pub gate: Arc<Gate>,
}

struct GatedFile {
    inner: Box<dyn WritableFile>,
    gate: Arc<Gate>,
}

impl WritableFile for GatedFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        assert!(
            !self.gate.panic_on_write.swap(false, Ordering::SeqCst),
            "injected: a bug in the writer's path"
        );
        self.inner.write_all(bytes)
    }

    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        assert!(
            !self.gate.panic_on_write.swap(false, Ordering::SeqCst),
            "injected: a bug in the writer's path"
        );
        self.inner.write_all_at(offset, bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.gate.pass();
        self.inner.sync_data()
    }
}

impl Storage for GatedStorage {
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
        RealStorage.read(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>> {
        RealStorage.open_read(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(GatedFile {
            inner: RealStorage.create_new(path)?,
            gate: Arc::clone(&self.gate),
        }))
    }
    fn open_write(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(GatedFile {
            inner: RealStorage.open_write(path, offset)?,
            gate: Arc::clone(&self.gate),
        }))
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
