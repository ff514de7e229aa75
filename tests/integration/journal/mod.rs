mod corruption;
mod group_commit;
mod poison;
mod preallocation;
mod record_limits;
mod round_trip;
mod torn_tail;
mod writer_edges;
