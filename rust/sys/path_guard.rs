//! What may be opened as a memtree database: the checks every open runs on
//! a path before SQLite sees it, so that a wrong path is refused at once and
//! left exactly as it was.
//!
//! Each check looks at the name itself (`lstat`), never through it:
//!
//! - **The folder must exist.** A missing folder is a typo or a workspace
//!   that was never made, not a cold-start hiccup: it is refused as a
//!   *permanent* [`Error::PathRefused`] carrying `SQLITE_CANTOPEN` (14).
//!   DESIGN.md classes CANTOPEN as transient because SQLite returns it when
//!   antivirus or a sandbox briefly denies an open; a folder that is not
//!   there will not appear by retrying, and a worker that retried it would
//!   back off forever.
//! - **Only a regular file, or nothing, at the database name and at each
//!   side-file name SQLite opens** (`-journal`, `-wal`; not `-shm`, which
//!   memtree never opens: see [`SIDE_SUFFIXES`]). A FIFO would block the
//!   open (SQLite opens a journal `O_RDONLY`, which waits for a writer), a
//!   device or socket is not a file SQLite can own, and a directory cannot
//!   be written. [`special_file_code`] is also asked by the VFS's `xOpen`,
//!   so a FIFO planted after the open is refused too.
//! - **No symbolic link at the database name or a side-file name**, dangling
//!   or not (`SQLITE_CANTOPEN_SYMLINK`). SQLite resolves a link and keeps its
//!   journal beside the target; a quarantine would rename the target in a
//!   folder the caller never named, and an open through a dangling link
//!   creates a database wherever it points. memtree never follows a path it
//!   did not choose, so the link is refused rather than used: pass the
//!   target's path. (Links among the *folders* of the path are resolved as
//!   usual: they name the folder, not the file.)
//! - **An explicit path must hold an SQLite database**: a non-empty file that
//!   does not start with `"SQLite format 3\0"` is refused with
//!   `SQLITE_NOTADB` (26) — `Store("notes.txt")` must not move the user's
//!   notes aside. Only the canonical `memory_tree/chunks.db` of
//!   `Store.open(workspace)` is memtree's by its name, so there a damaged
//!   header is quarantined (moved aside, kept) as any other corruption. An
//!   empty (0-byte) file is accepted: SQLite treats it as a new database,
//!   it holds nothing to lose, and it is what `touch chunks.db` makes (the
//!   rule `memtree doctor` reports as "nothing there"). A file beside a
//!   non-empty `-journal` or a `-wal` is left to SQLite: a commit that was
//!   interrupted writing the first page of a new database leaves a partial
//!   header that the hot journal rolls back.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use crate::error::codes;
use crate::error::{Error, Result};
use crate::sys::files::side_file;

/// The bytes every SQLite database file starts with.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The side files SQLite may open beside a database. Not `-shm`: memtree
/// never opens, maps or follows it (its connections run on the rollback
/// journal, and a WAL-era file leaves WAL in `locking_mode=EXCLUSIVE`, which
/// keeps the WAL index in heap memory), and an unusable `-shm` — the
/// reference's `SQLITE_IOERR_SHMOPEN` crash group — must never stop a
/// store from opening (see `test_shm_that_is_a_directory_does_not_block`).
pub const SIDE_SUFFIXES: [&str; 2] = ["-journal", "-wal"];

/// Whose the database name is, which decides what a damaged header means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A path the caller gave (`Store(path)`, `memtree recover PATH`): a
    /// file that is not an SQLite database is refused unchanged.
    Explicit,
    /// The canonical `memory_tree/chunks.db` of a workspace: memtree's own
    /// name, so a damaged header is quarantined like any corruption.
    Workspace,
}

fn refused(path: &Path, code: i32, reason: impl Into<String>) -> Error {
    Error::PathRefused {
        path: path.to_owned(),
        code,
        reason: reason.into(),
    }
}

/// Refuses `path` unless it may be opened (or created) as a memtree
/// database: [`check_names`], then [`check_header`]. Nothing is created,
/// opened for writing or moved. With `must_exist`, a missing file is refused
/// too (`memtree recover`). For a process that has no memtree connection on
/// the file (the command line); [`crate::db::store::Store`]'s opens run the two
/// halves apart, the header under the path's init lock.
pub fn check_database_path(path: &Path, claim: Claim, must_exist: bool) -> Result<()> {
    check_names(path, must_exist)?;
    check_header(path, claim)
}

/// The checks that look at names only (`lstat`, never an open, never
/// through a link): the folder exists; only a regular file, or nothing, at
/// the database name and each of [`SIDE_SUFFIXES`]; with `must_exist`, a
/// file is there. Safe at any time, even while the file is open.
pub fn check_names(path: &Path, must_exist: bool) -> Result<()> {
    check_folder(path)?;
    match fs::symlink_metadata(path) {
        Ok(meta) => refuse_unless_regular(path, &meta, "the database")?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if must_exist {
                return Err(refused(path, codes::CANTOPEN, "no database file there"));
            }
        }
        Err(e) => return Err(Error::io("inspect the database file", path, e)),
    }
    for suffix in SIDE_SUFFIXES {
        let side = side_file(path, suffix);
        if let Ok(meta) = fs::symlink_metadata(&side) {
            refuse_unless_regular(&side, &meta, "a side file")?;
        }
    }
    Ok(())
}

/// For an [`Claim::Explicit`] path: a non-empty file must start with the
/// SQLite header, unless an interrupted commit may still be rolled back or
/// replayed into it.
///
/// This *opens* the file. Call it only where no memtree connection has the
/// file open (under the path's init lock, before the first connection):
/// closing any descriptor of a file drops every POSIX lock the process holds
/// on it, a lock a connection may be relying on mid-commit (SQLite's "How To
/// Corrupt An SQLite Database File", section 2.2.1).
pub fn check_header(path: &Path, claim: Claim) -> Result<()> {
    if claim != Claim::Explicit || interrupted_commit(path) {
        return Ok(());
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() > 0 => read_header(path),
        _ => Ok(()),
    }
}

/// The folder that holds (or will hold) the database must exist.
fn check_folder(path: &Path) -> Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(refused(
            path,
            codes::CANTOPEN,
            format!("{} is not a folder", folder.display()),
        )),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Err(refused(
                path,
                codes::CANTOPEN,
                format!("the folder {} does not exist", folder.display()),
            ))
        }
        // Permission denied and the like stay what they were: possibly
        // transient (a sandbox), reported by the open as before.
        Err(_) => Ok(()),
    }
}

/// Refuses anything but a regular file at `path`, naming it as `what`.
fn refuse_unless_regular(path: &Path, meta: &fs::Metadata, what: &str) -> Result<()> {
    match kind_code(meta) {
        None => Ok(()),
        Some((code, kind)) => Err(refused(
            path,
            code,
            format!("{what} is {kind}, not a regular file"),
        )),
    }
}

fn kind_code(meta: &fs::Metadata) -> Option<(i32, &'static str)> {
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_symlink() {
        return Some((codes::CANTOPEN_SYMLINK, "a symbolic link"));
    }
    if kind.is_dir() {
        return Some((codes::CANTOPEN_ISDIR, "a directory"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some((codes::CANTOPEN, "a FIFO (named pipe)"));
        }
        if kind.is_socket() {
            return Some((codes::CANTOPEN, "a socket"));
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some((codes::CANTOPEN, "a device"));
        }
    }
    Some((codes::CANTOPEN, "not a regular file"))
}

/// For the VFS's `xOpen`: the code to fail the open of `path` with, and
/// what stands there, when a non-regular file (FIFO, device, socket,
/// directory, link) stands at that name, so no open can block on it. `None`
/// when the name is free or a regular file.
pub fn special_file(path: &Path) -> Option<(i32, &'static str)> {
    fs::symlink_metadata(path)
        .ok()
        .and_then(|meta| kind_code(&meta))
}

/// [`special_file`]'s code alone.
pub fn special_file_code(path: &Path) -> Option<i32> {
    special_file(path).map(|(code, _)| code)
}

/// The refusal of a file SQLite tried to open for a store that was already
/// open, when the VFS's `xOpen` refused it ([`special_file`]) with `code`
/// because `kind` stood at `side`: reported only while the name still holds
/// that kind of file, so a refusal whose cause was removed since (or an
/// unrelated `CANTOPEN`) stays the transient error SQLite returned and the
/// next try works. `None` when `side` no longer refuses with `code`.
pub fn refused_after_open(side: &Path, code: i32) -> Option<Error> {
    let (now, kind) = special_file(side)?;
    (now == code).then(|| {
        refused(
            side,
            code,
            format!(
                "{kind} stands where SQLite keeps this database's {}; memtree \
                 refuses to open it (it appeared after the store was opened): \
                 remove it, and the store works again",
                side_role(side)
            ),
        )
    })
}

/// What SQLite keeps at `side`, for a message.
fn side_role(side: &Path) -> &'static str {
    let name = side.as_os_str().to_string_lossy();
    if name.ends_with("-journal") {
        "rollback journal (-journal)"
    } else if name.ends_with("-wal") {
        "write-ahead log (-wal)"
    } else {
        "database file"
    }
}

/// True when SQLite may still roll back or replay something into `path`:
/// a non-empty `-journal` or a `-wal` beside it.
fn interrupted_commit(path: &Path) -> bool {
    let journal = fs::symlink_metadata(side_file(path, "-journal")).is_ok_and(|m| m.len() > 0);
    journal || fs::symlink_metadata(side_file(path, "-wal")).is_ok()
}

/// The file must start with the SQLite header.
pub(crate) fn read_header(path: &Path) -> Result<()> {
    let mut head = Vec::with_capacity(SQLITE_HEADER.len());
    fs::File::open(path)
        .and_then(|f| f.take(SQLITE_HEADER.len() as u64).read_to_end(&mut head))
        .map_err(|e| Error::io("read the database header", path, e))?;
    if head == SQLITE_HEADER {
        Ok(())
    } else {
        Err(refused(
            path,
            codes::NOTADB,
            "the file is not an SQLite database (it does not start with \"SQLite format 3\")",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn code_of(r: Result<()>) -> Option<i32> {
        match r {
            Err(Error::PathRefused { code, .. }) => Some(code),
            Err(other) => panic!("not a path refusal: {other:?}"),
            Ok(()) => None,
        }
    }

    #[test]
    fn a_text_file_is_refused_unless_it_is_the_workspace_database() -> TestResult {
        let dir = tempfile::tempdir()?;
        let notes = dir.path().join("notes.txt");
        fs::write(&notes, b"my notes\n")?;
        let explicit = check_database_path(&notes, Claim::Explicit, false);
        assert_eq!(code_of(explicit), Some(codes::NOTADB));
        assert_eq!(
            code_of(check_database_path(&notes, Claim::Workspace, false)),
            None
        );
        assert_eq!(fs::read(&notes)?, b"my notes\n");
        Ok(())
    }

    #[test]
    fn empty_missing_and_sqlite_files_pass() -> TestResult {
        let dir = tempfile::tempdir()?;
        let empty = dir.path().join("empty.db");
        fs::write(&empty, b"")?;
        assert_eq!(
            code_of(check_database_path(&empty, Claim::Explicit, true)),
            None
        );
        let missing = dir.path().join("missing.db");
        assert_eq!(
            code_of(check_database_path(&missing, Claim::Explicit, false)),
            None
        );
        assert_eq!(
            code_of(check_database_path(&missing, Claim::Explicit, true)),
            Some(codes::CANTOPEN)
        );
        let mut db = SQLITE_HEADER.to_vec();
        db.extend_from_slice(&[0u8; 84]);
        let real = dir.path().join("real.db");
        fs::write(&real, db)?;
        assert_eq!(
            code_of(check_database_path(&real, Claim::Explicit, true)),
            None
        );
        Ok(())
    }

    #[test]
    fn a_missing_folder_is_refused_with_cantopen() {
        let path = Path::new("/nonexistent-memtree-folder/x.db");
        let refused = check_database_path(path, Claim::Explicit, false);
        assert!(matches!(
            &refused,
            Err(e) if e.class() == crate::error::classify::ErrorClass::Permanent
        ));
        assert_eq!(code_of(refused), Some(codes::CANTOPEN));
    }

    #[cfg(unix)]
    #[test]
    fn links_directories_and_fifos_are_refused() -> TestResult {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("chunks.db");
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(dir.path().join("nowhere.db"), &link)?;
        assert_eq!(
            code_of(check_database_path(&link, Claim::Explicit, false)),
            Some(codes::CANTOPEN_SYMLINK)
        );
        assert!(!dir.path().join("nowhere.db").exists());
        fs::create_dir(side_file(&db, "-wal"))?;
        assert_eq!(
            code_of(check_database_path(&db, Claim::Workspace, false)),
            Some(codes::CANTOPEN_ISDIR)
        );
        fs::remove_dir(side_file(&db, "-wal"))?;
        let fifo = side_file(&db, "-journal");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        assert!(made.success());
        assert_eq!(special_file_code(&fifo), Some(codes::CANTOPEN));
        assert_eq!(
            code_of(check_database_path(&db, Claim::Workspace, false)),
            Some(codes::CANTOPEN)
        );
        assert!(!db.exists(), "nothing was created");
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_refusal_after_the_open_is_reported_only_while_its_cause_is_there() -> TestResult {
        let dir = tempfile::tempdir()?;
        let journal = side_file(&dir.path().join("chunks.db"), "-journal");
        let made = std::process::Command::new("mkfifo")
            .arg(&journal)
            .status()?;
        assert!(made.success());
        let refusal = refused_after_open(&journal, codes::CANTOPEN).ok_or("not refused")?;
        assert_eq!(
            refusal.class(),
            crate::error::classify::ErrorClass::Permanent
        );
        let message = refusal.to_string();
        assert!(message.contains("a FIFO (named pipe)"), "{message}");
        assert!(message.contains("rollback journal"), "{message}");
        assert!(
            message.contains(&journal.display().to_string()),
            "{message}"
        );
        // Another code than the one the VFS refused with: not this refusal.
        assert!(refused_after_open(&journal, codes::CANTOPEN_ISDIR).is_none());
        // Removed since: the error stays SQLite's (transient) one.
        fs::remove_file(&journal)?;
        assert!(refused_after_open(&journal, codes::CANTOPEN).is_none());
        fs::write(&journal, b"")?;
        assert!(refused_after_open(&journal, codes::CANTOPEN).is_none());
        Ok(())
    }
}
