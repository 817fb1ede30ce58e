//! SQLite errors met on a connection to a database, mapped to the refusal
//! behind them: a non-regular file (FIFO, device, socket, folder, link) that
//! this VFS's `xOpen` refused at one of the database's names. Here, above
//! the error type and below every connection owner (the store's
//! [`crate::db::connection::Database::err`], the journal setup, the schema
//! migration, backup, compact, restore, quarantine, side-file recovery,
//! salvage), so that one mapping serves them all.

use std::path::Path;

use crate::error::Error;

/// `e`, or the refusal behind it: when `e` is a `CANTOPEN` (any of its
/// extended codes) and the VFS's `xOpen` refused a non-regular file of
/// `path`'s database with that very code, and that name still holds such a
/// file, the refusal ([`Error::PathRefused`], permanent, naming the file and
/// what it is). A refusal whose file was removed since, or an unrelated
/// `CANTOPEN`, stays `e` (transient: the next try works).
pub fn refused_open_or(path: &Path, e: Error) -> Error {
    let Some(code) = e.sqlite_code() else {
        return e;
    };
    if crate::error::codes::primary(code) != crate::error::codes::CANTOPEN
        || !matches!(e, Error::Sqlite { .. })
    {
        return e;
    }
    noted_refusal(path)
        .filter(|&(_, refused)| refused == code)
        .and_then(|(side, refused)| crate::sys::path_guard::refused_after_open(&side, refused))
        .unwrap_or(e)
}

/// The refusal the VFS noted for the database at `path`: looked up by
/// `path` as given, else by its canonical form. The VFS keys a database by
/// the name SQLite opened, its full path name (absolute, links resolved):
/// the store's own path is that already, but a backup's destination is the
/// caller's, which may be relative or pass through a linked folder.
fn noted_refusal(path: &Path) -> Option<(std::path::PathBuf, i32)> {
    super::refused_open(path).or_else(|| {
        let full = std::fs::canonicalize(path).ok()?;
        (full != path).then(|| super::refused_open(&full)).flatten()
    })
}

/// [`Error::sqlite`] for a failure on any connection to the database at
/// `db`, or the refusal behind it ([`OrRefused::or_refused`]). Every SQLite
/// error of the crate is built with this: the store's connection's through
/// [`crate::db::connection::Database::err`], the journal setup's and the
/// migration's, and those of the operations that open connections of their
/// own (backup, compact, restore, quarantine, side-file recovery, salvage).
/// So a file planted at the `-journal` or `-wal` name is the same permanent
/// error whichever connection met it, and the core returns it as such:
/// nothing maps it again on the way to Python. (A source scan in
/// `rust/error/mod.rs` holds every other `Error::sqlite` to a comment saying
/// why no refused file can be behind it.)
#[cold]
pub fn sqlite_or_refused(context: &str, db: &Path, source: rusqlite::Error) -> Error {
    refused_open_or(db, Error::sqlite(context, db, source))
}

/// [`refused_open_or`] as a method of the error.
pub trait OrRefused {
    /// This error, or, when it is SQLite's `CANTOPEN` for a non-regular file
    /// (FIFO, device, socket, folder, link) that memtree's VFS refused at a
    /// name of the database at `db` and that is still there, the permanent
    /// [`Error::PathRefused`] naming that file. SQLite's own `CANTOPEN`
    /// classifies as transient: a worker would retry a path that cannot
    /// work until someone removes the file. Any other error is returned as
    /// it is.
    fn or_refused(self, db: &Path) -> Error;
}

impl OrRefused for Error {
    #[cold]
    fn or_refused(self, db: &Path) -> Error {
        refused_open_or(db, self)
    }
}
