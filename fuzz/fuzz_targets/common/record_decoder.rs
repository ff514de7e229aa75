//! `record_decoder`: arbitrary bytes as a journal segment, and a round trip
//! of fuzzer-chosen payloads through the record framing.
//!
//! Input: byte 0 picks the mode. The whole input is always walked as a
//! segment as it is. Bit 0 set: the rest is also walked behind a valid
//! header (first sequence number 1, or the next 8 bytes when bit 1 is set),
//! so the fuzzer gets past the magic. Bit 2 set: the rest is read as a
//! round trip instead: a first sequence number, up to 16 payload chunks,
//! and a damage to apply (none, a cut or a bit flip).
//!
//! Properties: nothing panics; a decoded record re-encodes to its exact
//! bytes; every defect reported is true of the bytes; a record
//! `valid_record_follows` points at decodes; a decoded event payload
//! re-encodes and decodes to the same event; encoded records decode to the
//! same sequence numbers and payloads; a cut keeps exactly the whole records
//! before it; a bit flipped in a record's CRC, sequence number or payload
//! is always caught.

use movie_queue::Seq;
use movie_queue::testing::{
    RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, RecordDefect, Resync, SEGMENT_HEADER_BYTES, decode_record,
    decode_segment_header, encode_record, encode_segment_header, valid_record_follows,
};
use movie_queue::testing::{decode_payload, encode_payload};

use super::bytes::{Builder, Cursor};

/// How `valid_record_follows` bounds its search (see `record.rs`).
const FOLLOW_WINDOW: u64 = 1 << 20;

/// Runs one input.
pub fn run(data: &[u8]) {
    walk(data);
    let mut cursor = Cursor::new(data);
    let mode = cursor.byte();
    if mode & 4 != 0 {
        round_trip(&mut cursor);
    } else if mode & 1 != 0 {
        let first_seq = if mode & 2 != 0 { Seq(cursor.u64()) } else { Seq(1) };
        let mut segment = encode_segment_header(first_seq).to_vec();
        segment.extend_from_slice(cursor.rest());
        walk(&segment);
    }
}

/// What a walk found: each record's sequence number and payload.
type Records<'a> = Vec<(Seq, &'a [u8])>;

/// Walks `bytes` as a segment the way replay does, checking each step.
/// Returns the records before the first defect.
pub fn walk(bytes: &[u8]) -> Records<'_> {
    let mut records = Vec::new();
    let Ok(first_seq) = decode_segment_header(bytes) else {
        return records;
    };
    let again = encode_segment_header(first_seq);
    assert_eq!(decode_segment_header(&again), Ok(first_seq), "header round trip");
    assert_eq!(again[..12], bytes[..12], "magic and version re-encode");
    assert_eq!(again[16..24], bytes[16..24], "first_seq re-encodes");
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut expected = first_seq;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        match decode_record(rest, first_seq) {
            Ok(record) => {
                let framed = record.framed_len();
                assert!(
                    framed > RECORD_HEADER_BYTES && framed <= rest.len(),
                    "record within the bytes"
                );
                assert_eq!(record.payload, &rest[RECORD_HEADER_BYTES..framed]);
                let mut encoded = Vec::new();
                encode_record(&mut encoded, first_seq, record.seq, record.payload);
                assert_eq!(encoded, rest[..framed], "a decoded record re-encodes to its bytes");
                check_payload(record.payload);
                records.push((record.seq, record.payload));
                expected = record.seq.next_or_max();
                offset += framed;
            }
            Err(defect) => {
                check_defect(rest, &defect);
                if let Resync::Found(skip) =
                    valid_record_follows(rest.get(1..).unwrap_or_default(), first_seq, expected)
                {
                    let found = decode_record(&rest[1 + skip..], first_seq)
                        .expect("valid_record_follows points at a record that decodes");
                    assert!(found.seq >= expected && found.seq.0 - expected.0 < FOLLOW_WINDOW);
                }
                break;
            }
        }
    }
    records
}

/// `Seq::next` without the overflow (the harness must not panic itself).
trait NextOrMax {
    fn next_or_max(self) -> Seq;
}

impl NextOrMax for Seq {
    fn next_or_max(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

/// Is the defect decode_record reported true of `rest`?
fn check_defect(rest: &[u8], defect: &RecordDefect) {
    let length = rest
        .get(..4)
        .map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
    match *defect {
        RecordDefect::ShortHeader { available } => {
            assert!(available == rest.len() as u64 && rest.len() < RECORD_HEADER_BYTES);
        }
        RecordDefect::Empty => assert_eq!(length, Some(0)),
        RecordDefect::TooLarge(declared) => {
            assert!(declared > RECORD_PAYLOAD_BYTES_MAX && length == Some(declared));
        }
        RecordDefect::PastEnd {
            length: declared,
            available,
        } => {
            assert_eq!(available, (rest.len() - RECORD_HEADER_BYTES) as u64);
            assert!(u64::from(declared) > available && length == Some(declared));
        }
        RecordDefect::Checksum { expected, found } => assert_ne!(expected, found),
        ref other => panic!("a defect this harness does not know: {other:?}"),
    }
}

/// A payload that decodes as an event re-encodes to one that decodes the same.
pub fn check_payload(payload: &[u8]) {
    let Ok(decoded) = decode_payload(payload) else {
        return;
    };
    let (ts, event) = (decoded.ts, decoded.event);
    assert!(ts.is_finite());
    assert!(
        event.since_version() <= decoded.version,
        "a payload holds only events of its version"
    );
    let encoded = encode_payload(ts, &event).expect("a decoded event encodes");
    let again = decode_payload(&encoded).expect("an encoded event decodes");
    assert_eq!(ts.to_bits(), again.ts.to_bits(), "event time round trip");
    assert_eq!(
        event,
        again.event,
        "event round trip through {}",
        String::from_utf8_lossy(&encoded)
    );
}

/// Encodes fuzzer-chosen payloads, decodes them back, then damages the
/// segment and checks what is still decoded.
fn round_trip(cursor: &mut Cursor<'_>) {
    let first_seq = Seq(1 + cursor.u64() % (movie_queue::testing::SEQ_MAX - 64));
    let count = cursor.below(17);
    let mut payloads = Vec::new();
    for _ in 0..count {
        let chunk = cursor.chunk();
        payloads.push(if chunk.is_empty() { &b"{}"[..] } else { chunk });
    }
    let mut segment = encode_segment_header(first_seq).to_vec();
    let mut starts = Vec::new();
    for (seq, payload) in (first_seq.0..).map(Seq).zip(&payloads) {
        starts.push(segment.len());
        encode_record(&mut segment, first_seq, seq, payload);
        check_payload(payload);
    }
    let whole: Vec<(Seq, &[u8])> = (first_seq.0..).map(Seq).zip(payloads.iter().copied()).collect();
    assert_eq!(walk(&segment), whole, "encoded records decode to themselves");
    if !payloads.is_empty() {
        let body = &segment[SEGMENT_HEADER_BYTES..];
        assert_eq!(valid_record_follows(body, first_seq, first_seq), Resync::Found(0));
    }
    match cursor.below(3) {
        0 => {}
        1 => {
            let cut = usize::from(cursor.u16()) % (segment.len() + 1);
            let kept = walk(&segment[..cut]);
            if cut < SEGMENT_HEADER_BYTES {
                assert!(kept.is_empty());
            } else {
                let whole_before = starts
                    .iter()
                    .zip(&payloads)
                    .filter(|&(&start, payload)| start + RECORD_HEADER_BYTES + payload.len() <= cut)
                    .count();
                assert_eq!(
                    kept,
                    whole[..whole_before],
                    "a cut keeps exactly the whole records before it"
                );
            }
        }
        _ => {
            let bit = usize::from(cursor.u16()) % (segment.len() * 8);
            let at = bit / 8;
            let mut damaged = segment.clone();
            damaged[at] ^= 1 << (bit % 8);
            let kept = walk(&damaged);
            if at < SEGMENT_HEADER_BYTES {
                // Bytes 28..32 are reserved and outside the header CRC.
                if at < 28 {
                    assert!(
                        decode_segment_header(&damaged).is_err(),
                        "a header flip at byte {at} went unnoticed"
                    );
                }
                return;
            }
            let hit = starts.iter().rposition(|&start| start <= at).unwrap_or(0);
            assert_eq!(kept[..hit.min(kept.len())], whole[..hit.min(kept.len())]);
            assert!(kept.len() >= hit, "records before the flip stay readable");
            if at - starts[hit] >= 4 {
                assert_eq!(
                    kept.len(),
                    hit,
                    "a flip in record {hit}'s crc, seq or payload went unnoticed"
                );
            }
        }
    }
}

/// Seed inputs: a real-looking journal behind a valid header, and round trips.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let events = [
        &br#"{"v":1,"ts":1760806482.5,"event":{"added":{"movie":{"id":"1","title":"Movie 1","year":"2020"}}}}"#[..],
        br#"{"v":1,"ts":1760806483.0,"event":{"taken":{"id":"1"}}}"#,
        br#"{"v":1,"ts":1760806484.0,"event":{"failed":{"movie":{"id":"1","title":"Movie 1","year":2020},"error":"Not found","retry_after":1760810084.0}}}"#,
        br#"{"v":1,"ts":1760806485.0,"event":{"completed":{"movie":{"id":"1","title":"Movie 1","year":"2020","slug":"m"}}}}"#,
        br#"{"v":1,"ts":1760806486.0,"event":{"cleaned_up":{"cutoff":1760806486.0,"ids":["1"]}}}"#,
        br#"{"v":1,"ts":1760806487.0,"event":{"imported":{"pending":[{"id":"2","title":"t","year":1}],"failed":[{"id":"3","title":"t","year":"1","retry_count":2,"last_error":"e","retry_after":5,"failed_at":4.5}],"completed":[]}}}"#,
    ];
    let mut journal = Builder::default();
    journal.byte(1);
    for (seq, event) in (1..).map(Seq).zip(events) {
        encode_record(&mut journal.bytes, Seq(1), seq, event);
    }
    let mut round = Builder::default();
    round.byte(4).u64(7).byte(u8::try_from(events.len()).unwrap_or(0));
    for event in events {
        round.chunk(event);
    }
    let cut = round.clone().byte(1).u16(100).finish();
    let flip = round.clone().byte(2).u16(900).finish();
    vec![
        ("journal", journal.finish()),
        ("round_trip", round.byte(0).finish()),
        ("round_trip_cut", cut),
        ("round_trip_flip", flip),
    ]
}
