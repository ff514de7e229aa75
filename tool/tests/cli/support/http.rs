//! Helpers for the tests of `movie-queue serve`: start the dashboard on a
//! free loopback port, and speak just enough HTTP/1.1 over a `TcpStream`
//! to read a page, its headers, and the live feed's server-sent events.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for something that should come at once: generous,
/// so a slow machine never fails a test (nothing here measures speed).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running `movie-queue serve`, stopped when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `movie-queue --dir DIR serve --addr 127.0.0.1:0 EXTRA...` and
/// waits for the line that says where it listens.
pub fn serve(dir: &Path, extra: &[&str]) -> Server {
    serve_on(dir, "127.0.0.1:0", extra)
}

/// Starts `movie-queue --dir DIR serve --addr ADDR EXTRA...` and waits for
/// the line that says where it listens.
pub fn serve_on(dir: &Path, addr: &str, extra: &[&str]) -> Server {
    let mut command = crate::support::cli::command();
    command
        .arg("--dir")
        .arg(dir)
        .args(["serve", "--addr", addr])
        .args(extra);
    serve_with(&mut command)
}

/// Starts `command` (a `movie-queue serve`, perhaps under a shell that
/// sets its limits first) and waits for the line that says where it listens.
pub fn serve_with(command: &mut std::process::Command) -> Server {
    let mut child = crate::support::cli::spawn(command.stdout(Stdio::piped()).stderr(Stdio::inherit()));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("read the first line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .parse()
        .expect("an address");
    Server { child, addr }
}

/// A response: status, headers (names lower-case) and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("not JSON ({error}): {self:#?}"))
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

fn head(method: &str, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// `METHOD path` with extra `headers` (a `Host` naming the address is sent
/// unless given).
pub fn request(method: &str, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = connect(addr);
    stream
        .write_all(head(method, addr, path, headers).as_bytes())
        .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    parse(&String::from_utf8_lossy(&raw))
}

/// `POST path` with `headers` and `body` (its length sent).
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let length = body.len().to_string();
    let mut all = headers.to_vec();
    all.push(("Content-Length", length.as_str()));
    let mut stream = connect(addr);
    let mut request = head("POST", addr, path, &all);
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    parse(&String::from_utf8_lossy(&raw))
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request("GET", addr, path, &[])
}

fn parse(raw: &str) -> Response {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Response { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The live feed, read as it comes.
pub struct Feed {
    reader: BufReader<TcpStream>,
}

impl Feed {
    /// Connects to `/api/live` and reads its response head.
    pub fn open(addr: SocketAddr) -> Feed {
        let mut stream = connect(addr);
        // HTTP/1.0: the body comes as it is, not in chunks.
        let request = head("GET", addr, "/api/live", &[]).replacen("HTTP/1.1", "HTTP/1.0", 1);
        stream.write_all(request.as_bytes()).expect("send");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("status line");
        assert!(line.contains(" 200 "), "the live feed answers 200: {line:?}");
        Feed { reader }
    }

    /// The `data:` of the next event named `name` (other events and
    /// comments skipped), within [`PATIENCE`].
    pub fn next(&mut self, name: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut event = String::new();
        while Instant::now() < deadline {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read the feed");
            let line = line.trim_end();
            if let Some(kind) = line.strip_prefix("event:") {
                event = kind.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data:")
                && event == name
            {
                return data.trim().to_owned();
            }
        }
        panic!("no {name} event within {PATIENCE:?}");
    }
}
