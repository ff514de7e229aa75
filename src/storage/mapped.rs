//! The one module that maps files into memory (the crate's only `unsafe`).

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::Path;

/// The bytes of a file: memory-mapped, or owned (empty files, injected faults).
#[derive(Debug)]
pub enum FileBytes {
    /// A read-only map of the whole file as it was when mapped.
    Mapped(memmap2::Mmap),
    /// A copy in memory.
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Maps `path` read-only.
    ///
    /// # Errors
    /// The operating system's error.
    pub fn map(path: &Path) -> io::Result<FileBytes> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and private to this process. The store
        // only appends to journal segments while they may be mapped, and
        // truncates a segment (torn-tail repair) only on a writer's open,
        // before any of its own maps exist and after dropping the map it
        // validated. A read-only opener in another process could still see
        // a truncation by a newly started writer; that is documented in
        // docs/DURABILITY.md as the one way a concurrent reader can fail.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(FileBytes::Mapped(map))
    }

    /// Copies the bytes into an owned buffer (so they can be altered).
    #[cfg(any(test, feature = "testing"))]
    #[must_use]
    pub fn into_owned(self) -> Vec<u8> {
        match self {
            FileBytes::Mapped(map) => map.to_vec(),
            FileBytes::Owned(bytes) => bytes,
        }
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            FileBytes::Owned(bytes) => bytes,
        }
    }
}
