mod lock_and_permissions;
