//! Helpers shared by the integration tests (both binaries; each uses a part).
#![allow(dead_code)]

pub mod common;
pub mod durability;
pub mod gated;
pub mod reads;

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Children are started under a shared guard, and tests that open stores
/// in this process while others start children take it alone: a fork
/// lends every open `LOCK` of the process to the child until it execs, so
/// a reopen meeting a child in that window would see `Locked`.
static CHILDREN: RwLock<()> = RwLock::new(());

/// Held while starting a child process (until `spawn` or `output` returns:
/// by then the child has exec'd and closed the files it inherited).
pub fn spawning() -> RwLockReadGuard<'static, ()> {
    CHILDREN.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Held for the whole of a test that opens stores in this process and
/// must not have their locks lent to another test's child.
pub fn alone() -> RwLockWriteGuard<'static, ()> {
    CHILDREN.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
