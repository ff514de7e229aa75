//! [`DurableWatch`]: the writer's "synced through", followed from another
//! thread without keeping the writer alive.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;
use crate::error::Result;
use crate::seq::Seq;

/// Follows the writer's "synced through" from another thread (a
/// subscription hands on only durable records) without keeping the
/// writer alive; see [`JournalWriter::durable_watch`].
#[derive(Debug, Clone)]
pub struct DurableWatch(Weak<Shared>);

impl DurableWatch {
    pub(super) fn new(shared: Weak<Shared>) -> Self {
        DurableWatch(shared)
    }

    /// The last durable record; `None` once the writer is gone (closed:
    /// everything it wrote is durable).
    #[must_use]
    pub fn synced_through(&self) -> Option<Seq> {
        let shared = self.0.upgrade()?;
        Some(Seq(shared.synced_through.load(Ordering::Acquire)))
    }

    /// Waits at most `timeout` until a record after `seq` is durable (or
    /// the writer is poisoned or gone); returns the last durable record
    /// (`None`: the writer is gone).
    ///
    /// # Errors
    /// [`Error::Poisoned`] once a write or fsync failed.
    pub fn wait_beyond(&self, seq: Seq, timeout: Duration) -> Result<Option<Seq>> {
        let Some(shared) = self.0.upgrade() else {
            return Ok(None);
        };
        let mut poison = shared.lock();
        if !shared.is_synced(seq.next()) && poison.is_none() {
            poison = shared
                .synced
                .wait_timeout(poison, timeout)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        if let Some(poison) = &*poison {
            return Err(poison.error());
        }
        Ok(Some(Seq(shared.synced_through.load(Ordering::Acquire))))
    }
}
