//! The documented files: the four JSON arrays the application reads,
//! rendered from the projection's stored JSON and parsed in one pass.

use super::entries::Entries;
use super::index::IndexBuilder;
use crate::entry::QueueEntry;
use crate::projection::{Place, QueueState};

/// Serializes the four documented files of `state` (pretty-printed, as
/// the application's own writer does), from the entries' stored JSON.
#[must_use]
pub fn render_files(state: &QueueState) -> [Vec<u8>; 4] {
    render_places(state, None)
}

/// A snapshot's files as they are written: the four documented files, the
/// index of their entries, and the counts a reader answers from.
#[derive(Debug)]
pub struct Rendered {
    /// The documented files, in [`crate::layout::QUEUE_FILES`] order.
    pub files: [Vec<u8>; 4],
    /// `queue_snapshot.idx` (see `index.rs`).
    pub index: Vec<u8>,
    /// The entries of each place, as [`Place::ALL`].
    pub counts: [u64; 5],
    /// How many failed entries have each `retry_count`, ascending.
    pub failed_retries: Vec<(u32, u64)>,
}

/// Renders the documented files of `state` and their index.
#[must_use]
pub fn render_snapshot(state: &QueueState) -> Rendered {
    let mut index = IndexBuilder::default();
    let files = render_places(state, Some(&mut index));
    Rendered {
        files,
        index: index.finish(),
        counts: Place::ALL.map(|place| state.count(place) as u64),
        failed_retries: state.failed_retry_counts(),
    }
}

/// The four documented files of `state`, noting each entry in `index`
/// when there is one.
fn render_places(state: &QueueState, mut index: Option<&mut IndexBuilder>) -> [Vec<u8>; 4] {
    std::array::from_fn(|file| {
        let mut out = Vec::new();
        let written = render_file(state, file, index.as_deref_mut(), &mut |bytes| {
            out.extend_from_slice(bytes);
            Ok(())
        });
        debug_assert!(written.is_ok(), "a vector takes every byte");
        out
    })
}

/// The places documented file number `file` (as
/// [`crate::layout::QUEUE_FILES`]) holds, in its order.
pub(crate) const FILE_PLACES: [&[Place]; 4] = [
    &[Place::InFlight, Place::Pending],
    &[Place::Failed],
    &[Place::Completed],
    &[Place::Removed],
];

/// How much of a file is rendered before it is handed on.
const RENDER_PIECE: usize = 1 << 20;

/// Renders documented file number `file` of `state` (as
/// [`crate::layout::QUEUE_FILES`]), handing it to `write` in pieces of
/// about 1 MiB (the file is never held whole) and noting each entry in
/// `index` when there is one; returns its length and CRC32.
///
/// # Errors
/// The first error of `write`.
pub fn render_file(
    state: &QueueState,
    file: usize,
    index: Option<&mut IndexBuilder>,
    write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<(u64, u32)> {
    let entries = FILE_PLACES[file]
        .iter()
        .flat_map(|&place| state.entries_stored(place).map(move |(id, json)| (place, id, json)));
    render(entries, index, write)
}

/// Renders entries (each as compact JSON) as a pretty-printed JSON array,
/// one entry at a time, each indented by two spaces as Python's
/// `json.dump(..., indent=2)` writes it; notes where each one is; hands
/// the text to `write` in pieces. Returns its length and CRC32.
fn render<'a>(
    entries: impl Iterator<Item = (Place, &'a str, &'a str)>,
    mut index: Option<&mut IndexBuilder>,
    write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<(u64, u32)> {
    let (mut written, mut hasher) = (0_u64, crc32fast::Hasher::new());
    let mut hand_on = |out: &mut Vec<u8>, written: &mut u64| {
        hasher.update(out);
        *written += out.len() as u64;
        let result = write(out);
        out.clear();
        result
    };
    let mut out = b"[".to_vec();
    let mut empty = true;
    for (place, id, json) in entries {
        out.extend_from_slice(if empty { b"\n  " } else { b",\n  " });
        empty = false;
        let start = out.len();
        write_pretty(&mut out, json.as_bytes(), b"  ");
        if let Some(index) = index.as_deref_mut() {
            index.push(id, place, written + start as u64, &out[start..]);
        }
        if out.len() >= RENDER_PIECE {
            hand_on(&mut out, &mut written)?;
        }
    }
    out.extend_from_slice(if empty { b"]\n" } else { b"\n]\n" });
    hand_on(&mut out, &mut written)?;
    Ok((written, hasher.finalize()))
}

/// Writes compact JSON as `serde_json::to_vec_pretty` would write the same
/// value, with `margin` after every line break, without parsing it into a
/// tree. `compact` must be the compact output of `serde_json` (no whitespace
/// outside strings), as every entry the state stores is.
fn write_pretty(out: &mut Vec<u8>, compact: &[u8], margin: &[u8]) {
    let line = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend_from_slice(margin);
        for _ in 0..depth {
            out.extend_from_slice(b"  ");
        }
    };
    let mut depth = 0_usize;
    let mut rest = compact;
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        match byte {
            b'"' => {
                // Copy the string through its closing quote, escapes and all.
                let mut end = 0;
                let mut escaped = false;
                for &inner in rest {
                    end += 1;
                    match inner {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => break,
                        _ => {}
                    }
                }
                out.push(b'"');
                out.extend_from_slice(&rest[..end]);
                rest = &rest[end..];
            }
            b'{' | b'[' => {
                out.push(byte);
                let close = if byte == b'{' { b'}' } else { b']' };
                if let Some(after_close) = rest.strip_prefix(&[close]) {
                    out.push(close);
                    rest = after_close;
                } else {
                    depth += 1;
                    line(out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                line(out, depth);
                out.push(byte);
            }
            b',' => {
                out.push(b',');
                line(out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(byte),
        }
    }
}

/// Parses one documented file: a JSON array of entries, read in one pass
/// straight into entries (no intermediate tree of the whole file).
///
/// # Errors
/// A message naming the entry index and what is wrong with it, or where
/// the JSON itself is malformed.
pub fn parse_entries(bytes: &[u8]) -> std::result::Result<Vec<QueueEntry>, String> {
    match parse_entries_prefix(bytes) {
        (entries, None) => Ok(entries),
        (_, Some(error)) => Err(error),
    }
}

/// Parses as many entries of a documented file as hold up: every entry
/// before the first invalid one (or the first place the JSON breaks), and
/// what stopped the parse, if anything did. `repair` salvages a damaged
/// legacy file with it.
#[must_use]
pub fn parse_entries_prefix(bytes: &[u8]) -> (Vec<QueueEntry>, Option<String>) {
    let mut entries = Vec::new();
    let error = parse_entries_each(bytes, &mut |entry| {
        entries.push(entry);
        Ok(())
    })
    .err();
    (entries, error)
}

/// Parses a documented file one entry at a time, handing each to `each`
/// before the next is read (see [`Entries`]): the first invalid entry,
/// the first place the JSON breaks, or the first error `each` returns
/// stops it. Returns how many entries were handed on.
///
/// # Errors
/// A message naming the entry index and what is wrong with it, or where
/// the JSON itself is malformed.
pub fn parse_entries_each(
    bytes: &[u8],
    each: &mut dyn FnMut(QueueEntry) -> std::result::Result<(), String>,
) -> std::result::Result<usize, String> {
    let mut entries = Entries::new(each);
    entries.feed(bytes, true)?;
    Ok(entries.count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// [`render`] into one vector, checking the length and CRC32 it says.
    fn rendered<'a>(
        entries: impl Iterator<Item = (Place, &'a str, &'a str)>,
        index: Option<&mut IndexBuilder>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let (length, crc) = render(entries, index, &mut |bytes| {
            out.extend_from_slice(bytes);
            Ok(())
        })
        .expect("a vector takes every byte");
        assert_eq!((length, crc), (out.len() as u64, crc32fast::hash(&out)));
        out
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::from),
            "[ a\"\\\\/:,{}\\[\\]\n\t\u{1}\u{e9}]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::vec(("[a\"\\\\:,{ ]{0,3}", inner), 0..5)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn pretty_writing_of_compact_json_matches_serde_json(value in json_value()) {
            let compact = serde_json::to_string(&value).expect("serializes");
            let mut out = Vec::new();
            write_pretty(&mut out, compact.as_bytes(), b"");
            prop_assert_eq!(String::from_utf8(out).expect("UTF-8"), serde_json::to_string_pretty(&value).expect("serializes"));
        }
    }

    #[test]
    fn rendered_files_are_indented_like_python_json_dump() {
        let entries = [
            r#"{"id":"1","title":"A, B: \"C\"","year":1999,"tags":[],"more":{"a":[1,{}]}}"#,
            r#"{"id":"2","title":"x","year":"2000"}"#,
        ];
        let mut index = IndexBuilder::default();
        let stored = entries.iter().map(|json| (Place::Pending, "", *json));
        let text = String::from_utf8(rendered(stored, Some(&mut index))).expect("UTF-8");
        let expected = "[\n  {\n    \"id\": \"1\",\n    \"title\": \"A, B: \\\"C\\\"\",\n    \"year\": 1999,\n    \"tags\": [],\n    \"more\": {\n      \"a\": [\n        1,\n        {}\n      ]\n    }\n  },\n  {\n    \"id\": \"2\",\n    \"title\": \"x\",\n    \"year\": \"2000\"\n  }\n]\n";
        assert_eq!(text, expected);
        assert_eq!(rendered(std::iter::empty(), None), b"[]\n");
    }
}
