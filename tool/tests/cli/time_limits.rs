//! Time and duration arguments are refused past what can mean anything:
//! not a number, before 1970, or more than 100 years away. Each refusal is
//! a usage error (exit 2, the store not opened) naming the limit.

use crate::support::cli as cli_support;

use cli_support::{add, counts, mq, stats};

/// Proves issue 6 of the hostile review: `fail --retry-after 1e300` was
/// accepted and shown as "(in 584942417355 years)". It, a negative
/// `--retry-after`, `--retry-in`, `removed --grace`, `cleanup --days` and
/// `replay --until` past 100 years or before 1970 are now refused with
/// exit 2 and a message naming the limit, and the store is unchanged;
/// 99 years is still accepted.
#[test]
fn times_and_durations_past_100_years_are_usage_errors_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    let refusals: &[(&[&str], &str)] = &[
        (
            &["fail", "1", "--error", "e", "--retry-after", "1e300"],
            "more than 100 years from now",
        ),
        (
            &["fail", "1", "--error", "e", "--retry-after", "99999999999"],
            "more than 100 years from now",
        ),
        (&["fail", "1", "--error", "e", "--retry-after", "-5"], "before 1970"),
        (
            &["fail", "1", "--error", "e", "--retry-after", "inf"],
            "not a Unix time",
        ),
        (
            &["fail", "1", "--error", "e", "--retry-in", "1000years"],
            "over the limit of 100 years",
        ),
        (&["removed", "--grace", "200years"], "over the limit of 100 years"),
        (
            &["cleanup", "--days", "99999"],
            "over the limit of 36525 days (100 years)",
        ),
        (&["replay", "--until", "99999999999.5"], "more than 100 years from now"),
        (&["replay", "--until", "-3.0"], "before 1970"),
        (
            &["replay", "--until", "3000-01-01T00:00:00Z"],
            "more than 100 years from now",
        ),
    ];
    for (command, limit) in refusals {
        let refused = mq(dir.path(), command).fails_with(2);
        let first = refused.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: invalid value"), "{command:?}: {refused:#?}");
        assert!(first.contains(limit), "{command:?} names the limit: {refused:#?}");
    }
    assert_eq!(stats(dir.path()), counts(1, 0, 0, 0, 0), "nothing changed");

    let far = mq(dir.path(), &["fail", "1", "--error", "e", "--retry-in", "99years"]).ok();
    assert!(far.stdout.contains("(in 99 years)"), "{far:?}");
}
