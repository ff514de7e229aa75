mod format;
mod keeping;
mod lean;
mod on_demand;
