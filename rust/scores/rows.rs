//! Score rows (`mem_tree_score`): upsert, read, count, and
//! [`Scores::replace_score`], which writes a score and swaps the node's
//! entities in ONE transaction. OpenHuman's `persist_score` commits the
//! score, the clearing and the re-index separately: a crash between them
//! leaves a score whose entities are gone.

use rusqlite::{params, OptionalExtension, Transaction};

use super::entities::{clear_in, index_in, validate_entities};
use super::model::{score_from_row, Entity, ScoreRow, SCORE_COLUMNS};
use crate::chunk::{check_time_ms, non_empty};
use crate::error::Result;
use crate::store::Store;

/// The scores, entity index and hotness counters stored in one database.
#[derive(Debug, Clone, Copy)]
pub struct Scores<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// The scores, entity index and hotness counters of this database.
    pub fn scores(&self) -> Scores<'_> {
        Scores { store: self }
    }
}

/// OpenHuman's upsert (`INSERT OR REPLACE`, its column order).
const UPSERT_SCORE_SQL: &str = "INSERT OR REPLACE INTO mem_tree_score (\
     chunk_id, total, token_count_signal, unique_words_signal, metadata_weight, \
     source_weight, interaction_weight, entity_density, llm_importance, \
     llm_importance_reason, dropped, reason, computed_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

fn upsert_in(tx: &Transaction<'_>, row: &ScoreRow) -> rusqlite::Result<()> {
    tx.prepare_cached(UPSERT_SCORE_SQL)?.execute(params![
        row.chunk_id,
        row.total,
        row.token_count_signal,
        row.unique_words_signal,
        row.metadata_weight,
        row.source_weight,
        row.interaction_weight,
        row.entity_density,
        row.llm_importance,
        row.llm_importance_reason,
        i64::from(row.dropped),
        row.reason,
        row.computed_at_ms,
    ])?;
    Ok(())
}

impl Scores<'_> {
    /// Writes a chunk's score row, replacing any earlier one.
    pub fn upsert_score(&self, row: &ScoreRow) -> Result<()> {
        row.validate()?;
        self.store.write("upsert_score", |tx| upsert_in(tx, row))
    }

    /// A chunk's score row.
    pub fn get_score(&self, chunk_id: &str) -> Result<Option<ScoreRow>> {
        self.store.read("get_score", |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SCORE_COLUMNS} FROM mem_tree_score WHERE chunk_id = ?1"
            ))?
            .query_row([chunk_id], score_from_row)
            .optional()
        })
    }

    /// How many score rows there are.
    pub fn count_scores(&self) -> Result<i64> {
        self.store.read("count_scores", |conn| {
            conn.prepare_cached("SELECT COUNT(*) FROM mem_tree_score")?
                .query_row([], |r| r.get(0))
        })
    }

    /// Writes `row` and replaces the entities indexed for its chunk with
    /// `entities` (node kind `"leaf"`, at `timestamp_ms`, in `tree_id`), all
    /// in ONE transaction: a crash or an I/O error leaves the old score with
    /// its old entities or the new score with the new ones. Returns how many
    /// entities were indexed.
    pub fn replace_score(
        &self,
        row: &ScoreRow,
        entities: &[Entity],
        timestamp_ms: i64,
        tree_id: Option<&str>,
    ) -> Result<usize> {
        row.validate()?;
        validate_entities(entities)?;
        check_time_ms("timestamp", timestamp_ms)?;
        if let Some(tree) = tree_id {
            non_empty("tree_id", tree)?;
        }
        self.store.write("replace_score", |tx| {
            upsert_in(tx, row)?;
            clear_in(tx, &row.chunk_id)?;
            index_in(tx, &row.chunk_id, "leaf", entities, timestamp_ms, tree_id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn temp_store() -> Result<(tempfile::TempDir, Store)> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        Ok((dir, store))
    }

    fn row(total: f64) -> ScoreRow {
        ScoreRow {
            chunk_id: "c1".into(),
            total,
            token_count_signal: 0.0,
            unique_words_signal: 0.0,
            metadata_weight: 0.0,
            source_weight: 0.0,
            interaction_weight: 0.0,
            entity_density: 0.0,
            llm_importance: 0.0,
            llm_importance_reason: None,
            dropped: false,
            reason: None,
            computed_at_ms: 1,
        }
    }

    fn entity(id: &str) -> Entity {
        Entity {
            entity_id: id.into(),
            entity_kind: "person".into(),
            surface: id.into(),
            score: 1.0,
            is_user: false,
        }
    }

    #[test]
    fn replace_score_swaps_entities_and_a_refused_one_changes_nothing() -> Result<()> {
        let (_dir, store) = temp_store()?;
        let scores = store.scores();
        scores.replace_score(
            &row(0.5),
            &[entity("person:a"), entity("person:b")],
            1,
            None,
        )?;
        scores.replace_score(&row(0.7), &[entity("person:c")], 2, Some("t"))?;
        assert_eq!(scores.node_entities("c1")?, ["person:c"]);
        assert_eq!(scores.get_score("c1")?.map(|r| r.total), Some(0.7));
        // A NaN anywhere is refused before the transaction.
        let bad = scores.replace_score(&row(f64::NAN), &[entity("person:d")], 3, None);
        assert!(matches!(bad, Err(Error::InvalidInput { .. })), "{bad:?}");
        assert_eq!(scores.node_entities("c1")?, ["person:c"]);
        assert_eq!(scores.get_score("c1")?.map(|r| r.total), Some(0.7));
        Ok(())
    }
}
