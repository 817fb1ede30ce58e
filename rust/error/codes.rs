//! SQLite result codes: the full table of primary and extended codes with their
//! names, exactly as `sqlite3.h` defines them.
//!
//! memtree reports, logs and classifies errors by these numbers, so they must be
//! SQLite's own values (a wrong constant here once hid `SQLITE_IOERR_SHMOPEN` 4618
//! behind a fragile message-text match). The values are therefore not typed here:
//! each constant is `rusqlite::ffi`'s (`codes::IOERR_SHMOPEN` is
//! `ffi::SQLITE_IOERR_SHMOPEN`, 4618), and [`ALL`] lists every `(value, name)`
//! pair sorted by value, built from the same one list.
//!
//! An extended code carries its primary code in its low 8 bits
//! (`IOERR_SHMOPEN = IOERR | (18 << 8)`); [`primary`] recovers it.
//!
//! The Python enum `memtree._codes.ResultCode` is generated from [`ALL`] (through
//! `_native.result_codes()`) by `tools/gen_codes.py` (`make codes`);
//! `tests/package/test_codes.py` checks that the committed file is that output.

use rusqlite::ffi;

/// True if `full` is `"SQLITE_"` followed by `short`. A `const fn` so that the
/// table below can check at compile time that each constant is named after the
/// `ffi` constant it takes its value from.
const fn is_sqlite_name(short: &str, full: &str) -> bool {
    const PREFIX: &[u8] = b"SQLITE_";
    let (short, full) = (short.as_bytes(), full.as_bytes());
    if full.len() != PREFIX.len() + short.len() {
        return false;
    }
    let mut i = 0;
    while i < full.len() {
        let want = if i < PREFIX.len() {
            PREFIX[i]
        } else {
            short[i - PREFIX.len()]
        };
        if full[i] != want {
            return false;
        }
        i += 1;
    }
    true
}

/// Declares one `pub const NAME: i32 = ffi::SQLITE_NAME;` per code and the
/// [`ALL`] table from a single list, so a name and its value cannot drift apart.
/// Each entry names both identifiers (`macro_rules!` cannot join them); a
/// compile-time assertion rejects an entry whose two names differ.
macro_rules! result_codes {
    ($( $(#[$doc:meta])* $name:ident = $ffi:ident, )*) => {
        $(
            $(#[$doc])*
            pub const $name: i32 = ffi::$ffi;
        )*

        const _: () = {
            $(
                assert!(
                    is_sqlite_name(stringify!($name), stringify!($ffi)),
                    "a result code is not named after its ffi constant"
                );
            )*
        };

        /// Every SQLite primary and extended result code as `(value, full name)`,
        /// e.g. `(4618, "SQLITE_IOERR_SHMOPEN")`, sorted by value, without duplicates.
        pub const ALL: &[(i32, &str)] = &[
            $( ($name, stringify!($ffi)), )*
        ];
    };
}

result_codes! {
    /// `SQLITE_OK`: successful result.
    OK = SQLITE_OK,
    /// `SQLITE_ERROR`: generic error.
    ERROR = SQLITE_ERROR,
    /// `SQLITE_INTERNAL`: internal logic error in SQLite.
    INTERNAL = SQLITE_INTERNAL,
    /// `SQLITE_PERM`: access permission denied.
    PERM = SQLITE_PERM,
    /// `SQLITE_ABORT`: an operation was aborted (e.g. by a callback).
    ABORT = SQLITE_ABORT,
    /// `SQLITE_BUSY`: the database file is locked by another connection.
    BUSY = SQLITE_BUSY,
    /// `SQLITE_LOCKED`: a table in the database is locked (same connection or shared cache).
    LOCKED = SQLITE_LOCKED,
    /// `SQLITE_NOMEM`: a memory allocation failed.
    NOMEM = SQLITE_NOMEM,
    /// `SQLITE_READONLY`: attempt to write a read-only database.
    READONLY = SQLITE_READONLY,
    /// `SQLITE_INTERRUPT`: operation interrupted by `sqlite3_interrupt()`.
    INTERRUPT = SQLITE_INTERRUPT,
    /// `SQLITE_IOERR`: some kind of disk I/O error occurred.
    IOERR = SQLITE_IOERR,
    /// `SQLITE_CORRUPT`: the database disk image is malformed.
    CORRUPT = SQLITE_CORRUPT,
    /// `SQLITE_NOTFOUND`: unknown opcode in `sqlite3_file_control()`.
    NOTFOUND = SQLITE_NOTFOUND,
    /// `SQLITE_FULL`: insertion failed because the database or disk is full.
    FULL = SQLITE_FULL,
    /// `SQLITE_CANTOPEN`: unable to open the database file.
    CANTOPEN = SQLITE_CANTOPEN,
    /// `SQLITE_PROTOCOL`: database lock protocol error.
    PROTOCOL = SQLITE_PROTOCOL,
    /// `SQLITE_EMPTY`: internal use only.
    EMPTY = SQLITE_EMPTY,
    /// `SQLITE_SCHEMA`: the database schema changed.
    SCHEMA = SQLITE_SCHEMA,
    /// `SQLITE_TOOBIG`: a string or BLOB exceeds the size limit.
    TOOBIG = SQLITE_TOOBIG,
    /// `SQLITE_CONSTRAINT`: aborted due to a constraint violation.
    CONSTRAINT = SQLITE_CONSTRAINT,
    /// `SQLITE_MISMATCH`: data type mismatch.
    MISMATCH = SQLITE_MISMATCH,
    /// `SQLITE_MISUSE`: library used incorrectly.
    MISUSE = SQLITE_MISUSE,
    /// `SQLITE_NOLFS`: uses OS features not supported on the host.
    NOLFS = SQLITE_NOLFS,
    /// `SQLITE_AUTH`: authorization denied.
    AUTH = SQLITE_AUTH,
    /// `SQLITE_FORMAT`: not used.
    FORMAT = SQLITE_FORMAT,
    /// `SQLITE_RANGE`: bind parameter index out of range.
    RANGE = SQLITE_RANGE,
    /// `SQLITE_NOTADB`: the file opened is not a database file.
    NOTADB = SQLITE_NOTADB,
    /// `SQLITE_NOTICE`: notification from `sqlite3_log()`.
    NOTICE = SQLITE_NOTICE,
    /// `SQLITE_WARNING`: warning from `sqlite3_log()`.
    WARNING = SQLITE_WARNING,
    /// `SQLITE_ROW`: `sqlite3_step()` has another row ready.
    ROW = SQLITE_ROW,
    /// `SQLITE_DONE`: `sqlite3_step()` has finished executing.
    DONE = SQLITE_DONE,
    /// `SQLITE_OK_LOAD_PERMANENTLY`: an extension asks to stay loaded.
    OK_LOAD_PERMANENTLY = SQLITE_OK_LOAD_PERMANENTLY,
    /// `SQLITE_ERROR_MISSING_COLLSEQ`: a collating sequence is missing.
    ERROR_MISSING_COLLSEQ = SQLITE_ERROR_MISSING_COLLSEQ,
    /// `SQLITE_BUSY_RECOVERY`: another connection is recovering a WAL file.
    BUSY_RECOVERY = SQLITE_BUSY_RECOVERY,
    /// `SQLITE_LOCKED_SHAREDCACHE`: locked by another connection sharing the cache.
    LOCKED_SHAREDCACHE = SQLITE_LOCKED_SHAREDCACHE,
    /// `SQLITE_READONLY_RECOVERY`: a WAL database needs recovery but is opened read-only.
    READONLY_RECOVERY = SQLITE_READONLY_RECOVERY,
    /// `SQLITE_IOERR_READ`: I/O error while reading from disk.
    IOERR_READ = SQLITE_IOERR_READ,
    /// `SQLITE_CORRUPT_VTAB`: a virtual table's content is corrupt.
    CORRUPT_VTAB = SQLITE_CORRUPT_VTAB,
    /// `SQLITE_CANTOPEN_NOTEMPDIR`: no longer used.
    CANTOPEN_NOTEMPDIR = SQLITE_CANTOPEN_NOTEMPDIR,
    /// `SQLITE_CONSTRAINT_CHECK`: a CHECK constraint failed.
    CONSTRAINT_CHECK = SQLITE_CONSTRAINT_CHECK,
    /// `SQLITE_AUTH_USER`: user authentication failed (legacy extension).
    AUTH_USER = SQLITE_AUTH_USER,
    /// `SQLITE_NOTICE_RECOVER_WAL`: a WAL file was recovered.
    NOTICE_RECOVER_WAL = SQLITE_NOTICE_RECOVER_WAL,
    /// `SQLITE_WARNING_AUTOINDEX`: an automatic index was created.
    WARNING_AUTOINDEX = SQLITE_WARNING_AUTOINDEX,
    /// `SQLITE_OK_SYMLINK`: internal use only (the path was a symbolic link).
    OK_SYMLINK = SQLITE_OK_SYMLINK,
    /// `SQLITE_ERROR_RETRY`: internal; the statement should be retried.
    ERROR_RETRY = SQLITE_ERROR_RETRY,
    /// `SQLITE_ABORT_ROLLBACK`: a statement was aborted because its transaction rolled back.
    ABORT_ROLLBACK = SQLITE_ABORT_ROLLBACK,
    /// `SQLITE_BUSY_SNAPSHOT`: a WAL read transaction's snapshot is stale for writing.
    BUSY_SNAPSHOT = SQLITE_BUSY_SNAPSHOT,
    /// `SQLITE_LOCKED_VTAB`: a virtual table reported a lock conflict.
    LOCKED_VTAB = SQLITE_LOCKED_VTAB,
    /// `SQLITE_READONLY_CANTLOCK`: cannot take the shared-memory lock of a read-only WAL database.
    READONLY_CANTLOCK = SQLITE_READONLY_CANTLOCK,
    /// `SQLITE_IOERR_SHORT_READ`: a read returned fewer bytes than requested.
    IOERR_SHORT_READ = SQLITE_IOERR_SHORT_READ,
    /// `SQLITE_CORRUPT_SEQUENCE`: the `sqlite_sequence` table is malformed.
    CORRUPT_SEQUENCE = SQLITE_CORRUPT_SEQUENCE,
    /// `SQLITE_CANTOPEN_ISDIR`: the path to open is a directory.
    CANTOPEN_ISDIR = SQLITE_CANTOPEN_ISDIR,
    /// `SQLITE_CONSTRAINT_COMMITHOOK`: a commit hook turned the commit into a rollback.
    CONSTRAINT_COMMITHOOK = SQLITE_CONSTRAINT_COMMITHOOK,
    /// `SQLITE_NOTICE_RECOVER_ROLLBACK`: a hot rollback journal was rolled back.
    NOTICE_RECOVER_ROLLBACK = SQLITE_NOTICE_RECOVER_ROLLBACK,
    /// `SQLITE_ERROR_SNAPSHOT`: the requested snapshot is no longer available.
    ERROR_SNAPSHOT = SQLITE_ERROR_SNAPSHOT,
    /// `SQLITE_BUSY_TIMEOUT`: a blocking lock wait timed out.
    BUSY_TIMEOUT = SQLITE_BUSY_TIMEOUT,
    /// `SQLITE_READONLY_ROLLBACK`: a hot journal needs rollback but the database is read-only.
    READONLY_ROLLBACK = SQLITE_READONLY_ROLLBACK,
    /// `SQLITE_IOERR_WRITE`: I/O error while writing to disk.
    IOERR_WRITE = SQLITE_IOERR_WRITE,
    /// `SQLITE_CORRUPT_INDEX`: an index is corrupt.
    CORRUPT_INDEX = SQLITE_CORRUPT_INDEX,
    /// `SQLITE_CANTOPEN_FULLPATH`: the file name could not be turned into a full path.
    CANTOPEN_FULLPATH = SQLITE_CANTOPEN_FULLPATH,
    /// `SQLITE_CONSTRAINT_FOREIGNKEY`: a foreign key constraint failed.
    CONSTRAINT_FOREIGNKEY = SQLITE_CONSTRAINT_FOREIGNKEY,
    /// `SQLITE_NOTICE_RBU`: notice from the RBU extension.
    NOTICE_RBU = SQLITE_NOTICE_RBU,
    /// `SQLITE_READONLY_DBMOVED`: the database file was moved or unlinked since it was opened.
    READONLY_DBMOVED = SQLITE_READONLY_DBMOVED,
    /// `SQLITE_IOERR_FSYNC`: I/O error while syncing a file to disk.
    IOERR_FSYNC = SQLITE_IOERR_FSYNC,
    /// `SQLITE_CANTOPEN_CONVPATH`: `cygwin_conv_path()` failed while opening.
    CANTOPEN_CONVPATH = SQLITE_CANTOPEN_CONVPATH,
    /// `SQLITE_CONSTRAINT_FUNCTION`: an extension function raised a constraint error.
    CONSTRAINT_FUNCTION = SQLITE_CONSTRAINT_FUNCTION,
    /// `SQLITE_READONLY_CANTINIT`: cannot initialise the shared memory of a read-only WAL database.
    READONLY_CANTINIT = SQLITE_READONLY_CANTINIT,
    /// `SQLITE_IOERR_DIR_FSYNC`: I/O error while syncing a directory.
    IOERR_DIR_FSYNC = SQLITE_IOERR_DIR_FSYNC,
    /// `SQLITE_CANTOPEN_DIRTYWAL`: not used.
    CANTOPEN_DIRTYWAL = SQLITE_CANTOPEN_DIRTYWAL,
    /// `SQLITE_CONSTRAINT_NOTNULL`: a NOT NULL constraint failed.
    CONSTRAINT_NOTNULL = SQLITE_CONSTRAINT_NOTNULL,
    /// `SQLITE_READONLY_DIRECTORY`: the directory holding the database is read-only.
    READONLY_DIRECTORY = SQLITE_READONLY_DIRECTORY,
    /// `SQLITE_IOERR_TRUNCATE`: I/O error while truncating a file (e.g. the `-wal`).
    IOERR_TRUNCATE = SQLITE_IOERR_TRUNCATE,
    /// `SQLITE_CANTOPEN_SYMLINK`: the path is a symbolic link and `SQLITE_OPEN_NOFOLLOW` was given.
    CANTOPEN_SYMLINK = SQLITE_CANTOPEN_SYMLINK,
    /// `SQLITE_CONSTRAINT_PRIMARYKEY`: a PRIMARY KEY constraint failed.
    CONSTRAINT_PRIMARYKEY = SQLITE_CONSTRAINT_PRIMARYKEY,
    /// `SQLITE_IOERR_FSTAT`: I/O error while reading file metadata (`fstat`).
    IOERR_FSTAT = SQLITE_IOERR_FSTAT,
    /// `SQLITE_CONSTRAINT_TRIGGER`: a trigger raised a constraint error.
    CONSTRAINT_TRIGGER = SQLITE_CONSTRAINT_TRIGGER,
    /// `SQLITE_IOERR_UNLOCK`: I/O error while releasing a file lock.
    IOERR_UNLOCK = SQLITE_IOERR_UNLOCK,
    /// `SQLITE_CONSTRAINT_UNIQUE`: a UNIQUE constraint failed.
    CONSTRAINT_UNIQUE = SQLITE_CONSTRAINT_UNIQUE,
    /// `SQLITE_IOERR_RDLOCK`: I/O error while taking a read lock.
    IOERR_RDLOCK = SQLITE_IOERR_RDLOCK,
    /// `SQLITE_CONSTRAINT_VTAB`: a virtual table raised a constraint error.
    CONSTRAINT_VTAB = SQLITE_CONSTRAINT_VTAB,
    /// `SQLITE_IOERR_DELETE`: I/O error while deleting a file.
    IOERR_DELETE = SQLITE_IOERR_DELETE,
    /// `SQLITE_CONSTRAINT_ROWID`: a rowid is not unique.
    CONSTRAINT_ROWID = SQLITE_CONSTRAINT_ROWID,
    /// `SQLITE_IOERR_BLOCKED`: no longer used.
    IOERR_BLOCKED = SQLITE_IOERR_BLOCKED,
    /// `SQLITE_CONSTRAINT_PINNED`: a row changed under a pinned (in-progress) UPDATE.
    CONSTRAINT_PINNED = SQLITE_CONSTRAINT_PINNED,
    /// `SQLITE_IOERR_NOMEM`: out of memory inside the VFS.
    IOERR_NOMEM = SQLITE_IOERR_NOMEM,
    /// `SQLITE_CONSTRAINT_DATATYPE`: a STRICT table column got a value of the wrong type.
    CONSTRAINT_DATATYPE = SQLITE_CONSTRAINT_DATATYPE,
    /// `SQLITE_IOERR_ACCESS`: I/O error while checking file existence or permissions.
    IOERR_ACCESS = SQLITE_IOERR_ACCESS,
    /// `SQLITE_IOERR_CHECKRESERVEDLOCK`: I/O error while testing for a reserved lock.
    IOERR_CHECKRESERVEDLOCK = SQLITE_IOERR_CHECKRESERVEDLOCK,
    /// `SQLITE_IOERR_LOCK`: I/O error while taking a file lock.
    IOERR_LOCK = SQLITE_IOERR_LOCK,
    /// `SQLITE_IOERR_CLOSE`: I/O error while closing a file.
    IOERR_CLOSE = SQLITE_IOERR_CLOSE,
    /// `SQLITE_IOERR_DIR_CLOSE`: no longer used.
    IOERR_DIR_CLOSE = SQLITE_IOERR_DIR_CLOSE,
    /// `SQLITE_IOERR_SHMOPEN`: I/O error opening the `-shm` shared-memory file (`xShmMap`).
    IOERR_SHMOPEN = SQLITE_IOERR_SHMOPEN,
    /// `SQLITE_IOERR_SHMSIZE`: I/O error resizing the `-shm` shared-memory file (`xShmMap`).
    IOERR_SHMSIZE = SQLITE_IOERR_SHMSIZE,
    /// `SQLITE_IOERR_SHMLOCK`: no longer used.
    IOERR_SHMLOCK = SQLITE_IOERR_SHMLOCK,
    /// `SQLITE_IOERR_SHMMAP`: I/O error mapping the `-shm` shared memory into the process (`xShmMap`).
    IOERR_SHMMAP = SQLITE_IOERR_SHMMAP,
    /// `SQLITE_IOERR_SEEK`: I/O error while seeking in a file.
    IOERR_SEEK = SQLITE_IOERR_SEEK,
    /// `SQLITE_IOERR_DELETE_NOENT`: the file to delete did not exist.
    IOERR_DELETE_NOENT = SQLITE_IOERR_DELETE_NOENT,
    /// `SQLITE_IOERR_MMAP`: I/O error while memory-mapping the database.
    IOERR_MMAP = SQLITE_IOERR_MMAP,
    /// `SQLITE_IOERR_GETTEMPPATH`: the VFS could not find a temporary directory.
    IOERR_GETTEMPPATH = SQLITE_IOERR_GETTEMPPATH,
    /// `SQLITE_IOERR_CONVPATH`: `cygwin_conv_path()` failed.
    IOERR_CONVPATH = SQLITE_IOERR_CONVPATH,
    /// `SQLITE_IOERR_VNODE`: reserved for VFS extensions (vnode error).
    IOERR_VNODE = SQLITE_IOERR_VNODE,
    /// `SQLITE_IOERR_AUTH`: reserved for VFS extensions (authorization error).
    IOERR_AUTH = SQLITE_IOERR_AUTH,
    /// `SQLITE_IOERR_BEGIN_ATOMIC`: the VFS could not begin a batch-atomic write.
    IOERR_BEGIN_ATOMIC = SQLITE_IOERR_BEGIN_ATOMIC,
    /// `SQLITE_IOERR_COMMIT_ATOMIC`: the VFS could not commit a batch-atomic write.
    IOERR_COMMIT_ATOMIC = SQLITE_IOERR_COMMIT_ATOMIC,
    /// `SQLITE_IOERR_ROLLBACK_ATOMIC`: the VFS could not roll back a batch-atomic write.
    IOERR_ROLLBACK_ATOMIC = SQLITE_IOERR_ROLLBACK_ATOMIC,
    /// `SQLITE_IOERR_DATA`: a checksum VFS found a bad page checksum.
    IOERR_DATA = SQLITE_IOERR_DATA,
    /// `SQLITE_IOERR_CORRUPTFS`: the file system returned data that is evidently corrupt.
    IOERR_CORRUPTFS = SQLITE_IOERR_CORRUPTFS,
    /// `SQLITE_IOERR_IN_PAGE`: an I/O fault while touching a memory-mapped page.
    IOERR_IN_PAGE = SQLITE_IOERR_IN_PAGE,
}

/// The primary result code of `code`: its low 8 bits
/// (`primary(IOERR_SHMOPEN) == IOERR`). A primary code is its own primary.
pub const fn primary(code: i32) -> i32 {
    code & 0xff
}

/// The full name of `code` (`"SQLITE_IOERR_SHMOPEN"`), or `None` when `code` is
/// not in [`ALL`]. Exact lookup: an unknown extended code is not mapped to its
/// primary's name (see [`name_or_primary`] for that).
pub fn name(code: i32) -> Option<&'static str> {
    ALL.binary_search_by_key(&code, |&(value, _)| value)
        .ok()
        .map(|index| ALL[index].1)
}

/// A printable name for any code, for logs and error messages.
///
/// - a known code gives its name: `"SQLITE_IOERR_SHMOPEN"`;
/// - an unknown code whose primary is known (an extended code newer than this
///   table) gives the primary's name and the full value:
///   `"SQLITE_IOERR (extended 12298)"`;
/// - anything else gives `"SQLITE_UNKNOWN (<code>)"`.
pub fn name_or_primary(code: i32) -> String {
    if let Some(known) = name(code) {
        return known.to_owned();
    }
    match name(primary(code)) {
        Some(primary_name) => format!("{primary_name} (extended {code})"),
        None => format!("SQLITE_UNKNOWN ({code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        // `result_codes!` keeps the source order; `name` binary-searches it.
        for pair in ALL.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} !< {:?}", pair[0], pair[1]);
        }
        // Every code sqlite3.h defined when this table was written (3.50).
        assert_eq!(ALL.len(), 108);
        for &(value, full_name) in ALL {
            assert!(full_name.starts_with("SQLITE_"), "{full_name}");
            // Every extended code's primary is in the table and its name is a
            // prefix of the extended name (SQLITE_IOERR -> SQLITE_IOERR_SHMOPEN).
            let primary_name = name(primary(value)).expect("primary is known");
            if value != primary(value) {
                assert!(
                    full_name.starts_with(&format!("{primary_name}_")),
                    "{full_name} vs {primary_name}"
                );
            }
        }
    }

    #[test]
    fn names_must_match_their_ffi_constant() {
        assert!(is_sqlite_name("IOERR_SHMOPEN", "SQLITE_IOERR_SHMOPEN"));
        assert!(!is_sqlite_name("IOERR_SHMOPEN", "SQLITE_IOERR_SHMSIZE"));
        assert!(!is_sqlite_name("IOERR", "SQLITE_IOERR_SHMOPEN"));
        assert!(!is_sqlite_name("IOERR_SHMOPEN", "IOERR_SHMOPEN"));
    }

    #[test]
    fn lookups() {
        assert_eq!(name(4618), Some("SQLITE_IOERR_SHMOPEN"));
        assert_eq!(name(8714), Some("SQLITE_IOERR_IN_PAGE"));
        assert_eq!(name(0), Some("SQLITE_OK"));
        assert_eq!(name(100), Some("SQLITE_ROW"));
        assert_eq!(name(101), Some("SQLITE_DONE"));
        assert_eq!(name(12298), None);
        assert_eq!(name(-1), None);
        assert_eq!(primary(IOERR_SHMOPEN), IOERR);
        assert_eq!(primary(CONSTRAINT_UNIQUE), CONSTRAINT);
        assert_eq!(primary(ROW), ROW);
        assert_eq!(name_or_primary(4874), "SQLITE_IOERR_SHMSIZE");
        // IOERR | (48 << 8): an extended code newer than the table.
        assert_eq!(name_or_primary(12298), "SQLITE_IOERR (extended 12298)");
        assert_eq!(name_or_primary(99), "SQLITE_UNKNOWN (99)");
        assert_eq!(name_or_primary(-1), "SQLITE_UNKNOWN (-1)");
    }
}
