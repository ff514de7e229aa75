mod queue_manager;
mod round_trip;
