//! The command line: every command, its arguments and its `--help` example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::output::{local_time, quoted};

/// The store directory's name in `--help`.
const DIR_HELP: &str = "The store directory [default: $MOVIE_QUEUE_DIR, else ~/.movie_sync/]";

/// `movie-queue [--dir DIR] COMMAND`.
#[derive(Debug, Parser)]
#[command(
    name = "movie-queue",
    version,
    about = "Operate, inspect, audit, replay, verify and repair a Movie Sync queue store.",
    long_about = "Operate, inspect, audit, replay, verify and repair a Movie Sync queue store.\n\n\
        Each invocation opens the store, does one thing and closes it. Reading commands \
        (stats, list, show, log, replay, verify, removed, export) open it read-only and work \
        while another process holds it for writing. Without --dir or $MOVIE_QUEUE_DIR the store \
        is ~/.movie_sync/, the application's own.",
    after_help = "Examples:\n  \
        movie-queue demo\n  \
        movie-queue --dir /tmp/q add --id 123 --title 'The Matrix' --year 1999\n  \
        movie-queue --dir /tmp/q next\n  \
        movie-queue --dir /tmp/q stats --json\n\n\
        Exit status: 0 success (a `warning:` line on stderr: the change stands, something after it failed), \
        1 error (one line on stderr naming the file, offset or id), 2 usage, 3 (verify) the store \
        opens but something in it is damaged."
)]
pub struct Cli {
    #[arg(long, global = true, value_name = "DIR", help = DIR_HELP)]
    pub dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add movies to the back of pending; says added or why skipped
    #[command(after_help = "Examples:\n  \
        movie-queue add --id 123 --title 'The Matrix' --year 1999 --imdb-id tt0133093\n  \
        movie-queue add --json '{\"id\":\"7\",\"title\":\"Heat\",\"year\":1995,\"status\":\"queued\"}'\n  \
        movie-queue add --json - < movies.jsonl      # one JSON object a line, one batch\n\n\
        Every line is read and checked first: a bad line (not JSON, not a valid movie, nested \
        deeper than 64 levels, or over the 64 MiB event limit) stops the run before anything is added, naming the line. An id \
        repeated in the input is skipped as a duplicate of its first line. A run killed part-way \
        keeps the movies already written; running it again skips them as duplicates.")]
    Add(AddArgs),

    /// Take the next pending movie (prints it as one JSON line; nothing when empty)
    #[command(
        after_help = "Example:\n  movie-queue next   # {\"id\":\"123\",\"title\":\"The Matrix\",\"year\":\"1999\"}"
    )]
    Next,

    /// Mark a pending, in-flight or failed movie done
    #[command(after_help = "Example:\n  movie-queue complete 123")]
    Complete {
        /// The movie's id
        id: String,
    },

    /// Record a failure of a movie in flight, pending or already failed
    #[command(after_help = "Examples:\n  \
        movie-queue fail 123 --error 'Not found on tracker' --retry-in 2h\n  \
        movie-queue fail 123 --error 'Not found on tracker' --retry-after 1760813282\n  \
        movie-queue fail 123 --error 'Not found on tracker'   # the retry policy decides (1 h, doubling)")]
    Fail(FailArgs),

    /// Move every failed movie ready for retry to the back of pending
    #[command(after_help = "Example:\n  movie-queue retry --max-retries 5")]
    Retry {
        /// Skip movies that failed this many times or more [default: 5]
        #[arg(long, value_name = "N")]
        max_retries: Option<u32>,
    },

    /// Send a failed movie back to pending with a fresh retry count
    #[command(after_help = "Example:\n  movie-queue reset 123")]
    Reset {
        /// The movie's id
        id: String,
    },

    /// Put every movie in flight back at the front of pending
    #[command(after_help = "Example:\n  movie-queue requeue-in-flight")]
    RequeueInFlight,

    /// Remove completed entries older than N days
    #[command(after_help = "Example:\n  movie-queue cleanup --days 30")]
    Cleanup {
        /// Keep entries completed within this many days (at most 36525, 100 years)
        #[arg(long, value_name = "N", value_parser = parse_days)]
        days: u32,
    },

    /// Show the queue counts
    #[command(after_help = "Example:\n  movie-queue stats --json   \
        # {\"pending\":5,\"in_flight\":1,\"failed\":2,\"completed\":10,\"permanent_failures\":1}")]
    Stats(JsonFlag),

    /// List the entries of one queue
    #[command(after_help = "Examples:\n  movie-queue list pending\n  movie-queue list failed --json")]
    List(ListArgs),

    /// Show one movie's current state and its full event history
    #[command(after_help = "Example:\n  movie-queue show 123 --json")]
    Show {
        /// The movie's id
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },

    /// Print the audit trail, one event a line
    #[command(after_help = "Examples:\n  \
        movie-queue log --id 123\n  \
        movie-queue log --json --since 100\n  \
        movie-queue log --follow")]
    Log(LogArgs),

    /// Show the state as of a record or a time (stats, or the four documented files written to a directory)
    #[command(after_help = "Examples:\n  \
        movie-queue replay --until 42                  # through record 42, included\n  \
        movie-queue replay --until 2025-10-18T12:00:00Z --json\n  \
        movie-queue replay --until 1760806482.5 --out /tmp/then")]
    Replay(ReplayArgs),

    /// Check every record, the sequence and the snapshot: exit 0 when nothing is damaged, 3 when the store opens but something is (each problem listed), 1 when it does not open
    #[command(after_help = "Example:\n  movie-queue verify || movie-queue repair")]
    Verify(JsonFlag),

    /// Keep every valid record before damage and set the rest aside (never deleted)
    #[command(after_help = "Example:\n  movie-queue repair && movie-queue verify")]
    Repair,

    /// Write the four documented files and the manifest now
    #[command(after_help = "Example:\n  movie-queue snapshot")]
    Snapshot,

    /// Snapshot, then delete journal segments the snapshot covers (their history goes)
    #[command(after_help = "Example:\n  movie-queue compact")]
    Compact,

    /// Add the entries of the documented queue files found in a directory
    #[command(after_help = "Example:\n  movie-queue import ~/old-movie-sync/")]
    Import {
        /// A directory holding the documented files
        #[arg(value_name = "DIR")]
        source: PathBuf,
    },

    /// Move every pending or completed movie not on the watchlist to removed
    #[command(after_help = "Examples:\n  \
        movie-queue mark-removed 603 949 1124      # the ids still on the watchlist\n  \
        movie-queue mark-removed - < watchlist-ids.txt   # one id a line on stdin\n\n\
        Movies in flight or failed stay where they are. An empty watchlist on stdin removes every \
        pending and completed movie.")]
    MarkRemoved {
        /// The ids on the watchlist now, or `-` to read them from stdin (one a line)
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },

    /// Put a removed movie back at the end of pending; with --from, rebuild a store from a NATS JetStream stream
    #[command(after_help = "Examples:\n  \
        movie-queue restore 603\n  \
        movie-queue restore --from nats://127.0.0.1:4222 --stream movie-queue /srv/restored\n  \
        movie-queue restore --from nats://127.0.0.1:4222 --stream movie-queue --until 2025-10-18T21:00:00Z /srv/then\n\n\
        With --from, the stream's records (those `movie-queue ship` published) are written into a new store in DIR \
        (a new or empty directory) with their numbers and times, through the end of the stream or --until; the \
        new store gets an identity of its own. --dir is not used.")]
    Restore(RestoreArgs),

    /// Publish every record of the journal, in order, to a NATS JetStream stream, and keep following it
    #[command(after_help = "Examples:\n  \
        movie-queue ship --to nats://127.0.0.1:4222\n  \
        movie-queue ship --to nats://backup.example:4222 --stream movies --subject site1.movies\n  \
        movie-queue ship --to nats://127.0.0.1:4222 --once    # what the journal holds now, then exit\n\n\
        Each record is one message on <prefix>.<type> (movie-queue.added, ...), its payload the record's line of \
        `log --json`, its Nats-Msg-Id <store id>:<record>. The shipper resumes where the stream ends (it keeps no \
        position of its own), refuses a stream holding another store's records, and registers what it has shipped \
        in the store (shippers/<stream>) so `compact` keeps the records not shipped yet. It runs beside the \
        application (a reader: no lock).")]
    Ship(ShipArgs),

    /// Drop a removed movie from the store (after its files were deleted)
    #[command(after_help = "Example:\n  movie-queue removed --ready --json | jq -r '.[].id' | \
        while read id; do rm -rf \"/movies/$id\" && movie-queue forget \"$id\"; done")]
    Forget {
        /// The movie's id
        id: String,
    },

    /// List the removed movies, or (--ready) those whose grace period is over
    #[command(after_help = "Examples:\n  movie-queue removed\n  movie-queue removed --ready --grace 7d --json")]
    Removed(RemovedArgs),

    /// Write the four documented files of the current state into a directory
    #[command(after_help = "Example:\n  movie-queue export /tmp/queue-files/")]
    Export {
        /// Where to write them (created 0700 if missing; files 0600); never the store or its journal/
        #[arg(value_name = "DIR")]
        target: PathBuf,
    },

    /// Run the Queue Manager's usage example end to end on a scratch store
    #[command(after_help = "Examples:\n  \
        movie-queue demo                    # a fresh directory under the system's temp dir\n  \
        movie-queue demo --dir /tmp/demo    # a new or empty directory of your choice")]
    Demo,

    /// Serve a web dashboard of the store (read-only unless --allow-actions; loopback by default)
    #[cfg(feature = "dashboard")]
    #[command(after_help = "Examples:\n  \
        movie-queue serve                                   # http://127.0.0.1:8484/\n  \
        movie-queue serve --addr 127.0.0.1:0                # a free port (printed)\n  \
        movie-queue serve --allow-actions                   # buttons on a movie's page\n  \
        movie-queue serve --addr 0.0.0.0:8484 --token \"$(openssl rand -hex 16)\"\n\n\
        Opens the store read-only and takes no lock: it runs beside the application that \
        holds the store, follows what it writes, and never writes a byte in the store. \
        With --allow-actions, a movie's page has buttons (retry now, reset, restore, complete) \
        that the process holding the store carries out, through its control socket. \
        With --token every request must carry it: the header `Authorization: Bearer TOKEN`, \
        or `?token=TOKEN` once (kept in an HttpOnly cookie for the pages after it). A loopback \
        dashboard without a token answers only to Host 127.0.0.1, localhost or [::1].")]
    Serve(ServeArgs),
}

/// `serve`.
#[cfg(feature = "dashboard")]
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen; an address that is not loopback needs --token
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8484")]
    pub addr: std::net::SocketAddr,
    /// A secret every request must carry (required off loopback)
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Buttons on a movie's page (retry now, reset, restore, complete),
    /// carried out by the process holding the store, through its control socket
    #[arg(long)]
    pub allow_actions: bool,
}

/// `removed`.
#[derive(Debug, Args)]
pub struct RemovedArgs {
    /// Only movies whose grace period is over (their files may be deleted)
    #[arg(long)]
    pub ready: bool,
    /// The grace period after removal (`7d`, `12h`, `0s`; at most 100 years)
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub grace: std::time::Duration,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `--json` on a reading command.
#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print machine-readable JSON
    #[arg(long)]
    pub json: bool,
}

/// `add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The movie's id
    #[arg(long, required_unless_present = "json", conflicts_with = "json")]
    pub id: Option<String>,
    /// Its title
    #[arg(long, required_unless_present = "json", conflicts_with = "json")]
    pub title: Option<String>,
    /// Its year (kept as the string given)
    #[arg(long, required_unless_present = "json", conflicts_with = "json")]
    pub year: Option<String>,
    /// Its slug
    #[arg(long, conflicts_with = "json")]
    pub slug: Option<String>,
    /// Its `IMDb` id
    #[arg(long, conflicts_with = "json")]
    pub imdb_id: Option<String>,
    /// A movie as a JSON object (types and extra fields kept), or `-`: one object a line on stdin
    #[arg(long, value_name = "OBJ|-")]
    pub json: Option<String>,
}

/// `fail`.
#[derive(Debug, Args)]
pub struct FailArgs {
    /// The movie's id
    pub id: String,
    /// What went wrong
    #[arg(long, value_name = "MSG")]
    pub error: String,
    /// Retry at this Unix time (seconds; from 0 to 100 years from now)
    #[arg(long, value_name = "UNIX_SECS", conflicts_with = "retry_in", allow_negative_numbers = true, value_parser = parse_retry_after)]
    pub retry_after: Option<f64>,
    /// Retry after this long (`90s`, `15m`, `2h`, `1day`; at most 100 years)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retry_in: Option<std::time::Duration>,
}

/// Which queue `list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListWhich {
    /// Waiting, front first
    Pending,
    /// Taken and not yet reported
    InFlight,
    /// Failed, permanent failures included
    Failed,
    /// Done
    Completed,
    /// Left the watchlist, waiting for their files' deletion
    Removed,
    /// Failed at least --max-retries times
    Permanent,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The queue
    #[arg(value_enum)]
    pub which: ListWhich,
    /// For `permanent`: the failure count that makes one [default: 5]
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// At most N movies
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Skip the first N movies (the `#` column counts from N+1)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: usize,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// One JSON object a line: {"seq":…,"ts":…,"type":"added",…}
    #[arg(long)]
    pub json: bool,
    /// Only events concerning this movie
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Start at this record (included; default: the first the journal holds). A record
    /// compacted away is an error, never a silent gap
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
    /// Keep printing new events as they are written (until interrupted)
    #[arg(long)]
    pub follow: bool,
}

/// Where `replay` stops: a record, or a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UntilArg {
    /// Through this record, included.
    Seq(u64),
    /// Through the last record stamped at or before this Unix time.
    Time(f64),
}

/// `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The removed movie's id; with --from, the directory to restore the store into (new or empty)
    #[arg(value_name = "ID|DIR")]
    pub target: String,
    /// The NATS server to restore from: nats://HOST:PORT
    #[arg(long, value_name = "URL", requires = "stream", value_parser = parse_server)]
    pub from: Option<String>,
    /// The JetStream stream holding the shipped records
    #[arg(long, value_name = "NAME", requires = "from", value_parser = parse_stream)]
    pub stream: Option<String>,
    /// Restore through this record, or through the last record stamped at or before this time (as `replay --until`)
    #[arg(long, value_name = "SEQ|TIME", requires = "from", allow_negative_numbers = true, value_parser = parse_until)]
    pub until: Option<UntilArg>,
}

/// `ship`.
#[derive(Debug, Args)]
pub struct ShipArgs {
    /// The NATS server: nats://HOST:PORT (nats://USER:PASSWORD@HOST:PORT with a password)
    #[arg(long, value_name = "URL", value_parser = parse_server)]
    pub to: String,
    /// The JetStream stream (created with file storage if missing)
    #[arg(long, value_name = "NAME", default_value = "movie-queue", value_parser = parse_stream)]
    pub stream: String,
    /// The subjects' prefix: messages go to <PREFIX>.<type>, the stream takes <PREFIX>.>
    #[arg(long, value_name = "PREFIX", default_value = "movie-queue", value_parser = parse_subject)]
    pub subject: String,
    /// Ship what the journal holds now, then exit (without it, the shipper follows the journal until stopped)
    #[arg(long)]
    pub once: bool,
    /// At most this many messages awaiting the server's acknowledgment
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub in_flight: u32,
}

/// `--to`, `--from`: one NATS server, `nats://[USER[:PASSWORD]@]HOST:PORT`.
fn parse_server(text: &str) -> Result<String, String> {
    if is_server_address(text) {
        Ok(text.to_owned())
    } else {
        Err(
            "not a NATS server's address: give one as nats://HOST:PORT (nats://127.0.0.1:4222 for a server on \
             this machine)"
                .to_owned(),
        )
    }
}

/// `nats://[USER[:PASSWORD]@]HOST:PORT`, one server, a port from 1 to
/// 65535: an address waiting cannot mend is refused at once.
pub fn is_server_address(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("nats://") else {
        return false;
    };
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, host_port)| host_port);
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return false;
    };
    !host.is_empty() && !host.contains([',', '/', ' ']) && port.parse::<u16>().is_ok_and(|port| port > 0)
}

/// `--stream`: a name the store can register a shipper under.
fn parse_stream(text: &str) -> Result<String, String> {
    if movie_queue::is_shipper_name(text) {
        Ok(text.to_owned())
    } else {
        Err("a stream name is 1 to 64 letters, digits, `-` or `_`".to_owned())
    }
}

/// `--subject`: plain tokens joined by dots, no wildcards.
fn parse_subject(text: &str) -> Result<String, String> {
    let token = |token: &str| {
        !token.is_empty()
            && token
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    };
    if text.len() <= 200 && text.split('.').all(token) {
        Ok(text.to_owned())
    } else {
        Err(
            "a prefix is tokens of letters, digits, `-` or `_` joined by dots, such as movie-queue or site1.movies"
                .to_owned(),
        )
    }
}

/// `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A record number (`42`), a Unix time with a decimal point (`1760806482.0`) or an RFC 3339 date-time
    /// (a time from 1970 to 100 years from now)
    #[arg(long, value_name = "SEQ|TIME", allow_negative_numbers = true, value_parser = parse_until)]
    pub until: UntilArg,
    /// Print the statistics as JSON
    #[arg(long)]
    pub json: bool,
    /// Write the four documented queue files of that state here (created 0700 if missing; never the store)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// How far a time or duration argument may reach: 100 years, a bound no
/// queue needs and far inside what the clock, the tables and JSON handle.
const LIMIT_YEARS: u32 = 100;

/// [`LIMIT_YEARS`] in seconds, years of 365.25 days (as `humantime` counts them).
const LIMIT_SECS: f64 = 100.0 * 365.25 * 86_400.0;

/// [`LIMIT_YEARS`] in days.
const LIMIT_DAYS: u32 = 36_525;

/// `--retry-after`: a Unix time in seconds, from 0 to 100 years from now.
fn parse_retry_after(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() => within_limits(secs),
        _ => Err(format!("{} is not a Unix time in seconds", quoted(text))),
    }
}

/// Refuses a Unix time before 1970 or more than 100 years from now (clap
/// names the argument and its value before the message).
fn within_limits(secs: f64) -> Result<f64, String> {
    if secs < 0.0 {
        return Err(format!(
            "before 1970: give a Unix time in seconds, from 0 to {LIMIT_YEARS} years from now"
        ));
    }
    let latest = (movie_queue::now() + LIMIT_SECS).floor();
    if secs > latest {
        return Err(format!(
            "more than {LIMIT_YEARS} years from now; the limit is Unix time {latest} ({})",
            local_time(latest)
        ));
    }
    Ok(secs)
}

/// A duration (`90s`, `2h`, `7d`) of at most 100 years.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| format!("{}: {error}", quoted(text)))?;
    if duration.as_secs_f64() > LIMIT_SECS {
        return Err(format!("over the limit of {LIMIT_YEARS} years"));
    }
    Ok(duration)
}

/// `cleanup --days`: at most 36525 (100 years).
fn parse_days(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(days) if days <= LIMIT_DAYS => Ok(days),
        Ok(_) => Err(format!("over the limit of {LIMIT_DAYS} days ({LIMIT_YEARS} years)")),
        Err(error) => Err(format!("{}: {error}", quoted(text))),
    }
}

/// An integer is a record number; a number with a decimal point is a Unix
/// time; anything else must be an RFC 3339 date-time.
#[expect(
    clippy::cast_precision_loss,
    reason = "microseconds since 1970 fit an f64's 52-bit mantissa until year 2112"
)]
fn parse_until(text: &str) -> Result<UntilArg, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(UntilArg::Seq)
            .map_err(|error| format!("{}: {error}", quoted(text)));
    }
    if let Ok(secs) = text.parse::<f64>() {
        return if secs.is_finite() && text.contains('.') {
            within_limits(secs).map(UntilArg::Time)
        } else {
            Err(format!(
                "{} is neither a record number nor a Unix time with a decimal point",
                quoted(text)
            ))
        };
    }
    let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|error| {
        format!(
            "{} is not a record number, a Unix time (1760806482.5) or an RFC 3339 date-time: {error}",
            quoted(text)
        )
    })?;
    within_limits(time.timestamp_micros() as f64 / 1e6).map(UntilArg::Time)
}

#[cfg(test)]
mod nats_address_tests {
    use super::is_server_address;

    #[test]
    fn an_address_is_one_server_with_a_port() {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn until_tells_records_from_times() {
        assert_eq!(parse_until("42"), Ok(UntilArg::Seq(42)));
        assert_eq!(parse_until("1760806482.5"), Ok(UntilArg::Time(1_760_806_482.5)));
        assert_eq!(parse_until("1970-01-01T00:01:00Z"), Ok(UntilArg::Time(60.0)));
        assert!(parse_until("-3").is_err());
        assert!(parse_until("yesterday").is_err());
        assert!(parse_until("NaN").is_err());
        assert!(parse_until("-5.0").is_err());
        assert!(parse_until("1e300.0").is_err());
        assert!(parse_until("99999999999.5").is_err());
        assert!(parse_until("0001-01-01T00:00:00Z").is_err());
        assert!(parse_until("9999-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn times_and_durations_are_refused_past_100_years() {
        assert_eq!(parse_retry_after("1"), Ok(1.0));
        let soon = movie_queue::now() + 99.0 * 365.25 * 86_400.0;
        assert_eq!(parse_retry_after(&soon.to_string()), Ok(soon));
        for refused in ["inf", "NaN", "x"] {
            let error = parse_retry_after(refused).err().unwrap_or_default();
            assert!(error.contains("is not a Unix time"), "{refused}: {error}");
        }
        for refused in ["1e300", "99999999999"] {
            let error = parse_retry_after(refused).err().unwrap_or_default();
            assert!(error.starts_with("more than 100 years from now"), "{refused}: {error}");
        }
        for refused in ["-5", "-0.5"] {
            let error = parse_retry_after(refused).err().unwrap_or_default();
            assert!(error.starts_with("before 1970"), "{refused}: {error}");
        }
        assert_eq!(
            parse_duration("99years").map(|duration| duration.as_secs()),
            Ok(3_124_202_400)
        );
        assert!(
            parse_duration("101years")
                .err()
                .unwrap_or_default()
                .contains("limit of 100 years")
        );
        assert!(parse_duration("5000000000000000000years").is_err());
        assert_eq!(parse_days("36525"), Ok(36_525));
        assert!(
            parse_days("36526")
                .err()
                .unwrap_or_default()
                .contains("limit of 36525 days")
        );
    }
}
