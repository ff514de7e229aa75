//! The sequence-number newtype and its limits, and `Until`, a point in a
//! store's history (a record or a time): a leaf every layer may import.

use serde::{Deserialize, Serialize};

/// The largest sequence number the store accepts (2^62): far beyond any
/// journal, and far enough from `u64::MAX` that `seq + 1` never wraps.
pub const SEQ_MAX: u64 = 1 << 62;

/// A journal sequence number: contiguous from 1, one per event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The sequence number after this one.
    #[must_use]
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }

    /// The sequence number before this one (`Seq(0)` stays `Seq(0)`).
    #[must_use]
    pub fn previous(self) -> Seq {
        Seq(self.0.saturating_sub(1))
    }
}

impl std::fmt::Display for Seq {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// Where a replay for `state_at` stops: a point in the store's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Until {
    /// Through this record, included.
    Seq(Seq),
    /// Every event stamped at or before this Unix time (times are
    /// monotonic in a store, so these are a prefix of the journal).
    Time(f64),
}

impl From<Seq> for Until {
    /// A record: `qm.state_at(Seq(5))`.
    fn from(seq: Seq) -> Until {
        Until::Seq(seq)
    }
}

impl std::fmt::Display for Until {
    /// `record 12`, `time 1760806482.5`: how a refusal names its target.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Until::Seq(seq) => write!(formatter, "record {seq}"),
            Until::Time(time) => write!(formatter, "time {time}"),
        }
    }
}
