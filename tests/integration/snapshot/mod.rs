mod format;
mod lean;
