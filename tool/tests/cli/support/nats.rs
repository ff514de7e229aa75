//! A real `nats-server -js` (Debian's `nats-server`; `.ci/run` installs
//! it, and a missing server fails these tests) on a free loopback port with
//! its own store directory, stopped by its process id; and a reader of a
//! stream's messages, to check what a shipper published.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;

/// A running server; killed (by pid) when dropped.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    log: PathBuf,
    config: Option<PathBuf>,
}

fn binary() -> PathBuf {
    let name = std::env::var_os("NATS_SERVER").unwrap_or_else(|| "nats-server".into());
    let search = std::env::var_os("PATH").unwrap_or_default();
    let mut places: Vec<PathBuf> = std::env::split_paths(&search).collect();
    places.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    places
        .into_iter()
        .map(|dir| dir.join(&name))
        .find(|path| path.is_file())
        .or_else(|| Path::new(&name).is_file().then(|| PathBuf::from(&name)))
        .unwrap_or_else(|| {
            panic!("nats-server is needed for this test: `apt-get install -y nats-server` (.ci/run does it)")
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    /// Starts a server with JetStream keeping its streams under `scratch`.
    pub fn start(scratch: &Path) -> Self {
        Self::start_with(scratch, "")
    }

    /// As [`NatsServer::start`], with these lines of configuration
    /// (`max_payload: 4096`, say).
    pub fn start_with(scratch: &Path, config: &str) -> Self {
        let path = (!config.is_empty()).then(|| {
            let path = scratch.join("nats-server.conf");
            std::fs::write(&path, config).unwrap();
            path
        });
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            store: scratch.join("jetstream"),
            log: scratch.join("nats-server.log"),
            config: path,
        };
        server.restart();
        server
    }

    /// Its address.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (`kill -9`), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::File::create(&self.log).unwrap();
        let mut command = Command::new(binary());
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        let child = command
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let said = std::fs::read_to_string(&self.log).unwrap_or_default();
            if said.contains("Server is ready") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not become ready in 30 s; it said:\n{said}"
            );
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nats-server exited ({status}); it said:\n{said}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One message of a stream: its stream sequence, `Nats-Msg-Id`, subject
/// and payload.
#[derive(Debug, Clone)]
pub struct Message {
    pub sequence: u64,
    pub id: String,
    pub subject: String,
    pub payload: serde_json::Value,
}

/// Runs `work` with a `JetStream` context on the server at `url`.
fn with_jetstream<F, T>(url: &str, work: impl FnOnce(jetstream::Context) -> F) -> T
where
    F: std::future::Future<Output = T>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        work(jetstream::new(client)).await
    })
}

/// Every message of `stream`, in order (none while no shipper has created
/// it yet).
pub fn messages(url: &str, stream: &str) -> Vec<Message> {
    with_jetstream(url, |context| async move {
        let mut stream = match context.get_stream(stream).await {
            Ok(stream) => stream,
            Err(error) if error.to_string().contains("stream not found") => return Vec::new(),
            Err(error) => panic!("{error}"),
        };
        let end = stream.info().await.unwrap().state.last_sequence;
        let mut found = Vec::new();
        if end == 0 {
            return found;
        }
        let consumer = stream.create_consumer(pull::OrderedConfig::default()).await.unwrap();
        let mut messages = consumer.messages().await.unwrap();
        while let Some(message) = messages.next().await {
            let message = message.unwrap();
            let sequence = message.info().unwrap().stream_sequence;
            let id = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get("Nats-Msg-Id"))
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default();
            found.push(Message {
                sequence,
                id,
                subject: message.subject.to_string(),
                payload: serde_json::from_slice(&message.payload).unwrap(),
            });
            if sequence >= end {
                break;
            }
        }
        found
    })
}

/// Creates stream `name` taking `<name>.>` with at most `max_messages`.
pub fn create_limited_stream(url: &str, name: &str, max_messages: i64) {
    with_jetstream(url, |context| async move {
        context
            .create_stream(jetstream::stream::Config {
                name: name.to_owned(),
                subjects: vec![format!("{name}.>")],
                max_messages,
                ..Default::default()
            })
            .await
            .unwrap();
    });
}

/// Purges stream `name`: every message gone, its sequence kept.
pub fn purge(url: &str, name: &str) {
    with_jetstream(url, |context| async move {
        context.get_stream(name).await.unwrap().purge().await.unwrap();
    });
}

/// Publishes one message of someone else's to `subject`.
pub fn publish(url: &str, subject: &str, payload: &str) {
    with_jetstream(url, |context| async move {
        context
            .publish(subject.to_owned(), payload.to_owned().into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
}
