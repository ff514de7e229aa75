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

/// The cookie that stands for a token given in the query, for the links
/// and the live feed of the pages that follow: a random session id of
/// this server (never the token itself), worthless once it stops.
pub const TOKEN_COOKIE: &str = "movie_queue_session";

/// The least entropy a token must have, in bits.
pub const TOKEN_BITS_MIN: f64 = 128.0;

/// 32 random bytes from the kernel, in hex.
///
/// # Errors
/// `/dev/urandom` cannot be read.
pub fn random_hex() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0_u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().fold(String::with_capacity(64), |mut hex, byte| {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
        hex
    }))
}

/// Rows and columns of a keyboard and the digits: a character next to the
/// one before it in one of these, either way, is a guess, not a draw.
const ROWS: [&str; 14] = [
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "1234567890",
    "1qaz",
    "2wsx",
    "3edc",
    "4rfv",
    "5tgb",
    "6yhn",
    "7ujm",
    "8ik",
    "9ol",
    "0p",
];

/// How a character follows from those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// Its code point is that of the one this far back plus this
    /// (`aaa`, `abc`, `cba`; `a1b2c3` at distance 2).
    Step(usize, i64),
    /// It is next, either way, on a keyboard row or column to the one
    /// this far back (`qwe`, `qaz`; `1q2w` at distance 2, `qazwsx` at 3).
    Key(usize),
    /// It repeats the character this far back (`passwordpassword`).
    Repeat(usize),
}

/// The relations character `index` of `chars` has to those before it.
fn relations(chars: &[char], index: usize) -> Vec<Relation> {
    if index == 0 {
        return Vec::new();
    }
    let c = chars[index].to_ascii_lowercase();
    let mut found = Vec::new();
    for distance in 1..=index.min(4) {
        let back = chars[index - distance].to_ascii_lowercase();
        let step = i64::from(u32::from(c)) - i64::from(u32::from(back));
        if (-1..=1).contains(&step) && (distance == 1 || step != 0) {
            found.push(Relation::Step(distance, step));
        }
    }
    for distance in 1..=index.min(4) {
        let back = chars[index - distance].to_ascii_lowercase();
        let key = ROWS.iter().any(|row| {
            let (Some(at), Some(to)) = (row.find(back), row.find(c)) else {
                return false;
            };
            at.abs_diff(to) == 1
        });
        if key {
            found.push(Relation::Key(distance));
        }
    }
    for distance in 2..=index.min(16) {
        if chars[index - distance].to_ascii_lowercase() == c {
            found.push(Relation::Repeat(distance));
        }
    }
    found
}

/// How many bits a token has, as a guesser would count them: each
/// character drawn from the smallest usual alphabet that holds the
/// token's characters (hex digits, 16; else the classes it uses: digits
/// 10, lower-case 26, upper-case 26, other printable ASCII 32) is worth
/// that alphabet's bits, except a letter of a token of letters alone
/// written as words are (lower-case, capitals apart and few), which reads
/// as words (2.5 bits, English's rate), as does one of letter
/// groups parted by spaces, dashes, dots or underscores; a token of fewer
/// than 8 distinct characters counts only those as its alphabet.
/// Two counts: as drawn,
/// and with runs of characters that keep one relation to those before
/// them (the same step: `aaa`, `abc`; keys along a row; a stretch
/// repeated) costing nothing after their first four (a random draw has
/// short ones now and then).
pub fn token_bits(token: &str) -> (f64, f64) {
    let chars: Vec<char> = token.chars().collect();
    let hex = |c: &char| c.is_ascii_digit() || ('a'..='f').contains(c);
    let upper_hex = |c: &char| c.is_ascii_digit() || ('A'..='F').contains(c);
    let alphabet: u32 = if chars.iter().all(char::is_ascii_digit) {
        10
    } else if chars.iter().all(hex) || chars.iter().all(upper_hex) {
        16
    } else {
        let uses = |class: fn(&char) -> bool| chars.iter().any(class);
        [
            (uses(char::is_ascii_digit), 10),
            (uses(char::is_ascii_lowercase), 26),
            (uses(char::is_ascii_uppercase), 26),
            (uses(|c| !c.is_ascii_alphanumeric()), 32),
        ]
        .iter()
        .filter(|(used, _)| *used)
        .map(|(_, size)| size)
        .sum()
    };
    // A draw from an alphabet shows much of it: a token of fewer than 8
    // distinct characters (`0110…`) was drawn from those alone.
    let distinct = chars.iter().collect::<std::collections::BTreeSet<_>>().len();
    let alphabet = if distinct < 8 {
        f64::from(u32::try_from(distinct).unwrap_or(1).min(alphabet))
    } else {
        f64::from(alphabet)
    };
    // Letters alone as words are written (lower-case, a capital now and
    // then, never two together), or letter groups parted by spaces,
    // dashes, dots or underscores, read as words.
    let capitals = chars.iter().filter(|c| c.is_ascii_uppercase()).count();
    let capitals_apart = !chars
        .windows(2)
        .any(|pair| pair[0].is_ascii_uppercase() && pair[1].is_ascii_uppercase());
    let worded = (chars.iter().all(char::is_ascii_alphabetic) && capitals_apart && capitals * 4 <= chars.len())
        || token
            .split([' ', '-', '_', '.'])
            .filter(|part| part.len() >= 3 && part.chars().all(|c| c.is_ascii_alphabetic()))
            .count()
            >= 2;
    let drawn = if worded { 2.5 } else { alphabet.log2() };
    // A run: characters that keep one relation to those before them.
    let mut bits = 0.0;
    let (mut run, mut kept): (usize, Vec<Relation>) = (0, Vec::new());
    for index in 0..chars.len() {
        let found = relations(&chars, index);
        let shared: Vec<Relation> = found
            .iter()
            .copied()
            .filter(|relation| kept.contains(relation))
            .collect();
        (run, kept) = if !shared.is_empty() {
            (run + 1, shared)
        } else if found.is_empty() {
            (0, found)
        } else {
            (1, found)
        };
        bits += if run > 4 { 0.0 } else { drawn };
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "a token's length is far inside f64's precision"
    )]
    let drawn_bits = chars.len() as f64 * drawn;
    (drawn_bits, bits)
}

/// The least a token may keep of its bits once its guessable runs are
/// discounted: a random 32-digit hex token loses a few bits to chance runs
/// now and then (the unit test draws a thousand), a patterned one loses
/// most.
const PATTERNED_BITS_MIN: f64 = 112.0;

/// Refuses a token a guesser could find.
///
/// # Errors
/// A message for a usage error, saying how to make a good one.
pub fn check_token(token: &str) -> Result<(), String> {
    let (drawn, discounted) = token_bits(token);
    let bits = drawn.min(discounted + (TOKEN_BITS_MIN - PATTERNED_BITS_MIN));
    if drawn < TOKEN_BITS_MIN || discounted < PATTERNED_BITS_MIN {
        return Err(format!(
            "--token is too easy to guess (about {bits:.0} bits; at least {TOKEN_BITS_MIN:.0} are needed): \
             use 32 random hex digits, such as `--token \"$(openssl rand -hex 16)\"`"
        ));
    }
    Ok(())
}

/// The Content-Security-Policy of every response: the dashboard's own
/// script and style only (no inline script, no other origin).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What a request must carry, and which `Host` it may name.
#[derive(Debug)]
pub struct Guard {
    token: Option<String>,
    /// The session id the cookie carries once a request gave the token.
    session: String,
    /// The address listened on: a loopback dashboard answers to it too.
    ip: std::net::IpAddr,
    /// Listening on loopback without a token: only loopback host names.
    loopback: bool,
    /// The port listened on (known once bound: `--addr` may say 0).
    port: AtomicU16,
}

impl Guard {
    /// The guard of a dashboard on `addr` with `token`.
    ///
    /// # Errors
    /// `/dev/urandom` cannot be read (for the session id).
    pub fn new(addr: SocketAddr, token: Option<String>) -> std::io::Result<Self> {
        Ok(Guard {
            loopback: addr.ip().is_loopback() && token.is_none(),
            token,
            session: random_hex()?,
            ip: addr.ip(),
            port: AtomicU16::new(addr.port()),
        })
    }

    /// Notes the port actually bound.
    pub fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::Relaxed);
    }

    /// Does a request with these headers and this query name an allowed
    /// host and carry the token? `Err`: the status and why.
    fn check(
        &self,
        headers: &HeaderMap,
        authority: Option<&str>,
        query: Option<&str>,
    ) -> Result<bool, (StatusCode, &'static str)> {
        if self.loopback {
            let port = self.port.load(Ordering::Relaxed);
            // Two `Host` headers are no name at all.
            if headers.get_all(header::HOST).iter().count() > 1 {
                return Err((StatusCode::BAD_REQUEST, "a request names one Host\n"));
            }
            // The authority of an absolute-form request line wins over
            // `Host` (RFC 9112 3.2.2); names in any case.
            let host = authority
                .map(str::to_owned)
                .or_else(|| {
                    headers
                        .get(header::HOST)
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned)
                })
                .unwrap_or_default()
                .to_ascii_lowercase();
            let own = match self.ip {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            };
            let allowed = ["127.0.0.1", "localhost", "[::1]", own.as_str()]
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
        let given = bearer(headers).map(str::to_owned).or_else(|| from_query.clone());
        let session = cookie(headers).is_some_and(|id| same(id.as_bytes(), self.session.as_bytes()));
        match given {
            Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(from_query.is_some()),
            None if session => Ok(false),
            _ => Err((
                StatusCode::UNAUTHORIZED,
                "a token is required: the header `Authorization: Bearer TOKEN`, or `?token=TOKEN` once\n",
            )),
        }
    }
}

/// `Authorization: Bearer T` (the scheme's name in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
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

/// `token=T` in the query (percent-decoded). Given more than once, the
/// values must agree (else one that differs is what is checked: refused).
fn query_token(query: Option<&str>) -> Option<String> {
    let mut given = query?
        .split('&')
        .filter_map(|pair| pair.strip_prefix("token="))
        .map(percent_decode);
    let first = given.next()?;
    Some(given.find(|other| *other != first).unwrap_or(first))
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

/// The message of an error response, for its JSON form under `/api/`.
#[derive(Debug, Clone)]
pub struct ErrorMessage(pub String);

/// The most of an error's text body read to make its JSON form.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// An error under `/api/` in the one shape every API error has:
/// `{"error": "why", "status": 400}`, whoever made it (a handler, the
/// guard, the framework's refusal of a malformed query, no such route).
async fn as_json_error(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let message = match parts.extensions.get::<ErrorMessage>() {
        Some(ErrorMessage(message)) => message.clone(),
        None => axum::body::to_bytes(body, ERROR_BODY_MAX)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
            .unwrap_or_default(),
    };
    let message = if message.is_empty() {
        parts.status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        message
    };
    let body = serde_json::json!({ "error": message, "status": parts.status.as_u16() });
    (parts.status, axum::Json(body)).into_response()
}

/// The middleware every request passes: the guard, then the headers.
pub async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let authority = request.uri().authority().map(|authority| authority.as_str().to_owned());
    let checked = app
        .guard
        .check(request.headers(), authority.as_deref(), request.uri().query());
    let api = request.uri().path().starts_with("/api/");
    let mut response = match checked {
        Ok(_) => next.run(request).await,
        Err((status, message)) => (status, message).into_response(),
    };
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if api && response.status().as_u16() >= 400 && !json {
        response = as_json_error(response).await;
    }
    let headers = response.headers_mut();
    if let Ok(true) = checked {
        let value = format!(
            "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            app.guard.session
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn tokens_as_random_generators_make_them_pass_and_guessable_ones_do_not() {
        // A thousand tokens as `openssl rand -hex 16` and `-base64 24`
        // make them all pass (a million of each did, once, in a release
        // build).
        const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..1_000 {
            let hex: String = (0..32)
                .map(|_| char::from_digit((next() % 16) as u32, 16).unwrap())
                .collect();
            assert!(check_token(&hex).is_ok(), "{hex}: {:?} bits", token_bits(&hex));
            // As `openssl rand -base64 24` makes them: 32 characters.
            let base64: String = (0..32).map(|_| char::from(BASE64[(next() % 64) as usize])).collect();
            assert!(check_token(&base64).is_ok(), "{base64}: {:?} bits", token_bits(&base64));
        }
        for strong in [
            "3f9c2b7a1e8d4c6b9a0f5e2d7c1b8a4e", // openssl rand -hex 16
            "q3J9x+Vb2LkP0wZr7TnYfA==",         // 16 bytes, base64
            "Xk2pQ9vL7mN4rT8wZ1cF6hJ3",         // 24 alphanumerics
        ] {
            assert!(check_token(strong).is_ok(), "{strong}: {:?} bits", token_bits(strong));
        }
        for weak in [
            "",
            "s3cret",
            "correcthorsebatterystaple",
            "3f9c2b7a1e8d4c6b9a0f5e2d7c1b8a4",
            "abababababababababababababababababababab",
            "Password1!",
            "0123456789abcdef0123456789abcdef",
            "passwordpasswordpasswordpassword123",
            "abcdefghijklmnopqrstuvwxyzabcdef",
            "qwertyuiopasdfghjklzxcvbnm123456",
            "correcthorsebatterystaplecorrecthorsebatterystaple",
            "abcdefghijklmnopabcdefghijklmnopabcdefghijklmnopabcdefghijklmnopabcdefghijklmnopabcdefghijklmnopabcdefghijklmnopabcdefghijklmnop",
            &format!("{}bcdefghijk", "a".repeat(128)),
            "0110100111010010110100101101001011101001011010010110100101101001",
            "31415926535897932384626433832795",
            "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
            "0a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p",
            "1q2w3e4r5t6y7u8i9o0p1q2w3e4r5t6y7u8i",
            "qazwsxedcrfvtgbyhnujmikolp1234567890",
            "mnbvcxzlkjhgfdsapoiuytrewq0987654321",
            "1111222233334444555566667777888899990000",
            "the quick brown fox jumps over the lazy dog",
            "movie-queue-dashboard-token-00001",
        ] {
            assert!(check_token(weak).is_err(), "{weak}: {:?} bits", token_bits(weak));
        }
    }
}
