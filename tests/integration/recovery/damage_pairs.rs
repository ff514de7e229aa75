//! The damage matrix for two damaged artifacts at once: every pair of
//! artifacts of every store (segments, the manifest, each documented
//! file, the base), each damaged in one of a few ways (deleted, a bit
//! flipped in its middle, cut to half), against the same oracle as one
//! damage (`damage_matrix.rs`): `verify` agrees with open; an open gives the
//! best state the surviving evidence holds (or, short of every acknowledged
//! change, only by a lost suffix `verify` names); a refusal names a damaged
//! artifact and one `repair` then opens with that best state; after one
//! `repair`, `verify` finds nothing wrong and the event stream reads every
//! record the journal holds.
//!
//! Double faults a hostile review found are among them: the base and the
//! manifest damaged together, a base that fails its checksum beside intact
//! documented files, a deleted manifest with a flipped bit in a segment.

use std::path::Path;

use super::damage_matrix::{Damage, artifacts, check, fixtures};
use crate::support::durability::{reset_dir, scratch};

/// The damages tried on each artifact of a pair.
fn damages(len: usize) -> [Damage; 3] {
    [
        Damage::Delete,
        Damage::Flip { byte: len / 2, bit: 2 },
        Damage::Truncate(len / 2),
    ]
}

#[test]
fn every_pair_of_damaged_artifacts_of_every_store_keeps_what_survives() {
    let mut counts = std::collections::BTreeMap::<(&str, &str), usize>::new();
    let mut total = 0;
    for fixture in fixtures() {
        let work = scratch();
        let all = artifacts(&fixture);
        let len = |artifact: &Path| {
            fixture
                .files
                .iter()
                .find(|(path, _)| path == artifact)
                .map_or(0, |(_, bytes)| bytes.len())
        };
        for (index, (first, _, _)) in all.iter().enumerate() {
            for (second, _, _) in &all[index + 1..] {
                for one in damages(len(first)) {
                    for other in damages(len(second)) {
                        reset_dir(fixture.dir.path(), work.path());
                        one.apply(&work.path().join(first));
                        other.apply(&work.path().join(second));
                        let context = format!(
                            "{} store, {} {one:?} and {} {other:?}",
                            fixture.name,
                            first.display(),
                            second.display()
                        );
                        let verdict = check(&fixture, work.path(), &context, &[first, second]);
                        *counts.entry((fixture.name, verdict)).or_default() += 1;
                        total += 1;
                    }
                }
            }
        }
    }
    eprintln!("damage pairs: {total} doubly damaged stores: {counts:?}");
}
