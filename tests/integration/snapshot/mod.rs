mod format;
mod lean;
mod on_demand;
