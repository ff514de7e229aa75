//! Accepting connections under bounds, so no client can take the
//! dashboard away from the others:
//!
//! - a request's headers must arrive whole within [`HEADER_TIMEOUT`] of
//!   the connection's wanting them, and a kept-alive connection waiting
//!   for its next request is closed after as long (hyper's header-read
//!   timer, which runs from the moment a request head is awaited);
//! - at most [`CONNECTIONS_MAX`] connections at once, and at most
//!   [`PER_CLIENT_MAX`] from one address: beyond them a connection is
//!   answered `503` (JSON, `Retry-After: 1`) and closed at once;
//! - when the process runs out of descriptors, accepting pauses for
//!   [`ACCEPT_PAUSE`] and tries again (the connections already open go
//!   on), instead of spinning or giving up.
//!
//! The live feed (`/api/live`) is a response that never ends; it counts
//! as one connection like any other.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// How long a request's headers may take, and a kept-alive connection may
/// wait for its next request.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once.
pub const CONNECTIONS_MAX: usize = 256;
/// Connections open at once from one client address.
pub const PER_CLIENT_MAX: usize = 32;
/// How long accepting pauses after the process ran out of descriptors.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(200);

/// The answer to a connection beyond a cap, written as it is refused.
fn busy() -> String {
    let body = r#"{"error":"too many connections to this dashboard; try again in a second","status":503}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The address a request came from (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(pub IpAddr);

/// How long a refused connection's request is read and dropped after
/// the refusal, so closing it does not reset it before the client reads
/// the answer.
const REFUSAL_DRAIN: Duration = Duration::from_millis(500);

/// Answers a connection beyond a cap with `503`, then closes it: its
/// request (as much as arrives within [`REFUSAL_DRAIN`], at most 64 KiB)
/// is read and dropped first.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(REFUSAL_DRAIN, async {
        stream.write_all(busy().as_bytes()).await?;
        stream.shutdown().await?;
        let mut buffer = [0_u8; 4096];
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut buffer).await? {
                0 => break,
                read => drained += read,
            }
        }
        std::io::Result::Ok(())
    })
    .await;
}

/// Caps on things held open at once (connections, live feeds): in all,
/// and per client address.
#[derive(Debug, Clone)]
pub struct Caps {
    total_max: usize,
    per_client_max: usize,
    open: Arc<Mutex<Open>>,
}

/// What is open, in all and per client address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// One admitted thing; it leaves the counts when dropped.
#[derive(Debug)]
pub struct Admitted {
    open: Arc<Mutex<Open>>,
    client: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_client.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

impl Caps {
    /// At most `total_max` at once, `per_client_max` from one address.
    pub fn new(total_max: usize, per_client_max: usize) -> Self {
        Caps {
            total_max,
            per_client_max,
            open: Arc::default(),
        }
    }

    /// Admits one more from `client` if both caps allow it.
    pub fn admit(&self, client: IpAddr) -> Option<Admitted> {
        let mut counts = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = counts.by_client.get(&client).copied().unwrap_or(0);
        if counts.total >= self.total_max || mine >= self.per_client_max {
            return None;
        }
        counts.total += 1;
        *counts.by_client.entry(client).or_default() += 1;
        Some(Admitted {
            open: Arc::clone(&self.open),
            client,
        })
    }
}

/// Accepts and serves connections until `stop` resolves.
pub async fn serve(listener: TcpListener, router: Router, stop: impl std::future::Future<Output = ()>) {
    let caps = Caps::new(CONNECTIONS_MAX, PER_CLIENT_MAX);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let builder = Arc::new(builder);
    tokio::pin!(stop);
    let mut exhausted = false;
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                exhausted = false;
                accepted
            }
            Err(error) => {
                // Out of descriptors (or another resource): pause, then
                // go on; one warning per episode.
                if !exhausted {
                    tracing::warn!(%error, "cannot accept a connection; trying again");
                    exhausted = true;
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let Some(admitted) = caps.admit(peer.ip()) else {
            tokio::spawn(refuse(stream));
            continue;
        };
        // Each request knows its client's address (the live feed's caps).
        let router = router.clone();
        let client = Client(peer.ip());
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(client);
            let mut router = router.clone();
            async move { tower_service::Service::call(&mut router, request).await }
        });
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            let _admitted = admitted;
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_client_and_in_all_and_free_on_drop() {
        let caps = Caps::new(CONNECTIONS_MAX, PER_CLIENT_MAX);
        let open = Arc::clone(&caps.open);
        let one: IpAddr = [127, 0, 0, 1].into();
        let mine: Vec<Admitted> = (0..PER_CLIENT_MAX).map(|_| caps.admit(one).unwrap()).collect();
        assert!(caps.admit(one).is_none(), "one client's cap");
        let other = caps.admit([127, 0, 0, 2].into());
        assert!(other.is_some(), "another client is admitted");
        drop(mine);
        drop(other);
        assert_eq!(open.lock().unwrap().total, 0);
        assert!(open.lock().unwrap().by_client.is_empty());
        let many: Vec<Admitted> = (0..CONNECTIONS_MAX)
            .map(|index: usize| {
                let [.., high, low] = index.to_be_bytes();
                caps.admit([10, 0, high, low].into()).unwrap()
            })
            .collect();
        assert!(caps.admit([10, 9, 9, 9].into()).is_none(), "the total cap");
        drop(many);
        assert!(caps.admit(one).is_some());
    }

    #[test]
    fn the_busy_answer_says_its_length_right() {
        let text = busy();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], 503);
    }
}
