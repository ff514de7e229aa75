mod lock;
mod readers;
mod symlinks;
