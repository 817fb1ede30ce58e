//! What the calls of one group commit share: the transaction the group's
//! leader lends ([`SqliteTx`]) and the failure every kept call receives
//! ([`SharedError`]). The connection's write group is typed by both; the
//! store's write path ([`crate::db::store`]) runs the calls.

use std::path::Path;
use std::sync::Arc;

use rusqlite::Transaction;

use crate::db::group_commit::{Abandoned, Lend};
use crate::error::classify;
use crate::error::Error;

/// The transaction a group's leader lends to its followers: a rusqlite
/// [`Transaction`] on the shared connection.
#[derive(Debug)]
pub struct SqliteTx;

// SAFETY: a `Transaction` is a borrow of a `Connection`. A `Connection` is
// `Send`; it is not `Sync` only because two threads must not use it at the
// same time (its statement cache is a `RefCell`, and SQLite runs in
// multi-thread mode, `SQLITE_OPEN_NO_MUTEX`). The group-commit protocol lets
// one thread at a time use the lent transaction, each handoff ordered by its
// state mutex — the guarantee `Mutex<Connection>` gives every other caller.
unsafe impl Lend for SqliteTx {
    type Ctx<'a> = Transaction<'a>;
}

/// Why a group's transaction failed, handed to every call the group kept;
/// each call gets its own copy as an [`Error`] ([`SharedError::for_call`]).
#[derive(Debug, Clone)]
pub enum SharedError {
    /// Opening or committing the transaction failed, or a call's statement
    /// broke it: the SQLite error, classified as usual.
    Failed(Arc<Error>),
    /// A call of the group panicked inside its savepoint.
    Abandoned,
}

impl From<Abandoned> for SharedError {
    #[cold]
    fn from(_: Abandoned) -> Self {
        SharedError::Abandoned
    }
}

impl SharedError {
    /// This failure as the error of the call doing `context` on `path`:
    /// same class, code and message, with the call's own context.
    #[cold]
    pub fn for_call(&self, context: &str, path: &Path) -> Error {
        let context = format!("{context} (group commit)");
        match self {
            SharedError::Failed(e) => copy_error(e, &context, path),
            // Plain Error::sqlite: ABORT, a code memtree chose for a panic.
            SharedError::Abandoned => Error::sqlite(
                &context,
                path,
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some(
                        "another call of this group commit panicked; nothing was committed".into(),
                    ),
                ),
            ),
        }
    }

    #[cold]
    pub(crate) fn copy_of(e: &Error, context: &str, path: &Path) -> Self {
        SharedError::Failed(Arc::new(copy_error(e, context, path)))
    }
}

/// A copy of `e` for another call (errors are not `Clone`): the class is
/// decided by the code, which the copy keeps, so it classifies alike.
#[cold]
fn copy_error(e: &Error, context: &str, path: &Path) -> Error {
    match e {
        Error::Closed => Error::Closed,
        Error::Forked { path } => Error::Forked { path: path.clone() },
        // Permanent whatever its code: a copy as `Error::Sqlite` would
        // classify a refused side file's CANTOPEN as transient.
        Error::PathRefused { path, code, reason } => Error::PathRefused {
            path: path.clone(),
            code: *code,
            reason: reason.clone(),
        },
        Error::Sqlite { source, path, .. } => {
            let copy = match source {
                rusqlite::Error::SqliteFailure(code, message) => {
                    rusqlite::Error::SqliteFailure(*code, message.clone())
                }
                other => rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(
                        classify::sqlite_code_in_chain(other)
                            .unwrap_or(rusqlite::ffi::SQLITE_ERROR),
                    ),
                    Some(other.to_string()),
                ),
            };
            // Plain Error::sqlite: a copy of an error its connection's owner
            // mapped already (`Database::err`): a refusal is `PathRefused`.
            Error::sqlite(context, path, copy)
        }
        // Plain Error::sqlite: a copy of an error of another kind, by its code.
        other => Error::sqlite(
            context,
            path,
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(
                    other.sqlite_code().unwrap_or(rusqlite::ffi::SQLITE_ERROR),
                ),
                Some(other.to_string()),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::classify::ErrorClass;
    use crate::error::codes;

    #[test]
    fn a_refused_side_file_reaches_every_call_of_the_group_as_permanent() {
        let leader = Error::PathRefused {
            path: "/tmp/x/chunks.db-journal".into(),
            code: codes::CANTOPEN,
            reason: "a FIFO (named pipe) stands there".into(),
        };
        let shared = SharedError::copy_of(&leader, "upsert_chunks", Path::new("/tmp/x/chunks.db"));
        let copy = shared.for_call("enqueue", Path::new("/tmp/x/chunks.db"));
        assert!(matches!(copy, Error::PathRefused { .. }), "{copy:?}");
        assert_eq!(copy.class(), ErrorClass::Permanent);
        assert_eq!(copy.sqlite_code(), Some(codes::CANTOPEN));
        assert_eq!(copy.to_string(), leader.to_string());
    }
}
