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

use crate::output::{event_json, skipped_json};

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
        Ok(Outgoing {
            seq: record.seq,
            subject: format!("{prefix}.{}", record.event.kind()),
            payload: serde_json::to_vec(&event_json(record))?,
        })
    }

    /// The message of records the journal steps over.
    pub fn gap(prefix: &str, skipped: &Skipped) -> anyhow::Result<Self> {
        Ok(Outgoing {
            seq: skipped.to,
            subject: format!("{prefix}.skipped"),
            payload: serde_json::to_vec(&skipped_json(skipped))?,
        })
    }
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
            match parse_payload(&message.payload).unwrap() {
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
