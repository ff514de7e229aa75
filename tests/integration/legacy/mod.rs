mod import;
mod removed_queue;
