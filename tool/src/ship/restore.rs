//! `movie-queue restore --from nats://… --stream NAME [--until …] DIR`: a
//! store rebuilt from the records a shipper published.
//!
//! It reads the stream from its first message with an ordered consumer,
//! through the message that was last when it began (or `--until`), checks
//! that every message is the next record of one store, and hands each to
//! the library's `Restore`, which checks that it applies and writes it
//! with its number and time. The journal is installed only once complete:
//! a restore that fails leaves DIR as it found it.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use movie_queue::{EventRecord, Restore, Seq, StoreId};

use super::message::{Shipped, parse_message_id, parse_payload};
use super::{Target, connect, runtime};
use crate::args::{RestoreArgs, UntilArg};
use crate::output::{counted, local_time, quoted, safe_path};
use crate::warn;

/// The record a message carries, checked to be of the same store as the
/// stream's first (`source`, set by the first).
fn record_of(message: &async_nats::jetstream::Message, source: &mut Option<StoreId>) -> anyhow::Result<EventRecord> {
    let (from_store, seq) = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
        .and_then(|id| parse_message_id(id.as_str()))
        .context("is not a record a shipper published (no store:record Nats-Msg-Id)")?;
    let source = *source.get_or_insert(from_store);
    if from_store != source {
        anyhow::bail!(
            "a record of store {from_store}, but the stream began with store {source}'s: it mixes two stores"
        );
    }
    let record = match parse_payload(&message.payload).context("does not hold a record")? {
        Shipped::Record(record) => *record,
        Shipped::Gap { from, to, reason } => {
            return Err(crate::Failure {
                message: format!(
                    "says records {from} to {to} are missing from the source's journal ({reason}): the state \
                     after them cannot be rebuilt from the stream"
                ),
                hint: Some(format!(
                    "restore the history before them with --until {}; the source's compaction base holds the state \
                     after them",
                    from.previous()
                )),
            }
            .into());
        }
    };
    if record.seq != seq {
        anyhow::bail!("says record {seq} in its id but record {} in its payload", record.seq);
    }
    Ok(record)
}

/// The progress bar on stderr (none when stderr is not a terminal).
fn progress_bar(end: u64) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(end);
        bar.set_style(
            indicatif::ProgressStyle::with_template("restoring {pos}/{len} messages ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}

/// `restore --from`.
pub fn restore(from: &str, args: &RestoreArgs) -> anyhow::Result<()> {
    let stream = args.stream.as_deref().unwrap_or_default();
    let target = Target::new(from, stream, "movie-queue");
    let dir = Path::new(&args.target);
    let started = Instant::now();
    let store = Restore::create(dir)?;
    // The records are written (encoded, checked, appended) on a thread of
    // their own while this one receives and decodes the next.
    let (records, received) = std::sync::mpsc::sync_channel::<Vec<EventRecord>>(PIPELINE);
    let writer = std::thread::Builder::new()
        .name("restore writer".into())
        .spawn(move || -> anyhow::Result<Restore> {
            let mut store = store;
            for chunk in received {
                for record in &chunk {
                    store.push(record)?;
                }
            }
            Ok(store)
        })
        .context("cannot start the restore's writer")?;
    let read = runtime()?.block_on(read_stream(&target, args.until, records));
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the restore's writer panicked"))?;
    // The writer's error first: it is why the reading stopped.
    let store = written?;
    let outcome = read?;
    let last = store.last_seq();
    if last == Seq(0) {
        return crate::fail_with_hint(
            format!(
                "stream {} holds no record at or before the --until given",
                quoted(&target.stream)
            ),
            "give a later --until (the stream's first record is the store's first)",
        );
    }
    let id = store.finish()?;
    let until = match outcome.stopped {
        Stop::End => "the end of the stream".to_owned(),
        Stop::Seq(seq) => format!("record {seq} (--until)"),
        Stop::Time(ts) => format!("the last record stamped at or before {} (--until)", local_time(ts)),
    };
    println!(
        "restored {} (records 1 to {last} of store {}) into {} in {:.1} s, through {until}; the new store is {id}",
        counted(last.0, "record", "records"),
        outcome.source,
        safe_path(dir),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// How many chunks of decoded records may wait for the writer, and how
/// many records a chunk holds (handing records over one by one would wake
/// the writer a million times).
const PIPELINE: usize = 16;
const CHUNK: usize = 512;

/// How many messages the server sends in one batch.
const BATCH: usize = 4096;

/// Where the restore stopped.
enum Stop {
    End,
    Seq(Seq),
    Time(f64),
}

struct Outcome {
    source: StoreId,
    stopped: Stop,
}

/// The stream to restore from, checked whole: its first message is
/// sequence 1 and none is missing up to its last, `end`, which carries
/// record `last_record`.
struct Source {
    stream: stream::Stream,
    end: u64,
    last_record: Seq,
}

async fn open_stream(target: &Target) -> anyhow::Result<Source> {
    let context = connect(target).await?;
    let name = quoted(&target.stream);
    let mut stream = context
        .get_stream(&target.stream)
        .await
        .with_context(|| format!("no stream {name} at {}", target.shown()))?;
    let state = stream.info().await.context("the stream's state")?.state.clone();
    if state.messages == 0 {
        return crate::fail_with_hint(
            format!("stream {name} holds no message"),
            "`movie-queue ship --to URL --stream NAME` publishes a store's records to it",
        );
    }
    if state.first_sequence != 1 || state.messages != state.last_sequence {
        return crate::fail_with_hint(
            format!(
                "stream {name} lost messages: it holds {} of sequences {} to {}",
                state.messages, state.first_sequence, state.last_sequence
            ),
            "a store is restored from its whole history, from record 1: messages were purged or deleted from \
             this stream",
        );
    }
    let last = stream
        .get_raw_message(state.last_sequence)
        .await
        .context("the stream's last message")?;
    let Some((_, last_record)) = last
        .headers
        .get(async_nats::header::NATS_MESSAGE_ID)
        .and_then(|id| parse_message_id(id.as_str()))
    else {
        return crate::fail_with_hint(
            format!("stream {name}'s last message is not a record a shipper published"),
            "restore from a stream `movie-queue ship` publishes to",
        );
    };
    Ok(Source {
        stream,
        end: state.last_sequence,
        last_record,
    })
}

/// The stream's messages from sequence `start` on, in order, with nothing
/// to acknowledge.
async fn messages_from(stream: &stream::Stream, start: u64) -> anyhow::Result<pull::Stream> {
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: start },
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .context("cannot read the stream (a consumer)")?;
    consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .messages()
        .await
        .context("cannot read the stream")
}

/// Refuses an `--until` the stream cannot answer: record 0, or a record
/// after its last.
fn check_until(until: Option<UntilArg>, name: &str, last_record: Seq) -> anyhow::Result<()> {
    match until {
        Some(UntilArg::Seq(0)) => crate::fail_with_hint(
            "--until 0 is before the first record: a restored store holds at least record 1",
            "give a record from 1, or a time (with a decimal point: 1760806482.0)",
        ),
        Some(UntilArg::Seq(until)) if until > last_record.0 => crate::fail_with_hint(
            format!("stream {name} ends at record {last_record}, before record {until}"),
            format!(
                "give a record from 1 to {last_record}; a Unix time is written with a decimal point (1760806482.0)"
            ),
        ),
        _ => Ok(()),
    }
}

/// How long the restore waits for the next message before it reads the
/// stream again from there, and how often in a row it does so before it
/// gives up.
const SILENCE: Duration = Duration::from_secs(20);
const ATTEMPTS: u32 = 6;

/// The next message of the stream, `next` (its sequence): read again from
/// there, after a pause, when the connection was lost, the server said
/// nothing for [`SILENCE`], or another message came.
async fn next_message(
    source: &Source,
    messages: &mut pull::Stream,
    next: u64,
) -> anyhow::Result<async_nats::jetstream::Message> {
    let mut failures = 0;
    let mut pause = Duration::from_millis(250);
    loop {
        let trouble = match tokio::time::timeout(SILENCE, messages.next()).await {
            Ok(Some(Ok(message))) => match message.info().map(|info| info.stream_sequence) {
                Ok(sequence) if sequence == next => return Ok(message),
                Ok(sequence) => format!("message {sequence} came where message {next} was due"),
                Err(error) => format!("a message without its place in the stream ({error})"),
            },
            Ok(Some(Err(error))) => format!("reading the stream: {error}"),
            Ok(None) => "the server ended the reading".to_owned(),
            Err(_) => format!("the server sent nothing for {} s", SILENCE.as_secs()),
        };
        failures += 1;
        if failures > ATTEMPTS {
            anyhow::bail!("{trouble}; gave up after {ATTEMPTS} attempts to read on from message {next}");
        }
        warn(&format!(
            "{trouble}; reading on from message {next} in {}",
            humantime::format_duration(pause)
        ));
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(8));
        match messages_from(&source.stream, next).await {
            Ok(fresh) => *messages = fresh,
            Err(error) => warn(&format!("{error:#}")),
        }
    }
}

async fn read_stream(
    target: &Target,
    until: Option<UntilArg>,
    records: std::sync::mpsc::SyncSender<Vec<EventRecord>>,
) -> anyhow::Result<Outcome> {
    let name = quoted(&target.stream);
    let source = open_stream(target).await?;
    check_until(until, &name, source.last_record)?;
    let end = source.end;
    let mut messages = messages_from(&source.stream, 1).await?;
    let progress = progress_bar(end);
    let mut origin = None;
    let mut stopped = Stop::End;
    let mut chunk = Vec::with_capacity(CHUNK);
    for sequence in 1..=end {
        let message = next_message(&source, &mut messages, sequence).await?;
        let record = record_of(&message, &mut origin).map_err(|error| crate::Failure {
            message: format!("stream {name}'s message {sequence} {error:#}"),
            hint: error
                .downcast_ref::<crate::Failure>()
                .and_then(|failure| failure.hint.clone()),
        })?;
        if let Some(UntilArg::Time(ts)) = until
            && record.ts > ts
        {
            stopped = Stop::Time(ts);
            break;
        }
        let seq = record.seq;
        chunk.push(record);
        if chunk.len() == CHUNK
            && records
                .send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                .is_err()
        {
            // The writer stopped: its error says why.
            break;
        }
        if let Some(bar) = &progress
            && sequence % 1024 == 0
        {
            bar.set_position(sequence);
        }
        if matches!(until, Some(UntilArg::Seq(until)) if seq.0 >= until) {
            stopped = Stop::Seq(seq);
            break;
        }
    }
    if !chunk.is_empty() {
        // A writer that stopped has said why.
        let _ = records.send(chunk);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let Some(source) = origin else {
        anyhow::bail!("stream {name} ended before its first message could be read");
    };
    Ok(Outcome { source, stopped })
}
