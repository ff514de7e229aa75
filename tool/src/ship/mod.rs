//! `movie-queue ship` and `movie-queue restore --from`: the journal shipped
//! to a NATS JetStream stream, and a store rebuilt from one (the `nats`
//! feature). The library knows nothing of the network: it gives the store's
//! identity, the registered positions `compact` keeps records for, and
//! `Restore`, which writes records as they were.

mod message;
mod restore;
mod shipper;

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;

/// `movie-queue ship`.
pub fn ship(dir: &std::path::Path, args: &crate::args::ShipArgs) -> anyhow::Result<()> {
    shipper::ship(dir, args).map_err(said_whole)
}

/// `movie-queue restore --from`.
pub fn restore(from: &str, args: &crate::args::RestoreArgs) -> anyhow::Result<()> {
    restore::restore(from, args).map_err(said_whole)
}

/// An error with its causes in its one line (`cannot connect to …: connection
/// refused`): the tool prints an error's outermost message only, and the
/// network's errors come wrapped in what was being done. A hint stays.
fn said_whole(error: anyhow::Error) -> anyhow::Error {
    if error.chain().len() == 1 {
        return error;
    }
    let hint = error
        .downcast_ref::<crate::Failure>()
        .and_then(|failure| failure.hint.clone());
    crate::Failure {
        message: format!("{error:#}"),
        hint,
    }
    .into()
}

/// The stream a shipper ships to and a restore reads from.
#[derive(Debug, Clone)]
pub struct Target {
    /// `nats://host:port`.
    pub url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// The subjects' prefix: messages go to `<prefix>.<type>`.
    pub prefix: String,
}

impl Target {
    /// Checks the names: a stream name the store can register a shipper
    /// under, and a subject prefix of plain tokens.
    pub fn new(url: &str, stream: &str, prefix: &str) -> anyhow::Result<Self> {
        if !url.starts_with("nats://") {
            return crate::fail_with_hint(
                format!("{} is not a NATS server's address", crate::output::quoted(url)),
                "give one as nats://HOST:PORT (nats://127.0.0.1:4222 for a server on this machine)",
            );
        }
        if !movie_queue::is_shipper_name(stream) {
            return crate::fail_with_hint(
                format!("{} is not a stream name this tool uses", crate::output::quoted(stream)),
                "a stream name is 1 to 64 letters, digits, `-` or `_`",
            );
        }
        let token = |token: &str| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        };
        if prefix.len() > 200 || !prefix.split('.').all(token) {
            return crate::fail_with_hint(
                format!("{} is not a subject prefix", crate::output::quoted(prefix)),
                "a prefix is tokens of letters, digits, `-` or `_` joined by dots, such as movie-queue or site1.movies",
            );
        }
        Ok(Target {
            url: url.to_owned(),
            stream: stream.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The subjects the stream takes: `<prefix>.>`.
    fn subjects(&self) -> String {
        format!("{}.>", self.prefix)
    }
}

/// How long one request to the server may take before it counts as not
/// answered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the server (one attempt; the callers retry as they see fit).
async fn connect(target: &Target) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .name("movie-queue")
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .connect(target.url.as_str())
        .await
        .with_context(|| format!("cannot connect to the NATS server at {}", target.url))?;
    let mut context = jetstream::new(client);
    context.set_timeout(REQUEST_TIMEOUT);
    Ok(context)
}

/// A runtime for one command's network work, on this thread.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the network runtime")
}
