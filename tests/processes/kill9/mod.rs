mod concurrent_workload;
mod control;
mod maintenance;
