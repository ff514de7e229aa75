//! Helpers shared by the integration tests.

pub mod cli;
pub mod common;
pub mod durability;
