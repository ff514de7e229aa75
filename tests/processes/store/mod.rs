mod control;
mod fork;
mod lock_and_permissions;
