mod duplicate_prevention;
mod persistence;
mod queue_fields;
mod retry_logic;
mod statistics_and_cleanup;
mod thread_safety;
mod usage_example;
