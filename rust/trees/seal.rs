//! The seal: a full buffer becomes one summary a level up, in ONE
//! transaction that inserts the summary, indexes its entities, links its
//! children to it, clears the buffer, appends the summary to the parent
//! level's buffer, enqueues the follow-up jobs and moves the tree's root and
//! max level (OpenHuman's `bucket_seal::seal_one_level`, whose write
//! transaction this is).
//!
//! The seal is optimistic: the caller reads the buffer, runs its (slow,
//! LLM) summariser outside any lock, and hands back the buffer version it
//! read. If any write reached the buffer meanwhile, nothing is written and
//! [`Error::StaleBuffer`] says so: the caller reads again and re-summarises.

use rusqlite::{params, OptionalExtension, Transaction};

use super::buffers::{add_items, buffer_in, store_buffer_in};
use super::model::{
    check_count, check_ids, check_level, check_score, tree_from_row, Buffer, Summary, TreeKind,
    MAX_LEVEL, TREE_COLUMNS,
};
use super::registry::Trees;
use super::summaries::insert_summary_in;
use crate::chunk::{check_time_ms, non_empty, validate_content_pointers, validate_embedding};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::job_kinds::{NodeRef, Payload};
use crate::jobs::NewJob;

/// What the caller's summariser produced for one buffer, and the version
/// of the buffer it summarised.
#[derive(Debug, Clone, Default)]
pub struct Seal {
    /// The tree.
    pub tree_id: String,
    /// The level of the buffer to seal (the summary goes one level up).
    pub level: i64,
    /// [`Buffer::version`] as the caller read it.
    pub version: String,
    /// The summary's id; `summary:<ms>:L<level>-<8 hex>` (OpenHuman's form)
    /// when `None`.
    pub id: Option<String>,
    /// The summary text.
    pub content: String,
    /// Its tokens.
    pub token_count: i64,
    /// Canonical entity ids, indexed in `mem_tree_entity_index`.
    pub entities: Vec<String>,
    /// Topic labels.
    pub topics: Vec<String>,
    /// `(start, end)` ms; the children's envelope when `None`.
    pub time_range_ms: Option<(i64, i64)>,
    /// The score; the children's highest (at least 0) when `None`.
    pub score: Option<f64>,
    /// Seal time, ms; now when `None`.
    pub sealed_at_ms: Option<i64>,
    /// The summary's embedding.
    pub embedding: Option<Vec<f32>>,
    /// Relative path of the full text on disk.
    pub content_path: Option<String>,
    /// SHA-256 of that file.
    pub content_sha256: Option<String>,
    /// Whether to enqueue OpenHuman's follow-up jobs (`seal` of the parent
    /// level when its gate is met, `topic_route` for a source tree).
    pub enqueue_follow_ups: bool,
}

impl Seal {
    /// Checks everything that can be checked without reading the database.
    pub fn validate(&self) -> Result<()> {
        non_empty("tree_id", &self.tree_id)?;
        // The summary lands one level up, which must exist.
        check_level("level", self.level, 0)?;
        if self.level >= MAX_LEVEL {
            return Err(Error::invalid(
                "level",
                format!("a buffer at level {MAX_LEVEL} cannot be sealed (no level above it)"),
            ));
        }
        non_empty("version", &self.version)?;
        if let Some(id) = &self.id {
            non_empty("id", id)?;
        }
        check_count("token_count", self.token_count)?;
        check_ids("entities", &self.entities)?;
        if let Some((start, end)) = self.time_range_ms {
            check_time_ms("time_range_start", start)?;
            check_time_ms("time_range_end", end)?;
            if end < start {
                return Err(Error::invalid(
                    "time_range_end",
                    "must not be before time_range_start",
                ));
            }
        }
        if let Some(score) = self.score {
            check_score("score", score)?;
        }
        if let Some(ms) = self.sealed_at_ms {
            check_time_ms("sealed_at", ms)?;
        }
        if let Some(values) = &self.embedding {
            validate_embedding(values, "embedding")?;
        }
        validate_content_pointers(
            self.content_path.as_deref(),
            self.content_sha256.as_deref(),
            "",
        )
    }
}

/// OpenHuman's summary-entity indexing: `entity_kind` is the id's prefix
/// before the first `:` (the whole id without one), `surface` the id itself,
/// the summary's score and seal time on every row.
const INDEX_SUMMARY_ENTITY_SQL: &str = "INSERT OR REPLACE INTO mem_tree_entity_index (\
     entity_id, node_id, node_kind, entity_kind, surface, score, timestamp_ms, tree_id) \
     VALUES (?1, ?2, 'summary', ?3, ?1, ?4, ?5, ?6)";

/// The children's time envelope, highest score and how many exist.
/// Children of a level-0 buffer are chunks (scored in `mem_tree_score`,
/// 0 when unscored); above, summaries.
fn children_envelope(
    tx: &Transaction<'_>,
    level: i64,
    child_ids_json: &str,
) -> rusqlite::Result<(Option<i64>, Option<i64>, f64, i64)> {
    let sql = if level == 0 {
        "SELECT min(c.time_range_start_ms), max(c.time_range_end_ms), \
         max(0.0, coalesce(max(s.total), 0.0)), count(*) \
         FROM mem_tree_chunks c LEFT JOIN mem_tree_score s ON s.chunk_id = c.id \
         WHERE c.id IN (SELECT value FROM json_each(?1))"
    } else {
        "SELECT min(time_range_start_ms), max(time_range_end_ms), \
         max(0.0, coalesce(max(score), 0.0)), count(*) \
         FROM mem_tree_summaries WHERE id IN (SELECT value FROM json_each(?1))"
    };
    tx.prepare_cached(sql)?.query_row([child_ids_json], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
}

/// OpenHuman's follow-up seal of the parent level.
fn seal_job(tree_id: &str, level: i64) -> NewJob {
    Payload::Seal {
        tree_id: tree_id.to_owned(),
        level,
        force_now_ms: None,
    }
    .new_job()
}

/// OpenHuman's routing of a new source-tree summary to the topic trees.
fn topic_route_summary_job(summary_id: &str) -> NewJob {
    Payload::TopicRoute {
        node: NodeRef::Summary(summary_id.to_owned()),
    }
    .new_job()
}

/// The transaction of one seal; `Ok(Err(_))` refuses it (rolled back).
fn seal_in(tx: &Transaction<'_>, seal: &Seal, now: i64) -> rusqlite::Result<Result<Summary>> {
    let tree = tx
        .prepare_cached(&format!(
            "SELECT {TREE_COLUMNS} FROM mem_tree_trees WHERE id = ?1"
        ))?
        .query_row([&seal.tree_id], tree_from_row)
        .optional()?;
    let Some(tree) = tree else {
        return Ok(Err(Error::invalid(
            "tree_id",
            format!("no tree {:?}", seal.tree_id),
        )));
    };
    let buf = buffer_in(tx, &seal.tree_id, seal.level)?;
    let found = buf.version();
    if found != seal.version {
        return Ok(Err(Error::StaleBuffer {
            tree_id: seal.tree_id.clone(),
            level: seal.level,
            expected: seal.version.clone(),
            found,
        }));
    }
    if buf.is_empty() {
        return Ok(Err(Error::invalid(
            "level",
            format!(
                "the buffer of {:?} at level {} is empty: nothing to seal",
                seal.tree_id, seal.level
            ),
        )));
    }
    let child_ids_json = super::model::list_to_json(&buf.item_ids);
    let (start, end, children_score, present) = children_envelope(tx, seal.level, &child_ids_json)?;
    let (start, end) = match (seal.time_range_ms, start, end) {
        (Some(range), _, _) => range,
        (None, Some(start), Some(end)) if present > 0 => (start, end),
        _ => {
            return Ok(Err(Error::invalid(
                "time_range",
                format!(
                    "none of the {} children of the buffer exists, so the time range \
                     cannot be derived: pass it",
                    buf.item_ids.len()
                ),
            )))
        }
    };
    let target = seal.level + 1;
    let sealed_at = seal.sealed_at_ms.unwrap_or(now);
    let id = match &seal.id {
        Some(id) => id.clone(),
        None => tx
            .prepare_cached(
                "SELECT printf('summary:%013d:L%d-%08x', ?1, ?2, abs(random()) % 4294967296)",
            )?
            .query_row(params![sealed_at, target], |r| r.get(0))?,
    };
    let summary = Summary {
        id,
        tree_id: tree.id.clone(),
        tree_kind: tree.kind,
        level: target,
        parent_id: None,
        child_ids: buf.item_ids.clone(),
        content: seal.content.clone(),
        token_count: seal.token_count,
        entities: seal.entities.clone(),
        topics: seal.topics.clone(),
        time_range_start_ms: start,
        time_range_end_ms: end,
        score: seal.score.unwrap_or(children_score),
        sealed_at_ms: sealed_at,
        deleted: false,
        embedding: seal.embedding.clone(),
        content_path: seal.content_path.clone(),
        content_sha256: seal.content_sha256.clone(),
    };
    if let Err(e) = summary.validate() {
        return Ok(Err(e));
    }
    if !insert_summary_in(tx, &summary)? {
        return Ok(Err(Error::invalid(
            "id",
            format!("a summary {:?} exists already", summary.id),
        )));
    }
    {
        let mut index = tx.prepare_cached(INDEX_SUMMARY_ENTITY_SQL)?;
        for entity in &summary.entities {
            let kind = entity.split_once(':').map_or(entity.as_str(), |(k, _)| k);
            index.execute(params![
                entity,
                summary.id,
                kind,
                summary.score,
                sealed_at,
                tree.id
            ])?;
        }
    }
    let backlink = if seal.level == 0 {
        "UPDATE mem_tree_chunks SET parent_summary_id = ?1 \
         WHERE id IN (SELECT value FROM json_each(?2)) AND parent_summary_id IS NULL"
    } else {
        "UPDATE mem_tree_summaries SET parent_id = ?1 \
         WHERE id IN (SELECT value FROM json_each(?2)) AND parent_id IS NULL"
    };
    tx.prepare_cached(backlink)?
        .execute(params![summary.id, child_ids_json])?;
    store_buffer_in(
        tx,
        &Buffer {
            updated_at_ms: buf.updated_at_ms,
            ..Buffer::empty(&tree.id, seal.level)
        },
    )?;
    let mut parent = buffer_in(tx, &tree.id, target)?;
    add_items(
        &mut parent,
        &[(summary.id.clone(), summary.token_count)],
        start,
    );
    let parent = store_buffer_in(tx, &parent)?;
    if seal.enqueue_follow_ups {
        let mut jobs = Vec::with_capacity(2);
        if parent.should_seal() && target < MAX_LEVEL {
            jobs.push(seal_job(&tree.id, target));
        }
        if tree.kind == TreeKind::Source {
            jobs.push(topic_route_summary_job(&summary.id));
        }
        crate::jobs::enqueue_in(tx, &jobs, now)?;
    }
    if target > tree.max_level {
        tx.prepare_cached(
            "UPDATE mem_tree_trees SET root_id = ?1, max_level = ?2, last_sealed_at_ms = ?3 \
             WHERE id = ?4",
        )?
        .execute(params![summary.id, target, sealed_at, tree.id])?;
    } else {
        tx.prepare_cached("UPDATE mem_tree_trees SET last_sealed_at_ms = ?1 WHERE id = ?2")?
            .execute(params![sealed_at, tree.id])?;
    }
    Ok(Ok(summary))
}

impl Trees<'_> {
    /// Seals the buffer at `(seal.tree_id, seal.level)` into one summary
    /// at the level above, in one transaction (see the module doc), if the
    /// buffer is still at `seal.version`; otherwise nothing is written and
    /// the error is [`Error::StaleBuffer`]. Returns the new summary.
    pub fn seal(&self, seal: &Seal) -> Result<Summary> {
        seal.validate()?;
        let sealed = self
            .store
            .write_checked("seal", |tx| seal_in(tx, seal, now_ms()))??;
        if seal.enqueue_follow_ups {
            crate::jobs::notify_enqueued();
        }
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::trees::{Tree, TreeStatus};

    fn temp_store() -> Result<(tempfile::TempDir, Store)> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        Ok((dir, store))
    }

    fn seal_of(tree_id: &str, version: String) -> Seal {
        Seal {
            tree_id: tree_id.into(),
            level: 0,
            version,
            content: "summary".into(),
            time_range_ms: Some((1, 2)),
            entities: vec!["person:alice".into()],
            enqueue_follow_ups: true,
            ..Seal::default()
        }
    }

    #[test]
    fn a_seal_moves_the_buffer_up_and_a_stale_version_writes_nothing() -> Result<()> {
        let (_dir, store) = temp_store()?;
        let trees = store.trees();
        trees.create(&Tree {
            id: "t".into(),
            kind: TreeKind::Source,
            scope: "s".into(),
            root_id: None,
            max_level: 0,
            status: TreeStatus::Active,
            created_at_ms: 0,
            last_sealed_at_ms: None,
        })?;
        let read = trees.append_to_buffer("t", 0, &["a".into(), "b".into()], &[1, 2], 0)?;
        let sealed = trees.seal(&seal_of("t", read.version()))?;
        assert_eq!(sealed.child_ids, ["a", "b"]);
        assert!(trees.get_buffer("t", 0)?.is_empty());
        assert_eq!(
            trees.get_buffer("t", 1)?.item_ids,
            std::slice::from_ref(&sealed.id)
        );
        let tree = trees.get("t")?.expect("the tree exists");
        assert_eq!((tree.root_id, tree.max_level), (Some(sealed.id.clone()), 1));
        let jobs = store.jobs().list(None, None, 10)?;
        assert_eq!(
            jobs.iter()
                .map(|j| j.dedupe_key.clone().unwrap_or_default())
                .collect::<Vec<_>>(),
            [format!("topic_route:summary:{}", sealed.id)]
        );
        // The version read before the seal is stale now: refused, unchanged.
        let again = trees.seal(&Seal {
            id: Some("other".into()),
            ..seal_of("t", read.version())
        });
        assert!(matches!(again, Err(Error::StaleBuffer { .. })), "{again:?}");
        assert_eq!(trees.get_summary("other")?, None);
        assert_eq!(trees.count_summaries("t")?, 1);
        Ok(())
    }
}
