//! Error classes: what kind of failure an error is, so callers know whether to
//! retry, back off, recover or surface it.
//!
//! Classification, in two paths (the result-code table of the design brief,
//! which is kept outside this repository):
//!
//! 1. **Numeric path.** Walk the error and every `source()` (outermost first) for
//!    a SQLite result code ([`rusqlite::Error`] or [`rusqlite::ffi::Error`]). If
//!    any link carries a code, the first (outermost) code decides
//!    ([`classify_code`]) and message text is ignored entirely.
//! 2. **Text fallback.** Only when no link carries a code, each link's `Display`
//!    text is matched, outermost first, against SQLite's well-known messages
//!    ([`classify_message`]).
//! 3. Otherwise the error is [`ErrorClass::Permanent`].
//!
//! | class | codes |
//! |---|---|
//! | [`ErrorClass::TransientIo`] | CANTOPEN 14 and all `CANTOPEN_*`, IOERR_TRUNCATE 1546, IOERR_FSTAT 1802, IOERR_SHMOPEN 4618, IOERR_SHMSIZE 4874, IOERR_SHMMAP 5386, IOERR_IN_PAGE 8714 |
//! | [`ErrorClass::Busy`] | BUSY 5 and `BUSY_*`, LOCKED 6 and `LOCKED_*` |
//! | [`ErrorClass::DiskFull`] | FULL 13 |
//! | [`ErrorClass::Corrupt`] | CORRUPT 11 and `CORRUPT_*`, NOTADB 26 |
//! | [`ErrorClass::Constraint`] | CONSTRAINT 19 and `CONSTRAINT_*` |
//! | [`ErrorClass::Permanent`] | everything else, including plain IOERR 10 and every other `IOERR_*` |

use std::error::Error as StdError;

use crate::error::codes;

/// How many links of a `source()` chain are examined at most; a guard against a
/// pathological (e.g. cyclic) chain, far beyond any real nesting.
const MAX_CHAIN_LINKS: usize = 64;

/// The class of a failure, deciding how memtree reacts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// A cold-start or file-system hiccup (antivirus handle, sandbox, `-shm`
    /// mapping): worth retrying after a pause or a side-file recovery.
    TransientIo,
    /// Another connection or statement holds a lock: retry shortly.
    Busy,
    /// The database or the disk is full.
    DiskFull,
    /// The database file is malformed or is not a database.
    Corrupt,
    /// A constraint (UNIQUE, NOT NULL, CHECK, FOREIGN KEY, ...) was violated.
    Constraint,
    /// Anything else: surfaced to the caller, never retried silently.
    Permanent,
}

impl ErrorClass {
    /// Every class, in declaration order: what the Python glue must map to
    /// an exception class (its coverage test walks this list).
    pub const ALL: [ErrorClass; 6] = [
        Self::TransientIo,
        Self::Busy,
        Self::DiskFull,
        Self::Corrupt,
        Self::Constraint,
        Self::Permanent,
    ];

    /// A stable snake_case label: `"transient_io"`, `"busy"`, `"disk_full"`,
    /// `"corrupt"`, `"constraint"` or `"permanent"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransientIo => "transient_io",
            Self::Busy => "busy",
            Self::DiskFull => "disk_full",
            Self::Corrupt => "corrupt",
            Self::Constraint => "constraint",
            Self::Permanent => "permanent",
        }
    }

    /// Whether a retry may succeed without any change by the caller:
    /// true for [`ErrorClass::TransientIo`] and [`ErrorClass::Busy`].
    pub fn is_transient(self) -> bool {
        matches!(self, Self::TransientIo | Self::Busy)
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of a SQLite result code (primary or extended), per the table in
/// the module docs.
///
/// The whole CANTOPEN family is transient: `CANTOPEN_*` are refinements of the
/// same "could not open the file" failure. Of the IOERR family only the six
/// listed extended codes are transient; plain IOERR and the other `IOERR_*`
/// codes (READ, WRITE, FSYNC, CORRUPTFS, ...) are [`ErrorClass::Permanent`].
/// Non-error codes (OK, ROW, DONE, ...) are also [`ErrorClass::Permanent`].
pub fn classify_code(code: i32) -> ErrorClass {
    match code {
        codes::IOERR_TRUNCATE
        | codes::IOERR_FSTAT
        | codes::IOERR_SHMOPEN
        | codes::IOERR_SHMSIZE
        | codes::IOERR_SHMMAP
        | codes::IOERR_IN_PAGE => return ErrorClass::TransientIo,
        _ => {}
    }
    match codes::primary(code) {
        codes::CANTOPEN => ErrorClass::TransientIo,
        codes::BUSY | codes::LOCKED => ErrorClass::Busy,
        codes::FULL => ErrorClass::DiskFull,
        codes::CORRUPT | codes::NOTADB => ErrorClass::Corrupt,
        codes::CONSTRAINT => ErrorClass::Constraint,
        _ => ErrorClass::Permanent,
    }
}

/// The SQLite code carried by this one link of a chain, if any.
fn link_code(link: &(dyn StdError + 'static)) -> Option<i32> {
    if let Some(err) = link.downcast_ref::<rusqlite::Error>() {
        return match err {
            rusqlite::Error::SqliteFailure(ffi_err, _) => Some(ffi_err.extended_code),
            rusqlite::Error::SqlInputError { error, .. } => Some(error.extended_code),
            _ => None,
        };
    }
    link.downcast_ref::<rusqlite::ffi::Error>()
        .map(|ffi_err| ffi_err.extended_code)
}

/// Iterates over `err` and its `source()` chain, outermost first (bounded).
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&link| link.source()).take(MAX_CHAIN_LINKS)
}

/// The first (outermost) SQLite result code found in `err` or any of its
/// `source()`s: the extended code of a [`rusqlite::Error::SqliteFailure`] or
/// [`rusqlite::Error::SqlInputError`], or of a bare [`rusqlite::ffi::Error`].
/// Other error types are found through their `source()`.
pub fn sqlite_code_in_chain(err: &(dyn StdError + 'static)) -> Option<i32> {
    chain(err).find_map(link_code)
}

/// Message fragments (lower case) and their classes, checked in this order;
/// the first fragment found decides. More specific classes come first, so a
/// message that mentions both corruption and an I/O error is Corrupt.
const MESSAGE_PATTERNS: &[(&str, ErrorClass)] = &[
    ("database disk image is malformed", ErrorClass::Corrupt),
    ("malformed database schema", ErrorClass::Corrupt),
    ("file is not a database", ErrorClass::Corrupt),
    ("sqlite_corrupt", ErrorClass::Corrupt),
    ("sqlite_notadb", ErrorClass::Corrupt),
    ("database or disk is full", ErrorClass::DiskFull),
    ("no space left on device", ErrorClass::DiskFull),
    ("sqlite_full", ErrorClass::DiskFull),
    ("database is locked", ErrorClass::Busy),
    ("database table is locked", ErrorClass::Busy),
    ("database schema is locked", ErrorClass::Busy),
    ("sqlite_busy", ErrorClass::Busy),
    ("sqlite_locked", ErrorClass::Busy),
    ("constraint failed", ErrorClass::Constraint),
    ("sqlite_constraint", ErrorClass::Constraint),
    ("disk i/o error", ErrorClass::TransientIo),
    ("unable to open database file", ErrorClass::TransientIo),
    ("unable to open the database file", ErrorClass::TransientIo),
    ("xshmmap", ErrorClass::TransientIo),
    ("shmopen", ErrorClass::TransientIo),
    ("shmsize", ErrorClass::TransientIo),
    ("shmmap", ErrorClass::TransientIo),
    ("truncate file", ErrorClass::TransientIo),
    ("ioerr_truncate", ErrorClass::TransientIo),
    ("ioerr_fstat", ErrorClass::TransientIo),
    ("ioerr_in_page", ErrorClass::TransientIo),
    ("sqlite_cantopen", ErrorClass::TransientIo),
];

/// The class suggested by an error message alone, matched case-insensitively
/// against SQLite's well-known messages ("disk I/O error", "unable to open
/// database file", "database is locked", "database or disk is full", "database
/// disk image is malformed", "file is not a database", "... constraint
/// failed", `xShmMap`, ...) and the names of the classified codes
/// (`SQLITE_IOERR_SHMOPEN`, `SQLITE_BUSY`, ...). `None` when nothing matches.
///
/// This is a fallback for errors that lost their code (stringified, or from
/// another layer); it is deliberately broad: any "disk I/O error" counts as
/// [`ErrorClass::TransientIo`], although by code only some IOERR codes do.
pub fn classify_message(msg: &str) -> Option<ErrorClass> {
    let lower = msg.to_ascii_lowercase();
    MESSAGE_PATTERNS
        .iter()
        .find(|(fragment, _)| lower.contains(fragment))
        .map(|&(_, class)| class)
}

/// The class of `err` and the SQLite code that decided it (`None` when no link
/// of the chain carries a code and the class comes from the text fallback or is
/// the default [`ErrorClass::Permanent`]). See the module docs for the order.
pub fn classify_chain_code(err: &(dyn StdError + 'static)) -> (ErrorClass, Option<i32>) {
    if let Some(code) = sqlite_code_in_chain(err) {
        return (classify_code(code), Some(code));
    }
    let class = chain(err)
        .find_map(|link| classify_message(&link.to_string()))
        .unwrap_or(ErrorClass::Permanent);
    (class, None)
}

/// The class of `err`: by the first SQLite code anywhere in its `source()`
/// chain; only if there is none, by the text of each link (outermost first);
/// else [`ErrorClass::Permanent`].
pub fn classify_error(err: &(dyn StdError + 'static)) -> ErrorClass {
    classify_chain_code(err).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;
    use std::fmt;

    /// A minimal error type that wraps another as its `source()`.
    #[derive(Debug)]
    struct Wrap {
        msg: String,
        inner: Box<dyn StdError + Send + Sync + 'static>,
    }

    impl Wrap {
        fn new(msg: &str, inner: impl StdError + Send + Sync + 'static) -> Self {
            Self {
                msg: msg.to_owned(),
                inner: Box::new(inner),
            }
        }
    }

    impl fmt::Display for Wrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.msg)
        }
    }

    impl StdError for Wrap {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.inner)
        }
    }

    fn sqlite_failure(code: i32, msg: &str) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(msg.to_owned()))
    }

    #[test]
    fn design_table_codes_individually() {
        let expected = [
            (14, ErrorClass::TransientIo),
            (1546, ErrorClass::TransientIo),
            (1802, ErrorClass::TransientIo),
            (4618, ErrorClass::TransientIo),
            (4874, ErrorClass::TransientIo),
            (5386, ErrorClass::TransientIo),
            (8714, ErrorClass::TransientIo),
            (5, ErrorClass::Busy),
            (261, ErrorClass::Busy),
            (517, ErrorClass::Busy),
            (773, ErrorClass::Busy),
            (6, ErrorClass::Busy),
            (13, ErrorClass::DiskFull),
            (11, ErrorClass::Corrupt),
            (26, ErrorClass::Corrupt),
        ];
        for (code, class) in expected {
            assert_eq!(classify_code(code), class, "code {code}");
        }
    }

    #[test]
    fn families_by_primary_code() {
        for &(code, name) in codes::ALL {
            let class = classify_code(code);
            match codes::primary(code) {
                codes::CANTOPEN => assert_eq!(class, ErrorClass::TransientIo, "{name}"),
                codes::BUSY | codes::LOCKED => assert_eq!(class, ErrorClass::Busy, "{name}"),
                codes::CORRUPT | codes::NOTADB => {
                    assert_eq!(class, ErrorClass::Corrupt, "{name}")
                }
                codes::CONSTRAINT => assert_eq!(class, ErrorClass::Constraint, "{name}"),
                _ => {}
            }
        }
        assert_eq!(
            classify_code(codes::CANTOPEN_ISDIR),
            ErrorClass::TransientIo
        );
        assert_eq!(classify_code(codes::LOCKED_SHAREDCACHE), ErrorClass::Busy);
        assert_eq!(classify_code(codes::CORRUPT_INDEX), ErrorClass::Corrupt);
        assert_eq!(classify_code(19), ErrorClass::Constraint);
        assert_eq!(classify_code(2067), ErrorClass::Constraint);
    }

    #[test]
    fn only_listed_ioerr_codes_are_transient() {
        let transient: Vec<&str> = codes::ALL
            .iter()
            .filter(|&&(code, _)| {
                codes::primary(code) == codes::IOERR
                    && classify_code(code) == ErrorClass::TransientIo
            })
            .map(|&(_, name)| name)
            .collect();
        assert_eq!(
            transient,
            [
                "SQLITE_IOERR_TRUNCATE",
                "SQLITE_IOERR_FSTAT",
                "SQLITE_IOERR_SHMOPEN",
                "SQLITE_IOERR_SHMSIZE",
                "SQLITE_IOERR_SHMMAP",
                "SQLITE_IOERR_IN_PAGE",
            ]
        );
    }

    #[test]
    fn permanent_codes() {
        for code in [
            codes::IOERR,
            codes::IOERR_READ,
            codes::IOERR_CORRUPTFS,
            codes::IOERR_SHMLOCK,
            codes::MISUSE,
            codes::ERROR,
            codes::READONLY,
            codes::OK,
            codes::DONE,
            -1,
        ] {
            assert_eq!(classify_code(code), ErrorClass::Permanent, "code {code}");
        }
        assert_eq!(classify_code(10), ErrorClass::Permanent);
        assert_eq!(classify_code(266), ErrorClass::Permanent);
        assert_eq!(classify_code(21), ErrorClass::Permanent);
        assert_eq!(classify_code(1), ErrorClass::Permanent);
    }

    #[test]
    fn class_labels() {
        let all = [
            (ErrorClass::TransientIo, "transient_io", true),
            (ErrorClass::Busy, "busy", true),
            (ErrorClass::DiskFull, "disk_full", false),
            (ErrorClass::Corrupt, "corrupt", false),
            (ErrorClass::Constraint, "constraint", false),
            (ErrorClass::Permanent, "permanent", false),
        ];
        for (class, label, transient) in all {
            assert_eq!(class.as_str(), label);
            assert_eq!(class.to_string(), label);
            assert_eq!(class.is_transient(), transient, "{label}");
        }
    }

    #[test]
    fn code_found_two_levels_deep() {
        let err = Wrap::new(
            "failed to initialize memory_tree schema",
            Wrap::new("open chunks.db", sqlite_failure(4618, "disk I/O error")),
        );
        assert_eq!(sqlite_code_in_chain(&err), Some(4618));
        assert_eq!(classify_error(&err), ErrorClass::TransientIo);
        assert_eq!(
            classify_chain_code(&err),
            (ErrorClass::TransientIo, Some(4618))
        );
    }

    #[test]
    fn bare_ffi_error_in_chain() {
        let err = Wrap::new("checkpoint", ffi::Error::new(codes::IOERR_SHMMAP));
        assert_eq!(sqlite_code_in_chain(&err), Some(5386));
        assert_eq!(classify_error(&err), ErrorClass::TransientIo);
    }

    #[test]
    fn code_wins_over_text() {
        // Every message says "locked", but the code is FULL.
        let err = Wrap::new(
            "database is locked",
            Wrap::new(
                "database is locked",
                sqlite_failure(codes::FULL, "database is locked"),
            ),
        );
        assert_eq!(classify_error(&err), ErrorClass::DiskFull);
        // A code that classifies as Permanent still beats matching text.
        let err = Wrap::new(
            "disk I/O error",
            sqlite_failure(codes::IOERR_READ, "disk I/O error"),
        );
        assert_eq!(
            classify_chain_code(&err),
            (ErrorClass::Permanent, Some(266))
        );
    }

    #[test]
    fn first_code_in_chain_decides() {
        let busy = Wrap::new(
            "outer",
            Wrap::new("mid", sqlite_failure(codes::BUSY, "busy")),
        );
        assert_eq!(classify_chain_code(&busy), (ErrorClass::Busy, Some(5)));
        let corrupt = Wrap::new("top", Wrap::new("x", ffi::Error::new(codes::CORRUPT_INDEX)));
        assert_eq!(
            classify_chain_code(&corrupt),
            (ErrorClass::Corrupt, Some(779))
        );
        // A text-only link outside the code-carrying one does not matter.
        let err = Wrap::new(
            "database is locked",
            Wrap::new(
                "mid",
                sqlite_failure(codes::NOTADB, "file is not a database"),
            ),
        );
        assert_eq!(classify_chain_code(&err), (ErrorClass::Corrupt, Some(26)));
    }

    #[test]
    fn rusqlite_error_without_code_falls_back_to_text() {
        let err = Wrap::new("database is locked", rusqlite::Error::QueryReturnedNoRows);
        assert_eq!(sqlite_code_in_chain(&err), None);
        assert_eq!(classify_chain_code(&err), (ErrorClass::Busy, None));
        assert_eq!(
            classify_error(&rusqlite::Error::InvalidQuery),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn text_fallback() {
        let cases = [
            ("disk I/O error", ErrorClass::TransientIo),
            ("Unable to open database file", ErrorClass::TransientIo),
            (
                "I/O error within the xShmMap method",
                ErrorClass::TransientIo,
            ),
            ("SQLITE_IOERR_SHMOPEN", ErrorClass::TransientIo),
            ("Error attempting to truncate file", ErrorClass::TransientIo),
            ("database is locked", ErrorClass::Busy),
            ("database table is locked: t", ErrorClass::Busy),
            ("database or disk is full", ErrorClass::DiskFull),
            ("database disk image is malformed", ErrorClass::Corrupt),
            ("file is not a database", ErrorClass::Corrupt),
            ("UNIQUE constraint failed: t.x", ErrorClass::Constraint),
        ];
        for (msg, class) in cases {
            assert_eq!(classify_message(msg), Some(class), "{msg}");
            let err = std::io::Error::other(msg);
            assert_eq!(classify_chain_code(&err), (class, None), "{msg}");
        }
        assert_eq!(classify_message("no such table: t"), None);
        assert_eq!(classify_message(""), None);
    }

    #[test]
    fn text_fallback_walks_links_outermost_first() {
        let err = Wrap::new(
            "init failed",
            Wrap::new(
                "database is locked",
                std::io::Error::other("disk I/O error"),
            ),
        );
        assert_eq!(classify_error(&err), ErrorClass::Busy);
        let err = Wrap::new("init failed", std::io::Error::other("disk I/O error"));
        assert_eq!(classify_error(&err), ErrorClass::TransientIo);
    }

    #[test]
    fn no_code_and_no_match_is_permanent() {
        let err = Wrap::new("init failed", std::io::Error::other("something odd"));
        assert_eq!(classify_chain_code(&err), (ErrorClass::Permanent, None));
        assert_eq!(
            classify_error(&std::io::Error::other("no such table")),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn real_unique_violation_from_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x INTEGER UNIQUE); INSERT INTO t VALUES (1);")
            .expect("schema");
        let err = conn
            .execute("INSERT INTO t VALUES (1)", [])
            .expect_err("duplicate must fail");
        let wrapped = Wrap::new("insert chunk", err);
        assert_eq!(
            classify_chain_code(&wrapped),
            (ErrorClass::Constraint, Some(codes::CONSTRAINT_UNIQUE))
        );
        assert_eq!(sqlite_code_in_chain(&wrapped), Some(2067));
    }

    #[test]
    fn real_sql_input_error_carries_code() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        let err = conn.prepare("SELEC 1").expect_err("syntax error");
        assert!(
            matches!(err, rusqlite::Error::SqlInputError { .. }),
            "{err:?}"
        );
        assert_eq!(sqlite_code_in_chain(&err), Some(codes::ERROR));
        assert_eq!(classify_error(&err), ErrorClass::Permanent);
    }

    #[test]
    fn all_lists_every_class_the_classifier_returns_once() {
        for &(code, name) in codes::ALL {
            assert!(
                ErrorClass::ALL.contains(&classify_code(code)),
                "{name} is classified outside ErrorClass::ALL"
            );
        }
        let labels: std::collections::HashSet<&str> =
            ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(labels.len(), ErrorClass::ALL.len());
    }
}
