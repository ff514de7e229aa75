//! The events-per-hour chart, drawn on the server as inline SVG: bars
//! with their geometry computed here, so the page needs no script and no
//! chart library to show it.

use super::views::Bucket;
use crate::output::local_time;

/// The chart's drawing area, in SVG units.
pub const WIDTH: u32 = 720;
/// Its height.
pub const HEIGHT: u32 = 160;

/// One bar: its box and its tooltip.
#[derive(Debug, Clone)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub title: String,
}

/// The slots the chart draws `bars` bars in: at least a day of them, so a
/// young journal does not draw one wall.
pub fn slots(bars: usize) -> u32 {
    u32::try_from(bars).unwrap_or(u32::MAX).max(24)
}

/// The times under the chart's axis: where its first slot starts and its
/// last one ends (distinct even for one bar).
pub fn axis(buckets: &[Bucket], hours: i64) -> (String, String) {
    let Some(first) = buckets.first() else {
        return (String::new(), String::new());
    };
    #[expect(clippy::cast_precision_loss, reason = "hours of a journal's life, far inside f64")]
    let span = f64::from(slots(buckets.len())) * hours as f64 * 3600.0;
    (local_time(first.start), local_time(first.start + span))
}

/// The bars of `buckets`, `hours` hours each, scaled to the largest.
pub fn bars(buckets: &[Bucket], hours: i64) -> Vec<Bar> {
    let peak = buckets.iter().map(|bucket| bucket.events).max().unwrap_or(0).max(1);
    let count = slots(buckets.len());
    let slot = f64::from(WIDTH) / f64::from(count);
    let span = if hours == 1 {
        "hour".to_owned()
    } else {
        format!("{hours} hours")
    };
    (0u32..)
        .zip(buckets)
        .map(|(index, bucket)| {
            #[expect(clippy::cast_precision_loss, reason = "a count of events, drawn")]
            let height = f64::from(HEIGHT) * bucket.events as f64 / peak as f64;
            Bar {
                x: format!("{:.2}", f64::from(index) * slot + slot * 0.1),
                y: format!("{:.2}", f64::from(HEIGHT) - height),
                width: format!("{:.2}", slot * 0.8),
                height: format!("{height:.2}"),
                title: format!(
                    "{}: {} events in the {span} from then",
                    local_time(bucket.start),
                    bucket.events
                ),
            }
        })
        .collect()
}
