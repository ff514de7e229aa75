mod concurrent_workload;
