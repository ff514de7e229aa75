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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_an_address_is_never_shown() {
        assert_eq!(shown_url("nats://movies:secret@h:4222"), "nats://movies:***@h:4222");
        assert_eq!(shown_url("nats://h:4222"), "nats://h:4222");
    }
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
    /// The stream `stream` at the server `url`, its subjects under
    /// `prefix` (each checked by the command line's parsers).
    pub fn new(url: &str, stream: &str, prefix: &str) -> Self {
        Target {
            url: url.to_owned(),
            stream: stream.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// The server's address as it may be printed: a password in it is
    /// not (`nats://user:***@host:4222`).
    pub fn shown(&self) -> String {
        shown_url(&self.url)
    }

    /// The subjects the stream takes: `<prefix>.>`.
    fn subjects(&self) -> String {
        format!("{}.>", self.prefix)
    }
}

/// `url` with the password of its user part, if any, replaced by `***`.
fn shown_url(url: &str) -> String {
    let Some(rest) = url.strip_prefix("nats://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("nats://{user}:***@{host}")
        }
        None => url.to_owned(),
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
        .with_context(|| format!("cannot connect to the NATS server at {}", target.shown()))?;
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
