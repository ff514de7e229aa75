//! Reading a documented file entry by entry: the JSON array is split into
//! its values as the bytes come (in chunks of a file, or one slice), and
//! each value is parsed into an entry and handed on before the next is
//! read. A loader builds its state as it goes: neither the file nor a list
//! of its entries is ever held whole.
//!
//! The splitting accepts exactly JSON's array syntax (whitespace, `[`,
//! values separated by `,`, `]`, whitespace to the end); each value is
//! parsed by `serde_json`, as deep as the store's readers go.

use crate::entry::QueueEntry;
use crate::json::{self, ValueScan, is_whitespace};
use crate::movie::RawFields;
use crate::storage::ReadableFile;

/// What the splitter expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The opening `[`.
    Open,
    /// The first value, or `]` (an empty array).
    FirstOrClose,
    /// A value (after a `,`).
    Value,
    /// `,` or `]` after a value.
    CommaOrClose,
    /// Nothing but whitespace (after the closing `]`).
    End,
}

/// The splitter: where it is in the array, and how many entries it handed on.
pub struct Entries<'f> {
    expect: Expect,
    count: usize,
    /// Bytes consumed before the current buffer (for messages).
    consumed: u64,
    /// How far the value cut by the end of the last buffer was scanned.
    scan: ValueScan,
    each: Handler<'f>,
}

/// What takes each value as it is: its offset in the text and its bytes.
pub type RawEach<'f> = &'f mut dyn FnMut(u64, &[u8]) -> Result<(), String>;

/// Where each value goes: parsed into an entry, or as it is.
enum Handler<'f> {
    Parsed(&'f mut dyn FnMut(QueueEntry) -> Result<(), String>),
    Raw(RawEach<'f>),
}

impl<'f> Entries<'f> {
    /// A splitter that hands each entry to `each` (an error from it stops
    /// the reading, reported at that entry).
    pub fn new(each: &'f mut dyn FnMut(QueueEntry) -> Result<(), String>) -> Self {
        Entries {
            expect: Expect::Open,
            count: 0,
            consumed: 0,
            scan: ValueScan::default(),
            each: Handler::Parsed(each),
        }
    }

    /// A splitter that hands each value on as it is, with its offset in
    /// the text (the caller checks and parses what it uses).
    pub fn raw(each: RawEach<'f>) -> Self {
        Entries {
            expect: Expect::Open,
            count: 0,
            consumed: 0,
            scan: ValueScan::default(),
            each: Handler::Raw(each),
        }
    }

    /// This splitter, starting inside an array right after a `,` at byte
    /// `offset` of its text instead (the second half of a file split
    /// between two entries).
    #[must_use]
    pub fn after_comma_at(mut self, offset: u64) -> Self {
        self.expect = Expect::Value;
        self.consumed = offset;
        self
    }

    /// Does it stand right after a `,` between two entries, nothing of the
    /// next one read (where a [`Entries::after_comma_at`] splitter starts)?
    #[must_use]
    pub fn between_entries(&self) -> bool {
        self.expect == Expect::Value && self.scan.is_fresh()
    }

    /// How many entries were handed on.
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }

    /// Reads what it can of `bytes` (the text from where the last call
    /// stopped; `end`: nothing follows it) and returns how many bytes it
    /// used: a value cut by the end of `bytes` is left for the next call,
    /// with the bytes after it.
    ///
    /// # Errors
    /// A message naming the entry and what is wrong with it, or where the
    /// array's syntax breaks.
    pub fn feed(&mut self, bytes: &[u8], end: bool) -> Result<usize, String> {
        let mut at = 0;
        loop {
            while bytes.get(at).is_some_and(|byte| is_whitespace(*byte)) {
                at += 1;
            }
            let Some(&byte) = bytes.get(at) else {
                if end && self.expect != Expect::End {
                    return Err(self.broken(at, "the text ends inside the array"));
                }
                return Ok(at);
            };
            match (self.expect, byte) {
                (Expect::Open, b'[') => {
                    self.expect = Expect::FirstOrClose;
                    at += 1;
                }
                (Expect::FirstOrClose | Expect::CommaOrClose, b']') => {
                    self.expect = Expect::End;
                    at += 1;
                }
                (Expect::CommaOrClose, b',') => {
                    self.expect = Expect::Value;
                    at += 1;
                }
                (Expect::FirstOrClose | Expect::Value, _) => {
                    // A value cut by the end of `bytes` starts the next
                    // buffer: its scan goes on there.
                    let Some(length) = self.scan.length(&bytes[at..], end) else {
                        return Ok(at);
                    };
                    self.scan = ValueScan::default();
                    self.entry(&bytes[at..at + length], self.consumed + at as u64)?;
                    self.expect = Expect::CommaOrClose;
                    at += length;
                }
                (Expect::Open, _) => return Err(self.broken(at, "expected `[`")),
                (Expect::CommaOrClose, _) => return Err(self.broken(at, "expected `,` or `]`")),
                (Expect::End, _) => return Err(self.broken(at, "trailing characters after the array")),
            }
        }
    }

    /// Marks `used` bytes of a buffer as read (the offsets in messages
    /// count from the start of the text).
    pub fn advance(&mut self, used: usize) {
        self.consumed += used as u64;
    }

    /// Parses one value (at byte `offset` of the text) into an entry and
    /// hands it on; an error names the entry's index and offset.
    fn entry(&mut self, value: &[u8], offset: u64) -> Result<(), String> {
        let index = self.count;
        match &mut self.each {
            Handler::Parsed(each) => parse_entry(value).and_then(each),
            Handler::Raw(each) => each(offset, value),
        }
        .map_err(|error| format!("entry {index} (at byte {offset}): {error}"))?;
        self.count += 1;
        Ok(())
    }

    fn broken(&self, at: usize, what: &str) -> String {
        format!(
            "not a JSON array of movies: {what} at byte {} (after {} valid entries)",
            self.consumed + at as u64,
            self.count
        )
    }
}

/// A file read in pieces from a position on, into a splitter, hashed as
/// it goes.
pub struct Pieces<'r> {
    file: &'r mut dyn ReadableFile,
    buffer: Vec<u8>,
    /// Bytes read and not yet used by the splitter (a value cut by the end
    /// of a piece).
    pending: Vec<u8>,
    hasher: crc32fast::Hasher,
    /// Where the next piece starts.
    at: u64,
    /// Bytes read.
    length: u64,
}

impl<'r> Pieces<'r> {
    /// Has it read up to exactly `offset`, every byte used by the
    /// splitter (none left of a value cut by a piece's end)?
    #[must_use]
    pub fn stands_at(&self, offset: u64) -> bool {
        self.at == offset && self.pending.is_empty()
    }

    /// How many bytes it read, and their CRC32 so far.
    #[must_use]
    pub fn read(self) -> (u64, crc32fast::Hasher) {
        (self.length, self.hasher)
    }

    pub fn new(file: &'r mut dyn ReadableFile, from: u64, piece: usize) -> Self {
        Pieces {
            file,
            buffer: vec![0; piece],
            pending: Vec::new(),
            hasher: crc32fast::Hasher::new(),
            at: from,
            length: 0,
        }
    }

    /// Feeds `splitter` the bytes up to `until` (to the end: `None`, the
    /// splitter then told where the text ends).
    pub fn feed(&mut self, splitter: &mut Entries<'_>, until: Option<u64>) -> Result<(), String> {
        loop {
            let room = until.map_or(self.buffer.len(), |until| {
                usize::try_from(until.saturating_sub(self.at))
                    .map_or(self.buffer.len(), |left| left.min(self.buffer.len()))
            });
            if room == 0 {
                return Ok(());
            }
            let read = self
                .file
                .read_at(self.at, &mut self.buffer[..room])
                .map_err(|error| error.to_string())?;
            self.hasher.update(&self.buffer[..read]);
            self.at += read as u64;
            self.length += read as u64;
            self.pending.extend_from_slice(&self.buffer[..read]);
            let used = splitter.feed(&self.pending, read == 0)?;
            splitter.advance(used);
            self.pending.drain(..used);
            if read == 0 {
                return Ok(());
            }
        }
    }
}

/// Parses one entry of a documented file: its JSON object's bytes.
///
/// # Errors
/// A message saying what is wrong with it.
pub fn parse_entry(value: &[u8]) -> Result<QueueEntry, String> {
    // The array is one level: the file nests no deeper than the store's
    // readers go.
    let raw = json::from_slice_within::<RawFields>(value, 1).map_err(|error| format!("not a movie: {error}"))?;
    QueueEntry::from_raw(raw).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str, chunk: usize) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        {
            let mut each = |entry: QueueEntry| {
                found.push(entry.id().to_owned());
                Ok(())
            };
            let mut entries = Entries::new(&mut each);
            let mut buffer = Vec::new();
            for piece in text.as_bytes().chunks(chunk.max(1)) {
                buffer.extend_from_slice(piece);
                let used = entries.feed(&buffer, false)?;
                entries.advance(used);
                buffer.drain(..used);
            }
            entries.feed(&buffer, true)?;
        }
        Ok(found)
    }

    #[test]
    fn an_array_split_anywhere_reads_the_same() {
        let text = " [ {\"id\":\"a]\\\"{\",\"title\":\"T\",\"year\":1999} ,\n{\"id\":\"b\",\"x\":[1,{\"y\":\"]\"}]}]\n";
        for chunk in 1..=text.len() {
            assert_eq!(
                ids(text, chunk),
                Ok(vec!["a]\"{".to_owned(), "b".to_owned()]),
                "chunks of {chunk}"
            );
        }
        assert_eq!(ids("[]", 1), Ok(vec![]));
    }

    #[test]
    fn what_is_not_a_json_array_is_refused_as_serde_json_refuses_it() {
        for text in [
            "",
            "{}",
            "[",
            "[{\"id\":\"a\"},]",
            "[{\"id\":\"a\"}{\"id\":\"b\"}]",
            "[{\"id\":\"a\"}] x",
            "[5]",
            "[{\"id\":\"a\"}",
            "[,]",
            "[{\"id\":\"a\",}]",
        ] {
            let slice: Result<Vec<RawFields>, _> = serde_json::from_str(text);
            assert!(slice.is_err(), "serde_json refuses {text:?} too");
            for chunk in [1, 3, 100] {
                assert!(ids(text, chunk).is_err(), "{text:?} in chunks of {chunk}");
            }
        }
    }
}
