//! The notable events the core reports through the `log` facade.
//!
//! Every record carries the database path as the key-value pair `db_path`
//! and, when a SQLite failure caused it, its extended result code as
//! `sqlite_code`; the Python glue turns those into `extra` fields of a
//! `logging` record under the `memtree` logger. Callers emit these only
//! while holding no mutex other than the per-path init lock or a
//! connection mutex (see `python/logging.rs` for why that matters).

use std::path::Path;

use crate::error::codes;

/// A database left in WAL mode by a prior release was moved to TRUNCATE.
pub fn wal_migrated(path: &Path) {
    log::info!(
        target: "memtree::journal",
        db_path:% = path.display();
        "migrated {} from WAL to the TRUNCATE journal (WAL frames checkpointed, -wal and -shm removed)",
        path.display()
    );
}

/// SQLite kept another journal mode than TRUNCATE (another connection).
pub fn journal_switch_refused(path: &Path, mode: &str) {
    log::warn!(
        target: "memtree::journal",
        db_path:% = path.display(), journal_mode = mode;
        "SQLite kept journal_mode={mode} for {} (another connection holds the file); \
         memtree retries on the next open",
        path.display()
    );
}

/// An open failed on a transient I/O error and side-file recovery ran.
pub fn recovery(path: &Path, sqlite_code: Option<i32>, outcome: &str) {
    let code = sqlite_code.unwrap_or(codes::ERROR);
    log::warn!(
        target: "memtree::recovery",
        db_path:% = path.display(), sqlite_code = code;
        "open of {} failed with {} ({code}); side-file recovery: {outcome}",
        path.display(),
        codes::name_or_primary(code)
    );
}

/// A corrupt database was copied aside and rebuilt in place.
pub fn quarantined(path: &Path, sqlite_code: Option<i32>, moved_to: &Path) {
    let code = sqlite_code.unwrap_or(codes::CORRUPT);
    log::error!(
        target: "memtree::recovery",
        db_path:% = path.display(), sqlite_code = code, quarantined:% = moved_to.display();
        "corrupt database {} ({} {code}) copied aside to {} and rebuilt in place",
        path.display(),
        codes::name_or_primary(code),
        moved_to.display()
    );
}

/// The circuit breaker of a path opened (or re-armed) after failed opens.
pub fn circuit_tripped(path: &Path, failures: u32, sqlite_code: Option<i32>) {
    let code = sqlite_code.unwrap_or(codes::CANTOPEN);
    log::warn!(
        target: "memtree::breaker",
        db_path:% = path.display(), sqlite_code = code, failures = failures;
        "circuit opened for {} after {failures} consecutive failed opens (last {} {code})",
        path.display(),
        codes::name_or_primary(code)
    );
}

/// `memtree recover --adopt` merged the rows of a side file (a `-wal` an
/// earlier release moved aside, or a bundle) into the database and removed
/// the file.
pub fn stranded_merged(path: &Path, bundle: &Path, chunks: u64) {
    log::warn!(
        target: "memtree::recovery",
        db_path:% = path.display(), bundle:% = bundle.display();
        "merged stranded rows from {} back into {} ({chunks} chunk rows brought back)",
        bundle.display(),
        path.display()
    );
}

/// A file beside the database may hold rows not in it; it is kept, and
/// merged only by `memtree recover --adopt` (reported on every open).
pub fn stranded_left(path: &Path, stranded: &Path, reason: &str) {
    log::warn!(
        target: "memtree::recovery",
        db_path:% = path.display(), bundle:% = stranded.display();
        "{} may hold committed rows not in {}; kept ({reason})",
        stranded.display(),
        path.display()
    );
}

/// Rows still readable in a quarantined file were copied into the fresh one:
/// `rows` in all, `chunks` of them chunk rows; `incomplete` names the tables
/// whose reading stopped at damage (a salvage report's fields).
pub fn salvaged(path: &Path, quarantined: &Path, rows: u64, chunks: u64, incomplete: &[String]) {
    let complete = if incomplete.is_empty() {
        "every table read to the end".to_owned()
    } else {
        format!("damage stopped reading {}", incomplete.join(", "))
    };
    log::warn!(
        target: "memtree::recovery",
        db_path:% = path.display(), quarantined:% = quarantined.display();
        "salvaged {} rows ({} chunks) from the quarantined {} into {} ({complete}); \
         the copy is kept",
        rows,
        chunks,
        quarantined.display(),
        path.display()
    );
}
