//! One journal record as one JetStream message, and back.
//!
//! The payload is the record's line of the JSON event stream (`log --json`,
//! docs/FORMAT.md "The event stream"); a hole `repair` recorded is its
//! `skipped` line. The subject is `<prefix>.<type>` (`movie-queue.added`),
//! so a consumer can take one kind only. The header `Nats-Msg-Id` is
//! `<store id>:<seq>` (JetStream drops a second message with the same id
//! within its duplicate window, and the shipper and `restore` read the
//! store and the record from it); a `skipped` message carries the last
//! record it stands for.

use anyhow::{Context, bail};
use movie_queue::{Event, EventRecord, Seq, Skipped, StoreId};
use serde_json::{Map, Value};

use crate::output::{EVENT_LINE_SCHEMA, event_json, skipped_json};

/// What a message stands for.
#[derive(Debug, Clone)]
pub enum Shipped {
    /// A record.
    Record(Box<EventRecord>),
    /// Records the journal steps over (a hole `repair` recorded, or
    /// records cut under the compaction base): `from..=to`.
    Gap { from: Seq, to: Seq, reason: String },
}

/// A message ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The first record it stands for (a record: its own number).
    pub first: Seq,
    /// The record it carries (a gap: the last it stands for).
    pub seq: Seq,
    /// `<prefix>.<type>`.
    pub subject: String,
    /// The JSON line.
    pub payload: Vec<u8>,
}

impl Outgoing {
    /// The message of `record`.
    pub fn record(prefix: &str, record: &EventRecord) -> anyhow::Result<Self> {
        let payload = match line_as_written(record) {
            Some(line) => line,
            None => serde_json::to_vec(&event_json(record))?,
        };
        Ok(Outgoing {
            first: record.seq,
            seq: record.seq,
            subject: format!("{prefix}.{}", record.event.kind()),
            payload,
        })
    }

    /// The message of records the journal steps over.
    pub fn gap(prefix: &str, skipped: &Skipped) -> anyhow::Result<Self> {
        Ok(Outgoing {
            first: skipped.from,
            seq: skipped.to,
            subject: format!("{prefix}.skipped"),
            payload: serde_json::to_vec(&skipped_json(skipped))?,
        })
    }
}

/// The record's line of `log --json` (the same members, in the same
/// order, as `event_json` gives), written without building it as a JSON
/// value: the line's own members, then the event's fields spliced from
/// its serialization (`{"added":{"movie":…}}`). `None` when the event does
/// not serialize as one object of one object.
fn line_as_written(record: &EventRecord) -> Option<Vec<u8>> {
    use std::io::Write;
    let kind = record.event.kind();
    let event = serde_json::to_vec(&record.event).ok()?;
    let fields = event
        .strip_prefix(format!("{{\"{kind}\":{{").as_bytes())?
        .strip_suffix(b"}}")?;
    let mut line = Vec::with_capacity(event.len() + 64);
    write!(
        line,
        "{{\"schema\":{EVENT_LINE_SCHEMA},\"seq\":{},\"ts\":",
        record.seq.0
    )
    .ok()?;
    serde_json::to_writer(&mut line, &record.ts).ok()?;
    write!(line, ",\"type\":\"{kind}\",\"v\":{}", record.version).ok()?;
    if !fields.is_empty() {
        line.push(b',');
        line.extend_from_slice(fields);
    }
    line.push(b'}');
    Some(line)
}

/// `<store id>:<seq>`, the message's `Nats-Msg-Id`.
pub fn message_id(store: StoreId, seq: Seq) -> String {
    format!("{store}:{}", seq.0)
}

/// The store and record of a `Nats-Msg-Id`; `None` when it is not one a
/// shipper wrote.
pub fn parse_message_id(id: &str) -> Option<(StoreId, Seq)> {
    let (store, seq) = id.split_once(':')?;
    let seq = (!seq.is_empty() && seq.bytes().all(|byte| byte.is_ascii_digit()))
        .then(|| seq.parse().ok())
        .flatten()?;
    Some((StoreId::parse(store)?, Seq(seq)))
}

/// What a message's payload (a line of the JSON event stream) holds.
pub fn parse_payload(payload: &[u8]) -> anyhow::Result<Shipped> {
    if let Some(record) = parse_as_written(payload) {
        return Ok(Shipped::Record(Box::new(record)));
    }
    parse_any_order(payload)
}

/// A record line as the shipper writes it, members in this order:
/// `{"schema":1,"seq":N,"ts":T,"type":"K","v":V,…the event's fields}`,
/// decoded with one parse of the event's own fields (`None`: another
/// layout, which [`parse_any_order`] reads). Restoring a million records
/// is mostly this.
fn parse_as_written(payload: &[u8]) -> Option<EventRecord> {
    fn number(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let end = bytes
            .iter()
            .position(|byte| !(byte.is_ascii_digit() || matches!(byte, b'.' | b'-' | b'+' | b'e' | b'E')))?;
        (end > 0).then(|| bytes.split_at(end))
    }
    let rest = payload.strip_prefix(b"{\"schema\":1,\"seq\":")?;
    let (seq, rest) = number(rest)?;
    let rest = rest.strip_prefix(b",\"ts\":")?;
    let (ts, rest) = number(rest)?;
    let rest = rest.strip_prefix(b",\"type\":\"")?;
    let kind_end = rest.iter().position(|&byte| byte == b'"')?;
    let (kind, rest) = rest.split_at(kind_end);
    if kind.is_empty() || kind == b"skipped" || !kind.iter().all(|byte| byte.is_ascii_lowercase() || *byte == b'_') {
        return None;
    }
    let rest = rest.strip_prefix(b"\",\"v\":")?;
    let (version, rest) = number(rest)?;
    // `,"movie":{…}}` (the event's fields, then the line's end) or `}`.
    let fields = match rest.strip_prefix(b",") {
        Some(fields) => fields.strip_suffix(b"}")?,
        None if rest == b"}" => &[][..],
        None => return None,
    };
    let mut event = Vec::with_capacity(fields.len() + kind.len() + 8);
    event.extend_from_slice(b"{\"");
    event.extend_from_slice(kind);
    event.extend_from_slice(b"\":{");
    event.extend_from_slice(fields);
    event.extend_from_slice(b"}}");
    let text = |bytes: &[u8]| std::str::from_utf8(bytes).ok().map(str::to_owned);
    let seq: u64 = text(seq)?.parse().ok()?;
    let ts: f64 = text(ts)?.parse().ok()?;
    let version: u32 = text(version)?.parse().ok()?;
    let event: Event = serde_json::from_slice(&event).ok()?;
    Some(EventRecord::new(Seq(seq), ts, event).with_version(version))
}

/// Any line of the stream, its members in any order.
fn parse_any_order(payload: &[u8]) -> anyhow::Result<Shipped> {
    let value: Value = serde_json::from_slice(payload).context("the message is not JSON")?;
    let Value::Object(mut line) = value else {
        bail!("the message is not a JSON object");
    };
    let number = |line: &Map<String, Value>, name: &str| {
        line.get(name)
            .and_then(Value::as_u64)
            .with_context(|| format!("the message has no whole number `{name}`"))
    };
    match line.get("schema").and_then(Value::as_u64) {
        Some(1) => {}
        other => bail!("the message's line schema is {other:?}, not 1"),
    }
    let seq = Seq(number(&line, "seq")?);
    let kind = line
        .get("type")
        .and_then(Value::as_str)
        .context("the message has no `type`")?
        .to_owned();
    if kind == "skipped" {
        let from = Seq(number(&line, "from")?);
        let to = Seq(number(&line, "to")?);
        if to != seq || from > to || from == Seq(0) {
            bail!("the `skipped` message's records {from} to {to} do not end at its `seq` {seq}");
        }
        let reason = line
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        return Ok(Shipped::Gap { from, to, reason });
    }
    let ts = line
        .get("ts")
        .and_then(Value::as_f64)
        .context("the message has no number `ts`")?;
    let version = u32::try_from(number(&line, "v")?).context("the message's `v` is out of range")?;
    for name in ["schema", "seq", "ts", "type", "v"] {
        line.remove(name);
    }
    let mut event = Map::new();
    event.insert(kind.clone(), Value::Object(line));
    let event: Event = serde_json::from_value(Value::Object(event))
        .with_context(|| format!("the message's `{kind}` event is not one this build reads"))?;
    Ok(Shipped::Record(Box::new(
        EventRecord::new(seq, ts, event).with_version(version),
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use movie_queue::Movie;

    #[test]
    fn a_record_comes_back_from_its_message_as_it_was() {
        let movie = Movie::new("603", "The Matrix", 1999).with_imdb_id("tt0133093");
        let events = [
            Event::Added { movie: movie.clone() },
            Event::Taken { id: "603".into() },
            Event::Failed {
                movie,
                error: "timeout".into(),
                retry_after: 1_760_806_543.125,
            },
            Event::Requeued {
                ids: vec!["1".into(), "2".into()],
            },
        ];
        for (index, event) in events.into_iter().enumerate() {
            let record = EventRecord::new(Seq(index as u64 + 7), 1_760_806_482.100_000_1, event).with_version(2);
            let message = Outgoing::record("mq", &record).unwrap();
            assert_eq!(message.subject, format!("mq.{}", record.event.kind()));
            assert_eq!(
                parse_as_written(&message.payload),
                Some(record.clone()),
                "the quick way"
            );
            match parse_any_order(&message.payload).unwrap() {
                Shipped::Record(back) => assert_eq!(*back, record, "the long way"),
                other @ Shipped::Gap { .. } => panic!("{other:?}"),
            }
            // Members in another order: the long way reads them.
            let value: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
            let mut reordered = serde_json::Map::new();
            for (key, member) in value.as_object().unwrap().iter().rev() {
                reordered.insert(key.clone(), member.clone());
            }
            let reordered = serde_json::to_vec(&reordered).unwrap();
            assert_eq!(parse_as_written(&reordered), None);
            match parse_payload(&reordered).unwrap() {
                Shipped::Record(back) => assert_eq!(*back, record),
                other @ Shipped::Gap { .. } => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn message_ids_name_the_store_and_the_record_and_nothing_else_parses() {
        let store = StoreId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let id = message_id(store, Seq(42));
        assert_eq!(id, "0123456789abcdef0123456789abcdef:42");
        assert_eq!(parse_message_id(&id), Some((store, Seq(42))));
        for bad in [
            "",
            "42",
            "0123456789abcdef0123456789abcdef:",
            "0123456789abcdef0123456789abcdef:-1",
            "x:1",
        ] {
            assert_eq!(parse_message_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_message_that_is_not_a_line_of_the_stream_is_refused_with_the_reason() {
        for (payload, said) in [
            (&b"nope"[..], "not JSON"),
            (b"[1]", "not a JSON object"),
            (b"{\"schema\":2,\"seq\":1}", "schema"),
            (
                b"{\"schema\":1,\"seq\":1,\"ts\":1.5,\"type\":\"exploded\",\"v\":2}",
                "exploded",
            ),
            (
                b"{\"schema\":1,\"seq\":3,\"type\":\"skipped\",\"from\":4,\"to\":3}",
                "do not end",
            ),
        ] {
            let error = format!("{:#}", parse_payload(payload).unwrap_err());
            assert!(error.contains(said), "{error}");
        }
    }
}
