mod lock;
mod readers;
mod special_files;
mod symlinks;
