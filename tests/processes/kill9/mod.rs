mod concurrent_workload;
mod follow;
mod maintenance;
