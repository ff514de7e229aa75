mod history_and_replay;
