//! SQLite result codes: the full table of primary and extended codes with their
//! names, exactly as `sqlite3.h` defines them.
//!
//! memtree reports, logs and classifies errors by these numbers, so they must be
//! SQLite's own values (a wrong constant here once hid `SQLITE_IOERR_SHMOPEN` 4618
//! behind a fragile message-text match). Every code has a named constant
//! (`codes::IOERR_SHMOPEN == 4618`), and [`ALL`] lists every `(value, name)` pair
//! sorted by value; a unit test checks each one against `rusqlite::ffi`.
//!
//! An extended code carries its primary code in its low 8 bits
//! (`IOERR_SHMOPEN = IOERR | (18 << 8)`); [`primary`] recovers it.
//!
//! The Python enum `memtree._codes.ResultCode` is generated from [`ALL`]; a unit
//! test here checks that the two still agree.

/// Declares one `pub const` per code and the sorted [`ALL`] table from a single
/// list, so a name and its value cannot drift apart.
macro_rules! result_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, )*) => {
        $(
            $(#[$doc])*
            pub const $name: i32 = $value;
        )*

        /// Every SQLite primary and extended result code as `(value, full name)`,
        /// e.g. `(4618, "SQLITE_IOERR_SHMOPEN")`, sorted by value, without duplicates.
        pub const ALL: &[(i32, &str)] = &[
            $( ($name, concat!("SQLITE_", stringify!($name))), )*
        ];
    };
}

result_codes! {
    /// `SQLITE_OK`: successful result.
    OK = 0,
    /// `SQLITE_ERROR`: generic error.
    ERROR = 1,
    /// `SQLITE_INTERNAL`: internal logic error in SQLite.
    INTERNAL = 2,
    /// `SQLITE_PERM`: access permission denied.
    PERM = 3,
    /// `SQLITE_ABORT`: an operation was aborted (e.g. by a callback).
    ABORT = 4,
    /// `SQLITE_BUSY`: the database file is locked by another connection.
    BUSY = 5,
    /// `SQLITE_LOCKED`: a table in the database is locked (same connection or shared cache).
    LOCKED = 6,
    /// `SQLITE_NOMEM`: a memory allocation failed.
    NOMEM = 7,
    /// `SQLITE_READONLY`: attempt to write a read-only database.
    READONLY = 8,
    /// `SQLITE_INTERRUPT`: operation interrupted by `sqlite3_interrupt()`.
    INTERRUPT = 9,
    /// `SQLITE_IOERR`: some kind of disk I/O error occurred.
    IOERR = 10,
    /// `SQLITE_CORRUPT`: the database disk image is malformed.
    CORRUPT = 11,
    /// `SQLITE_NOTFOUND`: unknown opcode in `sqlite3_file_control()`.
    NOTFOUND = 12,
    /// `SQLITE_FULL`: insertion failed because the database or disk is full.
    FULL = 13,
    /// `SQLITE_CANTOPEN`: unable to open the database file.
    CANTOPEN = 14,
    /// `SQLITE_PROTOCOL`: database lock protocol error.
    PROTOCOL = 15,
    /// `SQLITE_EMPTY`: internal use only.
    EMPTY = 16,
    /// `SQLITE_SCHEMA`: the database schema changed.
    SCHEMA = 17,
    /// `SQLITE_TOOBIG`: a string or BLOB exceeds the size limit.
    TOOBIG = 18,
    /// `SQLITE_CONSTRAINT`: aborted due to a constraint violation.
    CONSTRAINT = 19,
    /// `SQLITE_MISMATCH`: data type mismatch.
    MISMATCH = 20,
    /// `SQLITE_MISUSE`: library used incorrectly.
    MISUSE = 21,
    /// `SQLITE_NOLFS`: uses OS features not supported on the host.
    NOLFS = 22,
    /// `SQLITE_AUTH`: authorization denied.
    AUTH = 23,
    /// `SQLITE_FORMAT`: not used.
    FORMAT = 24,
    /// `SQLITE_RANGE`: bind parameter index out of range.
    RANGE = 25,
    /// `SQLITE_NOTADB`: the file opened is not a database file.
    NOTADB = 26,
    /// `SQLITE_NOTICE`: notification from `sqlite3_log()`.
    NOTICE = 27,
    /// `SQLITE_WARNING`: warning from `sqlite3_log()`.
    WARNING = 28,
    /// `SQLITE_ROW`: `sqlite3_step()` has another row ready.
    ROW = 100,
    /// `SQLITE_DONE`: `sqlite3_step()` has finished executing.
    DONE = 101,
    /// `SQLITE_OK_LOAD_PERMANENTLY`: an extension asks to stay loaded.
    OK_LOAD_PERMANENTLY = 256,
    /// `SQLITE_ERROR_MISSING_COLLSEQ`: a collating sequence is missing.
    ERROR_MISSING_COLLSEQ = 257,
    /// `SQLITE_BUSY_RECOVERY`: another connection is recovering a WAL file.
    BUSY_RECOVERY = 261,
    /// `SQLITE_LOCKED_SHAREDCACHE`: locked by another connection sharing the cache.
    LOCKED_SHAREDCACHE = 262,
    /// `SQLITE_READONLY_RECOVERY`: a WAL database needs recovery but is opened read-only.
    READONLY_RECOVERY = 264,
    /// `SQLITE_IOERR_READ`: I/O error while reading from disk.
    IOERR_READ = 266,
    /// `SQLITE_CORRUPT_VTAB`: a virtual table's content is corrupt.
    CORRUPT_VTAB = 267,
    /// `SQLITE_CANTOPEN_NOTEMPDIR`: no longer used.
    CANTOPEN_NOTEMPDIR = 270,
    /// `SQLITE_CONSTRAINT_CHECK`: a CHECK constraint failed.
    CONSTRAINT_CHECK = 275,
    /// `SQLITE_AUTH_USER`: user authentication failed (legacy extension).
    AUTH_USER = 279,
    /// `SQLITE_NOTICE_RECOVER_WAL`: a WAL file was recovered.
    NOTICE_RECOVER_WAL = 283,
    /// `SQLITE_WARNING_AUTOINDEX`: an automatic index was created.
    WARNING_AUTOINDEX = 284,
    /// `SQLITE_OK_SYMLINK`: internal use only (the path was a symbolic link).
    OK_SYMLINK = 512,
    /// `SQLITE_ERROR_RETRY`: internal; the statement should be retried.
    ERROR_RETRY = 513,
    /// `SQLITE_ABORT_ROLLBACK`: a statement was aborted because its transaction rolled back.
    ABORT_ROLLBACK = 516,
    /// `SQLITE_BUSY_SNAPSHOT`: a WAL read transaction's snapshot is stale for writing.
    BUSY_SNAPSHOT = 517,
    /// `SQLITE_LOCKED_VTAB`: a virtual table reported a lock conflict.
    LOCKED_VTAB = 518,
    /// `SQLITE_READONLY_CANTLOCK`: cannot take the shared-memory lock of a read-only WAL database.
    READONLY_CANTLOCK = 520,
    /// `SQLITE_IOERR_SHORT_READ`: a read returned fewer bytes than requested.
    IOERR_SHORT_READ = 522,
    /// `SQLITE_CORRUPT_SEQUENCE`: the `sqlite_sequence` table is malformed.
    CORRUPT_SEQUENCE = 523,
    /// `SQLITE_CANTOPEN_ISDIR`: the path to open is a directory.
    CANTOPEN_ISDIR = 526,
    /// `SQLITE_CONSTRAINT_COMMITHOOK`: a commit hook turned the commit into a rollback.
    CONSTRAINT_COMMITHOOK = 531,
    /// `SQLITE_NOTICE_RECOVER_ROLLBACK`: a hot rollback journal was rolled back.
    NOTICE_RECOVER_ROLLBACK = 539,
    /// `SQLITE_ERROR_SNAPSHOT`: the requested snapshot is no longer available.
    ERROR_SNAPSHOT = 769,
    /// `SQLITE_BUSY_TIMEOUT`: a blocking lock wait timed out.
    BUSY_TIMEOUT = 773,
    /// `SQLITE_READONLY_ROLLBACK`: a hot journal needs rollback but the database is read-only.
    READONLY_ROLLBACK = 776,
    /// `SQLITE_IOERR_WRITE`: I/O error while writing to disk.
    IOERR_WRITE = 778,
    /// `SQLITE_CORRUPT_INDEX`: an index is corrupt.
    CORRUPT_INDEX = 779,
    /// `SQLITE_CANTOPEN_FULLPATH`: the file name could not be turned into a full path.
    CANTOPEN_FULLPATH = 782,
    /// `SQLITE_CONSTRAINT_FOREIGNKEY`: a foreign key constraint failed.
    CONSTRAINT_FOREIGNKEY = 787,
    /// `SQLITE_NOTICE_RBU`: notice from the RBU extension.
    NOTICE_RBU = 795,
    /// `SQLITE_READONLY_DBMOVED`: the database file was moved or unlinked since it was opened.
    READONLY_DBMOVED = 1032,
    /// `SQLITE_IOERR_FSYNC`: I/O error while syncing a file to disk.
    IOERR_FSYNC = 1034,
    /// `SQLITE_CANTOPEN_CONVPATH`: `cygwin_conv_path()` failed while opening.
    CANTOPEN_CONVPATH = 1038,
    /// `SQLITE_CONSTRAINT_FUNCTION`: an extension function raised a constraint error.
    CONSTRAINT_FUNCTION = 1043,
    /// `SQLITE_READONLY_CANTINIT`: cannot initialise the shared memory of a read-only WAL database.
    READONLY_CANTINIT = 1288,
    /// `SQLITE_IOERR_DIR_FSYNC`: I/O error while syncing a directory.
    IOERR_DIR_FSYNC = 1290,
    /// `SQLITE_CANTOPEN_DIRTYWAL`: not used.
    CANTOPEN_DIRTYWAL = 1294,
    /// `SQLITE_CONSTRAINT_NOTNULL`: a NOT NULL constraint failed.
    CONSTRAINT_NOTNULL = 1299,
    /// `SQLITE_READONLY_DIRECTORY`: the directory holding the database is read-only.
    READONLY_DIRECTORY = 1544,
    /// `SQLITE_IOERR_TRUNCATE`: I/O error while truncating a file (e.g. the `-wal`).
    IOERR_TRUNCATE = 1546,
    /// `SQLITE_CANTOPEN_SYMLINK`: the path is a symbolic link and `SQLITE_OPEN_NOFOLLOW` was given.
    CANTOPEN_SYMLINK = 1550,
    /// `SQLITE_CONSTRAINT_PRIMARYKEY`: a PRIMARY KEY constraint failed.
    CONSTRAINT_PRIMARYKEY = 1555,
    /// `SQLITE_IOERR_FSTAT`: I/O error while reading file metadata (`fstat`).
    IOERR_FSTAT = 1802,
    /// `SQLITE_CONSTRAINT_TRIGGER`: a trigger raised a constraint error.
    CONSTRAINT_TRIGGER = 1811,
    /// `SQLITE_IOERR_UNLOCK`: I/O error while releasing a file lock.
    IOERR_UNLOCK = 2058,
    /// `SQLITE_CONSTRAINT_UNIQUE`: a UNIQUE constraint failed.
    CONSTRAINT_UNIQUE = 2067,
    /// `SQLITE_IOERR_RDLOCK`: I/O error while taking a read lock.
    IOERR_RDLOCK = 2314,
    /// `SQLITE_CONSTRAINT_VTAB`: a virtual table raised a constraint error.
    CONSTRAINT_VTAB = 2323,
    /// `SQLITE_IOERR_DELETE`: I/O error while deleting a file.
    IOERR_DELETE = 2570,
    /// `SQLITE_CONSTRAINT_ROWID`: a rowid is not unique.
    CONSTRAINT_ROWID = 2579,
    /// `SQLITE_IOERR_BLOCKED`: no longer used.
    IOERR_BLOCKED = 2826,
    /// `SQLITE_CONSTRAINT_PINNED`: a row changed under a pinned (in-progress) UPDATE.
    CONSTRAINT_PINNED = 2835,
    /// `SQLITE_IOERR_NOMEM`: out of memory inside the VFS.
    IOERR_NOMEM = 3082,
    /// `SQLITE_CONSTRAINT_DATATYPE`: a STRICT table column got a value of the wrong type.
    CONSTRAINT_DATATYPE = 3091,
    /// `SQLITE_IOERR_ACCESS`: I/O error while checking file existence or permissions.
    IOERR_ACCESS = 3338,
    /// `SQLITE_IOERR_CHECKRESERVEDLOCK`: I/O error while testing for a reserved lock.
    IOERR_CHECKRESERVEDLOCK = 3594,
    /// `SQLITE_IOERR_LOCK`: I/O error while taking a file lock.
    IOERR_LOCK = 3850,
    /// `SQLITE_IOERR_CLOSE`: I/O error while closing a file.
    IOERR_CLOSE = 4106,
    /// `SQLITE_IOERR_DIR_CLOSE`: no longer used.
    IOERR_DIR_CLOSE = 4362,
    /// `SQLITE_IOERR_SHMOPEN`: I/O error opening the `-shm` shared-memory file (`xShmMap`).
    IOERR_SHMOPEN = 4618,
    /// `SQLITE_IOERR_SHMSIZE`: I/O error resizing the `-shm` shared-memory file (`xShmMap`).
    IOERR_SHMSIZE = 4874,
    /// `SQLITE_IOERR_SHMLOCK`: no longer used.
    IOERR_SHMLOCK = 5130,
    /// `SQLITE_IOERR_SHMMAP`: I/O error mapping the `-shm` shared memory into the process (`xShmMap`).
    IOERR_SHMMAP = 5386,
    /// `SQLITE_IOERR_SEEK`: I/O error while seeking in a file.
    IOERR_SEEK = 5642,
    /// `SQLITE_IOERR_DELETE_NOENT`: the file to delete did not exist.
    IOERR_DELETE_NOENT = 5898,
    /// `SQLITE_IOERR_MMAP`: I/O error while memory-mapping the database.
    IOERR_MMAP = 6154,
    /// `SQLITE_IOERR_GETTEMPPATH`: the VFS could not find a temporary directory.
    IOERR_GETTEMPPATH = 6410,
    /// `SQLITE_IOERR_CONVPATH`: `cygwin_conv_path()` failed.
    IOERR_CONVPATH = 6666,
    /// `SQLITE_IOERR_VNODE`: reserved for VFS extensions (vnode error).
    IOERR_VNODE = 6922,
    /// `SQLITE_IOERR_AUTH`: reserved for VFS extensions (authorization error).
    IOERR_AUTH = 7178,
    /// `SQLITE_IOERR_BEGIN_ATOMIC`: the VFS could not begin a batch-atomic write.
    IOERR_BEGIN_ATOMIC = 7434,
    /// `SQLITE_IOERR_COMMIT_ATOMIC`: the VFS could not commit a batch-atomic write.
    IOERR_COMMIT_ATOMIC = 7690,
    /// `SQLITE_IOERR_ROLLBACK_ATOMIC`: the VFS could not roll back a batch-atomic write.
    IOERR_ROLLBACK_ATOMIC = 7946,
    /// `SQLITE_IOERR_DATA`: a checksum VFS found a bad page checksum.
    IOERR_DATA = 8202,
    /// `SQLITE_IOERR_CORRUPTFS`: the file system returned data that is evidently corrupt.
    IOERR_CORRUPTFS = 8458,
    /// `SQLITE_IOERR_IN_PAGE`: an I/O fault while touching a memory-mapped page.
    IOERR_IN_PAGE = 8714,
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
    use rusqlite::ffi;

    /// Every result code `rusqlite::ffi` (libsqlite3-sys's bindings of the
    /// bundled `sqlite3.h`) exports, by name.
    const FFI: &[(i32, &str)] = &[
        (ffi::SQLITE_OK, "SQLITE_OK"),
        (ffi::SQLITE_ERROR, "SQLITE_ERROR"),
        (ffi::SQLITE_INTERNAL, "SQLITE_INTERNAL"),
        (ffi::SQLITE_PERM, "SQLITE_PERM"),
        (ffi::SQLITE_ABORT, "SQLITE_ABORT"),
        (ffi::SQLITE_BUSY, "SQLITE_BUSY"),
        (ffi::SQLITE_LOCKED, "SQLITE_LOCKED"),
        (ffi::SQLITE_NOMEM, "SQLITE_NOMEM"),
        (ffi::SQLITE_READONLY, "SQLITE_READONLY"),
        (ffi::SQLITE_INTERRUPT, "SQLITE_INTERRUPT"),
        (ffi::SQLITE_IOERR, "SQLITE_IOERR"),
        (ffi::SQLITE_CORRUPT, "SQLITE_CORRUPT"),
        (ffi::SQLITE_NOTFOUND, "SQLITE_NOTFOUND"),
        (ffi::SQLITE_FULL, "SQLITE_FULL"),
        (ffi::SQLITE_CANTOPEN, "SQLITE_CANTOPEN"),
        (ffi::SQLITE_PROTOCOL, "SQLITE_PROTOCOL"),
        (ffi::SQLITE_EMPTY, "SQLITE_EMPTY"),
        (ffi::SQLITE_SCHEMA, "SQLITE_SCHEMA"),
        (ffi::SQLITE_TOOBIG, "SQLITE_TOOBIG"),
        (ffi::SQLITE_CONSTRAINT, "SQLITE_CONSTRAINT"),
        (ffi::SQLITE_MISMATCH, "SQLITE_MISMATCH"),
        (ffi::SQLITE_MISUSE, "SQLITE_MISUSE"),
        (ffi::SQLITE_NOLFS, "SQLITE_NOLFS"),
        (ffi::SQLITE_AUTH, "SQLITE_AUTH"),
        (ffi::SQLITE_FORMAT, "SQLITE_FORMAT"),
        (ffi::SQLITE_RANGE, "SQLITE_RANGE"),
        (ffi::SQLITE_NOTADB, "SQLITE_NOTADB"),
        (ffi::SQLITE_NOTICE, "SQLITE_NOTICE"),
        (ffi::SQLITE_WARNING, "SQLITE_WARNING"),
        (ffi::SQLITE_ROW, "SQLITE_ROW"),
        (ffi::SQLITE_DONE, "SQLITE_DONE"),
        (
            ffi::SQLITE_ERROR_MISSING_COLLSEQ,
            "SQLITE_ERROR_MISSING_COLLSEQ",
        ),
        (ffi::SQLITE_ERROR_RETRY, "SQLITE_ERROR_RETRY"),
        (ffi::SQLITE_ERROR_SNAPSHOT, "SQLITE_ERROR_SNAPSHOT"),
        (ffi::SQLITE_IOERR_READ, "SQLITE_IOERR_READ"),
        (ffi::SQLITE_IOERR_SHORT_READ, "SQLITE_IOERR_SHORT_READ"),
        (ffi::SQLITE_IOERR_WRITE, "SQLITE_IOERR_WRITE"),
        (ffi::SQLITE_IOERR_FSYNC, "SQLITE_IOERR_FSYNC"),
        (ffi::SQLITE_IOERR_DIR_FSYNC, "SQLITE_IOERR_DIR_FSYNC"),
        (ffi::SQLITE_IOERR_TRUNCATE, "SQLITE_IOERR_TRUNCATE"),
        (ffi::SQLITE_IOERR_FSTAT, "SQLITE_IOERR_FSTAT"),
        (ffi::SQLITE_IOERR_UNLOCK, "SQLITE_IOERR_UNLOCK"),
        (ffi::SQLITE_IOERR_RDLOCK, "SQLITE_IOERR_RDLOCK"),
        (ffi::SQLITE_IOERR_DELETE, "SQLITE_IOERR_DELETE"),
        (ffi::SQLITE_IOERR_BLOCKED, "SQLITE_IOERR_BLOCKED"),
        (ffi::SQLITE_IOERR_NOMEM, "SQLITE_IOERR_NOMEM"),
        (ffi::SQLITE_IOERR_ACCESS, "SQLITE_IOERR_ACCESS"),
        (
            ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
            "SQLITE_IOERR_CHECKRESERVEDLOCK",
        ),
        (ffi::SQLITE_IOERR_LOCK, "SQLITE_IOERR_LOCK"),
        (ffi::SQLITE_IOERR_CLOSE, "SQLITE_IOERR_CLOSE"),
        (ffi::SQLITE_IOERR_DIR_CLOSE, "SQLITE_IOERR_DIR_CLOSE"),
        (ffi::SQLITE_IOERR_SHMOPEN, "SQLITE_IOERR_SHMOPEN"),
        (ffi::SQLITE_IOERR_SHMSIZE, "SQLITE_IOERR_SHMSIZE"),
        (ffi::SQLITE_IOERR_SHMLOCK, "SQLITE_IOERR_SHMLOCK"),
        (ffi::SQLITE_IOERR_SHMMAP, "SQLITE_IOERR_SHMMAP"),
        (ffi::SQLITE_IOERR_SEEK, "SQLITE_IOERR_SEEK"),
        (ffi::SQLITE_IOERR_DELETE_NOENT, "SQLITE_IOERR_DELETE_NOENT"),
        (ffi::SQLITE_IOERR_MMAP, "SQLITE_IOERR_MMAP"),
        (ffi::SQLITE_IOERR_GETTEMPPATH, "SQLITE_IOERR_GETTEMPPATH"),
        (ffi::SQLITE_IOERR_CONVPATH, "SQLITE_IOERR_CONVPATH"),
        (ffi::SQLITE_IOERR_VNODE, "SQLITE_IOERR_VNODE"),
        (ffi::SQLITE_IOERR_AUTH, "SQLITE_IOERR_AUTH"),
        (ffi::SQLITE_IOERR_BEGIN_ATOMIC, "SQLITE_IOERR_BEGIN_ATOMIC"),
        (
            ffi::SQLITE_IOERR_COMMIT_ATOMIC,
            "SQLITE_IOERR_COMMIT_ATOMIC",
        ),
        (
            ffi::SQLITE_IOERR_ROLLBACK_ATOMIC,
            "SQLITE_IOERR_ROLLBACK_ATOMIC",
        ),
        (ffi::SQLITE_IOERR_DATA, "SQLITE_IOERR_DATA"),
        (ffi::SQLITE_IOERR_CORRUPTFS, "SQLITE_IOERR_CORRUPTFS"),
        (ffi::SQLITE_IOERR_IN_PAGE, "SQLITE_IOERR_IN_PAGE"),
        (ffi::SQLITE_LOCKED_SHAREDCACHE, "SQLITE_LOCKED_SHAREDCACHE"),
        (ffi::SQLITE_LOCKED_VTAB, "SQLITE_LOCKED_VTAB"),
        (ffi::SQLITE_BUSY_RECOVERY, "SQLITE_BUSY_RECOVERY"),
        (ffi::SQLITE_BUSY_SNAPSHOT, "SQLITE_BUSY_SNAPSHOT"),
        (ffi::SQLITE_BUSY_TIMEOUT, "SQLITE_BUSY_TIMEOUT"),
        (ffi::SQLITE_CANTOPEN_NOTEMPDIR, "SQLITE_CANTOPEN_NOTEMPDIR"),
        (ffi::SQLITE_CANTOPEN_ISDIR, "SQLITE_CANTOPEN_ISDIR"),
        (ffi::SQLITE_CANTOPEN_FULLPATH, "SQLITE_CANTOPEN_FULLPATH"),
        (ffi::SQLITE_CANTOPEN_CONVPATH, "SQLITE_CANTOPEN_CONVPATH"),
        (ffi::SQLITE_CANTOPEN_DIRTYWAL, "SQLITE_CANTOPEN_DIRTYWAL"),
        (ffi::SQLITE_CANTOPEN_SYMLINK, "SQLITE_CANTOPEN_SYMLINK"),
        (ffi::SQLITE_CORRUPT_VTAB, "SQLITE_CORRUPT_VTAB"),
        (ffi::SQLITE_CORRUPT_SEQUENCE, "SQLITE_CORRUPT_SEQUENCE"),
        (ffi::SQLITE_CORRUPT_INDEX, "SQLITE_CORRUPT_INDEX"),
        (ffi::SQLITE_READONLY_RECOVERY, "SQLITE_READONLY_RECOVERY"),
        (ffi::SQLITE_READONLY_CANTLOCK, "SQLITE_READONLY_CANTLOCK"),
        (ffi::SQLITE_READONLY_ROLLBACK, "SQLITE_READONLY_ROLLBACK"),
        (ffi::SQLITE_READONLY_DBMOVED, "SQLITE_READONLY_DBMOVED"),
        (ffi::SQLITE_READONLY_CANTINIT, "SQLITE_READONLY_CANTINIT"),
        (ffi::SQLITE_READONLY_DIRECTORY, "SQLITE_READONLY_DIRECTORY"),
        (ffi::SQLITE_ABORT_ROLLBACK, "SQLITE_ABORT_ROLLBACK"),
        (ffi::SQLITE_CONSTRAINT_CHECK, "SQLITE_CONSTRAINT_CHECK"),
        (
            ffi::SQLITE_CONSTRAINT_COMMITHOOK,
            "SQLITE_CONSTRAINT_COMMITHOOK",
        ),
        (
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
            "SQLITE_CONSTRAINT_FOREIGNKEY",
        ),
        (
            ffi::SQLITE_CONSTRAINT_FUNCTION,
            "SQLITE_CONSTRAINT_FUNCTION",
        ),
        (ffi::SQLITE_CONSTRAINT_NOTNULL, "SQLITE_CONSTRAINT_NOTNULL"),
        (
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
            "SQLITE_CONSTRAINT_PRIMARYKEY",
        ),
        (ffi::SQLITE_CONSTRAINT_TRIGGER, "SQLITE_CONSTRAINT_TRIGGER"),
        (ffi::SQLITE_CONSTRAINT_UNIQUE, "SQLITE_CONSTRAINT_UNIQUE"),
        (ffi::SQLITE_CONSTRAINT_VTAB, "SQLITE_CONSTRAINT_VTAB"),
        (ffi::SQLITE_CONSTRAINT_ROWID, "SQLITE_CONSTRAINT_ROWID"),
        (ffi::SQLITE_CONSTRAINT_PINNED, "SQLITE_CONSTRAINT_PINNED"),
        (
            ffi::SQLITE_CONSTRAINT_DATATYPE,
            "SQLITE_CONSTRAINT_DATATYPE",
        ),
        (ffi::SQLITE_NOTICE_RECOVER_WAL, "SQLITE_NOTICE_RECOVER_WAL"),
        (
            ffi::SQLITE_NOTICE_RECOVER_ROLLBACK,
            "SQLITE_NOTICE_RECOVER_ROLLBACK",
        ),
        (ffi::SQLITE_NOTICE_RBU, "SQLITE_NOTICE_RBU"),
        (ffi::SQLITE_WARNING_AUTOINDEX, "SQLITE_WARNING_AUTOINDEX"),
        (ffi::SQLITE_AUTH_USER, "SQLITE_AUTH_USER"),
        (
            ffi::SQLITE_OK_LOAD_PERMANENTLY,
            "SQLITE_OK_LOAD_PERMANENTLY",
        ),
        (ffi::SQLITE_OK_SYMLINK, "SQLITE_OK_SYMLINK"),
    ];

    #[test]
    fn table_matches_ffi_in_both_directions() {
        for &(value, ffi_name) in FFI {
            assert_eq!(name(value), Some(ffi_name), "ffi {ffi_name} = {value}");
        }
        for &(value, our_name) in ALL {
            assert!(
                FFI.contains(&(value, our_name)),
                "{our_name} = {value} is not an ffi constant"
            );
        }
        assert_eq!(ALL.len(), FFI.len());
        assert_eq!(ALL.len(), 108);
    }

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for pair in ALL.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} !< {:?}", pair[0], pair[1]);
        }
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
    fn named_constants_have_sqlite_values() {
        assert_eq!(IOERR_SHMOPEN, 4618);
        assert_eq!(IOERR_SHMSIZE, 4874);
        assert_eq!(IOERR_SHMMAP, 5386);
        assert_eq!(IOERR_TRUNCATE, 1546);
        assert_eq!(IOERR_FSTAT, 1802);
        assert_eq!(IOERR_IN_PAGE, 8714);
        assert_eq!(CANTOPEN, 14);
        assert_eq!(BUSY, 5);
        assert_eq!(BUSY_RECOVERY, 261);
        assert_eq!(BUSY_SNAPSHOT, 517);
        assert_eq!(BUSY_TIMEOUT, 773);
        assert_eq!(LOCKED, 6);
        assert_eq!(FULL, 13);
        assert_eq!(CORRUPT, 11);
        assert_eq!(NOTADB, 26);
        assert_eq!(CONSTRAINT, 19);
        assert_eq!(IOERR, 10);
        assert_eq!(CONSTRAINT_UNIQUE, 2067);
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

    /// The generated Python enum (`python/memtree/_codes.py`) must list exactly
    /// this table: one `NAME = value` member line per code, in the same order.
    #[test]
    fn python_enum_matches_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/python/memtree/_codes.py");
        let source = std::fs::read_to_string(path).expect("read _codes.py");
        let members: Vec<(i32, String)> = source
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("    ")?;
                let (member, value) = rest.split_once(" = ")?;
                if member.is_empty()
                    || !member
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
                {
                    return None;
                }
                Some((value.trim().parse().ok()?, format!("SQLITE_{member}")))
            })
            .collect();
        let expected: Vec<(i32, String)> = ALL
            .iter()
            .map(|&(value, full_name)| (value, full_name.to_owned()))
            .collect();
        assert_eq!(members, expected, "regenerate python/memtree/_codes.py");
    }
}
