mod queue_manager;
