//! A search's filters as the SQL that lists the matching rows' rowids,
//! through the indexes `list_chunks` walks (pre-filtering: a filter that
//! matches 1% of the rows costs 1% of a scan). Every kind of search (vector,
//! text) applies its filters through this one module.
//!
//! Summaries carry no source kind, source id or owner: a filter on any of
//! those matches no summary. `since`/`until` compare a summary's
//! `time_range_end_ms` (the newest moment it covers) as they compare a
//! chunk's `timestamp_ms`. Deleted summaries (`deleted = 1`) never match.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

use crate::chunks::ops::filter_terms;
use crate::chunks::ChunkFilter;

/// The rowids of one table's matching rows, as SQL and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct RowidQuery {
    /// `SELECT rowid FROM … WHERE …`.
    pub sql: String,
    /// The `?N` parameters, in order.
    pub values: Vec<Value>,
}

impl RowidQuery {
    /// The matching rowids, ascending.
    pub fn rowids(&self, conn: &Connection) -> rusqlite::Result<Vec<i64>> {
        let mut stmt = conn.prepare_cached(&self.sql)?;
        let rows = stmt.query_map(params_from_iter(&self.values), |r| r.get::<_, i64>(0))?;
        let mut out = rows.collect::<rusqlite::Result<Vec<i64>>>()?;
        out.sort_unstable();
        Ok(out)
    }
}

/// Which rows of a table a filter admits.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every row (no filter applies to this table).
    All,
    /// No row at all.
    Nothing,
    /// The rows this query lists.
    Rows(RowidQuery),
}

/// True when the filter restricts anything.
fn is_empty(filter: &ChunkFilter) -> bool {
    filter == &ChunkFilter::default()
}

/// The chunks a filter admits, through `list_chunks`'s own terms
/// ([`filter_terms`]): with a source id, a unary `+` keeps kind and owner off
/// the indexes, so the planner walks the source id's handful of rows.
pub fn chunk_scope(filter: &ChunkFilter) -> Scope {
    if is_empty(filter) {
        return Scope::All;
    }
    let (clauses, values) = filter_terms(filter, 1);
    Scope::Rows(RowidQuery {
        sql: format!(
            "SELECT rowid FROM mem_tree_chunks WHERE {}",
            clauses.join(" AND ")
        ),
        values,
    })
}

/// A filter's terms on `mem_tree_summaries` (see the module notes):
/// `deleted = 0` first, then the time range, their parameters numbered from
/// `?first`. `None` when the filter names a source kind, source id or owner,
/// which no summary has. The vector and text searches both filter summaries
/// through these terms.
pub(crate) fn summary_terms(
    filter: &ChunkFilter,
    first: usize,
) -> Option<(Vec<String>, Vec<Value>)> {
    if filter.source_kind.is_some() || filter.source_id.is_some() || filter.owner.is_some() {
        return None;
    }
    let mut clauses = vec!["deleted = 0".to_owned()];
    let mut values = Vec::new();
    let mut add = |clause: &str, value: Value| {
        values.push(value);
        clauses.push(format!("{clause} ?{}", first + values.len() - 1));
    };
    if let Some(since) = filter.since_ms {
        add("time_range_end_ms >=", Value::Integer(since));
    }
    if let Some(until) = filter.until_ms {
        add("time_range_end_ms <", Value::Integer(until));
    }
    Some((clauses, values))
}

/// The live summaries a filter admits (see the module notes).
pub fn summary_scope(filter: &ChunkFilter) -> Scope {
    let Some((clauses, values)) = summary_terms(filter, 1) else {
        return Scope::Nothing;
    };
    if values.is_empty() {
        // No time range: every live summary, and the cache holds live
        // summaries only (`deleted = 0`).
        return Scope::All;
    }
    Scope::Rows(RowidQuery {
        sql: format!(
            "SELECT rowid FROM mem_tree_summaries WHERE {}",
            clauses.join(" AND ")
        ),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceKind;

    #[test]
    fn no_filter_is_every_row_and_source_filters_exclude_summaries() {
        assert_eq!(chunk_scope(&ChunkFilter::default()), Scope::All);
        assert_eq!(summary_scope(&ChunkFilter::default()), Scope::All);
        let by_owner = ChunkFilter {
            owner: Some("u".into()),
            ..ChunkFilter::default()
        };
        assert_eq!(summary_scope(&by_owner), Scope::Nothing);
    }

    /// Every filter set walks an index (the plan names one), never a scan
    /// of the table.
    #[test]
    fn every_filter_set_is_answered_from_an_index() -> crate::Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = crate::Store::open_file(&dir.path().join("f.db"))?;
        let conn = Connection::open(store.path()).expect("open");
        let some = |k: bool, s: bool, o: bool, t: bool| ChunkFilter {
            source_kind: k.then_some(SourceKind::Chat),
            source_id: s.then(|| "s".to_owned()),
            owner: o.then(|| "o".to_owned()),
            since_ms: t.then_some(1),
            until_ms: t.then_some(9),
        };
        for bits in 1..16u8 {
            let filter = some(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
            let Scope::Rows(q) = chunk_scope(&filter) else {
                panic!("expected rows")
            };
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", q.sql))
                .expect("plan");
            let plan: Vec<String> = stmt
                .query_map(params_from_iter(&q.values), |r| r.get(3))
                .expect("plan")
                .collect::<rusqlite::Result<_>>()
                .expect("plan");
            assert!(
                plan.iter().any(|step| step.contains("USING")),
                "{filter:?}: {plan:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn chunk_terms_are_bound_in_order() {
        let filter = ChunkFilter {
            source_kind: Some(SourceKind::Chat),
            source_id: Some("s".into()),
            since_ms: Some(5),
            ..ChunkFilter::default()
        };
        let Scope::Rows(q) = chunk_scope(&filter) else {
            panic!("expected rows")
        };
        assert_eq!(
            q.sql,
            "SELECT rowid FROM mem_tree_chunks WHERE +source_kind = ?1 AND source_id = ?2 \
             AND timestamp_ms >= ?3"
        );
        assert_eq!(q.values.len(), 3);
    }
}
