//! The shipper: follows the journal and publishes every record, in order,
//! once, to a JetStream stream.
//!
//! Where it resumes is read from the stream itself (its last message's
//! `Nats-Msg-Id`), never from a position of its own: after a restart, a
//! lost connection or a server restart it publishes the record after the
//! stream's last. Each message is published with the stream sequence it
//! must follow (`Nats-Expected-Last-Sequence`), so a message the server
//! stored but whose acknowledgment never came, or a second shipper racing
//! this one, makes the next publish fail rather than store a record twice
//! or out of order; the shipper then reads the stream's end again and goes
//! on from there. At most `--in-flight` messages await their
//! acknowledgment. A record counts as shipped only once acknowledged; the
//! acknowledged position is registered in the store (`shippers/<stream>`)
//! so `compact` keeps what is not shipped yet.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, context::PublishErrorKind, stream};
use movie_queue::{Seq, StoreId};
use std::future::IntoFuture;
use tokio::sync::mpsc;

use super::message::{Outgoing, Shipped, message_id, parse_message_id, parse_payload};
use super::{Target, connect, runtime};
use crate::args::ShipArgs;
use crate::output::{counted, quoted, safe_path};
use crate::{Failure, warn};

/// How many records the journal's reader may have read ahead of the
/// publisher.
const READ_AHEAD: usize = 4096;

/// The first pause after the server failed to answer; it doubles up to
/// [`BACKOFF_MAX`] while the failures go on.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// With `--once`, how many failures in a row end the run.
const ONCE_ATTEMPTS: u32 = 6;

/// How often the shipped position is registered in the store, at most.
const REGISTER_EVERY: Duration = Duration::from_secs(1);

/// `movie-queue ship`.
pub fn ship(dir: &Path, args: &ShipArgs) -> anyhow::Result<()> {
    let target = Target::new(&args.to, &args.stream, &args.subject);
    crate::operate::require_store(dir)?;
    let Some(store) = movie_queue::store_id(dir)? else {
        return crate::fail_with_hint(
            format!("the store in {} has no identity yet", safe_path(dir)),
            "a writer gives it one when it opens the store: start the application, or run any changing \
             command (`movie-queue snapshot`), then ship",
        );
    };
    let mut shipper = Shipper {
        dir: dir.to_path_buf(),
        store,
        target,
        once: args.once,
        in_flight_max: args.in_flight.max(1) as usize,
        window: VecDeque::new(),
        acked: Seq(0),
        follower: None,
        next_record: Seq(1),
        shipped: 0,
        started: Instant::now(),
        registered: (Seq(0), Instant::now()),
        progress: Progress::new(),
    };
    runtime()?.block_on(shipper.run())
}

/// Why a session with the server ended.
enum Trouble {
    /// The server did not answer, or the stream's end moved under us: try
    /// again from the stream's end.
    Again(anyhow::Error),
    /// Going on would ship a wrong history: stop.
    Stop(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Trouble {
    fn from(error: E) -> Self {
        Trouble::Again(error.into())
    }
}

fn stop<T>(message: String, hint: &str) -> Result<T, Trouble> {
    Err(Trouble::Stop(
        Failure {
            message,
            hint: Some(hint.to_owned()),
        }
        .into(),
    ))
}

/// What the journal's reader hands on.
type Item = Result<Outgoing, anyhow::Error>;

struct Shipper {
    dir: PathBuf,
    store: StoreId,
    target: Target,
    once: bool,
    in_flight_max: usize,
    /// Published, not acknowledged, when the last session ended: published
    /// again (those the stream does not hold) by the next.
    window: VecDeque<Outgoing>,
    /// Every record through this one is acknowledged.
    acked: Seq,
    follower: Option<mpsc::Receiver<Item>>,
    /// The first record the next message must stand for: what is
    /// published goes on from the stream's end with no hole, or not at all.
    next_record: Seq,
    shipped: u64,
    started: Instant,
    registered: (Seq, Instant),
    progress: Progress,
}

/// A message published, awaiting its acknowledgment.
struct Pending {
    message: Outgoing,
    ack: <PublishAckFuture as IntoFuture>::IntoFuture,
}

impl Shipper {
    async fn run(&mut self) -> anyhow::Result<()> {
        let mut pause = BACKOFF_FIRST;
        let mut failures = 0;
        loop {
            let acked_before = self.acked;
            match self.session().await {
                Ok(()) => {
                    self.register(true);
                    self.progress.finish();
                    self.report();
                    return Ok(());
                }
                Err(Trouble::Stop(error)) => {
                    self.register(true);
                    self.progress.finish();
                    return Err(error);
                }
                Err(Trouble::Again(error)) => {
                    self.register(true);
                    if self.acked > acked_before {
                        pause = BACKOFF_FIRST;
                        failures = 0;
                    }
                    failures += 1;
                    if self.once && failures >= ONCE_ATTEMPTS {
                        self.progress.finish();
                        let shipped = if self.acked > Seq(0) {
                            format!(" (the stream holds this store's records through record {})", self.acked)
                        } else {
                            String::new()
                        };
                        return Err(anyhow::anyhow!("{error:#}; gave up after {failures} attempts{shipped}"));
                    }
                    self.progress.suspend(|| {
                        warn(&format!(
                            "{:#}; trying again in {}",
                            error,
                            humantime::format_duration(pause)
                        ));
                    });
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    fn report(&self) {
        let elapsed = self.started.elapsed().as_secs_f64();
        println!(
            "shipped {} to stream {} at {} in {elapsed:.1} s; the stream holds this store's records through record {}",
            counted(self.shipped, "record", "records"),
            quoted(&self.target.stream),
            self.target.shown(),
            self.acked
        );
    }

    /// One connection's work: find the stream's end, then publish from
    /// there. `Ok` only with `--once`, once the journal as it was is
    /// shipped.
    async fn session(&mut self) -> Result<(), Trouble> {
        let context = connect(&self.target).await?;
        let mut stream = self.stream(&context).await?;
        let info = stream.info().await.context("the stream's state")?.clone();
        self.check_whole(&stream, &info).await?;
        let last = self.stream_end(&stream, &info.state).await?;
        if let Some(last) = last {
            if last < self.acked {
                return stop(
                    format!(
                        "stream {} ends at record {last}, but it acknowledged this store's records through record {}: \
                         it lost messages (purged or replaced)",
                        quoted(&self.target.stream),
                        self.acked
                    ),
                    "ship to a new stream (--stream NAME); the one that lost messages cannot restore this store",
                );
            }
            self.window.retain(|message| message.seq > last);
        } else if self.acked > Seq(0) {
            return stop(
                format!(
                    "stream {} is empty, but it acknowledged this store's records through record {}",
                    quoted(&self.target.stream),
                    self.acked
                ),
                "ship to a new stream (--stream NAME); the emptied one cannot restore this store",
            );
        }
        let shipped_through = last.unwrap_or(Seq(0));
        self.next_record = shipped_through.next();
        self.acked = self.acked.max(shipped_through);
        self.register(true);
        if self.follower.is_none() {
            self.follower = Some(self.follow(shipped_through)?);
        }
        let mut expected = info.state.last_sequence;
        let mut in_flight: VecDeque<Pending> = VecDeque::new();
        let result = self
            .publish_all(&context, &mut expected, &mut in_flight, shipped_through)
            .await;
        // What was published and not acknowledged goes out again next time.
        let mut unacked: VecDeque<Outgoing> = in_flight.into_iter().map(|pending| pending.message).collect();
        unacked.append(&mut self.window);
        self.window = unacked;
        result
    }

    /// The stream, created (file storage, subjects `<prefix>.>`) if missing.
    async fn stream(&self, context: &jetstream::Context) -> Result<stream::Stream, Trouble> {
        let subjects = self.target.subjects();
        let stream = context
            .get_or_create_stream(stream::Config {
                name: self.target.stream.clone(),
                subjects: vec![subjects.clone()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await;
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                let refused = matches!(error.kind(), jetstream::context::CreateStreamErrorKind::JetStream(_));
                let error = anyhow::Error::new(error)
                    .context(format!("cannot find or create stream {}", quoted(&self.target.stream)));
                if refused {
                    // The server answered, and said no: asking again changes nothing.
                    return stop(
                        format!("{error:#}"),
                        "another stream may take these subjects: give another --subject, or the --stream that \
                         takes them",
                    );
                }
                return Err(Trouble::Again(error));
            }
        };
        let taken = &stream.cached_info().config.subjects;
        if !taken.iter().any(|subject| subject == &subjects) {
            return stop(
                format!(
                    "stream {} takes the subjects {taken:?}, not {}",
                    quoted(&self.target.stream),
                    quoted(&subjects)
                ),
                "give the prefix the stream takes (--subject), or ship to a stream of its own (--stream NAME)",
            );
        }
        Ok(stream)
    }

    /// Refuses a stream that cannot hold this store's whole history: one
    /// with limits that discard messages, one that lost messages (purged,
    /// some deleted, its first gone), or one whose first message is not
    /// this store's record 1.
    async fn check_whole(&self, stream: &stream::Stream, info: &stream::Info) -> Result<(), Trouble> {
        let name = quoted(&self.target.stream);
        let config = &info.config;
        let limits = limits_of(config);
        if !limits.is_empty() {
            return stop(
                format!(
                    "stream {name} has limits that drop or refuse records ({}): it cannot keep a store's whole history",
                    limits.join(", ")
                ),
                "ship to a stream without limits (the shipper creates one when --stream names none that exists)",
            );
        }
        let state = &info.state;
        let whole = if state.messages == 0 {
            state.last_sequence == 0
        } else {
            state.first_sequence == 1 && state.messages == state.last_sequence
        };
        if !whole {
            return stop(
                format!(
                    "stream {name} lost messages: it holds {} of sequences {} to {}",
                    state.messages, state.first_sequence, state.last_sequence
                ),
                "messages were purged or deleted from it: ship to a new stream (--stream NAME), which then holds \
                 the store's whole history",
            );
        }
        if state.messages == 0 {
            return Ok(());
        }
        let first = stream.get_raw_message(1).await.context("the stream's first message")?;
        let starts = first
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .and_then(|id| parse_message_id(id.as_str()))
            .map(|(store, _)| store)
            .filter(|store| *store == self.store)
            .and_then(|_| parse_payload(&first.payload).ok())
            .is_some_and(|shipped| match shipped {
                Shipped::Record(record) => record.seq == Seq(1),
                Shipped::Gap { from, .. } => from == Seq(1),
            });
        if !starts {
            // The last message says whose stream it is, if anyone's.
            self.stream_end(stream, state).await?;
            return stop(
                format!("stream {name} does not begin with this store's record 1"),
                "ship to a new stream (--stream NAME)",
            );
        }
        Ok(())
    }

    /// The last record the stream holds of this store (`None`: the stream
    /// is empty). Refuses a stream whose last message is not this store's,
    /// or is a record this store does not have, or has otherwise.
    async fn stream_end(&self, stream: &stream::Stream, state: &stream::State) -> Result<Option<Seq>, Trouble> {
        if state.messages == 0 {
            return Ok(None);
        }
        let message = stream
            .get_raw_message(state.last_sequence)
            .await
            .context("the stream's last message")?;
        let name = quoted(&self.target.stream);
        let Some((store, seq)) = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .and_then(|id| parse_message_id(id.as_str()))
        else {
            return stop(
                format!(
                    "stream {name}'s last message (sequence {}) is not a record a shipper published",
                    state.last_sequence
                ),
                "ship to a stream of its own (--stream NAME)",
            );
        };
        if store != self.store {
            return stop(
                format!(
                    "stream {name} holds the records of store {store}; this store is {}",
                    self.store
                ),
                "each store ships to a stream of its own: give this one another --stream NAME",
            );
        }
        let shipped = parse_payload(&message.payload).map_err(|error| {
            Trouble::Stop(error.context(format!(
                "stream {name}'s last message (sequence {})",
                state.last_sequence
            )))
        })?;
        let ours = match shipped {
            Shipped::Record(record) => record,
            // A gap names records this store cannot read either.
            Shipped::Gap { .. } => return Ok(Some(seq)),
        };
        let local = movie_queue::events(&self.dir, seq)
            .and_then(|mut events| events.next().transpose())
            .map_err(|error| Trouble::Stop(journal_failure(error, seq)));
        let local = match local {
            // The last record shipped is gone, the ones after it may not be: the
            // reader says if they are.
            Err(_)
                if movie_queue::events(&self.dir, seq.next())
                    .is_ok_and(|mut events| matches!(events.next(), Some(Ok(record)) if record.seq == seq.next())) =>
            {
                return Ok(Some(seq));
            }
            other => other?,
        };
        match local {
            Some(record) if record.seq == seq && record == *ours => Ok(Some(seq)),
            Some(record) if record.seq == seq => stop(
                format!("stream {name} holds a record {seq} of this store that differs from the journal's"),
                "the store's history and the stream's have parted (a copy of the directory written to on its own, \
                 or a record shipped in the moment before a power loss took it): ship to a new stream (--stream NAME)",
            ),
            _ => stop(
                format!(
                    "stream {name} holds this store's records through record {seq}, but the journal has no record {seq}"
                ),
                "the stream is ahead of the store (an older copy of the directory, or records cut by `repair` or \
                 a power loss after they were shipped): ship to a new stream (--stream NAME)",
            ),
        }
    }

    /// Starts the journal's reader after record `after`, on a thread of
    /// its own; it hands on each record's message, gaps included.
    fn follow(&self, after: Seq) -> Result<mpsc::Receiver<Item>, Trouble> {
        let (sender, receiver) = mpsc::channel(READ_AHEAD);
        let from = if after == Seq(0) { Seq(0) } else { after.next() };
        let mut events = if self.once {
            movie_queue::events(&self.dir, from)
        } else {
            movie_queue::follow(&self.dir, from)
        }
        .map_err(|error| Trouble::Stop(error.into()))?;
        let prefix = self.target.prefix.clone();
        let fresh = after == Seq(0);
        std::thread::Builder::new()
            .name("journal reader".into())
            .spawn(move || {
                let mut first = fresh;
                while let Some(record) = events.next() {
                    let mut items = Vec::new();
                    while let Some(skipped) = events.take_skipped() {
                        items.push(Outgoing::gap(&prefix, &skipped));
                    }
                    let shipped_through = events.next_seq().previous();
                    items.push(
                        record
                            .map_err(|error| journal_failure(error, shipped_through))
                            .and_then(|record| Outgoing::record(&prefix, &record)),
                    );
                    for item in items {
                        let item = match item {
                            Ok(message) if first && message.seq != Seq(1) && !message.subject.ends_with(".skipped") => {
                                Err(anyhow::Error::new(Failure {
                                    message: format!(
                                        "the journal's first record is record {}: the records before it were compacted \
                                         away, and a stream must begin with record 1 to restore a store",
                                        message.seq
                                    ),
                                    hint: Some(
                                        "ship a store from its start: this one can be shipped from a copy made before its \
                                         first compaction, or its state moved into a new store (`export`, then `import` \
                                         into an empty store) and that one shipped"
                                            .to_owned(),
                                    ),
                                }))
                            }
                            other => other,
                        };
                        first = false;
                        let failed = item.is_err();
                        if sender.blocking_send(item).is_err() || failed {
                            return;
                        }
                    }
                }
                while let Some(skipped) = events.take_skipped() {
                    if sender.blocking_send(Outgoing::gap(&prefix, &skipped)).is_err() {
                        return;
                    }
                }
            })
            .context("cannot start the journal's reader")?;
        Ok(receiver)
    }

    async fn publish_all(
        &mut self,
        context: &jetstream::Context,
        expected: &mut u64,
        in_flight: &mut VecDeque<Pending>,
        shipped_through: Seq,
    ) -> Result<(), Trouble> {
        let mut skip_through = self.window.back().map_or(shipped_through, |message| message.seq);
        loop {
            if in_flight.len() >= self.in_flight_max {
                self.settle(context, in_flight).await?;
                continue;
            }
            if let Some(message) = self.window.pop_front() {
                self.publish(context, message, expected, in_flight).await?;
                continue;
            }
            let Some(follower) = self.follower.as_mut() else {
                return Ok(());
            };
            let polled = follower.try_recv();
            let item = match polled {
                Ok(item) => Some(item),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) if !in_flight.is_empty() => {
                    self.settle(context, in_flight).await?;
                    continue;
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    self.register(false);
                    self.progress.show(self.acked, self.shipped, self.started);
                    let Some(follower) = self.follower.as_mut() else {
                        return Ok(());
                    };
                    match tokio::time::timeout(REGISTER_EVERY, follower.recv()).await {
                        Ok(item) => item,
                        Err(_) => continue,
                    }
                }
            };
            let Some(item) = item else {
                // The reader is done: with --once, the journal as it was.
                while !in_flight.is_empty() {
                    self.settle(context, in_flight).await?;
                }
                return Ok(());
            };
            let message = match item {
                Ok(message) => message,
                Err(error) => {
                    while !in_flight.is_empty() {
                        self.settle(context, in_flight).await?;
                    }
                    return Err(Trouble::Stop(error.context(format!(
                        "shipped through record {}; the journal cannot be read further",
                        self.acked
                    ))));
                }
            };
            if message.seq <= skip_through {
                continue;
            }
            skip_through = message.seq;
            self.publish(context, message, expected, in_flight).await?;
        }
    }

    async fn publish(
        &mut self,
        context: &jetstream::Context,
        message: Outgoing,
        expected: &mut u64,
        in_flight: &mut VecDeque<Pending>,
    ) -> Result<(), Trouble> {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            message_id(self.store, message.seq).as_str(),
        );
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
            expected.to_string().as_str(),
        );
        if message.first != self.next_record {
            return stop(
                format!(
                    "the shipper was about to publish record {} where record {} is due; it published nothing \
                     out of order",
                    message.first, self.next_record
                ),
                "this is a bug of the shipper: please report it; the stream holds no hole",
            );
        }
        let sent = context
            .publish_with_headers(message.subject.clone(), headers, message.payload.clone().into())
            .await;
        let ack = match sent {
            Ok(ack) => ack,
            Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                return too_large(&message);
            }
            Err(error) => {
                // Not sent: it goes out again, first, next time.
                let seq = message.seq;
                self.window.push_front(message);
                return Err(Trouble::Again(
                    anyhow::Error::new(error).context(format!("publishing record {seq}")),
                ));
            }
        };
        self.next_record = message.seq.next();
        *expected += 1;
        in_flight.push_back(Pending {
            message,
            ack: ack.into_future(),
        });
        Ok(())
    }

    /// Awaits the oldest acknowledgment.
    async fn settle(&mut self, context: &jetstream::Context, in_flight: &mut VecDeque<Pending>) -> Result<(), Trouble> {
        let Some(front) = in_flight.front_mut() else {
            return Ok(());
        };
        let seq = front.message.seq;
        let ack = match (&mut front.ack).await {
            Ok(ack) => ack,
            Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                return too_large(&front.message);
            }
            Err(error) => {
                return Err(Trouble::Again(
                    anyhow::Error::new(error).context(format!("the server did not store record {seq}")),
                ));
            }
        };
        if ack.duplicate {
            // The stream had a message with this record's id: it must be this record.
            let stream = context.get_stream(&self.target.stream).await?;
            let stored = stream.get_raw_message(ack.sequence).await?;
            if stored.payload.as_ref() != front.message.payload.as_slice() {
                return stop(
                    format!(
                        "stream {} already holds a different record {seq} of this store (message {})",
                        quoted(&self.target.stream),
                        ack.sequence
                    ),
                    "two stores have this store's identity (a copied directory?): ship each to a stream of its own",
                );
            }
        }
        in_flight.pop_front();
        self.acked = seq;
        self.shipped += 1;
        self.register(false);
        self.progress.show(self.acked, self.shipped, self.started);
        Ok(())
    }

    /// Registers the acknowledged position in the store (at most once a
    /// second unless `now`).
    fn register(&mut self, now: bool) {
        let (last, at) = self.registered;
        if last == self.acked || (!now && at.elapsed() < REGISTER_EVERY) {
            return;
        }
        match movie_queue::register_shipper(&self.dir, &self.target.stream, self.acked) {
            Ok(()) => self.registered = (self.acked, Instant::now()),
            Err(error) => {
                self.registered = (last, Instant::now());
                self.progress.suspend(|| {
                    warn(&format!(
                        "cannot register the shipped position in the store ({error}): `compact` may remove records \
                         not shipped yet, and the shipper then stops at them"
                    ));
                });
            }
        }
    }
}

/// The limits of a stream's configuration that drop or refuse messages,
/// as `max_msgs 100`.
fn limits_of(config: &stream::Config) -> Vec<String> {
    [
        ("max_msgs", config.max_messages > 0, config.max_messages.to_string()),
        ("max_bytes", config.max_bytes > 0, config.max_bytes.to_string()),
        (
            "max_msgs_per_subject",
            config.max_messages_per_subject > 0,
            config.max_messages_per_subject.to_string(),
        ),
        ("max_age", !config.max_age.is_zero(), format!("{:?}", config.max_age)),
        (
            "max_msg_size",
            config.max_message_size > 0,
            config.max_message_size.to_string(),
        ),
    ]
    .into_iter()
    .filter(|(_, set, _)| *set)
    .map(|(limit, _, value)| format!("{limit} {value}"))
    .collect()
}

/// A record larger than the server takes in one message: the shipper
/// stops before it (nothing after it is published: no hole).
fn too_large(message: &Outgoing) -> Result<(), Trouble> {
    stop(
        format!(
            "record {} ({} bytes as a message) is larger than the NATS server takes in one message \
             (its max_payload); nothing after it was published",
            message.seq,
            message.payload.len()
        ),
        "raise the server's max_payload (a record can be up to 64 MiB) and ship again: the shipper goes on at \
         this record",
    )
}

/// A journal that cannot be read on from record `shipped` on: records
/// compacted away before they were shipped get a message and hint of their
/// own (they are lost to the stream: nothing is skipped silently).
fn journal_failure(error: movie_queue::Error, shipped: Seq) -> anyhow::Error {
    match error {
        movie_queue::Error::CompactedAway { resumes, .. } => Failure {
            message: format!(
                "records {} to {} were compacted away before they were shipped (the journal goes on at record \
                 {resumes}): the stream would have a hole, so the shipper stops",
                shipped.next(),
                resumes - 1
            ),
            hint: Some(format!(
                "`compact` keeps a registered shipper's records only within {} records of the compaction base; \
                 the stream can restore the store through record {shipped}. Ship to a new stream from a store \
                 holding every record, or keep this stream as the history it is",
                movie_queue::UNSHIPPED_KEPT_MAX
            )),
        }
        .into(),
        other => anyhow::Error::new(other).context("reading the store's journal"),
    }
}

/// The progress line on stderr (hidden when stderr is not a terminal).
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress(bar)
    }

    // A rate on a progress line: a few digits are all it shows.
    #[allow(clippy::cast_precision_loss)]
    fn show(&self, acked: Seq, shipped: u64, started: Instant) {
        if let Some(bar) = &self.0 {
            let rate = shipped as f64 / started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "shipped through record {acked} ({shipped} this run, {rate:.0} records/s)"
            ));
        }
    }

    fn suspend(&self, work: impl FnOnce()) {
        match &self.0 {
            Some(bar) => bar.suspend(work),
            None => work(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
