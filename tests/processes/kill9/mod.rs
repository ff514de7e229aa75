mod concurrent_workload;
mod maintenance;
