//! The control socket's file and its peers: bound in a private folder at
//! mode 0600 and renamed into place (never created through a link; a
//! stale socket of a killed holder replaced, never connected to), its
//! address shortened through `/proc/self/fd` when the store's path is too
//! long for a socket address, and the peer's user read from the kernel
//! (`SO_PEERCRED`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::layout::{self, Layout};

/// The longest path a Unix socket address holds (`sun_path` less its NUL).
const SUN_PATH_MAX: usize = 107;

/// A path to `name` in `dir` short enough for a socket address: the path
/// itself, or `/proc/self/fd/N/name` through `dir` held open (`File`,
/// which must outlive every use of the path).
fn short_path(dir: &Path, name: &Path) -> std::io::Result<(PathBuf, Option<File>)> {
    let path = dir.join(name);
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return Ok((path, None));
    }
    let held = File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", held.as_raw_fd())).join(name);
    Ok((short, Some(held)))
}

/// Connects to the socket at `path` (any length).
pub(super) fn connect(path: &Path) -> std::io::Result<UnixStream> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map_or_else(|| Path::new(""), Path::new);
    let (address, _held) = short_path(dir, name)?;
    UnixStream::connect(address)
}

/// A socket file this process created, with its identity on disk.
pub(super) struct Bound {
    pub listener: UnixListener,
    pub path: PathBuf,
    /// The file's device and inode once in place: it is removed at the
    /// end only if it is still this one.
    identity: (u64, u64),
}

/// Binds the control socket of the store in `dir`: in a private folder
/// (`control.<pid>.bind`, mode 0700) at mode 0600, then renamed over
/// whatever is at `control.sock` (the caller holds the writer's lock, so
/// anything there is a killed holder's). Leftover bind folders of killed
/// holders are removed first.
pub(super) fn bind(dir: &Path) -> std::io::Result<Bound> {
    remove_leftover_bind_dirs(dir);
    let private = dir.join(layout::control_bind_dir(std::process::id()));
    if std::fs::symlink_metadata(&private).is_ok() {
        remove_bind_dir(&private);
    }
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let bound = (|| {
        let name = Path::new(layout::CONTROL_SOCKET);
        let (address, _held) = short_path(&private, name)?;
        let listener = UnixListener::bind(&address)?;
        let temporary = private.join(name);
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
        let path = Layout::new(dir).control_socket();
        make_way(&path)?;
        std::fs::rename(&temporary, &path)?;
        let metadata = std::fs::symlink_metadata(&path)?;
        Ok(Bound {
            listener,
            path,
            identity: (metadata.dev(), metadata.ino()),
        })
    })();
    remove_bind_dir(&private);
    bound
}

/// Makes way for the socket at `path`: a directory (a rename cannot
/// replace it) or a regular file (someone's bytes, not ours to delete) is
/// renamed aside, `control.sock.in-the-way.broken`, as the store sets aside
/// whatever is in the way of a name it writes; a socket or a link (a
/// killed holder's, or planted) is replaced by the rename, never followed.
fn make_way(path: &Path) -> std::io::Result<()> {
    use crate::storage::{Entry, RealStorage, Storage};
    let storage = RealStorage;
    let set_aside = match storage.entry(path) {
        Ok(Entry::Directory) => crate::storage::set_directory_aside(&storage, path),
        Ok(Entry::File(_)) => crate::storage::free_aside_name(&storage, path, layout::IN_THE_WAY_TAG).and_then(|aside| {
            tracing::warn!(from = %path.display(), to = %aside.display(), "a file was where the control socket goes: set aside");
            storage
                .rename(path, &aside)
                .map_err(|error| crate::error::Error::io("rename aside", path, error))
        }),
        _ => Ok(()),
    };
    set_aside.map_err(|error| std::io::Error::other(error.to_string()))
}

impl Bound {
    /// Removes the socket file if it is still the one bound here.
    pub(super) fn remove(&self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == self.identity);
        if ours && let Err(error) = std::fs::remove_file(&self.path) {
            tracing::debug!(%error, path = %self.path.display(), "could not remove the control socket");
        }
    }
}

fn remove_leftover_bind_dirs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(layout::is_control_bind_dir) {
            remove_bind_dir(&entry.path());
        }
    }
}

/// Removes a bind folder: its socket file, then the folder (a link or a
/// file of that name is removed as itself, never followed).
fn remove_bind_dir(path: &Path) {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return;
    };
    if metadata.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let _ = std::fs::remove_dir(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// The user id of the process at the other end of `stream`.
pub(super) fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    let mut credentials = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut length = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>()).unwrap_or(libc::socklen_t::MAX);
    #[expect(unsafe_code, reason = "SO_PEERCRED: std's peer_cred is not stable")]
    // SAFETY: `credentials` is a valid, writable `ucred` of `length`
    // bytes, and the descriptor is open for the call (borrowed from `stream`).
    let status = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::from_mut(&mut credentials).cast(),
            &raw mut length,
        )
    };
    if status == 0 {
        Ok(credentials.uid)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Writes all of `bytes` to `stream` with `MSG_NOSIGNAL`: a peer that has
/// gone is an error (`EPIPE`), never a `SIGPIPE` that would kill a holder
/// whose program does not ignore it (a plain `write` raises one).
pub(super) fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        #[expect(unsafe_code, reason = "send(2) with MSG_NOSIGNAL has no std wrapper")]
        // SAFETY: `bytes` is valid for reads of its length, and the
        // descriptor is open for the call (borrowed from `stream`).
        let sent = unsafe {
            libc::send(
                stream.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        match usize::try_from(sent) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(sent) => bytes = &bytes[sent.min(bytes.len())..],
            Err(_) => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(())
}

/// This process's effective user id.
pub(super) fn own_uid() -> u32 {
    #[expect(unsafe_code, reason = "geteuid has no std wrapper")]
    // SAFETY: `geteuid` takes nothing and cannot fail.
    unsafe {
        libc::geteuid()
    }
}

/// May a peer of user `peer` talk to a process of user `own`? The same
/// user, or root.
pub(super) fn peer_allowed(peer: u32, own: u32) -> bool {
    peer == own || peer == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_user_or_root_may_connect_no_one_else() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000));
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(1000, 0));
    }

    #[test]
    fn a_socket_pair_names_this_process_user() {
        let (one, _other) = UnixStream::pair().expect("a socket pair");
        assert_eq!(peer_uid(&one).expect("its credentials"), own_uid());
    }
}
