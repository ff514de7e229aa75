//! The operating system's file system behind the [`Storage`] seam: files
//! read into owned buffers (never mapped), created exclusively (`O_EXCL`)
//! and never through a symbolic link (`O_NOFOLLOW`), user-only modes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::{Entry, ReadableFile, Storage, WritableFile};

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealStorage;

struct RealFile(File);

impl WritableFile for RealFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, bytes, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

struct RealReader(File);

impl ReadableFile for RealReader {
    fn read_from(&mut self, offset: u64) -> io::Result<Vec<u8>> {
        let len = self.0.metadata()?.len();
        let mut bytes = Vec::with_capacity(usize::try_from(len.saturating_sub(offset)).unwrap_or(0));
        if offset < len {
            self.0.seek(SeekFrom::Start(offset))?;
            (&mut self.0).take(len - offset).read_to_end(&mut bytes)?;
        }
        Ok(bytes)
    }

    fn file_len(&mut self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_at(&mut self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut filled = 0;
        while filled < buffer.len() {
            match self.0.read_at(&mut buffer[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(filled)
    }
}

/// `O_NOFOLLOW` and, for new files, 0600.
#[cfg(unix)]
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NOFOLLOW).mode(0o600)
}

#[cfg(not(unix))]
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    options
}

/// Opens an existing regular file read-only (or to write) without
/// following a link, and without blocking: a FIFO planted at the name
/// must not hang the opener (`O_NONBLOCK` changes nothing for a regular
/// file); anything but a regular file is refused once open.
fn open_existing(path: &Path, write: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(!write).write(write);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"))
    }
}

impl Storage for RealStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn entry(&self, path: &Path) -> io::Result<Entry> {
        match fs::symlink_metadata(path) {
            Ok(metadata) if metadata.is_file() => Ok(Entry::File(metadata.len())),
            Ok(metadata) if metadata.is_dir() => Ok(Entry::Directory),
            Ok(_) => Ok(Entry::Other),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Entry::Missing),
            Err(error) => Err(error),
        }
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut file = open_existing(path, false)?;
        // Sized once: a 64 MiB segment read into a growing buffer would be
        // copied at each doubling.
        let len = file.metadata()?.len();
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>> {
        Ok(Box::new(RealReader(open_existing(path, false)?)))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = no_follow(OpenOptions::new().write(true).create_new(true)).open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn open_write(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        let mut file = open_existing(path, true)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(RealFile(file)))
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        open_existing(path, false)?.sync_data()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn zero_from(&self, path: &Path, offset: u64) -> io::Result<()> {
        let file = open_existing(path, true)?;
        let len = file.metadata()?.len();
        let mut file = RealFile(file);
        super::write_zeros(&mut file, offset, len)?;
        file.0.sync_data()
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Every way the store touches a file refuses a symbolic link, whether
    /// it points at an existing file (whose bytes must stay as they are) or
    /// at nothing (where nothing may be created).
    #[test]
    fn a_link_is_never_followed_by_create_write_or_read() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("write the victim");
        let to_file = dir.path().join("to-file");
        let to_nothing = dir.path().join("to-nothing");
        symlink(&victim, &to_file).expect("a link");
        symlink(dir.path().join("absent"), &to_nothing).expect("a link");
        let storage = RealStorage;

        for link in [&to_file, &to_nothing] {
            assert!(storage.create_new(link).is_err(), "{}", link.display());
            assert!(storage.open_write(link, 0).is_err(), "{}", link.display());
            assert!(storage.read(link).is_err(), "{}", link.display());
            assert_eq!(storage.entry(link).expect("entry"), Entry::Other);
        }
        assert_eq!(fs::read(&victim).expect("read the victim"), b"precious");
        assert!(!dir.path().join("absent").exists());
    }
}
