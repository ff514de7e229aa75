//! The only code that knows the journal's bytes: the segment header and the
//! record frame (see `docs/FORMAT.md`). Little-endian, fixed-width fields.
//!
//! ```text
//! segment header (32 bytes)
//!   0  magic        8 bytes  "MVQJRNL\0"
//!   8  version      u32      FORMAT_VERSION
//!  12  reserved     u32      0
//!  16  first_seq    u64      sequence number of the segment's first record
//!  24  header_crc   u32      CRC32 of bytes 0..24
//!  28  reserved     u32      0
//! record (16-byte header + payload)
//!   0  length       u32      payload bytes, 1..=RECORD_PAYLOAD_BYTES_MAX
//!   4  crc          u32      CRC32 of first_seq(u64) ‖ length ‖ seq ‖ payload
//!   8  seq          u64      this record's sequence number
//!  16  payload      length bytes: the event as JSON
//! ```
//! The record CRC is seeded with the segment's `first_seq`, so a record can
//! only be valid in the segment it was written to.

pub use crate::error::RecordDefect;
use crate::seq::{SEQ_MAX, Seq};

/// The first eight bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MVQJRNL\0";
/// The journal format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Size of a record's header.
pub const RECORD_HEADER_BYTES: usize = 16;
/// The largest payload the format allows (64 MiB); a length above it is
/// refused before anything is allocated.
pub const RECORD_PAYLOAD_BYTES_MAX: u32 = 64 << 20;

/// Encodes the header of a segment whose first record is `first_seq`.
#[must_use]
pub fn encode_segment_header(first_seq: Seq) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0_u8; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&first_seq.0.to_le_bytes());
    let crc = crc32fast::hash(&header[0..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    header
}

/// What is wrong with a segment header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderDefect {
    /// Fewer than [`SEGMENT_HEADER_BYTES`] bytes.
    Short(usize),
    /// Not a movie-queue segment.
    Magic,
    /// A version this build does not read.
    Version(u32),
    /// The reserved word at bytes 28..32 (outside the CRC) is not zero.
    Reserved,
    /// The first sequence number is above [`SEQ_MAX`].
    SeqOutOfRange(u64),
    /// The header's CRC does not match.
    Checksum {
        /// Stored.
        expected: u32,
        /// Computed.
        found: u32,
    },
}

/// Decodes a segment header, returning the segment's first sequence number.
///
/// # Errors
/// [`HeaderDefect`] saying what is wrong.
pub fn decode_segment_header(bytes: &[u8]) -> Result<Seq, HeaderDefect> {
    let header = bytes
        .get(..SEGMENT_HEADER_BYTES)
        .ok_or(HeaderDefect::Short(bytes.len()))?;
    if header[0..8] != SEGMENT_MAGIC {
        return Err(HeaderDefect::Magic);
    }
    let version = read_u32(header, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderDefect::Version(version));
    }
    let expected = read_u32(header, 24);
    let found = crc32fast::hash(&header[0..24]);
    if expected != found {
        return Err(HeaderDefect::Checksum { expected, found });
    }
    if read_u32(header, 28) != 0 {
        return Err(HeaderDefect::Reserved);
    }
    let first_seq = read_u64(header, 16);
    if first_seq > SEQ_MAX {
        return Err(HeaderDefect::SeqOutOfRange(first_seq));
    }
    Ok(Seq(first_seq))
}

/// Appends one framed record to `out`.
///
/// The caller has checked `payload.len()` against its limit, which is at
/// most [`RECORD_PAYLOAD_BYTES_MAX`].
pub fn encode_record(out: &mut Vec<u8>, segment_first_seq: Seq, seq: Seq, payload: &[u8]) {
    debug_assert!(!payload.is_empty() && payload.len() <= RECORD_PAYLOAD_BYTES_MAX as usize);
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = record_crc(segment_first_seq, length, seq, payload);
    out.reserve(RECORD_HEADER_BYTES + payload.len());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq.0.to_le_bytes());
    out.extend_from_slice(payload);
}

/// The framed size of a record with `payload_len` payload bytes.
#[must_use]
pub fn framed_len(payload_len: usize) -> usize {
    RECORD_HEADER_BYTES + payload_len
}

fn record_crc(segment_first_seq: Seq, length: u32, seq: Seq, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&segment_first_seq.0.to_le_bytes());
    hasher.update(&length.to_le_bytes());
    hasher.update(&seq.0.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// A record read back: its sequence number and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// The record's sequence number.
    pub seq: Seq,
    /// The event JSON.
    pub payload: &'a [u8],
}

impl RawRecord<'_> {
    /// Bytes the record occupies in its segment.
    #[must_use]
    pub fn framed_len(&self) -> usize {
        framed_len(self.payload.len())
    }
}

/// Decodes the record at the start of `bytes` in a segment whose first
/// sequence number is `segment_first_seq`. Checks the length against the
/// format's maximum and the bytes available before touching the payload.
///
/// # Errors
/// [`RecordDefect`] saying what is wrong.
pub fn decode_record(bytes: &[u8], segment_first_seq: Seq) -> Result<RawRecord<'_>, RecordDefect> {
    let header = bytes.get(..RECORD_HEADER_BYTES).ok_or(RecordDefect::ShortHeader {
        available: bytes.len() as u64,
    })?;
    let length = read_u32(header, 0);
    if length == 0 {
        return Err(RecordDefect::Empty);
    }
    if length > RECORD_PAYLOAD_BYTES_MAX {
        return Err(RecordDefect::TooLarge(length));
    }
    let available = (bytes.len() - RECORD_HEADER_BYTES) as u64;
    let payload = bytes
        .get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + length as usize)
        .ok_or(RecordDefect::PastEnd { length, available })?;
    let expected = read_u32(header, 4);
    let seq = Seq(read_u64(header, 8));
    let found = record_crc(segment_first_seq, length, seq, payload);
    if expected != found {
        return Err(RecordDefect::Checksum { expected, found });
    }
    Ok(RawRecord { seq, payload })
}

/// The sequence number and payload of the record framed at `offset` of
/// `bytes`, its checksum not verified: for bytes a scan has already
/// checked. `None` when the frame does not fit.
#[must_use]
pub fn frame_at(bytes: &[u8], offset: usize) -> Option<(Seq, &[u8])> {
    let framed = framed_len_at(bytes, offset)?;
    let record = bytes.get(offset..offset.checked_add(framed)?)?;
    Some((Seq(read_u64(record, 8)), &record[RECORD_HEADER_BYTES..]))
}

/// The framed length (header and payload) of the record whose header
/// starts at `offset` of `bytes`, from its length field alone (nothing
/// checked: the record is decoded after). `None` when the header does not
/// fit.
#[must_use]
pub fn framed_len_at(bytes: &[u8], offset: usize) -> Option<usize> {
    let header = bytes.get(offset..offset.checked_add(RECORD_HEADER_BYTES)?)?;
    RECORD_HEADER_BYTES.checked_add(usize::try_from(read_u32(header, 0)).ok()?)
}

/// Where the written bytes of `bytes` end: just past its last byte that is
/// not zero (0 when every byte is). A segment's zeros after its records are
/// the room its writer laid down ahead of them, not records: the end of
/// the log. Whole 64-byte blocks are compared at a time.
#[must_use]
pub fn written_end(bytes: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let mut end = bytes.len();
    let tail = end % BLOCK;
    if bytes[end - tail..].iter().any(|&byte| byte != 0) {
        return end - bytes[end - tail..].iter().rev().take_while(|&&byte| byte == 0).count();
    }
    end -= tail;
    while end >= BLOCK {
        let block = &bytes[end - BLOCK..end];
        if block.iter().fold(0_u8, |any, &byte| any | byte) != 0 {
            return end - block.iter().rev().take_while(|&&byte| byte == 0).count();
        }
        end -= BLOCK;
    }
    0
}

/// What a search for a valid record after damage found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// A valid record starts at this offset of the bytes searched.
    Found(usize),
    /// No valid record starts anywhere in them.
    Nothing,
    /// The search gave up (crafted bytes that declare huge lengths at every
    /// offset would make it quadratic): treat as if one might follow.
    GaveUp,
}

/// Is there a valid record with a sequence number in `lowest..lowest + 2^20`
/// at any offset of `bytes`? Used to tell a torn tail (nothing valid after
/// the damage) from damage in the middle of a segment, and to find where
/// valid records resume. Bounded: it hashes at most eight times the bytes
/// searched (plus 1 MiB), then gives up.
#[must_use]
pub fn valid_record_follows(bytes: &[u8], segment_first_seq: Seq, lowest: Seq) -> Resync {
    const WINDOW: u64 = 1 << 20;
    let Some(last_start) = bytes.len().checked_sub(RECORD_HEADER_BYTES) else {
        return Resync::Nothing;
    };
    let mut budget = bytes.len().saturating_mul(8).saturating_add(1 << 20);
    for offset in 0..=last_start {
        let Some(rest) = bytes.get(offset..) else {
            break;
        };
        let seq = read_u64(rest, 8);
        let length = read_u32(rest, 0) as usize;
        if seq < lowest.0 || seq - lowest.0 >= WINDOW || length == 0 || length > rest.len() - RECORD_HEADER_BYTES {
            continue;
        }
        if budget < length {
            return Resync::GaveUp;
        }
        budget -= length;
        if decode_record(rest, segment_first_seq).is_ok() {
            return Resync::Found(offset);
        }
    }
    Resync::Nothing
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0_u8; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        word.copy_from_slice(slice);
    }
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0_u8; 8];
    if let Some(slice) = bytes.get(at..at + 8) {
        word.copy_from_slice(slice);
    }
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let header = encode_segment_header(Seq(42));
        assert_eq!(decode_segment_header(&header), Ok(Seq(42)));
        let mut bad_magic = header;
        bad_magic[0] ^= 1;
        assert_eq!(decode_segment_header(&bad_magic), Err(HeaderDefect::Magic));
        let mut bad_version = header;
        bad_version[8] = 9;
        assert_eq!(decode_segment_header(&bad_version), Err(HeaderDefect::Version(9)));
        let mut bad_seq = header;
        bad_seq[16] ^= 1;
        assert!(matches!(
            decode_segment_header(&bad_seq),
            Err(HeaderDefect::Checksum { .. })
        ));
        assert_eq!(decode_segment_header(&header[..31]), Err(HeaderDefect::Short(31)));
    }

    #[test]
    fn record_round_trips_and_every_bit_flip_is_caught() {
        let mut bytes = Vec::new();
        encode_record(&mut bytes, Seq(1), Seq(3), b"{\"x\":1}");
        let record = decode_record(&bytes, Seq(1)).expect("valid");
        assert_eq!(record.seq, Seq(3));
        assert_eq!(record.payload, b"{\"x\":1}");
        assert_eq!(record.framed_len(), bytes.len());
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_record(&flipped, Seq(1)).is_err(),
                "flip of bit {bit} went unnoticed"
            );
        }
        assert!(
            decode_record(&bytes, Seq(2)).is_err(),
            "a record must not validate in another segment"
        );
    }

    #[test]
    fn lengths_are_checked_before_the_payload() {
        let mut header = vec![0_u8; RECORD_HEADER_BYTES];
        header[0..4].copy_from_slice(&(RECORD_PAYLOAD_BYTES_MAX + 1).to_le_bytes());
        assert_eq!(
            decode_record(&header, Seq(1)),
            Err(RecordDefect::TooLarge(RECORD_PAYLOAD_BYTES_MAX + 1))
        );
        header[0..4].copy_from_slice(&100_u32.to_le_bytes());
        assert_eq!(
            decode_record(&header, Seq(1)),
            Err(RecordDefect::PastEnd {
                length: 100,
                available: 0
            })
        );
        assert_eq!(decode_record(&[0; 16], Seq(1)), Err(RecordDefect::Empty));
        assert_eq!(
            decode_record(&[0; 5], Seq(1)),
            Err(RecordDefect::ShortHeader { available: 5 })
        );
    }

    #[test]
    fn a_search_through_crafted_lengths_gives_up_instead_of_hashing_forever() {
        // Every 16th offset declares a record running to the end, seq 1.
        let mut crafted = vec![0_u8; 1 << 20];
        for (index, chunk) in crafted.chunks_mut(16).enumerate() {
            let length = u32::try_from((1 << 20) - index * 16 - 16).unwrap_or(0);
            chunk[0..4].copy_from_slice(&length.to_le_bytes());
            chunk[8..16].copy_from_slice(&1_u64.to_le_bytes());
        }
        assert_eq!(valid_record_follows(&crafted, Seq(1), Seq(1)), Resync::GaveUp);
    }

    #[test]
    fn the_written_end_is_just_past_the_last_byte_that_is_not_zero() {
        assert_eq!(written_end(&[]), 0);
        assert_eq!(written_end(&[0; 1000]), 0);
        for at in [0, 1, 63, 64, 65, 127, 500, 999] {
            let mut bytes = vec![0_u8; 1000];
            bytes[at] = 7;
            assert_eq!(written_end(&bytes), at + 1, "a byte at {at}");
            bytes[0] = 1;
            assert_eq!(written_end(&bytes), at + 1, "a byte at {at} and one at 0");
        }
    }

    #[test]
    fn finds_a_valid_record_after_damage() {
        let mut bytes = vec![0xAB; 7];
        encode_record(&mut bytes, Seq(1), Seq(5), b"{}");
        assert_eq!(valid_record_follows(&bytes, Seq(1), Seq(5)), Resync::Found(7));
        assert_eq!(valid_record_follows(&bytes, Seq(1), Seq(6)), Resync::Nothing);
        assert_eq!(
            valid_record_follows(&bytes[..bytes.len() - 1], Seq(1), Seq(5)),
            Resync::Nothing
        );
    }
}
