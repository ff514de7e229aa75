//! How deep the store's JSON may nest: one limit where input comes in, a
//! looser one where the store reads back what it wrote.
//!
//! A movie may nest [`MOVIE_NESTING_MAX`] levels (the movie object is level
//! one); every door (the Rust API, the command-line tool, Python, a legacy
//! store, `import DIR`) refuses a deeper one by name. The store then wraps
//! a movie a few levels deeper (a record's payload, an import's list, a
//! documented file's array), and `serde_json` stops at 128 levels by
//! default, so the readers here go on to [`DECODE_NESTING_MAX`]: whatever a
//! door accepted (and whatever an earlier release accepted, up to 127
//! levels) reads back.

use serde::de::DeserializeOwned;

/// The deepest a movie's JSON may nest, the movie object included: `{}` is
/// one level, `{"a": [1]}` two.
pub const MOVIE_NESTING_MAX: usize = 64;

/// The deepest JSON the store's readers decode: twice `serde_json`'s own
/// limit, far above what a door lets in plus the store's wrapping, and
/// shallow enough that the recursive decode stays within a thread's stack.
pub const DECODE_NESTING_MAX: usize = 256;

/// How many arrays and objects enclose the deepest value of `value` (a
/// scalar: 0). Walks without recursion, so a value built in code however
/// deep is measured, not overflowed.
#[must_use]
pub fn value_depth(value: &serde_json::Value) -> usize {
    // Most of a movie's fields are scalars: measured without allocating
    // (every queue operation measures the movie it is given).
    let flat = match value {
        serde_json::Value::Array(items) => items.iter().all(is_scalar),
        serde_json::Value::Object(map) => map.values().all(is_scalar),
        _ => return 0,
    };
    if flat {
        return 1;
    }
    let mut deepest = 0;
    let mut stack = vec![(value, 0_usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    deepest
}

fn is_scalar(value: &serde_json::Value) -> bool {
    !matches!(value, serde_json::Value::Array(_) | serde_json::Value::Object(_))
}

/// How deep the JSON text `bytes` nests (brackets inside strings do not
/// count). Meant for text that failed to parse for its depth: it does not
/// validate.
#[must_use]
pub fn text_depth(bytes: &[u8]) -> usize {
    let (mut strings, mut depth, mut deepest) = (Strings::default(), 0_usize, 0_usize);
    for &byte in bytes {
        if !strings.structural(byte) {
            continue;
        }
        match byte {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Where a scan of JSON text is with respect to its strings: inside one
/// (and just after a backslash there), or outside.
#[derive(Debug, Clone, Copy, Default)]
struct Strings {
    inside: bool,
    escaped: bool,
}

impl Strings {
    /// Takes the next byte; says whether it is structural: outside every
    /// string, and not a quote that opens or closes one.
    fn structural(&mut self, byte: u8) -> bool {
        if self.inside {
            match (self.escaped, byte) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.inside = false,
                _ => {}
            }
            return false;
        }
        self.inside = byte == b'"';
        !self.inside
    }
}

/// Whether `error` is `serde_json` stopping at its own nesting limit.
/// `serde_json` has no public code for it; its message is fixed.
#[must_use]
pub fn is_too_deep(error: &serde_json::Error) -> bool {
    error.is_syntax() && error.to_string().starts_with("recursion limit exceeded")
}

/// Parses `bytes` as `T` like `serde_json::from_slice`, and text that
/// nests past `serde_json`'s limit (128) up to [`DECODE_NESTING_MAX`] too.
///
/// # Errors
/// `serde_json`'s error; for text deeper than [`DECODE_NESTING_MAX`], its
/// "recursion limit exceeded".
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    from_slice_within(bytes, 0)
}

/// [`from_slice`] for a value that sits `outer` levels deep in its text
/// (an entry of a documented file: 1), so the whole text's nesting is
/// what [`DECODE_NESTING_MAX`] bounds.
///
/// # Errors
/// As [`from_slice`].
pub fn from_slice_within<T: DeserializeOwned>(bytes: &[u8], outer: usize) -> serde_json::Result<T> {
    match serde_json::from_slice(bytes) {
        Err(error) if is_too_deep(&error) && text_depth(bytes) + outer <= DECODE_NESTING_MAX => {
            deserialize_deep(bytes, |deserializer| T::deserialize(deserializer))
        }
        parsed => parsed,
    }
}

/// Runs `read` over a deserializer of `bytes` without `serde_json`'s
/// nesting limit, then checks that nothing but whitespace follows. Only
/// for text [`text_depth`] measured at most [`DECODE_NESTING_MAX`] deep.
///
/// # Errors
/// What `read` or the trailing check returns.
pub fn deserialize_deep<T>(
    bytes: &[u8],
    read: impl FnOnce(&mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>) -> serde_json::Result<T>,
) -> serde_json::Result<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer.disable_recursion_limit();
    let value = read(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// JSON's whitespace.
pub fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The length of the value `bytes` starts with: an object or array through
/// its matching bracket (brackets inside strings not counted), a string
/// through its closing quote, anything else up to the next whitespace,
/// `,`, `]` or `}`. `None`: the value may go on past `bytes` (not `end`).
/// A malformed value is delimited all the same, and `serde_json` says
/// what is wrong with it.
pub fn value_length(bytes: &[u8], end: bool) -> Option<usize> {
    ValueScan::default().length(bytes, end)
}

/// [`value_length`] over text that arrives in pieces: each call goes on
/// from where the last one stopped (the bytes it was given again, and
/// more), so a long value is scanned once, not once per piece.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValueScan {
    scanned: usize,
    depth: usize,
    strings: Strings,
}

impl ValueScan {
    /// Has it scanned nothing yet?
    #[must_use]
    pub fn is_fresh(&self) -> bool {
        self.scanned == 0 && self.depth == 0
    }

    /// The length of the value `bytes` starts with (the same start each
    /// call, longer or as long as before), as [`value_length`].
    pub fn length(&mut self, bytes: &[u8], end: bool) -> Option<usize> {
        let first = *bytes.first()?;
        if !matches!(first, b'{' | b'[' | b'"') {
            let found = bytes
                .iter()
                .skip(self.scanned)
                .position(|byte| is_whitespace(*byte) || matches!(byte, b',' | b']' | b'}'))
                .map(|at| (self.scanned + at).max(1));
            self.scanned = bytes.len();
            return found.or(end.then_some(bytes.len()));
        }
        let mut index = self.scanned;
        while index < bytes.len() {
            // Inside a string only a quote or a backslash matters: jump to
            // the next one.
            if self.strings.inside && !self.strings.escaped {
                let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[index..]) else {
                    self.scanned = bytes.len();
                    break;
                };
                index += at;
            }
            let byte = bytes[index];
            index += 1;
            self.scanned = index;
            let was_inside = self.strings.inside;
            if !self.strings.structural(byte) {
                // A string closed at the top: the value was that string.
                if was_inside && !self.strings.inside && self.depth == 0 {
                    return Some(index);
                }
                continue;
            }
            match byte {
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(index);
                    }
                }
                _ => {}
            }
        }
        end.then_some(bytes.len())
    }
}

/// The top-level members of the compact JSON object `object` (no
/// whitespace outside strings, as `serde_json` writes it): each key as
/// written between its quotes, and its value's text. Stops at anything
/// that is not such an object.
pub fn members(object: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = object.strip_prefix('{').unwrap_or_default();
    std::iter::from_fn(move || {
        rest = rest.strip_prefix(',').unwrap_or(rest);
        let key_length = value_length(rest.as_bytes(), true).filter(|_| rest.starts_with('"'))?;
        let key = rest.get(1..key_length - 1)?;
        let after = rest.get(key_length..)?.strip_prefix(':')?;
        let value_length = value_length(after.as_bytes(), true)?;
        let value = after.get(..value_length)?;
        rest = after.get(value_length..)?;
        Some((key, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn depths_count_containers_not_brackets_in_strings() {
        assert_eq!(value_depth(&json!(1)), 0);
        assert_eq!(value_depth(&json!({})), 1);
        assert_eq!(value_depth(&json!({"a": [1, {"b": []}], "c": 2})), 4);
        assert_eq!(text_depth(br#"{"a": "[[[{{{\"]]]", "b": [1]}"#), 2);
        assert_eq!(text_depth(nested(70).as_bytes()), 70);
    }

    #[test]
    fn text_past_serde_jsons_limit_reads_up_to_the_decode_limit_and_no_further() {
        let deep = nested(200);
        assert!(
            serde_json::from_str::<Value>(&deep).is_err(),
            "serde_json alone stops at 128"
        );
        let value: Value = from_slice(deep.as_bytes()).expect("200 levels read back");
        assert_eq!(value_depth(&value), 200);
        let too_deep = nested(DECODE_NESTING_MAX + 1);
        let error = from_slice::<Value>(too_deep.as_bytes()).expect_err("past the decode limit");
        assert!(is_too_deep(&error), "{error}");
        assert!(from_slice::<Value>(b"[1] x").is_err(), "trailing text is still refused");
    }
}
