//! The dashboard's timeline agrees with the library's projection: after a
//! randomized history of every operation (each event kind, hostile titles,
//! an import, a clean-up), the queues the timeline shows as of every record
//! — order, retry count, last error, retry time, title — are exactly those
//! of `movie_queue::replay` at that record; and after `compact` the
//! timeline starts from the compaction base and agrees from there on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use movie_queue::{Durability, Movie, Place, QueueManager, Seq, Until};

use super::model::Model;

/// One queue as (id, retry count, last error, retry time, title), in order.
type Queue = Vec<(String, u32, Option<String>, Option<f64>, String)>;

/// The queues the timeline shows as of `seq`.
fn timeline_queues(model: &Model, seq: u64) -> Vec<Queue> {
    Place::ALL
        .iter()
        .map(|place| {
            let mut members: Vec<_> = model
                .tracks()
                .filter_map(|track| Some((track, track.at(seq)?)))
                .filter(|(_, state)| state.place == Some(*place))
                .collect();
            members.sort_by_key(|(_, state)| state.key);
            members
                .iter()
                .map(|(track, state)| {
                    let error = state.error().map(|_| model.error_text(state.error()).to_owned());
                    let title = track.label(state).0.to_owned();
                    (
                        track.id().to_owned(),
                        state.retry_count,
                        error,
                        state.retry_after(),
                        title,
                    )
                })
                .collect()
        })
        .collect()
}

/// The queues the library's replay rebuilds as of `seq`.
fn replayed_queues(dir: &Path, seq: u64) -> Vec<Queue> {
    let state = movie_queue::replay(dir, Until::Seq(Seq(seq))).expect("replay").state;
    Place::ALL
        .iter()
        .map(|place| {
            state
                .entries(*place)
                .map(|entry| {
                    let title = entry.movie.title().unwrap_or_default().to_owned();
                    (
                        entry.id().to_owned(),
                        entry.retry_count,
                        entry.last_error.clone(),
                        entry.retry_after,
                        title,
                    )
                })
                .collect()
        })
        .collect()
}

/// A small deterministic generator (no dependency, same history every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

fn movie(number: u64) -> Movie {
    let title = if number.is_multiple_of(5) {
        format!("<script>alert({number})</script> & \"quotes\"")
    } else {
        format!("Movie {number}")
    };
    Movie::new(number.to_string(), title, "2020")
}

/// One random operation on `qm` (most are accepted; a refused one writes nothing).
fn step(qm: &QueueManager, random: &mut Lcg, next_id: &mut u64) {
    let pick = |place: Place, random: &mut Lcg| {
        let entries = qm.list(place);
        let count = u64::try_from(entries.len()).unwrap();
        (count > 0).then(|| entries[usize::try_from(random.below(count)).unwrap()].clone())
    };
    match random.below(14) {
        0..=3 => {
            *next_id += 1;
            qm.add_to_pending(movie(*next_id)).unwrap();
        }
        4 | 5 => drop(qm.get_next_pending().unwrap()),
        6 => {
            let place = [Place::InFlight, Place::Pending, Place::Failed][usize::try_from(random.below(3)).unwrap()];
            if let Some(entry) = pick(place, random) {
                let error =
                    ["No seeders", "Not found on tracker", "<b>bold</b>"][usize::try_from(random.below(3)).unwrap()];
                #[expect(clippy::cast_precision_loss, reason = "a small number")]
                let retry = 1_900_000_000.0 + random.below(1000) as f64;
                qm.add_to_failed(entry.movie, error, Some(retry)).unwrap();
            }
        }
        7 => {
            if let Some(entry) = pick(Place::Failed, random) {
                if random.below(2) == 0 {
                    qm.move_failed_to_pending(entry.id()).unwrap();
                } else {
                    qm.reset_failed_movie(entry.id()).unwrap();
                }
            }
        }
        8 => {
            let place = [Place::InFlight, Place::Pending, Place::Failed][usize::try_from(random.below(3)).unwrap()];
            if let Some(entry) = pick(place, random) {
                qm.add_to_completed(entry.movie).unwrap();
            }
        }
        9 => drop(qm.requeue_in_flight().unwrap()),
        10 => {
            let keep: Vec<String> = qm
                .list(Place::Pending)
                .iter()
                .filter(|_| random.below(4) != 0)
                .map(|entry| entry.id().to_owned())
                .collect();
            qm.mark_movies_as_removed(keep).unwrap();
        }
        11 => {
            if let Some(entry) = pick(Place::Removed, random) {
                if random.below(2) == 0 {
                    qm.restore_removed_movie(entry.id()).unwrap();
                } else {
                    qm.remove_from_removed_queue(entry.id()).unwrap();
                }
            }
        }
        12 => {
            *next_id += 1;
            qm.add_to_removed(movie(*next_id)).unwrap();
        }
        _ => drop(qm.cleanup_completed_before(movie_queue::now() + 1.0).unwrap()),
    }
}

fn batched() -> movie_queue::Options {
    QueueManager::options().durability(Durability::Batched {
        max_delay: Duration::from_millis(1),
    })
}

/// A store with a long random history and an import in its middle.
fn history(dir: &Path, seed: u64, steps: usize) {
    let exported = tempfile::tempdir().unwrap();
    let qm = batched().open(dir).unwrap();
    let mut random = Lcg(seed);
    let mut next_id = 0;
    for index in 0..steps {
        step(&qm, &mut random, &mut next_id);
        if index == steps / 2 {
            qm.export(exported.path()).unwrap();
        }
    }
    // What was exported half-way: known ids are skipped, forgotten ones come back.
    qm.import(exported.path()).unwrap();
    for _ in 0..steps / 10 {
        step(&qm, &mut random, &mut next_id);
    }
    qm.close().unwrap();
}

#[test]
fn the_timeline_agrees_with_replay_at_every_record() {
    for seed in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path(), seed, 240);
        let (model, damage) = super::load::load(dir.path()).unwrap();
        assert_eq!(damage, None);
        assert!(model.last_seq() > 200, "a long history: {}", model.last_seq());
        for seq in 0..=model.last_seq() {
            assert_eq!(
                timeline_queues(&model, seq),
                replayed_queues(dir.path(), seq),
                "seed {seed}, record {seq}"
            );
        }
        let kinds: std::collections::BTreeSet<u8> = model.events.iter().map(super::model::EventMeta::kind).collect();
        assert!(kinds.len() >= 12, "the history covers the event kinds: {kinds:?}");
        let now = QueueManager::open_read_only(dir.path()).unwrap().get_statistics();
        assert_eq!(model.statistics(), now, "the counts are the store's statistics");
        for seq in (0..=model.last_seq()).step_by(7) {
            let replayed = movie_queue::replay(dir.path(), Until::Seq(Seq(seq))).unwrap();
            assert_eq!(
                super::views::travel(&model, seq, seq).counts,
                replayed.state.statistics(model.max_retries),
                "seed {seed}: the counts as of record {seq} are the replayed state's"
            );
        }
    }
}

#[test]
fn after_compact_the_timeline_starts_from_the_base_and_agrees() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path(), 3, 200);
    let qm = batched().segment_bytes_max(4096).open(dir.path()).unwrap();
    let mut random = Lcg(4);
    let mut next_id = 10_000;
    for _ in 0..150 {
        step(&qm, &mut random, &mut next_id);
    }
    qm.compact().unwrap();
    for _ in 0..40 {
        step(&qm, &mut random, &mut next_id);
    }
    qm.close().unwrap();
    let (model, damage) = super::load::load(dir.path()).unwrap();
    assert_eq!(damage, None);
    assert!(model.first_seq() > 0, "the journal was compacted");
    for seq in model.first_seq()..=model.last_seq() {
        assert_eq!(
            timeline_queues(&model, seq),
            replayed_queues(dir.path(), seq),
            "record {seq}"
        );
    }
}

/// The search buffer finds exactly the movies whose id or current title
/// contains the text (case-insensitive), after titles changed, movies
/// left and came back; and a page in queue order is the queue's slice.
#[test]
fn search_finds_what_a_scan_of_every_movie_finds() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path(), 7, 300);
    let qm = batched().open(dir.path()).unwrap();
    // A title that changes: the old one is no longer found.
    qm.add_to_pending(Movie::new("retitled", "Old Name", "2020")).unwrap();
    qm.take_next_pending().unwrap();
    qm.add_to_failed(Movie::new("retitled", "Néw Ñame", "2021"), "boom", None)
        .unwrap();
    qm.close().unwrap();
    let (model, _) = super::load::load(dir.path()).unwrap();
    for needle in [
        "movie 1",
        "script",
        "1",
        "ñame",
        "old name",
        "retitled",
        "zzz",
        "\"quotes\"",
    ] {
        let mut found: Vec<String> = model
            .search(needle)
            .into_iter()
            .map(|index| model.track_at(index).unwrap().id().to_owned())
            .collect();
        found.sort();
        let mut scanned: Vec<String> = model
            .tracks()
            .filter(|track| {
                let label = track.now().map_or("", |state| track.label(state).0);
                track.id().to_lowercase().contains(needle) || label.to_lowercase().contains(needle)
            })
            .map(|track| track.id().to_owned())
            .collect();
        scanned.sort();
        assert_eq!(found, scanned, "{needle:?}");
    }
    assert!(model.search("old name").is_empty());
    assert_eq!(model.search("ñame").len(), 1);
    for place in Place::ALL {
        for descending in [false, true] {
            let query = super::views::TableQuery {
                place,
                search: String::new(),
                sort: super::views::Sort::Queue,
                descending,
                page: 1,
                per_page: 7,
            };
            let page: Vec<String> = super::views::queue_table(&model, &query)
                .rows
                .into_iter()
                .map(|row| row.id)
                .collect();
            let mut all = timeline_queues(&model, model.last_seq())[place as usize]
                .iter()
                .map(|entry| entry.0.clone())
                .collect::<Vec<_>>();
            if descending {
                all.reverse();
            }
            // Page 1 of 7 rows, or the last page when there are fewer.
            let page_shown = 1.min(all.len().div_ceil(7).max(1) - 1);
            let expected: Vec<String> = all.into_iter().skip(7 * page_shown).take(7).collect();
            assert_eq!(page, expected, "{place:?} descending {descending}");
        }
    }
}
