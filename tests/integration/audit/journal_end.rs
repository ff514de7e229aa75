//! `JournalEnd`: where the journal ends, across segment rolls and a
//! `compact`, reading on from where it stopped; what a follower compares
//! with to say how far behind it is.

use movie_queue::{Durability, JournalEnd, Options, Seq};

use crate::support::common::movie;

#[test]
fn journal_end_follows_the_last_record_across_rolls_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        Options::default()
            .durability(Durability::Immediate)
            .segment_bytes_max(4096)
    };
    let mut end = {
        let qm = options().open(dir.path()).unwrap();
        for id in 0..10 {
            qm.add_to_pending(movie(&id.to_string())).unwrap();
        }
        let mut end = JournalEnd::new(dir.path(), Seq(0)).unwrap();
        assert_eq!(end.last_seq().unwrap(), Seq(10));
        for id in 10..200 {
            qm.add_to_pending(movie(&id.to_string())).unwrap();
        }
        assert_eq!(end.last_seq().unwrap(), Seq(200), "read on across segment rolls");
        qm.compact().unwrap();
        qm.add_to_pending(movie("after")).unwrap();
        qm.close().unwrap();
        end
    };
    assert_eq!(end.last_seq().unwrap(), Seq(201), "read on after a compaction");
    let mut late = JournalEnd::new(dir.path(), Seq(150)).unwrap();
    assert_eq!(late.last_seq().unwrap(), Seq(201), "from a record in the middle");
    let mut empty = JournalEnd::new(tempfile::tempdir().unwrap().path(), Seq(0)).unwrap();
    assert_eq!(empty.last_seq().unwrap(), Seq(0), "no journal: no record");
    assert_eq!(end.last_seq().unwrap(), Seq(201), "asked again, nothing new");
}
