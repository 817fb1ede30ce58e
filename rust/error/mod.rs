//! The core's one error type: every fallible operation returns [`Result`].
//!
//! SQLite failures keep the original `rusqlite::Error` as their `source()`, so
//! the classifier can walk the chain and find the extended result code.

pub mod classify;
pub mod codes;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use classify::ErrorClass;

/// What went wrong in a memtree operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// SQLite reported a failure while memtree was doing `context`.
    Sqlite {
        /// What memtree was doing, e.g. `"upsert_chunks"`.
        context: String,
        /// The database file involved.
        path: PathBuf,
        /// The error SQLite (through rusqlite) reported.
        source: rusqlite::Error,
    },
    /// Caller input was rejected before anything was written.
    InvalidInput {
        /// The offending field, e.g. `"chunks[3].token_count"`.
        field: String,
        /// Why it was rejected.
        message: String,
    },
    /// A file-system operation outside SQLite failed.
    Io {
        /// What memtree was doing.
        context: String,
        /// The file or folder involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The store was used after `close()`.
    Closed,
    /// The handle was opened by the parent of this process, before a
    /// `fork()`: SQLite forbids using a connection across a fork, so the
    /// handle refuses every call. Opening the path again in this process
    /// gives a working store.
    Forked {
        /// The database file.
        path: PathBuf,
    },
    /// The file's schema was written by a newer memtree; nothing was changed.
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The `user_version` found in the file.
        found: i64,
        /// The newest version this build understands.
        supported: i64,
    },
    /// The file is not a memtree database (it has tables, but none of
    /// memtree's); nothing was changed.
    NotMemtree {
        /// The database file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The database was corrupt: it was copied aside to `quarantined` and
    /// rebuilt in place at `path` with every row still readable.
    Quarantined {
        /// The database file (now fresh).
        path: PathBuf,
        /// Where the corrupt file was moved.
        quarantined: PathBuf,
        /// The failure that revealed the corruption.
        source: Box<Error>,
    },
    /// The circuit breaker for this path is open: recent opens failed and the
    /// cool-down has not passed, so the disk was not touched.
    CircuitOpen {
        /// The database file.
        path: PathBuf,
        /// Time left until the next attempt is allowed.
        retry_in: Duration,
        /// The extended code of the failure that tripped the breaker, if any.
        last_code: Option<i32>,
    },
    /// The path cannot be a memtree database and was refused before any
    /// open: a missing folder, a non-regular file or a symbolic link at the
    /// database or a side-file name, or (for an explicit path) a file that
    /// is not an SQLite database. Nothing was created, renamed or written.
    /// Also, for a store already open, a non-regular file planted at the
    /// `-journal` or `-wal` name that the VFS refused to open (reported
    /// while it is there). Permanent whatever `code` is: retrying the same
    /// path cannot help.
    PathRefused {
        /// The database path as given, or the planted side file.
        path: PathBuf,
        /// The SQLite code that says why: `NOTADB` (not an SQLite file),
        /// `CANTOPEN` (missing folder or file, FIFO, device, socket),
        /// `CANTOPEN_ISDIR` (a directory), `CANTOPEN_SYMLINK` (a link).
        code: i32,
        /// What was found.
        reason: String,
    },
    /// A job settle or heartbeat presented a lease token that is no longer
    /// the job's: the lease expired and was recovered or re-claimed, or the
    /// job was already settled. Nothing was changed.
    LeaseLost {
        /// The job whose lease was lost.
        job_id: String,
        /// The job was cancelled ([`crate::Jobs::cancel`]) while running:
        /// its worker should stop (Python's `JobCancelledError`).
        cancelled: bool,
    },
    /// A seal presented a buffer version that is no longer the buffer's: a
    /// write reached the buffer after the caller read it. Nothing was
    /// changed; read the buffer again and summarise what it holds now.
    StaleBuffer {
        /// The tree.
        tree_id: String,
        /// The buffer's level.
        level: i64,
        /// The version the caller read.
        expected: String,
        /// The version the buffer has now.
        found: String,
    },
}

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a SQLite error with what memtree was doing and on which file.
    #[cold]
    pub fn sqlite(context: &str, path: &std::path::Path, source: rusqlite::Error) -> Self {
        Error::Sqlite {
            context: context.to_owned(),
            path: path.to_owned(),
            source,
        }
    }

    /// An input-validation failure naming the field.
    #[cold]
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A file-system failure.
    #[cold]
    pub fn io(context: &str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            context: context.to_owned(),
            path: path.to_owned(),
            source,
        }
    }

    /// The SQLite extended result code carried anywhere in this error's chain.
    pub fn sqlite_code(&self) -> Option<i32> {
        match self {
            Error::CircuitOpen { last_code, .. } => *last_code,
            Error::PathRefused { code, .. } => Some(*code),
            Error::Io { source, .. } => Some(io_error_code(source)),
            _ => classify::sqlite_code_in_chain(self),
        }
    }

    /// The class deciding how callers should react (retry, back off, surface).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::CircuitOpen { .. } => ErrorClass::TransientIo,
            Error::Quarantined { .. } => ErrorClass::Corrupt,
            Error::InvalidInput { .. }
            | Error::Closed
            | Error::Forked { .. }
            | Error::SchemaTooNew { .. }
            | Error::NotMemtree { .. }
            | Error::PathRefused { .. }
            | Error::LeaseLost { .. }
            | Error::StaleBuffer { .. } => ErrorClass::Permanent,
            Error::Io { source, .. } => classify::classify_code(io_error_code(source)),
            _ => classify::classify_error(self),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sqlite {
                context,
                path,
                source,
            } => {
                write!(f, "{context}: {}", sqlite_message(source))?;
                if let Some(code) = classify::sqlite_code_in_chain(source) {
                    write!(f, " ({} {code})", codes::name_or_primary(code))?;
                }
                write!(f, " [{}]", path.display())
            }
            Error::InvalidInput { field, message } => write!(f, "{field}: {message}"),
            Error::Io {
                context,
                path,
                source,
            } => write!(f, "{context}: {source} [{}]", path.display()),
            Error::Closed => f.write_str("the store is closed"),
            Error::Forked { path } => write!(
                f,
                "this store was opened before fork() by the parent process; \
                 open it again in this process [{}]",
                path.display()
            ),
            Error::Quarantined {
                path,
                quarantined,
                source,
            } => write!(
                f,
                "corrupt database copied aside to {} and rebuilt in place at {}: {source}",
                quarantined.display(),
                path.display()
            ),
            Error::SchemaTooNew {
                path,
                found,
                supported,
            } => write!(
                f,
                "schema version {found} is newer than this memtree supports ({supported}); \
                 upgrade memtree [{}]",
                path.display()
            ),
            Error::NotMemtree { path, reason } => write!(
                f,
                "not a memtree database: {reason}; nothing was changed [{}]",
                path.display()
            ),
            Error::CircuitOpen { path, retry_in, .. } => write!(
                f,
                "circuit open after repeated open failures; retry in {:.1}s [{}]",
                retry_in.as_secs_f64(),
                path.display()
            ),
            Error::PathRefused { path, code, reason } => write!(
                f,
                "refused to open {}: {reason} ({} {code}); nothing was changed",
                path.display(),
                codes::name_or_primary(*code)
            ),
            Error::LeaseLost {
                job_id,
                cancelled: true,
            } => write!(
                f,
                "job {job_id} was cancelled while it ran; stop working on it"
            ),
            Error::LeaseLost { job_id, .. } => write!(
                f,
                "lease lost on job {job_id}: it was recovered, re-claimed or already settled"
            ),
            Error::StaleBuffer {
                tree_id,
                level,
                expected,
                found,
            } => write!(
                f,
                "the buffer of tree {tree_id} at level {level} changed since it was read \
                 (version {expected}, now {found}); nothing was sealed"
            ),
        }
    }
}

/// The SQLite result code that stands for an operating-system failure
/// outside SQLite, so it is classified and reported like SQLite's own:
/// no space is `SQLITE_FULL`, a missing or forbidden file `SQLITE_CANTOPEN`,
/// a read-only file system `SQLITE_READONLY`, anything else `SQLITE_IOERR`.
pub fn io_error_code(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => codes::FULL,
        ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::AlreadyExists => {
            codes::CANTOPEN
        }
        ErrorKind::ReadOnlyFilesystem => codes::READONLY,
        _ => codes::IOERR,
    }
}

/// SQLite's own message, without rusqlite's decoration where it has one.
fn sqlite_message(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(e, Some(msg)) => {
            if msg.is_empty() {
                e.to_string()
            } else {
                msg.clone()
            }
        }
        other => other.to_string(),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Sqlite { source, .. } => Some(source),
            Error::Io { source, .. } => Some(source),
            Error::Quarantined { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// What the scan looks for. Built, so that this file does not hold it.
    const PLAIN: &str = concat!("Error::", "sqlite(");
    /// The comment that lets a plain site stand, with its reason after it.
    const MARK: &str = concat!("// Plain Error::", "sqlite: ");

    /// The plain `Error::sqlite` calls under `dir`, as `file:line`, other
    /// than the refusal module's (which builds the error it maps) and those
    /// whose comment just above (the block of `//` lines touching the call)
    /// has a line starting with [`MARK`] that says why no refused file can
    /// be the site's cause.
    fn unmarked_plain_sqlite_errors(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("list the sources")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                found.extend(unmarked_plain_sqlite_errors(&path));
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("vfs/refusal.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read a source");
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if !line.contains(PLAIN) {
                    continue;
                }
                let marked = lines[..i]
                    .iter()
                    .rev()
                    .map(|l| l.trim_start())
                    .take_while(|l| l.starts_with("//"))
                    .any(|l| l.starts_with(MARK));
                if !marked {
                    found.push(format!("{}:{}", path.display(), i + 1));
                }
            }
        }
        found
    }

    /// Every SQLite error in the crate is built by the mapped constructor
    /// (`crate::vfs::sqlite_or_refused`, which `Database::err` calls too),
    /// so a file planted at a side-file name is the refusal it is when the
    /// core returns it, and nothing after the core maps it again. A plain
    /// `Error::sqlite` stands only where its comment says why no refused
    /// file can be behind it (a code memtree chose, a copy of an error
    /// mapped already, a database that is none of the store's files).
    #[test]
    fn every_sqlite_error_is_mapped_to_the_refusal_behind_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rust");
        let plain = unmarked_plain_sqlite_errors(&root);
        assert!(
            plain.is_empty(),
            "a plain SQLite error (build it with crate::vfs::sqlite_or_refused, \
             or say above it why no refused file can be its cause) at {plain:?}"
        );
    }

    /// The scan finds an unmarked call, in a nested folder, also one whose
    /// comment is not just above it, and lets a marked one and the refusal
    /// module's stand.
    #[test]
    fn the_scan_finds_an_unmarked_plain_sqlite_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ops = dir.path().join("ops");
        let vfs = dir.path().join("vfs");
        std::fs::create_dir_all(&ops).expect("mkdir");
        std::fs::create_dir_all(&vfs).expect("mkdir");
        let call = format!("    let e = {PLAIN}\"ctx\", path, e);\n");
        let file = |name: &str, body: String| {
            std::fs::write(ops.join(name), format!("fn f() {{\n{body}}}\n")).expect("write");
        };
        file("plain.rs", call.clone());
        file(
            "marked.rs",
            format!("    {MARK}a code memtree chose.\n{call}"),
        );
        file(
            "far.rs",
            format!("    {MARK}a code memtree chose.\n    let x = 1;\n{call}"),
        );
        std::fs::write(vfs.join("refusal.rs"), &call).expect("write");
        let found = unmarked_plain_sqlite_errors(dir.path());
        let ops = ops.display();
        assert_eq!(
            found,
            vec![format!("{ops}/far.rs:4"), format!("{ops}/plain.rs:2")]
        );
    }
}
