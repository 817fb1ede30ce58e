//! The FTS5 index kept in step by triggers on every write path (memtree's
//! and OpenHuman's own SQL), under `trusted_schema=OFF` too, and
//! `search_text` over it.

use rusqlite::Connection;

use super::*;
use crate::chunks::ops::tests::plain_chunk;
use crate::chunks::ops::BATCH_STATEMENT_MIN_ROWS as LENT_BIND_MIN_ROWS;
use crate::{Chunk, SourceKind};

fn chunk(id: &str, source: &str, owner: &str, ts: i64, content: &str) -> Chunk {
    Chunk {
        content: content.into(),
        source_id: source.into(),
        owner: owner.into(),
        ..plain_chunk(id, ts)
    }
}

/// Both indexes agree with their tables: FTS5's own check, content
/// compared too (`rank = 1`), then the plain form the issue names.
fn check_indexes(conn: &Connection) -> rusqlite::Result<()> {
    for fts in ["memtree_chunks_fts", "memtree_summaries_fts"] {
        conn.execute(
            &format!("INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"),
            [],
        )?;
        conn.execute(
            &format!("INSERT INTO {fts}({fts}) VALUES ('integrity-check')"),
            [],
        )?;
    }
    Ok(())
}

/// The ids whose indexed content holds `word`, by a raw MATCH.
fn matching(conn: &Connection, word: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT c.id FROM memtree_chunks_fts f JOIN mem_tree_chunks c ON c.rowid = f.rowid \
         WHERE memtree_chunks_fts MATCH ?1 ORDER BY c.id",
    )?;
    let rows = stmt.query_map([word], |r| r.get(0))?;
    rows.collect()
}

fn ids(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

#[test]
fn every_memtree_write_path_keeps_the_index_in_step() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open_file(&dir.path().join("s.db"))?;
    let raw = Connection::open(store.path())?;
    // Per-row path.
    store.upsert_chunks(&[
        chunk("a", "s1", "u1", 1, "alpha apple"),
        chunk("b", "s1", "u1", 2, "beta banana"),
        chunk("c", "s2", "u2", 3, "gamma cherry"),
    ])?;
    check_indexes(&raw)?;
    assert_eq!(matching(&raw, "apple")?, ["a"]);
    // Re-ingest, content changed: the update half of the upsert.
    store.upsert_chunks(&[chunk("a", "s1", "u1", 1, "alpha apricot")])?;
    check_indexes(&raw)?;
    assert!(matching(&raw, "apple")?.is_empty());
    assert_eq!(matching(&raw, "apricot")?, ["a"]);
    // The one-statement batch path: new rows and updates of old ones.
    let mut batch: Vec<Chunk> = (0..LENT_BIND_MIN_ROWS)
        .map(|i| {
            chunk(
                &format!("n{i:04}"),
                "s3",
                "u3",
                10,
                &format!("word{i} shared"),
            )
        })
        .collect();
    batch.push(chunk("b", "s1", "u1", 2, "beta blueberry"));
    store.upsert_chunks(&batch)?;
    check_indexes(&raw)?;
    assert_eq!(matching(&raw, "shared")?.len(), LENT_BIND_MIN_ROWS);
    assert_eq!(matching(&raw, "blueberry")?, ["b"]);
    // The same batch again, unchanged content: the update trigger's WHEN
    // keeps the index pages untouched.
    let pages = |c: &Connection| -> rusqlite::Result<Vec<u8>> {
        c.query_row(
            "SELECT group_concat(hex(block), '') FROM memtree_chunks_fts_data",
            [],
            |r| r.get::<_, String>(0).map(String::into_bytes),
        )
    };
    let before = pages(&raw)?;
    store.upsert_chunks(&batch)?;
    store.set_chunk_embedding("a", Some(&[1.0, 2.0]))?;
    store.set_lifecycle_status(&["a".to_owned()], "sealed")?;
    assert_eq!(pages(&raw)?, before, "no content change, no index write");
    // replace_source_chunks: one kept and changed, one removed.
    store.replace_source_chunks(
        SourceKind::Chat,
        "s1",
        &[chunk("a", "s1", "u1", 1, "alpha avocado")],
    )?;
    check_indexes(&raw)?;
    assert_eq!(matching(&raw, "avocado")?, ["a"]);
    assert!(matching(&raw, "blueberry")?.is_empty());
    // Deletes and their cascades.
    assert!(store.delete_chunk("c")?);
    store.delete_source(SourceKind::Chat, "s3")?;
    check_indexes(&raw)?;
    assert!(matching(&raw, "shared")?.is_empty());
    store.delete_owner("u1")?;
    check_indexes(&raw)?;
    let left: i64 = raw.query_row("SELECT count(*) FROM memtree_chunks_fts", [], |r| r.get(0))?;
    assert_eq!(left, 0);
    Ok(())
}

/// OpenHuman's own statements (as plain strings, through this bundled
/// SQLite): chunk upserts (plain and staged), the summary insert, lifecycle,
/// raw-refs and embedding updates, a source delete and a summary tombstone.
#[test]
fn openhuman_sql_keeps_the_index_in_step() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("chunks.db");
    let (store, _) = Store::open_file(&path)?;
    let conn = Connection::open(&path)?;
    let upsert = "INSERT INTO mem_tree_chunks (
            id, source_kind, source_id, source_ref, owner,
            timestamp_ms, time_range_start_ms, time_range_end_ms,
            tags_json, content, token_count, seq_in_source, created_at_ms
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
        ON CONFLICT(id) DO UPDATE SET
            source_kind = excluded.source_kind,
            source_id = excluded.source_id,
            source_ref = excluded.source_ref,
            owner = excluded.owner,
            timestamp_ms = excluded.timestamp_ms,
            time_range_start_ms = excluded.time_range_start_ms,
            time_range_end_ms = excluded.time_range_end_ms,
            tags_json = excluded.tags_json,
            content = excluded.content,
            token_count = excluded.token_count,
            seq_in_source = excluded.seq_in_source,
            created_at_ms = excluded.created_at_ms";
    let staged = "INSERT INTO mem_tree_chunks (
            id, source_kind, source_id, source_ref, owner,
            timestamp_ms, time_range_start_ms, time_range_end_ms,
            tags_json, content, token_count, seq_in_source, created_at_ms,
            content_path, content_sha256
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
        ON CONFLICT(id) DO UPDATE SET
            source_kind = excluded.source_kind,
            source_id = excluded.source_id,
            source_ref = excluded.source_ref,
            owner = excluded.owner,
            timestamp_ms = excluded.timestamp_ms,
            time_range_start_ms = excluded.time_range_start_ms,
            time_range_end_ms = excluded.time_range_end_ms,
            tags_json = excluded.tags_json,
            content = excluded.content,
            token_count = excluded.token_count,
            seq_in_source = excluded.seq_in_source,
            created_at_ms = excluded.created_at_ms,
            content_path = excluded.content_path,
            content_sha256 = excluded.content_sha256";
    let row = |id: &'static str, content: &'static str| {
        (
            id,
            "chat",
            "src",
            None::<String>,
            "me",
            5,
            5,
            5,
            "[]",
            content,
            3,
            0,
            5,
        )
    };
    conn.execute(upsert, row("x1", "quokka meadow"))?;
    conn.execute(upsert, row("x2", "wombat burrow"))?;
    conn.execute(upsert, row("x1", "quokka island"))?;
    conn.execute(
        staged,
        rusqlite::params![
            "x3",
            "chat",
            "src",
            None::<String>,
            "me",
            6,
            6,
            6,
            "[]",
            "numbat preview",
            2,
            1,
            6,
            "chat/x3.md",
            "00"
        ],
    )?;
    conn.execute(
        "UPDATE mem_tree_chunks SET lifecycle_status = ?1 WHERE id = ?2",
        ["buffered", "x1"],
    )?;
    conn.execute(
        "UPDATE mem_tree_chunks SET raw_refs_json = ?1 WHERE id = ?2",
        ["[]", "x2"],
    )?;
    conn.execute(
        "UPDATE mem_tree_chunks SET embedding = ?1 WHERE id = ?2",
        rusqlite::params![vec![0u8; 8], "x2"],
    )?;
    conn.execute_batch(
        "INSERT INTO mem_tree_trees (id, kind, scope, created_at_ms)
             VALUES ('t1', 'source', 'chat:src', 1);",
    )?;
    let summary = "INSERT OR IGNORE INTO mem_tree_summaries (
            id, tree_id, tree_kind, level, parent_id,
            child_ids_json, content, token_count,
            entities_json, topics_json,
            time_range_start_ms, time_range_end_ms,
            score, sealed_at_ms, deleted, embedding
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
    let summary_row = |id: &'static str, content: &'static str| {
        (
            id,
            "t1",
            "source",
            1,
            None::<String>,
            "[]",
            content,
            4,
            "[]",
            "[]",
            1,
            9,
            0.5,
            9,
            0,
            None::<Vec<u8>>,
        )
    };
    conn.execute(summary, summary_row("sum1", "marsupials of the island"))?;
    // Ignored (the id exists): nothing written, nothing indexed.
    conn.execute(summary, summary_row("sum1", "ignored text"))?;
    check_indexes(&conn)?;
    let hits = store.search_text("island", 10, Syntax::Words, &ChunkFilter::default(), true)?;
    let found: Vec<&str> = {
        let mut v = ids(&hits);
        v.sort_unstable();
        v
    };
    assert_eq!(found, ["sum1", "x1"]);
    assert!(store
        .search_text("ignored", 10, Syntax::Words, &ChunkFilter::default(), true)?
        .is_empty());
    // A tombstoned summary leaves the results; a deleted source its chunks.
    conn.execute(
        "UPDATE mem_tree_summaries SET deleted = 1 WHERE id = 'sum1'",
        [],
    )?;
    conn.execute(
        "DELETE FROM mem_tree_chunks WHERE source_kind = ?1 AND source_id = ?2",
        ["chat", "src"],
    )?;
    check_indexes(&conn)?;
    assert!(store
        .search_text("island", 10, Syntax::Words, &ChunkFilter::default(), true)?
        .is_empty());
    Ok(())
}

/// FTS5 tags itself innocuous in this SQLite: the triggers write to it and
/// `bm25()`/`snippet()` run with `trusted_schema=OFF`.
#[test]
fn triggers_and_ranking_work_with_trusted_schema_off() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.db");
    let (store, _) = Store::open_file(&path)?;
    let conn = Connection::open(&path)?;
    conn.execute_batch("PRAGMA trusted_schema = OFF;")?;
    let off: i64 = conn.query_row("PRAGMA trusted_schema", [], |r| r.get(0))?;
    assert_eq!(off, 0);
    conn.execute(
        "INSERT INTO mem_tree_chunks (id, source_kind, source_id, owner, timestamp_ms,
             time_range_start_ms, time_range_end_ms, content, token_count, seq_in_source,
             created_at_ms) VALUES ('t', 'chat', 's', 'o', 1, 1, 1, 'trusted text', 1, 0, 1)",
        [],
    )?;
    conn.execute(
        "UPDATE mem_tree_chunks SET content = 'schema text' WHERE id = 't'",
        [],
    )?;
    let (score, excerpt): (f64, String) = conn.query_row(
        "SELECT bm25(memtree_chunks_fts), snippet(memtree_chunks_fts, 0, '[', ']', '…', 8)
         FROM memtree_chunks_fts WHERE memtree_chunks_fts MATCH 'schema'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert!(score < 0.0);
    assert_eq!(excerpt, "[schema] text");
    check_indexes(&conn)?;
    conn.execute("DELETE FROM mem_tree_chunks WHERE id = 't'", [])?;
    check_indexes(&conn)?;
    drop(store);
    Ok(())
}

#[test]
fn words_are_only_words_and_filters_are_exact() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open_file(&dir.path().join("s.db"))?;
    store.upsert_chunks(&[
        chunk(
            "a",
            "s1",
            "u1",
            1,
            "Crème brûlée AND \"quoted\" NEAR(x) text",
        ),
        chunk(
            "b",
            "s1",
            "u2",
            2,
            "creme brulee, the plain dessert dessert",
        ),
        chunk("c", "s2", "u2", 3, "nothing to see here"),
    ])?;
    let all = ChunkFilter::default();
    let search = |q: &str, f: &ChunkFilter| store.search_text(q, 10, Syntax::Words, f, false);
    // Accents fold, operators are words, every word is required.
    let mut both = ids(&search("CRÈME brulee", &all)?).join(",");
    assert!(both == "a,b" || both == "b,a", "{both}");
    assert_eq!(ids(&search("AND NEAR(x) \"quoted", &all)?), ["a"]);
    assert_eq!(ids(&search("dessert^ *:plain", &all)?), ["b"]);
    assert!(search("creme missing", &all)?.is_empty());
    // Filters, and the snippet and ranks on every hit.
    let u2 = ChunkFilter {
        owner: Some("u2".into()),
        ..ChunkFilter::default()
    };
    let hits = search("creme", &u2)?;
    assert_eq!(ids(&hits), ["b"]);
    assert_eq!(hits[0].text_rank, Some(1));
    assert!(hits[0]
        .snippet
        .as_deref()
        .is_some_and(|s| s.contains("creme")));
    both = ids(&search(
        "creme",
        &ChunkFilter {
            until_ms: Some(2),
            ..all.clone()
        },
    )?)
    .join(",");
    assert_eq!(both, "a");
    // No word at all, or a broken FTS5 query: invalid input naming `query`.
    for q in ["", "  ", "!!! ... ---", "\"\"()"] {
        let err = search(q, &all).expect_err("no word");
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "query"),
            "{err}"
        );
    }
    let err = store
        .search_text("creme AND (", 10, Syntax::Fts5, &all, false)
        .expect_err("syntax error");
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "query"),
        "{err}"
    );
    assert!(err.to_string().contains("syntax error"), "{err}");
    let hits = store.search_text("creme NOT dessert", 10, Syntax::Fts5, &all, false)?;
    assert_eq!(ids(&hits), ["a"]);
    Ok(())
}

/// A run of tied rows longer than the first read's slack is still cut by
/// id, with and without a filter (the index-only and the joined plan).
#[test]
fn long_runs_of_ties_are_cut_by_id() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open_file(&dir.path().join("s.db"))?;
    // 200 identical rows (equal bm25), ids inserted in reverse order, and
    // one better row.
    let mut rows: Vec<Chunk> = (0..200)
        .rev()
        .map(|i| chunk(&format!("t{i:03}"), "s", "u", i, "tied words here"))
        .collect();
    rows.push(chunk("best", "s", "u", 0, "tied tied tied"));
    store.upsert_chunks(&rows)?;
    let all = ChunkFilter::default();
    let by_owner = ChunkFilter {
        owner: Some("u".into()),
        ..ChunkFilter::default()
    };
    for filter in [&all, &by_owner] {
        for k in [1, 10, 70, 150, 300] {
            let hits = store.search_text("tied", k, Syntax::Words, filter, false)?;
            let mut want = vec!["best".to_owned()];
            want.extend((0..200).map(|i| format!("t{i:03}")));
            want.truncate(k as usize);
            assert_eq!(
                ids(&hits),
                want.iter().map(String::as_str).collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}

/// The excerpt built in the scratch table is the one `snippet()` gives on
/// the store's own index (it uses no index statistics).
#[test]
fn excerpts_equal_snippet_on_the_index() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open_file(&dir.path().join("s.db"))?;
    let words = [
        "river", "stone", "otter", "Crème", "reed", "night", "moss", "heron", "pike", "willow",
    ];
    let rows: Vec<Chunk> = (0..120)
        .map(|i| {
            let text: Vec<&str> = (0..(10 + i % 50))
                .map(|j| words[(i * 7 + j * (1 + i % 3)) % words.len()])
                .collect();
            chunk(&format!("e{i:03}"), "s", "u", i as i64, &text.join(" "))
        })
        .collect();
    store.upsert_chunks(&rows)?;
    let raw = Connection::open(store.path())?;
    for (query, syntax) in [
        ("otter", Syntax::Words),
        ("creme heron", Syntax::Words),
        ("pike OR willow", Syntax::Fts5),
        ("\"river stone\"", Syntax::Fts5),
    ] {
        let fts = match_query(query, syntax, store.path())?;
        let hits = store.search_text(query, 50, syntax, &ChunkFilter::default(), false)?;
        assert!(!hits.is_empty(), "{query}");
        for hit in hits {
            let want: String = raw.query_row(
                "SELECT snippet(memtree_chunks_fts, 0, '', '', '…', 16) FROM memtree_chunks_fts
                 WHERE memtree_chunks_fts MATCH ?1
                 AND rowid = (SELECT rowid FROM mem_tree_chunks WHERE id = ?2)",
                (&fts, &hit.id),
                |r| r.get(0),
            )?;
            assert_eq!(
                hit.snippet.as_deref(),
                Some(want.as_str()),
                "{query} {}",
                hit.id
            );
        }
    }
    Ok(())
}

#[test]
fn a_deep_ranking_reads_ids_of_its_first_rows_and_its_ties_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open_file(&dir.path().join("s.db"))?;
    // Distinct lengths give distinct bm25 ("w" then 0..40 fillers), except
    // the z-pair and the y-run, which share one content each.
    let mut rows: Vec<Chunk> = (0..40)
        .map(|i| {
            let filler = vec!["x"; i].join(" ");
            chunk(&format!("r{i:02}"), "s", "u", 1, &format!("w {filler}"))
        })
        .collect();
    let long = vec!["x"; 60].join(" ");
    for id in ["z2", "z1"] {
        rows.push(chunk(id, "s", "u", 1, &format!("w w {long}")));
    }
    for i in (0..30).rev() {
        rows.push(chunk(
            &format!("y{i:02}"),
            "s",
            "u",
            1,
            &format!("w {long} x"),
        ));
    }
    store.upsert_chunks(&rows)?;
    let conn = Connection::open(store.path())?;
    let all = ChunkFilter::default();
    let fts = "\"w\"";
    let full = rank_text(&conn, fts, 50, &all, false, 50, &no_known_ids)?.expect("ranked");
    let part = rank_text(&conn, fts, 50, &all, false, 5, &no_known_ids)?.expect("ranked");
    // The same rows in the same order; past the 5th only tied rows (ids
    // decide their order) carry an id.
    let keys = |rows: &[TextRow]| rows.iter().map(|r| (r.rowid, r.bm25)).collect::<Vec<_>>();
    assert_eq!(keys(&full), keys(&part));
    for (at, (a, b)) in full.iter().zip(&part).enumerate() {
        let tied = full.iter().filter(|r| r.bm25 == a.bm25).count() > 1;
        if at < 5 || tied {
            assert_eq!(b.id, a.id, "row {at}");
        } else {
            assert_eq!(b.id, None, "row {at}");
        }
    }
    let named: Vec<&str> = full.iter().filter_map(|r| r.id.as_deref()).collect();
    let at = |id: &str| named.iter().position(|n| *n == id).expect("ranked");
    assert!(
        at("z1") + 1 == at("z2") && at("z2") > 5,
        "the pair is past the 5th, by id"
    );
    assert!(
        part.iter().any(|r| r.id.is_none()),
        "some row went without an id"
    );
    // The run of 30 ties ends past the 50th: cut by id whatever is read.
    let y: Vec<&str> = named
        .iter()
        .copied()
        .filter(|n| n.starts_with('y'))
        .collect();
    assert_eq!(
        y,
        (0..y.len()).map(|i| format!("y{i:02}")).collect::<Vec<_>>()
    );
    assert!(y.len() < 30 && named.len() == 50);
    // Ids the caller holds are taken, not read.
    let known = |_: HitKind, rowid: i64| Some(format!("known-{rowid}"));
    let told = rank_text(&conn, fts, 50, &all, false, 50, &known)?.expect("ranked");
    assert!(told
        .iter()
        .all(|r| r.id.as_deref() == Some(&format!("known-{}", r.rowid))));
    Ok(())
}
