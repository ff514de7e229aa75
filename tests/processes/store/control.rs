//! The control socket refuses another user's process: the kernel names
//! the peer's user (`SO_PEERCRED`) and only the holder's own user or root
//! is answered. Run as root, the test opens the socket's mode and its
//! directories to everyone (so only the credential check stands in the
//! way) and connects as `nobody` (uid 65534) from a child process; not as
//! root, no other user can be played, and the decision itself is the unit
//! test `control::socket::tests::the_same_user_or_root_may_connect_no_one_else`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::support::durability::scratch;
use movie_queue::QueueManager;

const CLIENT: &str = r#"
import socket, sys
client = socket.socket(socket.AF_UNIX)
client.connect(sys.argv[1])
try:
    client.sendall(b'{"v":1,"id":1,"op":"reset","movie":"1"}\n')
except BrokenPipeError:
    pass  # refused: the holder wrote why and closed
print(client.makefile().readline().strip())
"#;

#[test]
fn another_users_process_is_refused() {
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|metadata| {
        use std::os::unix::fs::MetadataExt;
        metadata.uid() == 0
    });
    if !is_root {
        println!("not root: no other user to connect as; the decision is unit-tested");
        return;
    }
    let dir = scratch();
    let store = dir.path().join("store");
    let holder = QueueManager::open(&store).unwrap();
    for path in [dir.path(), store.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let socket = store.join("control.sock");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let output = Command::new("python3")
        .args(["-c", CLIENT])
        .arg(&socket)
        .uid(65_534)
        .gid(65_534)
        .output()
        .expect("python3 runs as nobody");
    let answer = String::from_utf8_lossy(&output.stdout);
    assert!(
        answer.contains(r#""kind":"forbidden""#) && answer.contains("user 65534"),
        "{answer} / {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(holder.last_seq().0, 0, "nothing was done for it");
}
