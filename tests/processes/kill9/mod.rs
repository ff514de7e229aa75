mod concurrent_workload;
mod follow;
