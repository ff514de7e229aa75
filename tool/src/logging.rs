//! The library's log lines (tracing's warnings and errors, more with
//! `RUST_LOG`) on stderr, safe to print like every other line the tool
//! writes: each field's value goes through [`safe`], so a path holding a
//! newline or ESC cannot forge a line or reach the terminal as an escape
//! sequence. Colours stay (only when stderr is a terminal and `NO_COLOR` is
//! unset): they are added by the formatter around the escaped text.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

use super::output::safe;

/// Warnings and errors of the library on stderr; `RUST_LOG` overrides.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(SafeFields)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Formats an event's fields as tracing's default does (`message
/// key=value ...`, field names in italics when colour is on), each value
/// made [`safe`]; a string field's value in double quotes.
#[derive(Debug, Clone, Copy)]
pub struct SafeFields;

impl<'writer> MakeVisitor<Writer<'writer>> for SafeFields {
    type Visitor = SafeVisitor<'writer>;

    fn make_visitor(&self, writer: Writer<'writer>) -> SafeVisitor<'writer> {
        SafeVisitor {
            writer,
            empty: true,
            result: Ok(()),
        }
    }
}

/// The visitor of [`SafeFields`].
pub struct SafeVisitor<'writer> {
    writer: Writer<'writer>,
    /// Nothing written yet (no separating space needed).
    empty: bool,
    result: fmt::Result,
}

impl SafeVisitor<'_> {
    fn write(&mut self, field: &Field, text: &str, quote: bool) {
        let name = field.name();
        // The `log` crate's metadata, which the formatter shows elsewhere.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let separator = if std::mem::take(&mut self.empty) { "" } else { " " };
        let value = safe(text);
        self.result = if name == "message" {
            write!(self.writer, "{separator}{value}")
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            let (italic, dimmed, reset) = if self.writer.has_ansi_escapes() {
                ("\x1b[3m", "\x1b[2m", "\x1b[0m")
            } else {
                ("", "", "")
            };
            let quote = if quote { "\"" } else { "" };
            write!(
                self.writer,
                "{separator}{italic}{name}{reset}{dimmed}={reset}{quote}{value}{quote}"
            )
        };
    }
}

impl Visit for SafeVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value, field.name() != "message");
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, &value.to_string(), false);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"), false);
    }
}

impl VisitOutput<fmt::Result> for SafeVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for SafeVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Everything written, shared with the subscriber.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(ansi: bool) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(SafeFields)
            .with_writer(move || writer.clone())
            .with_ansi(ansi)
            .with_target(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let path = std::path::Path::new("/tmp/h\ni\x1b[31m");
            let name = "a\x07b";
            tracing::warn!(path = %path.display(), offset = 7, name, "set a file aside\r");
        });
        let bytes = captured.0.lock().map(|bytes| bytes.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_log_line_escapes_control_characters_in_its_fields() {
        assert_eq!(
            logged(false),
            " WARN set a file aside\\r path=/tmp/h\\ni\\x1b[31m offset=7 name=\"a\\x07b\"\n"
        );
    }

    #[test]
    fn colours_stay_around_the_escaped_text() {
        let line = logged(true);
        assert!(line.contains("\x1b[33m WARN\x1b[0m"), "{line:?}");
        assert!(
            line.contains("\x1b[3mpath\x1b[0m\x1b[2m=\x1b[0m/tmp/h\\ni\\x1b[31m"),
            "{line:?}"
        );
        let escapes = line.matches('\x1b').count();
        assert_eq!(escapes, 2 + 3 * 4, "only the formatter's colours: {line:?}");
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
    }
}
