//! The control socket: how the process that holds a store for writing
//! lets the tool (and anything else of the same user) act on it while it
//! runs. `protocol.rs` (version 1: JSON lines, a request's id and `op`,
//! the answer's `ok` or typed `error`), `socket.rs` (the socket file made
//! safely, long paths, the peer's user), `server.rs` (the accepting and
//! connection threads, bounded in connections, line length and time),
//! `client.rs` (`Control`, the client). What each request does to the
//! queue is the manager's (`manager/control.rs`): this module knows the
//! wire, not the queue.

mod client;
pub(crate) mod protocol;
mod server;
mod socket;

pub use self::client::{Control, Holder};
pub use self::server::{Handler, Server};
