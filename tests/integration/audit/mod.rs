mod history_and_replay;
mod time_travel;
