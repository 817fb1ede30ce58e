//! File-system primitives for the files memtree itself creates or moves
//! beside a database (side bundles, quarantined files, merge copies).
//!
//! Every such file is created exclusively and never through a symbolic link,
//! and every move refuses to replace what is already at the destination: a
//! name beside the database is predictable, so a link or file planted there
//! must make the operation fail, never redirect or clobber data.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::vfs::side_file;

/// A path beside `original` that does not exist yet (not even as a dangling
/// link), nor do its side-file names (`-journal`, `-wal`, `-shm`: SQLite
/// would pair a file planted there with it): `<original><tag>-<ms>`, with
/// `.N` appended on a collision. The caller still creates exclusively: the
/// name can be taken between this check and the use.
pub fn aside_path(original: &Path, tag: &str) -> PathBuf {
    let stamp = now_ms();
    let mut n: u64 = 0;
    loop {
        let suffix = if n == 0 {
            format!("{tag}-{stamp}")
        } else {
            format!("{tag}-{stamp}.{n}")
        };
        let candidate = side_file(original, &suffix);
        let taken = ["", "-journal", "-wal", "-shm"]
            .iter()
            .any(|suffix| fs::symlink_metadata(side_file(&candidate, suffix)).is_ok());
        if !taken {
            return candidate;
        }
        n += 1;
    }
}

/// Creates `path` for writing; fails if anything (a file, a directory, a
/// dangling link) already has that name. `O_EXCL` with `O_CREAT` never
/// follows a link at the last component.
pub fn create_exclusive(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Copies the regular file `from` into a new file `to` (created exclusively)
/// and syncs it. On failure the partial copy is removed (it is ours and holds
/// nothing that is not still in `from`).
pub fn copy_exclusive(from: &Path, to: &Path) -> Result<()> {
    let mut source = File::open(from).map_err(|e| Error::io("open the file to copy", from, e))?;
    let mut dest = create_exclusive(to).map_err(|e| Error::io("create the copy", to, e))?;
    let copied = io::copy(&mut source, &mut dest).and_then(|_| dest.sync_all());
    if let Err(e) = copied {
        drop(dest);
        let _ = fs::remove_file(to);
        return Err(Error::io("write the copy", to, e));
    }
    Ok(())
}

/// Moves `from` to `to` without ever replacing an existing `to`: a hard link
/// then an unlink, so a file planted at `to` makes the move fail. Where the
/// file system has no hard links, a checked rename is the fallback.
pub fn move_no_replace(from: &Path, to: &Path) -> Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from)
            .map_err(|e| Error::io("remove the moved file's old name", from, e)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(Error::io("move a file beside the database", to, e))
        }
        Err(_) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(Error::io(
                    "move a file beside the database",
                    to,
                    io::Error::from(io::ErrorKind::AlreadyExists),
                ));
            }
            fs::rename(from, to).map_err(|e| Error::io("move a file beside the database", from, e))
        }
    }
}

/// Removes `path` if it is a regular file of length zero: such a `-wal`
/// holds no frame, so nothing committed can be in it.
pub fn remove_if_empty_file(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() == 0 => {
            fs::remove_file(path).map_err(|e| Error::io("remove an empty side file", path, e))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn exclusive_create_refuses_a_dangling_link(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let outside = dir.path().join("outside");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link)?;
        assert!(create_exclusive(&link).is_err());
        assert!(!outside.exists(), "nothing was written through the link");
        let src = dir.path().join("src");
        fs::write(&src, b"data")?;
        assert!(copy_exclusive(&src, &link).is_err());
        assert!(!outside.exists());
        Ok(())
    }

    #[test]
    fn move_never_replaces() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"a")?;
        fs::write(&b, b"b")?;
        assert!(move_no_replace(&a, &b).is_err());
        assert_eq!(fs::read(&a)?, b"a");
        assert_eq!(fs::read(&b)?, b"b");
        let c = dir.path().join("c");
        move_no_replace(&a, &c)?;
        assert!(!a.exists());
        assert_eq!(fs::read(&c)?, b"a");
        Ok(())
    }
}
