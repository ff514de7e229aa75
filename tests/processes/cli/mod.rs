mod add_and_take;
mod demo;
mod errors;
mod fail_retry;
mod inspect;
mod maintenance;
mod replay;
mod verify_repair;
