//! The holes file `journal/holes`: damaged records `repair` set aside
//! under a checkpoint that covers them, so that the audit trail reads on
//! past them.
//!
//! Damage before the records a store's starting point needs is history
//! only: the store opens, but the history cannot be read across it. `repair`
//! copies the damaged bytes to a `*.broken` file (durably, nothing cut or
//! deleted), makes sure the compaction base covers them, and records the
//! hole here. A reader that meets exactly that damage (same segment, same
//! byte span, the record due there the hole's first, valid records resuming
//! at the hole's end with the record after its last) steps over it and says
//! so; any other damage is still damage.
//!
//! Format: one line a hole, `MVQHOLE1 <segment's first seq> <offset> <end>
//! <first seq> <last seq> <set-aside file name or -> <crc32 hex>\n`, the
//! CRC32 over the line before its last space. A file with a line that does
//! not parse is ignored whole (and reported by `verify`): it can only make
//! the store report damage again, never hide any.

use std::path::Path;

use crate::error::Result;
use crate::seq::{SEQ_MAX, Seq};
use crate::storage::{self, Storage};

use crate::layout::HOLES_FILE;

const MAGIC: &str = "MVQHOLE1";

/// One hole: records `first..=last` of the segment starting at
/// `segment`, whose bytes `offset..end` are damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    /// The first sequence number of the segment holding the damage.
    pub segment: Seq,
    /// Where the damaged bytes start.
    pub offset: u64,
    /// Where valid records resume (the segment's length when they resume
    /// in the next segment).
    pub end: u64,
    /// The first record missing.
    pub first: Seq,
    /// The last record missing.
    pub last: Seq,
    /// The file in `journal/` the damaged bytes were copied to (`None`:
    /// they were all zeros, nothing to keep).
    pub set_aside: Option<String>,
}

/// What the holes file says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Holes {
    /// No file: no hole recorded.
    #[default]
    None,
    /// The holes recorded, in journal order.
    Known(Vec<Hole>),
    /// A file that does not parse: ignored.
    Damaged,
}

impl Holes {
    /// The holes recorded (none for a damaged file).
    #[must_use]
    pub fn list(&self) -> &[Hole] {
        match self {
            Holes::Known(holes) => holes,
            Holes::None | Holes::Damaged => &[],
        }
    }

    /// The hole recorded for damage at `offset` of the segment starting at
    /// `segment`, where record `expected` was due.
    #[must_use]
    pub fn at(&self, segment: Seq, offset: u64, expected: Seq) -> Option<&Hole> {
        self.starting_at(segment, offset).filter(|hole| hole.first == expected)
    }

    /// Might a hole lie in the segment holding records `first..=last`
    /// (starting at `first`)? `true` for a file that does not parse.
    #[must_use]
    pub fn touches(&self, first: Seq, last: Seq) -> bool {
        match self {
            Holes::Damaged => true,
            _ => self
                .list()
                .iter()
                .any(|hole| hole.segment == first || (hole.first <= last && hole.last >= first)),
        }
    }

    /// The hole recorded at `offset` of the segment starting at `segment`.
    #[must_use]
    pub fn starting_at(&self, segment: Seq, offset: u64) -> Option<&Hole> {
        self.list()
            .iter()
            .find(|hole| hole.segment == segment && hole.offset == offset)
    }
}

fn line(hole: &Hole) -> String {
    let body = format!(
        "{MAGIC} {} {} {} {} {} {}",
        hole.segment.0,
        hole.offset,
        hole.end,
        hole.first.0,
        hole.last.0,
        hole.set_aside.as_deref().unwrap_or("-")
    );
    format!("{body} {:08x}\n", crc32fast::hash(body.as_bytes()))
}

fn parse_line(text: &str) -> Option<Hole> {
    let (body, crc) = text.rsplit_once(' ')?;
    let lower_hex = |byte: u8| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
    if crc.len() != 8
        || !crc.bytes().all(lower_hex)
        || u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(body.as_bytes())
    {
        return None;
    }
    let mut words = body.split(' ');
    if words.next()? != MAGIC {
        return None;
    }
    let mut number = || -> Option<u64> {
        let word = words.next()?;
        (!word.is_empty() && word.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| word.parse().ok())
            .flatten()
    };
    let (segment, offset, end, first, last) = (number()?, number()?, number()?, number()?, number()?);
    let set_aside = match words.next()? {
        "-" => None,
        name if is_plain_name(name) => Some(name.to_owned()),
        _ => return None,
    };
    let sound =
        words.next().is_none() && offset < end && 0 < segment && segment <= first && first <= last && last <= SEQ_MAX;
    sound.then_some(Hole {
        segment: Seq(segment),
        offset,
        end,
        first: Seq(first),
        last: Seq(last),
        set_aside,
    })
}

/// A file name of `journal/` (no separator, no whitespace, not `.` or `..`).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name != "-"
        && !name
            .bytes()
            .any(|byte| byte == b'/' || byte.is_ascii_whitespace() || byte.is_ascii_control())
}

fn parse(bytes: &[u8]) -> Option<Vec<Hole>> {
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.is_empty() && !text.ends_with('\n') {
        return None;
    }
    text.lines().map(parse_line).collect()
}

/// Reads the holes file of `journal_dir`.
#[must_use]
pub fn read(storage: &dyn Storage, journal_dir: &Path) -> Holes {
    let path = journal_dir.join(HOLES_FILE);
    if !storage.exists(&path) {
        return Holes::None;
    }
    match storage.read(&path).ok().as_deref().and_then(parse) {
        Some(holes) => Holes::Known(holes),
        None => Holes::Damaged,
    }
}

/// Writes `holes` (atomically, durably) as the holes file of
/// `journal_dir`; none: the file is removed.
///
/// # Errors
/// [`crate::error::Error::Io`] naming the file.
pub fn write(storage: &dyn Storage, journal_dir: &Path, holes: &[Hole]) -> Result<()> {
    let path = journal_dir.join(HOLES_FILE);
    if holes.is_empty() {
        storage::remove_if_present(storage, &path)?;
        return storage::sync_parent(storage, &path);
    }
    let text: String = holes.iter().map(line).collect();
    storage::write_atomic(storage, &path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hole(set_aside: Option<&str>) -> Hole {
        Hole {
            segment: Seq(1),
            offset: 494,
            end: 618,
            first: Seq(5),
            last: Seq(5),
            set_aside: set_aside.map(str::to_owned),
        }
    }

    #[test]
    fn holes_round_trip_and_every_bit_flip_voids_the_file() {
        let holes = [hole(Some("00000000000000000001.seg.494.broken")), hole(None)];
        let written: String = holes.iter().map(line).collect();
        assert_eq!(parse(written.as_bytes()), Some(holes.to_vec()));
        for bit in 0..written.len() * 8 {
            let mut flipped = written.clone().into_bytes();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(
                parse(&flipped),
                Some(holes.to_vec()),
                "flip of bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn a_hole_that_cannot_be_is_refused_even_with_a_matching_checksum() {
        for body in [
            format!("{MAGIC} 1 494 494 5 5 -"),
            format!("{MAGIC} 6 494 618 5 5 -"),
            format!("{MAGIC} 1 494 618 6 5 -"),
            format!("{MAGIC} 1 494 618 5 5 ../escape"),
            format!("{MAGIC} 1 494 618 5 5 a b"),
        ] {
            let text = format!("{body} {:08x}\n", crc32fast::hash(body.as_bytes()));
            assert_eq!(parse(text.as_bytes()), None, "{body}");
        }
    }
}
