//! What keeps the dashboard to its reader: the token every request must
//! carry when one is set (a non-loopback address needs one), the `Host`
//! names a loopback dashboard answers to (a page elsewhere cannot reach it
//! through a rebound DNS name), and the headers of every response (a
//! Content-Security-Policy that allows only the dashboard's own script and
//! style, no framing, no referrer).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;

/// The cookie a token given in the query is kept in, for the links and
/// the live feed of the pages that follow.
pub const TOKEN_COOKIE: &str = "movie_queue_token";

/// The Content-Security-Policy of every response: the dashboard's own
/// script and style only (no inline script, no other origin).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What a request must carry, and which `Host` it may name.
#[derive(Debug)]
pub struct Guard {
    token: Option<String>,
    /// Listening on loopback without a token: only loopback host names.
    loopback: bool,
    /// The port listened on (known once bound: `--addr` may say 0).
    port: AtomicU16,
}

impl Guard {
    /// The guard of a dashboard on `addr` with `token`.
    pub fn new(addr: SocketAddr, token: Option<String>) -> Self {
        Guard {
            loopback: addr.ip().is_loopback() && token.is_none(),
            token,
            port: AtomicU16::new(addr.port()),
        }
    }

    /// Notes the port actually bound.
    pub fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::Relaxed);
    }

    /// Does a request with these headers and this query name an allowed
    /// host and carry the token? `Err`: the status and why.
    fn check(&self, headers: &HeaderMap, query: Option<&str>) -> Result<bool, (StatusCode, &'static str)> {
        if self.loopback {
            let port = self.port.load(Ordering::Relaxed);
            let host = headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            let allowed = ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .any(|name| host == format!("{name}:{port}") || (port == 80 && host == *name));
            if !allowed {
                return Err((
                    StatusCode::MISDIRECTED_REQUEST,
                    "this dashboard answers only to its loopback address\n",
                ));
            }
        }
        let Some(token) = &self.token else {
            return Ok(false);
        };
        let from_query = query_token(query);
        let given = bearer(headers)
            .map(str::to_owned)
            .or_else(|| from_query.clone())
            .or_else(|| cookie(headers));
        match given {
            Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(from_query.is_some()),
            _ => Err((
                StatusCode::UNAUTHORIZED,
                "a token is required: the header `Authorization: Bearer TOKEN`, or `?token=TOKEN` once\n",
            )),
        }
    }
}

/// `Authorization: Bearer T`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The token cookie (percent-encoded in it).
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='))
        .map(percent_decode)
}

/// `token=T` in the query (percent-decoded).
fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(percent_decode)
}

/// Decodes `%XX` and `+`.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                index += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                index += 1;
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Compares in time independent of where the inputs differ.
pub(super) fn same(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = u8::from(given.len() != expected.len());
    for (index, byte) in expected.iter().enumerate() {
        difference |= byte ^ given.get(index).copied().unwrap_or(0);
    }
    difference == 0
}

/// The middleware every request passes: the guard, then the headers.
pub async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let checked = app.guard.check(request.headers(), request.uri().query());
    let mut response = match checked {
        Ok(_) => next.run(request).await,
        Err((status, message)) => (status, message).into_response(),
    };
    let headers = response.headers_mut();
    if let (Ok(true), Some(token)) = (checked, &app.guard.token) {
        let value = format!(
            "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            super::views::encode(token)
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header::SET_COOKIE, value);
        }
    }
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
