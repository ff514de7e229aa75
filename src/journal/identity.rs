//! The store's identity (`journal/identity`): 128 random bits, given to a
//! journal by the first writer that opens it and kept for its life. It
//! names one history of records, so that a copy of the journal elsewhere
//! (a stream it is shipped to) can tell its own store's records from
//! another's: two stores whose records share numbers are told apart by
//! it. It lives in `journal/`, so a journal replaced whole (`import`)
//! gets a new one.
//!
//! The file is 32 lowercase hexadecimal digits and a newline, written
//! once (temporary file, fsync, rename, directory fsync) and never
//! changed. A file that does not parse is set aside (`identity.*.broken`)
//! by the next writer's open, which gives the store a new identity: the
//! old one cannot be known any more.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::{DAMAGED_TAG, IDENTITY_FILE};
use crate::storage::{self, Entry, Storage};

/// The bytes of the file: 32 hex digits and a newline.
const FILE_BYTES: usize = 33;

/// A store's identity: 128 random bits, shown as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId([u8; 16]);

impl StoreId {
    /// The identity `text` spells (32 lowercase hex digits), if it does.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 32 || !text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut bytes = [0_u8; 16];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
        }
        Some(StoreId(bytes))
    }

    /// A new identity from the kernel's random source (`/dev/urandom`).
    fn random() -> std::io::Result<Self> {
        use std::io::Read;
        let mut bytes = [0_u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(StoreId(bytes))
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// The identity of the journal in `journal_dir`: `None` when it has none
/// yet (no writer has opened it since identities began).
///
/// # Errors
/// [`Error::Corrupt`] when the file does not parse, or is not a regular
/// file (a link is never followed); [`Error::Io`] when it cannot be read.
pub fn read(storage: &dyn Storage, journal_dir: &Path) -> Result<Option<StoreId>> {
    let path = journal_dir.join(IDENTITY_FILE);
    let damaged = |detail: &str| Error::Corrupt {
        path: path.clone(),
        offset: 0,
        detail: format!("{detail}; the next writer open sets it aside and gives the store a new identity"),
    };
    match storage.entry(&path) {
        Ok(Entry::Missing) => return Ok(None),
        Ok(Entry::File(_)) => {}
        Ok(_) => {
            return Err(damaged(
                "not a regular file (a link is never followed) where the store's identity belongs",
            ));
        }
        Err(error) => return Err(Error::io("inspect", &path, error)),
    }
    let bytes = match storage.read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::io("read", &path, error)),
    };
    let parsed = (bytes.len() == FILE_BYTES && bytes.ends_with(b"\n"))
        .then(|| {
            std::str::from_utf8(&bytes[..FILE_BYTES - 1])
                .ok()
                .and_then(StoreId::parse)
        })
        .flatten();
    parsed
        .map(Some)
        .ok_or_else(|| damaged("the store's identity does not parse (32 hexadecimal digits and a newline)"))
}

/// The identity of the journal in `journal_dir`, given to it now if it has
/// none; a file that does not parse (or is not a regular file) is set aside
/// first (writer only, with the journal directory there).
///
/// # Errors
/// [`Error::Io`] of the step that failed (a full disk).
pub fn ensure(storage: &dyn Storage, journal_dir: &Path) -> Result<StoreId> {
    match read(storage, journal_dir) {
        Ok(Some(id)) => return Ok(id),
        Ok(None) => {}
        Err(Error::Corrupt { path, detail, .. }) => {
            let aside = crate::journal::repair::move_aside(storage, &path, DAMAGED_TAG)?;
            tracing::warn!(path = %path.display(), aside = %aside.display(), %detail, "set the store's identity aside: the store gets a new one");
        }
        Err(error) => return Err(error),
    }
    let path = journal_dir.join(IDENTITY_FILE);
    let id = StoreId::random().map_err(|error| Error::io("draw a random identity for", &path, error))?;
    storage::write_atomic(storage, &path, format!("{id}\n").as_bytes())?;
    tracing::info!(%id, "gave the store its identity");
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::StoreId;

    #[test]
    fn an_identity_is_32_lowercase_hex_digits_both_ways() {
        let id = StoreId::random().expect("the kernel's random source");
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(StoreId::parse(&text), Some(id));
        assert_ne!(StoreId::random().expect("random"), id, "two draws differ");
        let upper = "0123456789ABCDEF0123456789abcdef";
        for bad in [
            "",
            "0",
            upper,
            &format!("{text}0"),
            &text[1..],
            "g0000000000000000000000000000000",
        ] {
            assert_eq!(StoreId::parse(bad), None, "{bad:?}");
        }
    }
}
