//! Reading fuzzer bytes as structured input, and writing such input (for
//! the seeds). Every read succeeds: an exhausted input reads as zeros and
//! empty chunks, so every byte string is a valid input.

/// A reader over fuzzer-chosen bytes.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// Reads `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    /// Are all bytes read?
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 once exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&first, rest)) => {
                self.data = rest;
                first
            }
            None => 0,
        }
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u8) -> u8 {
        self.byte() % n
    }

    /// A flag.
    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        let mut word = [0_u8; 8];
        for byte in &mut word {
            *byte = self.byte();
        }
        u64::from_le_bytes(word)
    }

    /// A chunk: a `u16` length, then that many bytes (fewer if the input ends).
    pub fn chunk(&mut self) -> &'a [u8] {
        let wanted = usize::from(self.u16());
        let (chunk, rest) = self.data.split_at(wanted.min(self.data.len()));
        self.data = rest;
        chunk
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Builds inputs in the format [`Cursor`] reads (for seed inputs).
#[derive(Debug, Default, Clone)]
pub struct Builder {
    /// The input so far.
    pub bytes: Vec<u8>,
}

impl Builder {
    /// Appends a byte.
    pub fn byte(&mut self, byte: u8) -> &mut Self {
        self.bytes.push(byte);
        self
    }

    /// Appends a `u16`.
    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends a chunk (length-prefixed); at most `u16::MAX` bytes of it.
    pub fn chunk(&mut self, chunk: &[u8]) -> &mut Self {
        let chunk = &chunk[..chunk.len().min(usize::from(u16::MAX))];
        self.u16(u16::try_from(chunk.len()).unwrap_or(u16::MAX));
        self.bytes.extend_from_slice(chunk);
        self
    }

    /// Appends bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// The input.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}
