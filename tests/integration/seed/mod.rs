mod duplicate_prevention;
mod persistence;
mod retry_logic;
mod statistics_and_cleanup;
mod thread_safety;
mod usage_example;
