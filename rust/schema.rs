//! DDL and versioned migrations, on the reference application's layout.
//!
//! The reference never set `PRAGMA user_version` (its later releases use 1 and
//! 2 for their own steps), so memtree numbers its versions from 101: anything
//! below that is "reference era" and is brought forward by [`migrate`]. Each
//! step and its `user_version` bump commit in one `BEGIN IMMEDIATE`
//! transaction, and the version is re-read inside it, so two processes racing
//! on a cold file apply a step once.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// First `user_version` memtree writes; lower values are the reference's.
pub const FIRST_MEMTREE_VERSION: i64 = 101;
/// The version a fully migrated database carries.
pub const CURRENT_VERSION: i64 = FIRST_MEMTREE_VERSION + MIGRATIONS.len() as i64 - 1;

/// One schema step: runs inside the caller's transaction.
struct Migration {
    /// The `user_version` the database carries after this step.
    version: i64,
    apply: fn(&Connection) -> rusqlite::Result<()>,
}

const MIGRATIONS: &[Migration] = &[
    // Reference layout: tables, indexes and later-added columns.
    Migration {
        version: FIRST_MEMTREE_VERSION,
        apply: apply_reference_layout,
    },
    // memtree query indexes: every list filter ordered by time.
    Migration {
        version: FIRST_MEMTREE_VERSION + 1,
        apply: apply_query_indexes,
    },
    // Job lease tokens: mem_tree_jobs.lease_token.
    Migration {
        version: FIRST_MEMTREE_VERSION + 2,
        apply: apply_job_lease_token,
    },
    // list_chunks in reading order, every equality filter served by an index.
    Migration {
        version: FIRST_MEMTREE_VERSION + 3,
        apply: apply_list_order_indexes,
    },
    // Claim indexes: a prioritised claim reads each kind's ready rows, and
    // the rest, in FIFO order without sorting (rust/jobs/).
    Migration {
        version: FIRST_MEMTREE_VERSION + 4,
        apply: apply_job_claim_indexes,
    },
    // One queue index holding only the rows a claim or a recovery reads,
    // so an enqueue writes one index page and a settle one (rust/jobs/).
    Migration {
        version: FIRST_MEMTREE_VERSION + 5,
        apply: apply_job_partial_indexes,
    },
    // Full-text index of chunk and summary content, kept by triggers.
    Migration {
        version: FIRST_MEMTREE_VERSION + 6,
        apply: apply_text_index,
    },
    // list_chunks in a total order (id last), so a cursor pages exactly.
    Migration {
        version: FIRST_MEMTREE_VERSION + 7,
        apply: apply_total_list_order_indexes,
    },
    // A version per searched table, bumped by triggers on every write that
    // can change its embedded rows: the vector cache's key (rust/search/).
    Migration {
        version: VECTOR_VERSIONS_STEP,
        apply: apply_vector_versions,
    },
    // Owner erasure: the log of content files to remove, and the indexes
    // that tell whether a remaining row still names a file (rust/ops/erase.rs).
    Migration {
        version: FIRST_MEMTREE_VERSION + 9,
        apply: apply_erasure_log,
    },
];

/// The step that adds the vector versions (named, so tests need no number).
const VECTOR_VERSIONS_STEP: i64 = FIRST_MEMTREE_VERSION + 8;

/// The table of vector versions: one row per table the vector search
/// copies into memory, its `version` bumped by [`vector_version_triggers`].
pub const VECTOR_VERSIONS_TABLE: &str = "memtree_vector_versions";

/// Each table the vector search reads, the id of its row in
/// [`VECTOR_VERSIONS_TABLE`], and the extra columns its copy in memory
/// depends on (beyond rowid, id and embedding): a summary is searched only
/// while `deleted = 0`.
pub const VECTOR_VERSIONED_TABLES: [(&str, i64, &[&str]); 2] = [
    ("mem_tree_chunks", 1, &[]),
    ("mem_tree_summaries", 2, &["deleted"]),
];

/// `(name, sql)` of every trigger that keeps [`VECTOR_VERSIONS_TABLE`] in
/// step, the `sql` exactly as `sqlite_master` stores it (the vector cache
/// compares the two before trusting the versions; see
/// `search::cache::versions_are_kept`).
///
/// Per table, three triggers, each one `UPDATE … SET version = version + 1`
/// by rowid (a write to one page, dirty after the first row of a
/// transaction):
/// - every INSERT: an `INSERT OR REPLACE` (a foreign writer's) deletes the
///   row it replaces without firing a delete trigger, so an insert without
///   an embedding can still have removed one;
/// - an UPDATE that changes the rowid, the id, the embedding or a column of
///   the copy's WHERE (`deleted`): a plain `AFTER UPDATE` with a `WHEN`,
///   since `UPDATE OF` cannot name the rowid. Re-ingest (the upsert's `DO
///   UPDATE`), lifecycle and filter-column writes leave the copy as it is:
///   a search reads its filter's rowids from the table, never from the copy;
/// - a DELETE of a row that had an embedding.
pub fn vector_version_triggers() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (table, row, extra) in VECTOR_VERSIONED_TABLES {
        let short = table.trim_start_matches("mem_tree_");
        let bump = format!(
            "BEGIN\n    UPDATE {VECTOR_VERSIONS_TABLE} SET version = version + 1 WHERE id = {row};\nEND"
        );
        let changed: Vec<String> = ["rowid", "id", "embedding"]
            .iter()
            .chain(extra.iter())
            .map(|c| format!("old.{c} IS NOT new.{c}"))
            .collect();
        let name = |event: &str| format!("memtree_vectors_{short}_{event}");
        out.push((
            name("insert"),
            format!(
                "CREATE TRIGGER {} AFTER INSERT ON {table}\n{bump}",
                name("insert")
            ),
        ));
        out.push((
            name("update"),
            format!(
                "CREATE TRIGGER {} AFTER UPDATE ON {table}\nWHEN {}\n{bump}",
                name("update"),
                changed.join(" OR ")
            ),
        ));
        out.push((
            name("delete"),
            format!(
                "CREATE TRIGGER {} AFTER DELETE ON {table}\nWHEN old.embedding IS NOT NULL\n{bump}",
                name("delete")
            ),
        ));
    }
    out
}

/// The vector versions (see [`vector_version_triggers`]). Versions start
/// at 0; the cache pairs a version with the schema cookie, which a restore
/// (the backup API writes the destination's cookie plus one), a VACUUM (the
/// cookie plus one; it may renumber rowids) and any DDL move, so a file whose contents
/// were replaced is never taken for the one cached even where its versions
/// are equal. Triggers are dropped and created (not `IF NOT EXISTS`), so
/// their stored text is exactly this build's. Like every step, one
/// transaction: an interrupted step leaves the previous version and no
/// trigger, and the next open does it again.
fn apply_vector_versions(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {VECTOR_VERSIONS_TABLE} (
             id INTEGER PRIMARY KEY,
             table_name TEXT NOT NULL,
             version INTEGER NOT NULL
         );"
    ))?;
    for (table, row, _) in VECTOR_VERSIONED_TABLES {
        conn.execute(
            &format!(
                "INSERT OR IGNORE INTO {VECTOR_VERSIONS_TABLE} (id, table_name, version) \
                 VALUES (?1, ?2, 0)"
            ),
            (row, table),
        )?;
    }
    for (name, sql) in vector_version_triggers() {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {name}; {sql};"))?;
    }
    Ok(())
}

/// `erase_owner` deletes rows first and content files after: in the
/// deleting transaction each file to remove is logged here (the content
/// root chosen by the caller, the row's relative path, its sha256), and a
/// row goes once its file is handled, so a crash in between leaves the
/// list for the next open's sweep. The sweep reads the first row only when
/// the log is empty. The partial indexes on `content_path` answer "does a
/// remaining chunk or summary still name this file?" per file; rows without
/// a pointer (`NULL`) are in neither, so they cost no write.
fn apply_erasure_log(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS memtree_erasure_log (
             id INTEGER PRIMARY KEY,
             content_root TEXT NOT NULL,
             content_path TEXT NOT NULL,
             content_sha256 TEXT NOT NULL,
             logged_at_ms INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS idx_memtree_erasure_log_root
             ON memtree_erasure_log(content_root);
         CREATE INDEX IF NOT EXISTS idx_memtree_chunks_content_path
             ON mem_tree_chunks(content_path) WHERE content_path IS NOT NULL;
         CREATE INDEX IF NOT EXISTS idx_memtree_summaries_content_path
             ON mem_tree_summaries(content_path) WHERE content_path IS NOT NULL;",
    )
}

/// `list_chunks` orders `timestamp_ms DESC, seq_in_source ASC, id ASC`: a
/// total order (chunks can share a timestamp and a sequence number), so
/// `list_chunks(after=…)` and `iter_chunks` page by a cursor without
/// skipping or repeating a row. Each list index of version 104 gains
/// `id DESC` and keeps its name: walked backwards it yields exactly that
/// order, so a list stays an index search without a temporary sort.
fn apply_total_list_order_indexes(conn: &Connection) -> rusqlite::Result<()> {
    for (name, keys) in [
        ("idx_memtree_chunks_time_seq", ""),
        ("idx_memtree_chunks_kind_time_seq", "source_kind, "),
        ("idx_memtree_chunks_source_id_time_seq", "source_id, "),
        ("idx_memtree_chunks_owner_time_seq", "owner, "),
        (
            "idx_memtree_chunks_kind_owner_time_seq",
            "source_kind, owner, ",
        ),
    ] {
        conn.execute_batch(&format!(
            "DROP INDEX IF EXISTS {name};
             CREATE INDEX {name}
                 ON mem_tree_chunks({keys}timestamp_ms, seq_in_source DESC, id DESC);"
        ))?;
    }
    Ok(())
}

/// The full-text index (`search_text`): one external-content FTS5 table per
/// table searched, holding only the index (the text stays in its row),
/// keyed on the row's rowid, tokenised `unicode61 remove_diacritics 2`.
///
/// Triggers keep it in step inside the writing statement's own transaction,
/// so every write path is covered at once, whoever runs it: memtree's
/// per-row and one-statement upserts (the `DO UPDATE` half fires the update
/// trigger), deletes and cascades, salvage and merge, and rows written later
/// by OpenHuman's own SQL through any SQLite with FTS5. The update trigger
/// fires only when `content` is set and changed (`UPDATE OF content` …
/// `WHEN`), so embedding, lifecycle and re-ingest-unchanged writes cost the
/// index nothing. The bundled SQLite's FTS5 tags itself innocuous, so the
/// triggers also run under `PRAGMA trusted_schema=OFF` (an SQLite 3.40
/// writer refuses them there: "unsafe use of virtual table").
///
/// `rebuild` indexes the rows already there, in this step's transaction: an
/// interrupted build leaves the previous version and no index, and the next
/// open does it again. Known limit: a foreign writer's `INSERT OR REPLACE`
/// that replaces a row deletes it without firing the delete trigger (SQLite
/// fires it only under `PRAGMA recursive_triggers`), leaving a stale entry;
/// neither memtree nor OpenHuman writes chunks or summaries that way.
fn apply_text_index(conn: &Connection) -> rusqlite::Result<()> {
    for (table, fts) in TEXT_INDEXED_TABLES {
        conn.execute_batch(&format!(
            "CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(
                 content, content='{table}', content_rowid='rowid',
                 tokenize='unicode61 remove_diacritics 2');
             CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT ON {table} BEGIN
                 INSERT INTO {fts}(rowid, content) VALUES (new.rowid, new.content);
             END;
             CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE ON {table} BEGIN
                 INSERT INTO {fts}({fts}, rowid, content)
                     VALUES ('delete', old.rowid, old.content);
             END;
             CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE OF content ON {table}
             WHEN old.content IS NOT new.content BEGIN
                 INSERT INTO {fts}({fts}, rowid, content)
                     VALUES ('delete', old.rowid, old.content);
                 INSERT INTO {fts}(rowid, content) VALUES (new.rowid, new.content);
             END;
             INSERT INTO {fts}({fts}) VALUES ('rebuild');"
        ))?;
    }
    Ok(())
}

/// Each table `search_text` reads and its FTS5 index.
pub const TEXT_INDEXED_TABLES: [(&str, &str); 2] = [
    ("mem_tree_chunks", "memtree_chunks_fts"),
    ("mem_tree_summaries", "memtree_summaries_fts"),
];

/// The queue's one index: `(status, kind, available_at_ms, created_at_ms)`
/// over the active rows only (`WHERE status IN ('ready', 'running')`),
/// rowid, the last FIFO key, included. It serves a claim of given kinds
/// (one SEARCH per kind, in claim order), a claim of any kind (a skip-scan
/// finds the kinds with ready jobs, then one SEARCH each) and the lease
/// recovery (`status = 'running'`). SQLite uses a partial index only for a
/// query that repeats its WHERE term, so those queries say `status IN
/// ('ready', 'running') AND status = …` (rust/jobs/).
///
/// Pages are what a durable commit pays for (each is journalled and
/// written, ~0.5 ms a page on the development disk). An index on `status`
/// moves its entry on every transition (ready → running → done), and in a
/// table full of finished jobs two states' regions sit on different
/// leaves; every extra index is one more page per enqueue. With one
/// partial index a finished row is in no index: an enqueue writes 4 pages
/// (page 1, the row, the id index, this index; was 7), a settle 3 (was 5
/// to 8), a settle that claims the next job 3 while the queue is short.
/// The step-105 indexes and the reference's `(status, available_at_ms)`
/// and `(kind)` job indexes are dropped: no memtree query uses them once
/// this exists, and each cost pages on every write. A reference binary
/// reopening the file recreates its two (`IF NOT EXISTS`), which costs
/// writes and changes no result. The reference's partial unique dedupe
/// index stays.
fn apply_job_partial_indexes(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS idx_memtree_jobs_active \
             ON mem_tree_jobs(status, kind, available_at_ms, created_at_ms) \
             WHERE status IN ('ready', 'running'); \
         DROP INDEX IF EXISTS idx_mem_tree_jobs_claim; \
         DROP INDEX IF EXISTS idx_mem_tree_jobs_fifo; \
         DROP INDEX IF EXISTS idx_mem_tree_jobs_ready; \
         DROP INDEX IF EXISTS idx_mem_tree_jobs_kind;",
    )
}

/// The claim's indexes: per kind `(status, kind, available_at_ms,
/// created_at_ms)` and across kinds `(status, available_at_ms,
/// created_at_ms)`; rowid, the last FIFO key, is in every index.
fn apply_job_claim_indexes(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS idx_mem_tree_jobs_claim \
             ON mem_tree_jobs(status, kind, available_at_ms, created_at_ms); \
         CREATE INDEX IF NOT EXISTS idx_mem_tree_jobs_fifo \
             ON mem_tree_jobs(status, available_at_ms, created_at_ms);",
    )
}

/// The reference's base tables and indexes, as its `chunks.db` has them.
/// `IF NOT EXISTS` everywhere: a database the reference wrote already has them.
const REFERENCE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS mem_tree_chunks (
    id TEXT PRIMARY KEY,
    source_kind TEXT NOT NULL,
    source_id TEXT NOT NULL,
    source_ref TEXT,
    owner TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    time_range_start_ms INTEGER NOT NULL,
    time_range_end_ms INTEGER NOT NULL,
    tags_json TEXT NOT NULL DEFAULT '[]',
    content TEXT NOT NULL,
    token_count INTEGER NOT NULL,
    seq_in_source INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_mem_tree_chunks_timestamp ON mem_tree_chunks(timestamp_ms);
CREATE INDEX IF NOT EXISTS idx_mem_tree_chunks_source_seq
    ON mem_tree_chunks(source_kind, source_id, seq_in_source);

CREATE TABLE IF NOT EXISTS mem_tree_score (
    chunk_id TEXT PRIMARY KEY,
    total REAL NOT NULL,
    token_count_signal REAL NOT NULL,
    unique_words_signal REAL NOT NULL,
    metadata_weight REAL NOT NULL,
    source_weight REAL NOT NULL,
    interaction_weight REAL NOT NULL,
    entity_density REAL NOT NULL,
    dropped INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    computed_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_mem_tree_score_total ON mem_tree_score(total);
CREATE INDEX IF NOT EXISTS idx_mem_tree_score_dropped ON mem_tree_score(dropped);

CREATE TABLE IF NOT EXISTS mem_tree_entity_index (
    entity_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    node_kind TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    surface TEXT NOT NULL,
    score REAL NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    tree_id TEXT,
    is_user INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity_id, node_id)
);
CREATE INDEX IF NOT EXISTS idx_mem_tree_entity_index_entity ON mem_tree_entity_index(entity_id);
CREATE INDEX IF NOT EXISTS idx_mem_tree_entity_index_node ON mem_tree_entity_index(node_id);
CREATE INDEX IF NOT EXISTS idx_mem_tree_entity_index_timestamp
    ON mem_tree_entity_index(timestamp_ms);

CREATE TABLE IF NOT EXISTS mem_tree_trees (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    root_id TEXT,
    max_level INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active',
    created_at_ms INTEGER NOT NULL,
    last_sealed_at_ms INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_mem_tree_trees_kind_scope ON mem_tree_trees(kind, scope);
CREATE INDEX IF NOT EXISTS idx_mem_tree_trees_status ON mem_tree_trees(status);

CREATE TABLE IF NOT EXISTS mem_tree_summaries (
    id TEXT PRIMARY KEY,
    tree_id TEXT NOT NULL,
    tree_kind TEXT NOT NULL,
    level INTEGER NOT NULL,
    parent_id TEXT,
    child_ids_json TEXT NOT NULL DEFAULT '[]',
    content TEXT NOT NULL,
    token_count INTEGER NOT NULL,
    entities_json TEXT NOT NULL DEFAULT '[]',
    topics_json TEXT NOT NULL DEFAULT '[]',
    time_range_start_ms INTEGER NOT NULL,
    time_range_end_ms INTEGER NOT NULL,
    score REAL NOT NULL DEFAULT 0.0,
    sealed_at_ms INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (tree_id) REFERENCES mem_tree_trees(id)
);
CREATE INDEX IF NOT EXISTS idx_mem_tree_summaries_tree_level ON mem_tree_summaries(tree_id, level);
CREATE INDEX IF NOT EXISTS idx_mem_tree_summaries_parent ON mem_tree_summaries(parent_id);
CREATE INDEX IF NOT EXISTS idx_mem_tree_summaries_sealed_at ON mem_tree_summaries(sealed_at_ms);
CREATE INDEX IF NOT EXISTS idx_mem_tree_summaries_deleted ON mem_tree_summaries(deleted);

CREATE TABLE IF NOT EXISTS mem_tree_buffers (
    tree_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    item_ids_json TEXT NOT NULL DEFAULT '[]',
    token_sum INTEGER NOT NULL DEFAULT 0,
    oldest_at_ms INTEGER,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tree_id, level),
    FOREIGN KEY (tree_id) REFERENCES mem_tree_trees(id)
);
CREATE INDEX IF NOT EXISTS idx_mem_tree_buffers_oldest ON mem_tree_buffers(oldest_at_ms);

CREATE TABLE IF NOT EXISTS mem_tree_entity_hotness (
    entity_id TEXT PRIMARY KEY,
    mention_count_30d INTEGER NOT NULL DEFAULT 0,
    distinct_sources INTEGER NOT NULL DEFAULT 0,
    last_seen_ms INTEGER,
    query_hits_30d INTEGER NOT NULL DEFAULT 0,
    graph_centrality REAL,
    ingests_since_check INTEGER NOT NULL DEFAULT 0,
    last_hotness REAL,
    last_updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_mem_tree_entity_hotness_score
    ON mem_tree_entity_hotness(last_hotness);

CREATE TABLE IF NOT EXISTS mem_tree_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    dedupe_key TEXT,
    status TEXT NOT NULL DEFAULT 'ready',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    available_at_ms INTEGER NOT NULL,
    locked_until_ms INTEGER,
    last_error TEXT,
    created_at_ms INTEGER NOT NULL,
    started_at_ms INTEGER,
    completed_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS idx_mem_tree_jobs_ready ON mem_tree_jobs(status, available_at_ms);
CREATE INDEX IF NOT EXISTS idx_mem_tree_jobs_kind ON mem_tree_jobs(kind);
CREATE UNIQUE INDEX IF NOT EXISTS idx_mem_tree_jobs_dedupe_active
    ON mem_tree_jobs(dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('ready', 'running');

CREATE TABLE IF NOT EXISTS mem_tree_ingested_sources (
    source_kind TEXT NOT NULL,
    source_id TEXT NOT NULL,
    ingested_at_ms INTEGER NOT NULL,
    PRIMARY KEY (source_kind, source_id)
);
";

/// Columns the reference added over time with `ALTER TABLE … ADD COLUMN`, in
/// its order, so a fresh file has the reference's column order.
const REFERENCE_ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("mem_tree_chunks", "embedding", "BLOB"),
    ("mem_tree_score", "llm_importance", "REAL"),
    ("mem_tree_score", "llm_importance_reason", "TEXT"),
    ("mem_tree_chunks", "parent_summary_id", "TEXT"),
    ("mem_tree_summaries", "embedding", "BLOB"),
    (
        "mem_tree_chunks",
        "lifecycle_status",
        "TEXT NOT NULL DEFAULT 'admitted'",
    ),
    ("mem_tree_chunks", "content_path", "TEXT"),
    ("mem_tree_chunks", "content_sha256", "TEXT"),
    ("mem_tree_summaries", "content_path", "TEXT"),
    ("mem_tree_summaries", "content_sha256", "TEXT"),
    ("mem_tree_chunks", "raw_refs_json", "TEXT"),
    (
        "mem_tree_entity_index",
        "is_user",
        "INTEGER NOT NULL DEFAULT 0",
    ),
];

fn apply_reference_layout(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(REFERENCE_TABLES)?;
    for (table, column, decl) in REFERENCE_ADDED_COLUMNS {
        // Asked of the catalogue rather than inferred from a "duplicate column"
        // message, which is text and can change between SQLite releases.
        if !has_column(conn, table, column)? {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS idx_mem_tree_chunks_lifecycle
             ON mem_tree_chunks(lifecycle_status);",
    )
}

/// Indexes that let every `list_chunks` filter walk rows newest-first without
/// a temporary sort. The reference's `(owner)` and `(source_kind, source_id)`
/// indexes are prefixes of these and only cost writes, so they are dropped (a
/// reference binary reopening the file recreates them harmlessly).
fn apply_query_indexes(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS idx_memtree_chunks_kind_time
             ON mem_tree_chunks(source_kind, timestamp_ms);
         CREATE INDEX IF NOT EXISTS idx_memtree_chunks_source_time
             ON mem_tree_chunks(source_kind, source_id, timestamp_ms);
         CREATE INDEX IF NOT EXISTS idx_memtree_chunks_owner_time
             ON mem_tree_chunks(owner, timestamp_ms);
         DROP INDEX IF EXISTS idx_mem_tree_chunks_owner;
         DROP INDEX IF EXISTS idx_mem_tree_chunks_source;",
    )
}

/// The job queue's lease token (see `jobs.rs`): a settle must present the
/// token of the current claim, so a worker whose lease was lost changes
/// nothing. The reference's readers ignore the extra column.
fn apply_job_lease_token(conn: &Connection) -> rusqlite::Result<()> {
    if !has_column(conn, "mem_tree_jobs", "lease_token")? {
        conn.execute_batch("ALTER TABLE mem_tree_jobs ADD COLUMN lease_token TEXT")?;
    }
    Ok(())
}

/// `list_chunks` orders `timestamp_ms DESC, seq_in_source ASC`. An index
/// declared `(…, timestamp_ms, seq_in_source DESC)` and walked backwards
/// yields exactly that order, so no temporary sort is needed; the `(key,
/// timestamp_ms)` indexes of version 102 cannot order the ties and are
/// replaced, as is the reference's `(timestamp_ms)` index, a prefix of the
/// new one (a reference binary reopening the file recreates it harmlessly).
///
/// One index per equality filter set whose residual filtering could walk
/// many rows: none, `source_kind`, `owner`, `source_kind + owner`, and
/// `source_id`. A source id pins a handful of rows, so every set holding
/// one walks the `source_id` index and checks kind and owner per row
/// (`list_query` keeps them off the other indexes) instead of paying three
/// more indexes on every insert; the reference's `(source_kind, source_id,
/// seq_in_source)` index stays for its own reads and `delete_source`.
fn apply_list_order_indexes(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS idx_memtree_chunks_time_seq
             ON mem_tree_chunks(timestamp_ms, seq_in_source DESC);
         CREATE INDEX IF NOT EXISTS idx_memtree_chunks_kind_time_seq
             ON mem_tree_chunks(source_kind, timestamp_ms, seq_in_source DESC);
         CREATE INDEX IF NOT EXISTS idx_memtree_chunks_source_id_time_seq
             ON mem_tree_chunks(source_id, timestamp_ms, seq_in_source DESC);
         CREATE INDEX IF NOT EXISTS idx_memtree_chunks_owner_time_seq
             ON mem_tree_chunks(owner, timestamp_ms, seq_in_source DESC);
         CREATE INDEX IF NOT EXISTS idx_memtree_chunks_kind_owner_time_seq
             ON mem_tree_chunks(source_kind, owner, timestamp_ms, seq_in_source DESC);
         DROP INDEX IF EXISTS idx_memtree_chunks_kind_time;
         DROP INDEX IF EXISTS idx_memtree_chunks_source_time;
         DROP INDEX IF EXISTS idx_memtree_chunks_owner_time;
         DROP INDEX IF EXISTS idx_mem_tree_chunks_timestamp;",
    )
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?;
    stmt.exists((table, column))
}

/// The database's `user_version`.
pub fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// What [`migrate`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationReport {
    /// `user_version` before.
    pub from_version: i64,
    /// `user_version` after.
    pub to_version: i64,
    /// Steps committed by this call (0 when another opener got there first).
    pub steps_applied: usize,
}

/// Why [`migrate`] refused or failed.
#[derive(Debug)]
pub enum MigrateError {
    /// SQLite failed during a step; that step's transaction rolled back.
    Sqlite(rusqlite::Error),
    /// The file was written by a newer memtree; nothing was changed.
    TooNew {
        /// The version found.
        found: i64,
    },
}

impl From<rusqlite::Error> for MigrateError {
    #[cold]
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

/// Brings the schema to [`CURRENT_VERSION`], one transaction per step.
pub fn migrate(conn: &mut Connection) -> Result<MigrationReport, MigrateError> {
    let from_version = user_version(conn)?;
    if from_version > CURRENT_VERSION {
        return Err(MigrateError::TooNew {
            found: from_version,
        });
    }
    let mut steps_applied = 0;
    for step in MIGRATIONS {
        if from_version >= step.version {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have applied it.
        if user_version(&tx)? >= step.version {
            continue;
        }
        (step.apply)(&tx)?;
        tx.pragma_update(None, "user_version", step.version)?;
        tx.commit()?;
        steps_applied += 1;
    }
    Ok(MigrationReport {
        from_version,
        to_version: user_version(conn)?,
        steps_applied,
    })
}

/// Stops SQL functions and virtual tables from running inside the views,
/// triggers and CHECK constraints of a schema memtree did not write (a
/// planted or attached file's): `PRAGMA trusted_schema = OFF`, no I/O.
pub fn distrust_schema(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("PRAGMA trusted_schema = OFF;")
        .map_err(|e| crate::vfs::sqlite_or_refused("distrust the schema", path, e))
}

/// Brings the schema of `conn` (the database at `path`) to the current version.
pub fn migrate_schema(conn: &mut Connection, path: &Path) -> Result<MigrationReport> {
    migrate(conn).map_err(|e| match e {
        // A migration writes: its journal's open meets a file planted at
        // the `-journal` name.
        MigrateError::Sqlite(e) => crate::vfs::sqlite_or_refused("schema migration", path, e),
        MigrateError::TooNew { found } => Error::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: CURRENT_VERSION,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder planted at the `-journal` name after the connection opened
    /// fails the migration (whose first read looks for a hot journal, and
    /// whose writes need one) as the permanent refusal naming it, with the
    /// file unchanged; removed, the migration runs.
    #[cfg(unix)]
    #[test]
    fn a_folder_planted_at_the_journal_fails_the_migration_by_name() -> crate::error::Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        Connection::open(&path)
            .and_then(|c| c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);"))
            .expect("an unmigrated database");
        let mut conn = crate::db::connection::open_through_vfs(&path)?;
        let journal = crate::sys::files::side_file(&path, "-journal");
        std::fs::create_dir(&journal).expect("plant");
        let before = std::fs::read(&path).expect("read");
        match migrate_schema(&mut conn, &path).unwrap_err() {
            Error::PathRefused { path, code, .. } => {
                assert_eq!(path, journal);
                assert_eq!(code, rusqlite::ffi::SQLITE_CANTOPEN_ISDIR);
            }
            other => panic!("not a refusal: {other:?}"),
        }
        assert_eq!(std::fs::read(&path).expect("read"), before);
        std::fs::remove_dir(&journal).expect("unplant");
        assert_eq!(
            migrate_schema(&mut conn, &path)?.to_version,
            CURRENT_VERSION
        );
        Ok(())
    }

    #[test]
    fn fresh_database_reaches_current_version_once() -> Result<(), MigrateError> {
        let mut conn = Connection::open_in_memory()?;
        let first = migrate(&mut conn)?;
        assert_eq!(first.from_version, 0);
        assert_eq!(first.to_version, CURRENT_VERSION);
        assert_eq!(first.steps_applied, MIGRATIONS.len());
        let again = migrate(&mut conn)?;
        assert_eq!(again.steps_applied, 0);
        assert!(has_column(&conn, "mem_tree_chunks", "raw_refs_json")?);
        Ok(())
    }

    #[test]
    fn list_order_step_replaces_the_time_indexes() -> Result<(), MigrateError> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        let indexes = |conn: &Connection| -> rusqlite::Result<Vec<String>> {
            let mut stmt = conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' \
                 AND tbl_name = 'mem_tree_chunks' AND sql IS NOT NULL ORDER BY name",
            )?;
            let names = stmt.query_map([], |r| r.get(0))?;
            names.collect()
        };
        assert_eq!(
            indexes(&conn)?,
            [
                "idx_mem_tree_chunks_lifecycle",
                "idx_mem_tree_chunks_source_seq",
                "idx_memtree_chunks_content_path",
                "idx_memtree_chunks_kind_owner_time_seq",
                "idx_memtree_chunks_kind_time_seq",
                "idx_memtree_chunks_owner_time_seq",
                "idx_memtree_chunks_source_id_time_seq",
                "idx_memtree_chunks_time_seq",
            ]
        );
        // A file at the version before this step (its indexes put back)
        // gets this step and the ones after it, each committed with its
        // version.
        conn.execute_batch(
            "CREATE INDEX idx_mem_tree_chunks_timestamp ON mem_tree_chunks(timestamp_ms);
             CREATE INDEX idx_memtree_chunks_owner_time ON mem_tree_chunks(owner, timestamp_ms);",
        )?;
        let before_step = FIRST_MEMTREE_VERSION + 2;
        conn.pragma_update(None, "user_version", before_step)?;
        let report = migrate(&mut conn)?;
        assert_eq!(report.steps_applied as i64, CURRENT_VERSION - before_step);
        assert_eq!(user_version(&conn)?, CURRENT_VERSION);
        assert!(!indexes(&conn)?
            .iter()
            .any(|n| n.ends_with("_time") || n.ends_with("_timestamp")));
        Ok(())
    }

    fn job_indexes(conn: &Connection) -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'mem_tree_jobs' AND sql IS NOT NULL ORDER BY name",
        )?;
        let names = stmt.query_map([], |r| r.get(0))?;
        names.collect()
    }

    #[test]
    fn partial_job_index_step_replaces_the_status_indexes() -> Result<(), MigrateError> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        let current = ["idx_mem_tree_jobs_dedupe_active", "idx_memtree_jobs_active"];
        assert_eq!(job_indexes(&conn)?, current);
        // A file at version 105 (its indexes put back, the reference's too,
        // and jobs in every state) gets this step committed with its version.
        let step = FIRST_MEMTREE_VERSION + 5;
        conn.execute_batch(
            "DROP INDEX idx_memtree_jobs_active;
             CREATE INDEX idx_mem_tree_jobs_ready ON mem_tree_jobs(status, available_at_ms);
             CREATE INDEX idx_mem_tree_jobs_kind ON mem_tree_jobs(kind);
             CREATE INDEX idx_mem_tree_jobs_claim
                 ON mem_tree_jobs(status, kind, available_at_ms, created_at_ms);
             CREATE INDEX idx_mem_tree_jobs_fifo
                 ON mem_tree_jobs(status, available_at_ms, created_at_ms);
             INSERT INTO mem_tree_jobs (id, kind, payload_json, status, available_at_ms,
                 locked_until_ms, created_at_ms)
             VALUES ('j1', 'k', '{}', 'ready', 5, NULL, 1),
                    ('j2', 'k', '{}', 'running', 5, 9, 1),
                    ('j3', 'k', '{}', 'done', 5, NULL, 1);",
        )?;
        conn.pragma_update(None, "user_version", step - 1)?;
        let report = migrate(&mut conn)?;
        assert_eq!(report.steps_applied as i64, CURRENT_VERSION - (step - 1));
        assert_eq!(user_version(&conn)?, CURRENT_VERSION);
        assert_eq!(job_indexes(&conn)?, current);
        // Every row kept; the partial index holds exactly the active ones.
        let count = |sql: &str| -> rusqlite::Result<i64> { conn.query_row(sql, [], |r| r.get(0)) };
        assert_eq!(count("SELECT count(*) FROM mem_tree_jobs")?, 3);
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(check, "ok");
        assert_eq!(
            count(
                "SELECT count(*) FROM mem_tree_jobs INDEXED BY idx_memtree_jobs_active \
                 WHERE status IN ('ready', 'running')"
            )?,
            2
        );
        Ok(())
    }

    #[test]
    fn text_index_step_indexes_existing_rows_or_nothing() -> Result<(), MigrateError> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        // A file one version before the step: rows, no index, no triggers.
        let step = FIRST_MEMTREE_VERSION + 6;
        for (_, fts) in TEXT_INDEXED_TABLES {
            conn.execute_batch(&format!(
                "DROP TRIGGER {fts}_insert; DROP TRIGGER {fts}_delete;
                 DROP TRIGGER {fts}_update; DROP TABLE {fts};"
            ))?;
        }
        conn.execute_batch(
            "INSERT INTO mem_tree_chunks (id, source_kind, source_id, owner, timestamp_ms,
                 time_range_start_ms, time_range_end_ms, content, token_count,
                 seq_in_source, created_at_ms)
             VALUES ('c1', 'chat', 's', 'o', 1, 1, 1, 'older words here', 1, 0, 1);
             INSERT INTO mem_tree_trees (id, kind, scope, created_at_ms) VALUES ('t', 'k', 's', 1);
             INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, content,
                 token_count, time_range_start_ms, time_range_end_ms, sealed_at_ms)
             VALUES ('s1', 't', 'k', 1, 'summary words', 1, 1, 1, 1);",
        )?;
        conn.pragma_update(None, "user_version", step - 1)?;
        // A step that fails half way (a table named like the summaries'
        // index) commits nothing: the old version, no chunk index either.
        conn.execute_batch("CREATE TABLE memtree_summaries_fts (x)")?;
        assert!(matches!(migrate(&mut conn), Err(MigrateError::Sqlite(_))));
        assert_eq!(user_version(&conn)?, step - 1);
        let tables = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'memtree_chunks_fts'",
                [],
                |r| r.get(0),
            )
        };
        assert_eq!(tables(&conn)?, 0);
        conn.execute_batch("DROP TABLE memtree_summaries_fts")?;
        migrate(&mut conn)?;
        assert_eq!(user_version(&conn)?, CURRENT_VERSION);
        for (_, fts) in TEXT_INDEXED_TABLES {
            conn.execute(
                &format!("INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"),
                [],
            )?;
        }
        let found: i64 = conn.query_row(
            "SELECT (SELECT count(*) FROM memtree_chunks_fts WHERE memtree_chunks_fts MATCH 'older')
                  + (SELECT count(*) FROM memtree_summaries_fts
                     WHERE memtree_summaries_fts MATCH 'summary')",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(found, 2);
        Ok(())
    }

    /// The vector version of each table: (chunks, summaries).
    fn vector_versions(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
        conn.query_row(
            &format!(
                "SELECT (SELECT version FROM {VECTOR_VERSIONS_TABLE} WHERE id = 1), \
                        (SELECT version FROM {VECTOR_VERSIONS_TABLE} WHERE id = 2)"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    #[test]
    fn vector_versions_move_with_every_vector_write_and_only_those() -> Result<(), MigrateError> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        let insert = |id: &str, embedding: &str| {
            format!(
                "INSERT INTO mem_tree_chunks (id, source_kind, source_id, owner, timestamp_ms,
                     time_range_start_ms, time_range_end_ms, content, token_count,
                     seq_in_source, created_at_ms, embedding)
                 VALUES ('{id}', 'chat', 's', 'o', 1, 1, 1, 'words', 1, 0, 1, {embedding})"
            )
        };
        // (what, SQL, bumps of (chunks, summaries))
        let steps: Vec<(&str, String, (i64, i64))> = vec![
            ("insert, no embedding", insert("a", "NULL"), (1, 0)),
            ("insert with one", insert("b", "x'0000803f'"), (1, 0)),
            (
                "set an embedding",
                "UPDATE mem_tree_chunks SET embedding = x'0000803f' WHERE id = 'a'".into(),
                (1, 0),
            ),
            (
                "the same bytes again",
                "UPDATE mem_tree_chunks SET embedding = x'0000803f' WHERE id = 'a'".into(),
                (0, 0),
            ),
            (
                "filter columns",
                "UPDATE mem_tree_chunks SET owner = 'p', timestamp_ms = 9".into(),
                (0, 0),
            ),
            (
                "lifecycle",
                "UPDATE mem_tree_chunks SET lifecycle_status = 'x'".into(),
                (0, 0),
            ),
            (
                "content",
                "UPDATE mem_tree_chunks SET content = 'other'".into(),
                (0, 0),
            ),
            (
                "two ids",
                "UPDATE mem_tree_chunks SET id = id || '2'".into(),
                (2, 0),
            ),
            (
                "a rowid",
                "UPDATE mem_tree_chunks SET rowid = rowid + 100 WHERE id = 'a2'".into(),
                (1, 0),
            ),
            (
                "insert or replace clearing an embedding",
                insert("b2", "NULL").replace("INSERT INTO", "INSERT OR REPLACE INTO"),
                (1, 0),
            ),
            (
                "delete without an embedding",
                "DELETE FROM mem_tree_chunks WHERE id = 'b2'".into(),
                (0, 0),
            ),
            (
                "delete with one",
                "DELETE FROM mem_tree_chunks WHERE id = 'a2'".into(),
                (1, 0),
            ),
            (
                "jobs and trees",
                "INSERT INTO mem_tree_jobs (id, kind, payload_json, available_at_ms, created_at_ms)
                     VALUES ('j', 'k', '{}', 1, 1);
                 UPDATE mem_tree_jobs SET status = 'running';
                 DELETE FROM mem_tree_jobs;
                 INSERT INTO mem_tree_trees (id, kind, scope, created_at_ms)
                     VALUES ('t', 'k', 's', 1);"
                    .into(),
                (0, 0),
            ),
            (
                "a summary",
                "INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, content,
                     token_count, time_range_start_ms, time_range_end_ms, sealed_at_ms)
                 VALUES ('s', 't', 'k', 1, 'w', 1, 1, 1, 1)"
                    .into(),
                (0, 1),
            ),
            (
                "its embedding",
                "UPDATE mem_tree_summaries SET embedding = x'0000803f'".into(),
                (0, 1),
            ),
            (
                "its score",
                "UPDATE mem_tree_summaries SET score = 2".into(),
                (0, 0),
            ),
            (
                "soft delete",
                "UPDATE mem_tree_summaries SET deleted = 1".into(),
                (0, 1),
            ),
            (
                "hard delete",
                "DELETE FROM mem_tree_summaries".into(),
                (0, 1),
            ),
            (
                "a write rolled back takes its bump back",
                "SAVEPOINT x; UPDATE mem_tree_chunks SET embedding = NULL;
                 ROLLBACK TO x; RELEASE x;"
                    .into(),
                (0, 0),
            ),
        ];
        for (what, sql, bumps) in steps {
            let before = vector_versions(&conn)?;
            conn.execute_batch(&sql)?;
            let after = vector_versions(&conn)?;
            assert_eq!((after.0 - before.0, after.1 - before.1), bumps, "{what}");
        }
        Ok(())
    }

    #[test]
    fn vector_version_step_is_refused_whole_and_resumes() -> Result<(), MigrateError> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        let step = VECTOR_VERSIONS_STEP;
        let triggers = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' \
                 AND name LIKE 'memtree_vectors_%'",
                [],
                |r| r.get(0),
            )
        };
        assert_eq!(triggers(&conn)?, 6);
        // A file one version before the step, where another tool left a
        // view under the table's name: the step fails whole (no trigger,
        // the old version), and changes nothing.
        for (name, _) in vector_version_triggers() {
            conn.execute_batch(&format!("DROP TRIGGER {name}"))?;
        }
        conn.execute_batch(&format!(
            "DROP TABLE {VECTOR_VERSIONS_TABLE};
             CREATE VIEW {VECTOR_VERSIONS_TABLE} AS SELECT 1 AS id, 'x' AS table_name, 0 AS version;"
        ))?;
        conn.pragma_update(None, "user_version", step - 1)?;
        assert!(matches!(migrate(&mut conn), Err(MigrateError::Sqlite(_))));
        assert_eq!(user_version(&conn)?, step - 1);
        assert_eq!(triggers(&conn)?, 0);
        // Resumed over what an older text left: versions kept (they only
        // grow), each trigger replaced by this build's text.
        conn.execute_batch(&format!(
            "DROP VIEW {VECTOR_VERSIONS_TABLE};
             CREATE TABLE {VECTOR_VERSIONS_TABLE} (id INTEGER PRIMARY KEY,
                 table_name TEXT NOT NULL, version INTEGER NOT NULL);
             INSERT INTO {VECTOR_VERSIONS_TABLE} VALUES (1, 'mem_tree_chunks', 41);
             CREATE TRIGGER memtree_vectors_chunks_insert AFTER INSERT ON mem_tree_chunks BEGIN
                 SELECT 1;
             END;"
        ))?;
        migrate(&mut conn)?;
        assert_eq!(user_version(&conn)?, CURRENT_VERSION);
        assert_eq!(vector_versions(&conn)?, (41, 0));
        for (name, sql) in vector_version_triggers() {
            let stored: String = conn.query_row(
                "SELECT sql FROM sqlite_master WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )?;
            assert_eq!(stored, sql);
        }
        Ok(())
    }

    #[test]
    fn newer_version_is_refused_untouched() -> Result<(), MigrateError> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)?;
        assert!(matches!(
            migrate(&mut conn),
            Err(MigrateError::TooNew { .. })
        ));
        assert_eq!(user_version(&conn)?, CURRENT_VERSION + 1);
        Ok(())
    }

    #[test]
    fn failed_step_rolls_back_with_its_version() -> Result<(), MigrateError> {
        let mut conn = Connection::open_in_memory()?;
        // A view named like a table the first step creates makes it fail.
        conn.execute_batch("CREATE VIEW mem_tree_score AS SELECT 1 AS x")?;
        assert!(matches!(migrate(&mut conn), Err(MigrateError::Sqlite(_))));
        assert_eq!(user_version(&conn)?, 0);
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'mem_tree_chunks'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(tables, 0, "the step's earlier DDL rolled back too");
        Ok(())
    }
}
