//! Full-text search: [`Store::search_text`] over the FTS5 indexes the schema
//! keeps in step with chunk and summary content (see
//! `schema::apply_text_index`), ranked by SQLite's `bm25()`.
//!
//! Two query syntaxes:
//! - [`Syntax::Words`]: any text is plain words. The text is tokenised by the
//!   index's own tokenizer (an FTS5 table in a private in-memory database,
//!   read back through `fts5vocab`), and every distinct token is written as
//!   an FTS5 string, so `AND`, `OR`, `NEAR`, `*`, `^`, `:`, quotes and
//!   parentheses are only words; a row matches when it holds every token.
//!   Text without a single token is refused, never run.
//! - [`Syntax::Fts5`]: the FTS5 query language as SQLite documents it; a
//!   query SQLite cannot parse is refused with SQLite's message.
//!
//! Filters are exact and applied before the cut to `k`: matches are read best
//! first and each is checked against the filter until `k` pass, so `k` rows
//! come back whenever `k` rows match; a source id also bounds the index's
//! walk to that source's rowid range. Without a filter the ranking reads the
//! index alone and looks up the ids of the rows it keeps ([`index_top_k`]).
//! The excerpt (`snippet()`) is built for the returned hits only, in the
//! scratch database ([`excerpts`]), from content read by the rowid the
//! ranking already holds.

use std::cell::RefCell;
use std::cmp::Ordering;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, ErrorCode};

use super::api::{Hit, HitKind, KnownIds};
use super::filter::summary_terms;
use crate::chunks::ops::filter_terms as chunk_terms;
use crate::chunks::{ChunkFilter, MAX_LIST_LIMIT};
use crate::db::store::Store;
use crate::error::{Error, Result};

/// How `search_text` reads its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Plain words, all required; never a syntax error.
    Words,
    /// SQLite's FTS5 query language.
    Fts5,
}

impl Syntax {
    /// The syntax named `"words"` or `"fts5"`.
    pub fn parse(name: &str) -> Result<Syntax> {
        match name {
            "words" => Ok(Syntax::Words),
            "fts5" => Ok(Syntax::Fts5),
            other => Err(Error::invalid(
                "syntax",
                format!("expected 'words' or 'fts5', got {other:?}"),
            )),
        }
    }
}

/// Tokens of an excerpt around the best match (`snippet()`'s limit is 64).
const SNIPPET_TOKENS: i32 = 16;

/// The tokenizer every index uses; [`tokens`] must tokenise as they do.
pub const TOKENIZER: &str = "unicode61 remove_diacritics 2";

thread_local! {
    /// A private in-memory database with an FTS5 table of the indexes' own
    /// column name and tokenizer (same SQLite): it tokenises query text
    /// exactly as they do, and builds excerpts (see [`excerpts`]).
    static SCRATCH_DB: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's scratch database, created on first use.
fn with_scratch<T>(f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    SCRATCH_DB.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let conn = Connection::open_in_memory()?;
            conn.execute_batch(&format!(
                "CREATE VIRTUAL TABLE words USING fts5(content, tokenize='{TOKENIZER}');
                 CREATE VIRTUAL TABLE words_seen USING fts5vocab(words, 'instance');"
            ))?;
            *slot = Some(conn);
        }
        f(slot.as_ref().expect("set above"))
    })
}

/// The distinct tokens of `text` as the index's tokenizer folds them, in
/// order of first appearance.
pub fn tokens(text: &str) -> rusqlite::Result<Vec<String>> {
    with_scratch(|conn| {
        // Never committed: the row lives only inside this transaction.
        let tx = conn.unchecked_transaction()?;
        tx.execute("INSERT INTO words(rowid, content) VALUES (1, ?1)", [text])?;
        let mut out: Vec<String> = Vec::new();
        {
            let mut stmt = tx.prepare_cached("SELECT term FROM words_seen ORDER BY offset")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let term: String = row.get(0)?;
                if !out.contains(&term) {
                    out.push(term);
                }
            }
        }
        tx.rollback()?;
        Ok(out)
    })
}

/// `text` as an FTS5 query of plain words: each distinct token an FTS5
/// string (`"` doubled), all of them required. `None` when `text` holds no
/// token at all.
pub fn words_query(text: &str) -> rusqlite::Result<Option<String>> {
    let words = tokens(text)?;
    if words.is_empty() {
        return Ok(None);
    }
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    Ok(Some(quoted.join(" ")))
}

/// The SQL filter terms on the row `r` a match is checked against, each
/// prefixed by ` AND `, numbered from `?first`: the terms `list_chunks` and
/// the vector search filter by. `None` when the filter admits no row of the
/// table (a summary has no source or owner).
fn filter_terms(
    filter: &ChunkFilter,
    summaries: bool,
    first: usize,
) -> Option<(String, Vec<Value>)> {
    let (clauses, values) = if summaries {
        summary_terms(filter, first)?
    } else {
        chunk_terms(filter, first)
    };
    let sql = clauses.iter().map(|c| format!(" AND {c}")).collect();
    Some((sql, values))
}

/// A ranked row: its `bm25()`, its rowid (the excerpt reads its content by
/// it, a hybrid search fuses by it) and its id, `None` only where
/// [`index_top_k`] was told it need not look it up.
type Ranked = (f64, i64, Option<String>);

/// Knows no id.
pub(crate) fn no_known_ids(_: HitKind, _: i64) -> Option<String> {
    None
}

/// One table's best `k` for `query`, best first, ties by id; the ids of the
/// first `ids_for` rows at least (see [`index_top_k`]).
fn table_top_k(
    conn: &Connection,
    kind: HitKind,
    query: &str,
    filter: &ChunkFilter,
    k: usize,
    ids: (usize, KnownIds<'_>),
) -> rusqlite::Result<Vec<Ranked>> {
    let (table, fts) = tables(kind);
    let Some((terms, mut values)) = filter_terms(filter, kind == HitKind::Summary, 2) else {
        return Ok(Vec::new());
    };
    if terms.is_empty() {
        if let Some(found) = index_top_k(conn, kind, query, k, ids)? {
            return Ok(found);
        }
    }
    let mut range = String::new();
    let mut range_values = Vec::new();
    if let (HitKind::Chunk, Some(source_id)) = (kind, &filter.source_id) {
        // A source's chunks are a handful of rows, usually written together:
        // bounding the index's walk to their rowid range skips the matches
        // of every other source (FTS5 seeks a rowid range in its doclists).
        let (low, high): (Option<i64>, Option<i64>) = conn
            .prepare_cached(
                "SELECT min(rowid), max(rowid) FROM mem_tree_chunks WHERE source_id = ?1",
            )?
            .query_row([source_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (Some(low), Some(high)) = (low, high) else {
            return Ok(Vec::new());
        };
        range = " AND rowid >= ?2 AND rowid <= ?3".to_owned();
        range_values = vec![Value::Integer(low), Value::Integer(high)];
    }
    // Matches best first, each checked against the filter by its rowid
    // until k pass (and every row tied with the k-th): a broad filter stops
    // after about k checks, a narrow one checks what a join would.
    let mut ranked = conn.prepare_cached(&format!(
        "SELECT bm25({fts}), rowid FROM {fts} WHERE {fts} MATCH ?1{range} ORDER BY 1"
    ))?;
    let mut ranked_values = vec![Value::Text(query.to_owned())];
    ranked_values.extend(range_values);
    let mut passes = conn.prepare_cached(&format!(
        "SELECT r.id FROM {table} r WHERE r.rowid = ?1{terms}"
    ))?;
    values.insert(0, Value::Null);
    let mut found: Vec<Ranked> = Vec::new();
    let mut rows = ranked.query(params_from_iter(&ranked_values))?;
    while let Some(row) = rows.next()? {
        let bm25: f64 = row.get(0)?;
        if found.len() >= k && bm25 > found[k - 1].0 {
            break;
        }
        let rowid: i64 = row.get(1)?;
        values[0] = Value::Integer(rowid);
        let mut hit = passes.query(params_from_iter(&values))?;
        if let Some(r) = hit.next()? {
            found.push((bm25, rowid, Some(r.get(0)?)));
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
    found.truncate(k);
    Ok(found)
}

/// Rows read past the `k`-th by [`index_top_k`] (at least; it reads `k`
/// more when `k` is larger), so that a run of rows tied with the `k`-th
/// (equal bm25: same term counts, same length, as duplicated content or
/// one common word in chunks of one size have) is usually read whole by
/// the first query. A longer run costs a second query that scores every
/// match again, while each row of the `LIMIT` costs only its place in
/// SQLite's bounded sort: one word over 100k chunks ranked with `LIMIT 10`
/// in 1.66 ms, `LIMIT 74` in 1.77 ms, `LIMIT 164` in 1.97 ms (CPU, medians
/// of 15 queries). A hybrid search's 100th row ends a run of ties past
/// `LIMIT 108` for 11 of the bench's 15 one-word queries, past `LIMIT 200`
/// for 1.
const TIE_SLACK: usize = 8;

/// The unfiltered best `k`, read from the index alone: rowids by bm25, then
/// the ids of the rows kept. Joining every match to its row (for the id,
/// the tie-break) costs a table lookup per match, more than ranking them
/// (measured 2x on 20k chunks for a word in a quarter of them). Exact with
/// ties: every row tied with the `k`-th is read (a run past the first
/// read by reads four times as deep, each a bounded sort, until one ends
/// past the run) and the run is cut by id.
///
/// Only the first `ids_for` rows, and every row whose bm25 equals another's
/// (the id orders them), have their id looked up; the rest keep `None`.
/// A lookup is a table read, and with 768-d embeddings in the rows each
/// row is a page of its own: a hybrid search ranking 100 rows deep needs
/// the ids of its first `k` only (see `hybrid::fuse`).
///
/// `None` when a looked-up rowid has no row (an index out of step): the
/// caller's join then ranks only rows that exist.
fn index_top_k(
    conn: &Connection,
    kind: HitKind,
    query: &str,
    k: usize,
    (ids_for, known): (usize, KnownIds<'_>),
) -> rusqlite::Result<Option<Vec<Ranked>>> {
    let (table, fts) = tables(kind);
    let ranked_sql =
        format!("SELECT bm25({fts}), rowid FROM {fts} WHERE {fts} MATCH ?1 ORDER BY 1 LIMIT ?2");
    let ranked = |limit: usize| -> rusqlite::Result<Vec<(f64, i64)>> {
        let mut stmt = conn.prepare_cached(&ranked_sql)?;
        let rows = stmt.query_map((query, limit as i64), |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    };
    let mut limit = k + TIE_SLACK.max(k);
    let mut rows = ranked(limit)?;
    while rows.len() == limit && rows[limit - 1].0 == rows[k - 1].0 {
        // The run of ties with the k-th goes past what was read: read four
        // times as far. Still a bounded sort; without a limit SQLite sorts
        // every match (18k rows for a word in 18% of 100k chunks). Each
        // read scores every match again, hence the first read's slack.
        limit *= 4;
        rows = ranked(limit)?;
    }
    if rows.len() > k {
        let kth = rows[k - 1].0;
        rows.retain(|r| r.0 <= kth);
    }
    let mut id_of = conn.prepare_cached(&format!("SELECT id FROM {table} WHERE rowid = ?1"))?;
    let mut found = Vec::with_capacity(rows.len());
    for (at, &(bm25, rowid)) in rows.iter().enumerate() {
        // SQLite returns the rows in bm25 order, so a row's ties are its
        // neighbours.
        let tied =
            (at > 0 && rows[at - 1].0 == bm25) || rows.get(at + 1).is_some_and(|r| r.0 == bm25);
        if at >= ids_for && !tied {
            found.push((bm25, rowid, None));
            continue;
        }
        if let Some(id) = known(kind, rowid) {
            found.push((bm25, rowid, Some(id)));
            continue;
        }
        match id_of.query_row([rowid], |r| r.get::<_, String>(0)) {
            Ok(id) => found.push((bm25, rowid, Some(id))),
            Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    // Rows without an id tie with none, so the id never decides for them.
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
    found.truncate(k);
    Ok(Some(found))
}

/// `(content table, FTS5 index)` of a kind of hit.
fn tables(kind: HitKind) -> (&'static str, &'static str) {
    match kind {
        HitKind::Chunk => ("mem_tree_chunks", "memtree_chunks_fts"),
        HitKind::Summary => ("mem_tree_summaries", "memtree_summaries_fts"),
    }
}

/// How [`excerpts`] finds a row's content: by rowid when the ranking read
/// it (one table lookup), else by id (the id index, then the table).
#[derive(Clone, Copy)]
enum RowKey<'a> {
    Rowid(i64),
    Id(&'a str),
}

/// The excerpts of these rows' content around the query's best match (`None`
/// for a row that does not match), in the order given.
///
/// `snippet()` scores windows by the query's hits in one row, with no
/// statistics of the rest of the index, so it gives the same excerpt in a
/// one-row-per-hit scratch table as in the store's index. There it costs
/// one tokenisation of each hit's text; on the store's index each hit is a
/// `MATCH` that seeks every query term's whole doclist (measured 50-100 µs
/// a hit for three common words over 20k chunks).
fn excerpts(
    conn: &Connection,
    kind: HitKind,
    query: &str,
    rows: &[RowKey<'_>],
) -> rusqlite::Result<Vec<Option<String>>> {
    let (table, _) = tables(kind);
    let mut contents = Vec::with_capacity(rows.len());
    {
        let mut by_rowid =
            conn.prepare_cached(&format!("SELECT content FROM {table} WHERE rowid = ?1"))?;
        let mut by_id =
            conn.prepare_cached(&format!("SELECT content FROM {table} WHERE id = ?1"))?;
        for key in rows {
            let mut found = match key {
                RowKey::Rowid(rowid) => by_rowid.query([rowid])?,
                RowKey::Id(id) => by_id.query([id])?,
            };
            let content: Option<String> = match found.next()? {
                Some(row) => row.get(0)?,
                None => None,
            };
            contents.push(content);
        }
    }
    with_scratch(|scratch| {
        let tx = scratch.unchecked_transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO words(rowid, content) VALUES (?1, ?2)")?;
            for (i, content) in contents.iter().enumerate() {
                if let Some(content) = content {
                    insert.execute((i as i64, content))?;
                }
            }
        }
        let mut out = vec![None; rows.len()];
        {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT rowid, snippet(words, 0, '', '', '…', {SNIPPET_TOKENS}) FROM words \
                 WHERE words MATCH ?1"
            ))?;
            let mut rows = stmt.query([query])?;
            while let Some(row) = rows.next()? {
                let at: i64 = row.get(0)?;
                out[at as usize] = Some(row.get::<_, Option<String>>(1)?.unwrap_or_default());
            }
        }
        tx.rollback()?;
        Ok(out)
    })
}

/// Sets the excerpt of every hit, chunks and summaries each from their own
/// table; `rowids[i]`, when given, is hit `i`'s rowid.
fn add_excerpts(
    conn: &Connection,
    query: &str,
    hits: &mut [Hit],
    rowids: Option<&[i64]>,
) -> rusqlite::Result<()> {
    for kind in [HitKind::Chunk, HitKind::Summary] {
        let at: Vec<usize> = (0..hits.len()).filter(|&i| hits[i].kind == kind).collect();
        if at.is_empty() {
            continue;
        }
        let keys: Vec<RowKey<'_>> = at
            .iter()
            .map(|&i| match rowids {
                Some(rowids) => RowKey::Rowid(rowids[i]),
                None => RowKey::Id(hits[i].id.as_str()),
            })
            .collect();
        let found = excerpts(conn, kind, query, &keys)?;
        for (i, excerpt) in at.into_iter().zip(found) {
            hits[i].snippet = excerpt;
        }
    }
    Ok(())
}

/// The FTS5 query a text search runs for `query` in `syntax` (`path`
/// names the store in a tokenizer failure, which is SQLite's, not the
/// query's).
pub(crate) fn match_query(query: &str, syntax: Syntax, path: &std::path::Path) -> Result<String> {
    let fts = match syntax {
        Syntax::Fts5 if query.trim().is_empty() => None,
        Syntax::Fts5 => Some(query.to_owned()),
        Syntax::Words => words_query(query).map_err(|e| {
            // Plain Error::sqlite: the tokenizer runs in a private in-memory
            // database, never on the store's files: a refusal noted for the
            // store is not this failure's cause.
            Error::sqlite("search_text: tokenise the query", path, e)
        })?,
    };
    fts.ok_or_else(|| {
        Error::invalid(
            "query",
            "holds no word to search for (empty or only punctuation)",
        )
    })
}

/// True for the error SQLite gives a query it cannot parse or run (FTS5
/// reports syntax errors, unknown columns and bad options as plain
/// `SQLITE_ERROR`); I/O, busy and corruption keep their own codes.
fn is_query_error(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::Unknown && f.extended_code == 1)
}

/// One row of a text ranking, best first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextRow {
    /// Chunk or summary.
    pub kind: HitKind,
    /// Its rowid in its table (the ranking's snapshot).
    pub rowid: i64,
    /// Its `bm25()` (lower is better).
    pub bm25: f64,
    /// Its id; `None` only past the ranking's `ids_for` (see [`rank_text`]).
    pub id: Option<String>,
}

/// A text ranking, best first, or SQLite's refusal of the query.
pub(crate) type Outcome = std::result::Result<Vec<TextRow>, String>;

/// The text ranking of `fts` inside the caller's read transaction (a hybrid
/// search runs it in the transaction its vectors are read in, so both lists
/// rank one snapshot): the best `k` over chunks (and live summaries), ties
/// by id. Every row among the first `ids_for`, and every row whose bm25
/// equals another's, carries its id; past `ids_for` an untied row may not
/// (its rank needs no id, and a hybrid search needs the ids of its first
/// `k` rows only). With summaries every id is read: a chunk and a summary
/// are ranked in two indexes, and their ties are found only after the
/// merge.
pub(crate) fn rank_text(
    conn: &Connection,
    fts: &str,
    k: i64,
    filter: &ChunkFilter,
    include_summaries: bool,
    ids_for: usize,
    known: KnownIds<'_>,
) -> rusqlite::Result<Outcome> {
    let k = k.clamp(1, MAX_LIST_LIMIT) as usize;
    let mut kinds = vec![HitKind::Chunk];
    let mut ids_for = ids_for;
    if include_summaries {
        kinds.push(HitKind::Summary);
        ids_for = k;
    }
    let mut found: Vec<TextRow> = Vec::new();
    for &kind in &kinds {
        match table_top_k(conn, kind, fts, filter, k, (ids_for, known)) {
            Ok(rows) => found.extend(rows.into_iter().map(|(bm25, rowid, id)| TextRow {
                kind,
                rowid,
                bm25,
                id,
            })),
            Err(e) if is_query_error(&e) => return Ok(Err(e.to_string())),
            Err(e) => return Err(e),
        }
    }
    found.sort_by(|a, b| {
        a.bm25
            .partial_cmp(&b.bm25)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.id.cmp(&b.id))
            .then(a.kind.cmp(&b.kind))
    });
    found.truncate(k);
    Ok(Ok(found))
}

/// `rows` (every id read) as hits, ranked in order, with their excerpts.
fn text_hits(conn: &Connection, fts: &str, rows: Vec<TextRow>) -> rusqlite::Result<Vec<Hit>> {
    let rowids: Vec<i64> = rows.iter().map(|r| r.rowid).collect();
    let mut hits: Vec<Hit> = rows
        .into_iter()
        .enumerate()
        .map(|(rank, row)| Hit {
            id: row
                .id
                .expect("rank_text reads the id of each of its first k rows"),
            kind: row.kind,
            score: -row.bm25 as f32,
            vector_rank: None,
            text_rank: Some(rank as u32 + 1),
            snippet: None,
        })
        .collect();
    add_excerpts(conn, fts, &mut hits, Some(&rowids))?;
    Ok(hits)
}

impl Store {
    /// The `k` chunks (and with `include_summaries` live summaries) whose
    /// content best matches `query`, by `bm25()` (score = −bm25, higher is
    /// better), ties broken by id; each hit carries its `text_rank` and an
    /// excerpt. `k` is clamped to 1..=10000.
    pub fn search_text(
        &self,
        query: &str,
        k: i64,
        syntax: Syntax,
        filter: &ChunkFilter,
        include_summaries: bool,
    ) -> Result<Vec<Hit>> {
        let fts = match_query(query, syntax, self.path())?;
        let outcome = self.read("search_text", |conn| {
            let tx = conn.unchecked_transaction()?;
            let k_rows = k.clamp(1, MAX_LIST_LIMIT) as usize;
            let ranked = rank_text(
                &tx,
                &fts,
                k,
                filter,
                include_summaries,
                k_rows,
                &no_known_ids,
            )?;
            let outcome = match ranked {
                Ok(rows) => Ok(text_hits(&tx, &fts, rows)?),
                Err(refused) => Err(refused),
            };
            tx.commit()?;
            Ok(outcome)
        })?;
        outcome.map_err(|message| Error::invalid("query", message))
    }

    /// Sets the excerpt of every hit whose content matches `fts`, in one
    /// read transaction (without it each content lookup would be a
    /// transaction of its own: a shared lock taken and released, and the
    /// file's change counter read, per hit).
    pub(crate) fn add_snippets(&self, fts: &str, hits: &mut [Hit]) -> Result<()> {
        // A read may be retried (busy), so it fills a copy each time.
        let filled = self.read("search: snippets", |conn| {
            let mut copy = hits.to_vec();
            let tx = conn.unchecked_transaction()?;
            add_excerpts(&tx, fts, &mut copy, None)?;
            tx.commit()?;
            Ok(copy)
        })?;
        hits.clone_from_slice(&filled);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
