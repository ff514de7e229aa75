mod history_and_replay;
mod journal_end;
mod refusals;
mod replay_prefix;
mod subscription;
mod time_index;
mod time_travel;
