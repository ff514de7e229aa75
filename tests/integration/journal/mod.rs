mod corruption;
mod group_commit;
mod poison;
mod record_limits;
mod round_trip;
mod torn_tail;
mod writer_edges;
