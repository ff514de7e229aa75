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
    fn an_address_is_one_server_with_a_port_and_its_password_is_never_shown() {
        for good in ["nats://127.0.0.1:4222", "nats://backup.example:1", "nats://u:p@h:65535"] {
            assert!(is_server_address(good), "{good}");
        }
        for bad in [
            "127.0.0.1:4222",
            "http://h:4222",
            "nats://",
            "nats://h",
            "nats://h:0",
            "nats://h:99999",
            "nats://a:1,b:2",
            "nats://:4222",
        ] {
            assert!(!is_server_address(bad), "{bad}");
        }
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
    /// Checks the names: a stream name the store can register a shipper
    /// under, and a subject prefix of plain tokens.
    pub fn new(url: &str, stream: &str, prefix: &str) -> anyhow::Result<Self> {
        if !is_server_address(url) {
            return crate::fail_with_hint(
                format!(
                    "{} is not a NATS server's address",
                    crate::output::quoted(&shown_url(url))
                ),
                "give one as nats://HOST:PORT (nats://127.0.0.1:4222 for a server on this machine; \
                 nats://USER:PASSWORD@HOST:PORT with a password)",
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

/// `nats://[USER[:PASSWORD]@]HOST:PORT`, one server, a port from 1 to
/// 65535: an address waiting cannot mend is refused at once.
fn is_server_address(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("nats://") else {
        return false;
    };
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, host_port)| host_port);
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return false;
    };
    !host.is_empty() && !host.contains([',', '/', ' ']) && port.parse::<u16>().is_ok_and(|port| port > 0)
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
