//! The directories `export DIR` and `replay --out DIR` write into: never
//! the store's own directory or its `journal/`, however the path is spelt
//! (a symbolic link, `..`), because the documented files written there
//! would be taken for the store's snapshot, or make the journal
//! unreadable. The library creates what is missing (0700) and writes each
//! file exclusively, never through a link, 0600, replacing the old one
//! atomically; this check comes first, so nothing is created for a
//! refused path.

use std::path::{Component, Path, PathBuf};

use movie_queue::Layout;

use super::{fail, fail_with_hint, io_reason};

/// Refuses `target` if it is (or would be made as) the store in `store`
/// or a directory inside its journal, or exists and is not a directory.
pub fn check(store: &Path, target: &Path) -> anyhow::Result<()> {
    let shown = target.display();
    let resolved = resolve(target)?;
    let Ok(store) = store.canonicalize() else {
        return Ok(());
    };
    let hint = "choose a directory outside the store, such as `/tmp/queue-files`";
    if resolved == store {
        return fail_with_hint(
            format!("{shown} is the store's own directory; its documented files are the store's snapshot"),
            hint,
        );
    }
    if resolved.starts_with(Layout::new(&store).journal()) {
        return fail_with_hint(
            format!("{shown} is in the store's journal directory; a file there would make the store unreadable"),
            hint,
        );
    }
    if resolved.exists() && !resolved.is_dir() {
        return fail(format!("{shown}: not a directory"));
    }
    Ok(())
}

/// `path` as it will be once created: the part that exists resolved
/// (symbolic links, `..`), the rest appended as `create_dir_all` makes it.
fn resolve(path: &Path) -> anyhow::Result<PathBuf> {
    let absolute =
        std::path::absolute(path).or_else(|error| fail(format!("{}: {}", path.display(), io_reason(&error))))?;
    let components: Vec<Component<'_>> = absolute.components().collect();
    for existing in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..existing].iter().collect();
        match prefix.canonicalize() {
            Ok(mut resolved) => {
                for component in &components[existing..] {
                    match component {
                        Component::ParentDir => {
                            resolved.pop();
                        }
                        Component::Normal(name) => resolved.push(name),
                        Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                    }
                }
                return Ok(resolved);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return fail(format!("{}: {}", prefix.display(), io_reason(&error))),
        }
    }
    Ok(absolute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_resolved_as_it_will_be_created() {
        let root = std::env::temp_dir()
            .canonicalize()
            .unwrap_or_else(|_| PathBuf::from("/"));
        let path = root.join("movie-queue-no-such-dir/a/../b/./c");
        assert_eq!(resolve(&path).ok(), Some(root.join("movie-queue-no-such-dir/b/c")));
    }
}
