//! The measured commit loop behind `memtree bench`: memtree's own schema and
//! write path under any journal mode / synchronous level, with exact I/O
//! accounting from the VFS shim.
//!
//! The store itself always runs TRUNCATE + FULL, so comparing modes needs a
//! connection of its own: opened through the `memtree` VFS (so every `xSync`
//! and written byte is counted per commit), migrated with
//! [`crate::schema::migrate`], and written with the store's own upsert
//! statement. Rows come from [`bench_chunk`], a deterministic generator that
//! the pure-SQL baseline ([`insert_select`]) reproduces column for column.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use crate::chunks::record::{Chunk, SourceKind, DEFAULT_LIFECYCLE_STATUS};
use crate::chunks::row::CHUNK_COLUMNS;
use crate::db::connection::{self, canonical_db_path};
use crate::db::journal;
use crate::error::{Error, Result};
use crate::vfs::{self, IoStats};

/// Journal modes the benchmark accepts (the rollback modes and WAL).
pub const JOURNAL_MODES: [&str; 4] = ["wal", "truncate", "delete", "persist"];

/// `synchronous` levels the benchmark accepts.
pub const SYNC_LEVELS: [&str; 4] = ["off", "normal", "full", "extra"];

/// `timestamp_ms` of row 0 (2026-01-01T00:00:00Z); row `i` is `i` seconds later.
pub const BASE_TIME_MS: i64 = 1_767_225_600_000;

/// Filler that brings every generated chunk's content to [`CONTENT_BYTES`].
const FILLER: &str = "Alice and Bob compared the rollback journal with the write-ahead log \
     and decided that one cached connection per file never used concurrent readers, \
     so durability per commit matters more than reader concurrency. The notes cover \
     antivirus handles on Windows, sandboxed shared memory on macOS, checkpoint \
     truncation failures, and what synchronous FULL costs on a laptop disk. Action \
     items: measure commit latency per batch size, record sync calls per commit, \
     and publish the table so users can choose a mode. End of meeting notes....";

/// Content length of every generated chunk, in bytes.
pub const CONTENT_BYTES: usize = 500;

/// Length of the `"chunk NNNNNNNN "` prefix before the filler.
const PREFIX_BYTES: usize = 15;

/// The filler as stored (cut so prefix + filler is [`CONTENT_BYTES`]).
fn filler() -> &'static str {
    &FILLER[..CONTENT_BYTES - PREFIX_BYTES]
}

/// Generated chunk number `i`: ~500 bytes of content, three source kinds,
/// 100 chunks per source, 8 owners, two tags, one second apart.
pub fn bench_chunk(i: u64) -> Chunk {
    let t = BASE_TIME_MS + i as i64 * 1000;
    Chunk {
        id: format!("bench-{i:08}"),
        content: format!("chunk {i:08} {}", filler()),
        source_kind: SourceKind::ALL[(i % 3) as usize],
        source_id: format!("source-{:05}", i / 100),
        source_ref: Some(format!("msg-{i}")),
        owner: format!("owner-{}", i % 8),
        timestamp_ms: t,
        time_range_start_ms: t - 60_000,
        time_range_end_ms: t,
        tags: vec!["bench".to_owned(), format!("topic-{}", i % 7)],
        token_count: 125,
        seq_in_source: (i % 100) as i64,
        created_at_ms: t + 500,
        lifecycle_status: DEFAULT_LIFECYCLE_STATUS.to_owned(),
        embedding: None,
        content_path: None,
        content_sha256: None,
    }
}

/// Chunks `start..start + count` of [`bench_chunk`].
pub fn bench_chunks(start: u64, count: usize) -> Vec<Chunk> {
    (start..start + count as u64).map(bench_chunk).collect()
}

/// The value of each chunk column for row number `i`, in
/// [`CHUNK_COLUMNS`] order: [`bench_chunk`] written as SQL. `?3` is the
/// filler, `?4` [`BASE_TIME_MS`]. The array's length is the column count, so
/// a new column does not build until it is generated here too.
const GENERATED_VALUES: [&str; CHUNK_COLUMNS.len()] = [
    "printf('bench-%08d', i)",
    "printf('chunk %08d ', i) || ?3",
    "CASE i % 3 WHEN 0 THEN 'chat' WHEN 1 THEN 'email' ELSE 'document' END",
    "printf('source-%05d', i / 100)",
    "'msg-' || i",
    "'owner-' || (i % 8)",
    "?4 + i * 1000",
    "?4 + i * 1000 - 60000",
    "?4 + i * 1000",
    "'[\"bench\",\"topic-' || (i % 7) || '\"]'",
    "125",
    "i % 100",
    "?4 + i * 1000 + 500",
    "'admitted'",
    "NULL",
    "NULL",
    "NULL",
];

/// The same rows as [`bench_chunks`], produced by SQLite alone. `?1` is the
/// first row number, `?2` the count, `?3` the filler, `?4` [`BASE_TIME_MS`].
static INSERT_SELECT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE n(i) AS ( \
           SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1 + ?2) \
         INSERT INTO mem_tree_chunks ({}) SELECT {} FROM n",
        CHUNK_COLUMNS.join(", "),
        GENERATED_VALUES.join(", ")
    )
});

/// One timed commit: wall time and the I/O it caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitSample {
    /// From `BEGIN IMMEDIATE` to the end of `COMMIT`.
    pub elapsed: Duration,
    /// VFS counters accumulated during the commit.
    pub io: IoStats,
}

/// What [`run_commits`] measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRun {
    /// The journal mode SQLite reported after the switch.
    pub journal_mode: String,
    /// One sample per timed commit, in order.
    pub samples: Vec<CommitSample>,
}

fn check_choice(field: &str, value: &str, allowed: &[&str]) -> Result<String> {
    let lower = value.to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(Error::invalid(
            field,
            format!("{value:?} is not one of {}", allowed.join(", ")),
        ))
    }
}

/// A benchmark connection on `path` (created if missing) through the
/// `memtree` VFS, with memtree's connection pragmas, the given journal mode
/// and synchronous level, and memtree's schema. Returns the canonical path
/// (the VFS accounting key) with it.
pub fn open_bench_connection(
    path: &Path,
    journal_mode: &str,
    synchronous: &str,
) -> Result<(Connection, PathBuf, String)> {
    let journal = check_choice("journal_mode", journal_mode, &JOURNAL_MODES)?;
    let sync = check_choice("synchronous", synchronous, &SYNC_LEVELS)?;
    let path = canonical_db_path(path)?;
    let err = |ctx: &'static str| {
        let path = path.clone();
        move |e| crate::vfs::sqlite_or_refused(ctx, &path, e)
    };
    let mut conn = connection::open_through_vfs(&path)?;
    journal::apply_connection_pragmas(&conn, &path)?;
    let reported: String = conn
        .query_row(&format!("PRAGMA journal_mode = {journal}"), [], |r| {
            r.get(0)
        })
        .map_err(err("bench: journal mode"))?;
    let reported = reported.to_ascii_lowercase();
    if reported != journal {
        return Err(Error::invalid(
            "journal_mode",
            format!("SQLite kept {reported} instead of {journal}"),
        ));
    }
    conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
        .map_err(err("bench: synchronous"))?;
    crate::schema::migrate_schema(&mut conn, &path)?;
    Ok((conn, path, reported))
}

fn commit_batch(conn: &mut Connection, chunks: &[Chunk]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    crate::chunks::ops::upsert_in(&tx, chunks)?;
    tx.commit()
}

/// Runs `warmup` untimed commits, then `commits` timed ones, each writing
/// `batch` new generated chunks with memtree's upsert in one `BEGIN
/// IMMEDIATE` transaction. Rows are generated before each clock starts.
pub fn run_commits(
    path: &Path,
    journal_mode: &str,
    synchronous: &str,
    batch: usize,
    commits: usize,
    warmup: usize,
) -> Result<CommitRun> {
    if batch == 0 {
        return Err(Error::invalid("batch", "must be >= 1"));
    }
    let (mut conn, key, journal_mode) = open_bench_connection(path, journal_mode, synchronous)?;
    let mut next = 0u64;
    let mut samples = Vec::with_capacity(commits);
    for round in 0..warmup + commits {
        let chunks = bench_chunks(next, batch);
        next += batch as u64;
        // Outside the clock: the counters then hold this commit's I/O alone.
        vfs::reset_io_stats(&key);
        let started = Instant::now();
        commit_batch(&mut conn, &chunks)
            .map_err(|e| crate::vfs::sqlite_or_refused("bench: commit", &key, e))?;
        let elapsed = started.elapsed();
        if round >= warmup {
            let io = vfs::io_stats(&key);
            samples.push(CommitSample { elapsed, io });
        }
    }
    Ok(CommitRun {
        journal_mode,
        samples,
    })
}

/// The pure-SQL baseline: inserts chunks `start..start + count` (identical to
/// [`bench_chunks`]) with one `INSERT … SELECT` in one transaction on a
/// connection configured exactly like the store's (TRUNCATE + FULL), and
/// returns the time from `BEGIN IMMEDIATE` to the end of `COMMIT`.
pub fn insert_select(path: &Path, start: u64, count: usize) -> Result<Duration> {
    let (mut conn, key, _) = open_bench_connection(path, "truncate", "full")?;
    let run = |conn: &mut Connection| -> rusqlite::Result<Duration> {
        let started = Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            INSERT_SELECT_SQL.as_str(),
            rusqlite::params![start as i64, count as i64, filler(), BASE_TIME_MS],
        )?;
        tx.commit()?;
        Ok(started.elapsed())
    };
    run(&mut conn).map_err(|e| crate::vfs::sqlite_or_refused("bench: insert … select", &key, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "memtree-bench-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir.canonicalize().unwrap())
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    type Row = Vec<rusqlite::types::Value>;

    fn all_rows(path: &Path) -> Vec<Row> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare(&format!("{} ORDER BY id", *crate::chunks::row::SELECT_SQL))
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                (0..CHUNK_COLUMNS.len())
                    .map(|i| r.get(i))
                    .collect::<rusqlite::Result<Row>>()
            })
            .unwrap();
        rows.collect::<rusqlite::Result<Vec<Row>>>().unwrap()
    }

    #[test]
    fn generated_chunks_are_valid_and_500_bytes() -> Result<()> {
        for i in [0, 1, 99, 12_345_678] {
            let c = bench_chunk(i);
            c.validate("")?;
            assert_eq!(c.content.len(), CONTENT_BYTES);
        }
        Ok(())
    }

    #[test]
    fn sql_baseline_writes_the_same_rows_as_the_upsert_path() -> Result<()> {
        let dir = TempDir::new("same-rows");
        let (a, b) = (dir.0.join("a.db"), dir.0.join("b.db"));
        insert_select(&a, 95, 20)?;
        let run = run_commits(&b, "truncate", "full", 10, 1, 1)?;
        assert_eq!(run.samples.len(), 1);
        // b holds rows 0..20; a holds 95..115: compare a's rows to fresh upserts.
        let (mut conn, ..) = open_bench_connection(&dir.0.join("c.db"), "truncate", "off")?;
        commit_batch(&mut conn, &bench_chunks(95, 20)).unwrap();
        drop(conn);
        assert_eq!(all_rows(&a), all_rows(&dir.0.join("c.db")));
        assert_eq!(all_rows(&b).len(), 20);
        Ok(())
    }

    #[test]
    fn upsert_matches_sql_and_keeps_the_last_duplicate() -> Result<()> {
        let dir = TempDir::new("dupes");
        let (a, b) = (dir.0.join("a.db"), dir.0.join("b.db"));
        insert_select(&a, 0, 150)?;
        let (mut conn, ..) = open_bench_connection(&b, "truncate", "off")?;
        commit_batch(&mut conn, &bench_chunks(0, 150)).unwrap();
        assert_eq!(all_rows(&a), all_rows(&b));
        // Existing ids and an id repeated inside one batch take the conflict
        // path: the later row wins and nothing else changes.
        let mut batch = bench_chunks(0, 64);
        batch[10].content = "first".into();
        batch[40] = Chunk {
            content: "second".into(),
            ..batch[10].clone()
        };
        commit_batch(&mut conn, &batch).unwrap();
        let (content, count): (String, i64) = conn
            .query_row(
                "SELECT (SELECT content FROM mem_tree_chunks WHERE id = 'bench-00000010'), \
                 (SELECT count(*) FROM mem_tree_chunks)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((content.as_str(), count), ("second", 150));
        // New ids first, then one of them again: the switch to the upsert
        // happens mid-batch and the earlier inserts stay, on the cached
        // statement (10 + 1 rows) and on the batch statement.
        let mut total = 150;
        for new_rows in [10, crate::chunks::ops::BATCH_STATEMENT_MIN_ROWS] {
            let mut batch = bench_chunks(total as u64, new_rows);
            batch.push(Chunk {
                content: "again".into(),
                ..batch[5].clone()
            });
            commit_batch(&mut conn, &batch).unwrap();
            total += new_rows as i64;
            let (content, count): (String, i64) = conn
                .query_row(
                    "SELECT (SELECT content FROM mem_tree_chunks WHERE id = ?1), \
                     (SELECT count(*) FROM mem_tree_chunks)",
                    [&batch[5].id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((content.as_str(), count), ("again", total));
        }
        Ok(())
    }

    #[test]
    fn sync_counts_per_commit_match_the_design() -> Result<()> {
        let dir = TempDir::new("syncs");
        // (journal, sync, journal xSync, db xSync, wal xSync, xTruncate, xDelete)
        let cases: [(&str, &str, u64, u64, u64, u64, u64); 7] = [
            ("truncate", "full", 3, 1, 0, 1, 0),
            // PERSIST zeroes the journal header (a write, then its sync)
            // where TRUNCATE truncates: the same syncs, no xTruncate.
            ("persist", "full", 3, 1, 0, 0, 0),
            // NORMAL drops the sync before the commit record, but SQLite
            // syncs a zeroed header whatever the level (it syncs a truncated
            // journal only under FULL): one more than TRUNCATE+NORMAL.
            ("persist", "normal", 2, 1, 0, 0, 0),
            ("truncate", "normal", 1, 1, 0, 1, 0),
            ("delete", "full", 2, 1, 0, 0, 1),
            ("wal", "full", 0, 0, 1, 0, 0),
            ("wal", "normal", 0, 0, 0, 0, 0),
        ];
        for (journal, sync, journal_syncs, db_syncs, wal_syncs, truncates, deletes) in cases {
            let path = dir.0.join(format!("{journal}-{sync}.db"));
            let run = run_commits(&path, journal, sync, 1, 3, 1)?;
            assert_eq!(run.journal_mode, journal);
            for s in &run.samples {
                let io = s.io;
                assert_eq!(
                    (io.syncs_journal, io.syncs_db, io.syncs_wal),
                    (journal_syncs, db_syncs, wal_syncs),
                    "{journal}+{sync}: {io:?}"
                );
                assert_eq!(
                    (io.truncates, io.deletes),
                    (truncates, deletes),
                    "{journal}+{sync}: {io:?}"
                );
                // Every rollback mode reopens its journal with O_CREAT per
                // transaction, so its first sync carries a directory fsync.
                let dir_syncs = u64::from(cfg!(unix) && journal != "wal");
                assert_eq!(io.syncs_dir, dir_syncs, "{journal}+{sync}: {io:?}");
                assert!(io.bytes_written > 0);
            }
        }
        Ok(())
    }

    #[test]
    fn bad_mode_is_invalid_input() {
        let dir = TempDir::new("bad");
        let err = run_commits(&dir.0.join("x.db"), "wall", "full", 1, 1, 0).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
}
