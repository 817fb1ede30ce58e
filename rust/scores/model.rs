//! The records of `mem_tree_score`, `mem_tree_entity_index` and
//! `mem_tree_entity_hotness` as OpenHuman's memory_tree stores them, their
//! columns and the checks every write runs before its transaction.

use crate::chunk::{check_time_ms, non_empty};
use crate::error::{Error, Result};

/// The entity kinds OpenHuman's `EntityKind::parse` reads back; any other
/// `entity_kind` would make its `lookup_entity` fail on the row.
pub const ENTITY_KINDS: [&str; 15] = [
    "email",
    "url",
    "handle",
    "hashtag",
    "person",
    "organization",
    "location",
    "event",
    "product",
    "datetime",
    "technology",
    "artifact",
    "quantity",
    "misc",
    "topic",
];

/// One chunk's score rationale: the 13 columns of `mem_tree_score`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// The chunk scored (primary key).
    pub chunk_id: String,
    /// The total score.
    pub total: f64,
    /// Signal: token count.
    pub token_count_signal: f64,
    /// Signal: unique words.
    pub unique_words_signal: f64,
    /// Signal: metadata weight.
    pub metadata_weight: f64,
    /// Signal: source weight.
    pub source_weight: f64,
    /// Signal: interaction.
    pub interaction_weight: f64,
    /// Signal: entity density.
    pub entity_density: f64,
    /// Signal: the LLM's importance rating (NULL reads as 0, as OpenHuman reads it).
    pub llm_importance: f64,
    /// The LLM's one-line reason.
    pub llm_importance_reason: Option<String>,
    /// Whether the chunk was dropped.
    pub dropped: bool,
    /// Why it was dropped or kept.
    pub reason: Option<String>,
    /// When it was scored, ms.
    pub computed_at_ms: i64,
}

/// The columns of a score row, in [`score_from_row`]'s order.
pub(crate) const SCORE_COLUMNS: &str = "chunk_id, total, token_count_signal, \
     unique_words_signal, metadata_weight, source_weight, interaction_weight, entity_density, \
     llm_importance, llm_importance_reason, dropped, reason, computed_at_ms";

/// A score from a row selected with [`SCORE_COLUMNS`].
pub(crate) fn score_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScoreRow> {
    Ok(ScoreRow {
        chunk_id: r.get(0)?,
        total: r.get(1)?,
        token_count_signal: r.get(2)?,
        unique_words_signal: r.get(3)?,
        metadata_weight: r.get(4)?,
        source_weight: r.get(5)?,
        interaction_weight: r.get(6)?,
        entity_density: r.get(7)?,
        llm_importance: r.get::<_, Option<f64>>(8)?.unwrap_or(0.0),
        llm_importance_reason: r.get(9)?,
        dropped: r.get::<_, i64>(10)? != 0,
        reason: r.get(11)?,
        computed_at_ms: r.get(12)?,
    })
}

/// A float that must be finite: NaN sorts nowhere and poisons every max.
pub(crate) fn finite(field: &str, value: f64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("must be finite, got {value}"),
        ))
    }
}

impl ScoreRow {
    /// Checks every field; runs before any write.
    pub fn validate(&self) -> Result<()> {
        non_empty("chunk_id", &self.chunk_id)?;
        for (field, value) in [
            ("total", self.total),
            ("token_count_signal", self.token_count_signal),
            ("unique_words_signal", self.unique_words_signal),
            ("metadata_weight", self.metadata_weight),
            ("source_weight", self.source_weight),
            ("interaction_weight", self.interaction_weight),
            ("entity_density", self.entity_density),
            ("llm_importance", self.llm_importance),
        ] {
            finite(field, value)?;
        }
        check_time_ms("computed_at", self.computed_at_ms)
    }
}

/// One entity to index against a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Canonical id (`"<kind>:<value>"`).
    pub entity_id: String,
    /// One of [`ENTITY_KINDS`].
    pub entity_kind: String,
    /// The text as it appeared.
    pub surface: String,
    /// Confidence.
    pub score: f64,
    /// Whether the entity is the user.
    pub is_user: bool,
}

impl Entity {
    /// Checks every field; `at` prefixes the field names (`"entities[2]."`).
    pub fn validate(&self, at: &str) -> Result<()> {
        non_empty(&format!("{at}entity_id"), &self.entity_id)?;
        if !ENTITY_KINDS.contains(&self.entity_kind.as_str()) {
            return Err(Error::invalid(
                format!("{at}entity_kind"),
                format!(
                    "unknown entity kind {:?} (expected one of {})",
                    self.entity_kind,
                    ENTITY_KINDS.join(", ")
                ),
            ));
        }
        finite(&format!("{at}score"), self.score)
    }
}

/// One row of `mem_tree_entity_index`: an entity found in a node.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityHit {
    /// Canonical id.
    pub entity_id: String,
    /// The chunk or summary it was found in.
    pub node_id: String,
    /// `"leaf"` or `"summary"`.
    pub node_kind: String,
    /// Its kind.
    pub entity_kind: String,
    /// The text as it appeared.
    pub surface: String,
    /// Confidence.
    pub score: f64,
    /// The node's time, ms.
    pub timestamp_ms: i64,
    /// The tree the node belongs to.
    pub tree_id: Option<String>,
    /// Whether the entity is the user.
    pub is_user: bool,
}

/// The columns of an index row, in [`hit_from_row`]'s order.
pub(crate) const HIT_COLUMNS: &str =
    "entity_id, node_id, node_kind, entity_kind, surface, score, timestamp_ms, tree_id, is_user";

/// A hit from a row selected with [`HIT_COLUMNS`].
pub(crate) fn hit_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntityHit> {
    Ok(EntityHit {
        entity_id: r.get(0)?,
        node_id: r.get(1)?,
        node_kind: r.get(2)?,
        entity_kind: r.get(3)?,
        surface: r.get(4)?,
        score: r.get(5)?,
        timestamp_ms: r.get(6)?,
        tree_id: r.get(7)?,
        is_user: r.get::<_, i64>(8)? != 0,
    })
}

/// One entity's counters (`mem_tree_entity_hotness`), which decide when a
/// topic tree is worth materialising.
#[derive(Debug, Clone, PartialEq)]
pub struct Hotness {
    /// Canonical id (primary key).
    pub entity_id: String,
    /// Mentions over the last 30 days.
    pub mention_count_30d: i64,
    /// Distinct trees (sources) it was seen in.
    pub distinct_sources: i64,
    /// Last mention, ms.
    pub last_seen_ms: Option<i64>,
    /// Retrieval hits over the last 30 days.
    pub query_hits_30d: i64,
    /// Graph centrality.
    pub graph_centrality: Option<f64>,
    /// Ingests touching it since the last full recompute.
    pub ingests_since_check: i64,
    /// The last computed hotness.
    pub last_hotness: Option<f64>,
    /// Last update, ms.
    pub last_updated_ms: i64,
}

/// The columns of a hotness row, in [`hotness_from_row`]'s order.
pub(crate) const HOTNESS_COLUMNS: &str = "entity_id, mention_count_30d, distinct_sources, \
     last_seen_ms, query_hits_30d, graph_centrality, ingests_since_check, last_hotness, \
     last_updated_ms";

/// Counters from a row selected with [`HOTNESS_COLUMNS`].
pub(crate) fn hotness_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Hotness> {
    Ok(Hotness {
        entity_id: r.get(0)?,
        mention_count_30d: r.get(1)?,
        distinct_sources: r.get(2)?,
        last_seen_ms: r.get(3)?,
        query_hits_30d: r.get(4)?,
        graph_centrality: r.get(5)?,
        ingests_since_check: r.get(6)?,
        last_hotness: r.get(7)?,
        last_updated_ms: r.get(8)?,
    })
}

/// OpenHuman's counters read back as `u32`: anything else would not.
fn counter(field: &str, n: i64) -> Result<()> {
    if (0..=i64::from(u32::MAX)).contains(&n) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("must be between 0 and {}, got {n}", u32::MAX),
        ))
    }
}

impl Hotness {
    /// A zero row for an entity never seen, stamped `now_ms` (not stored).
    pub fn fresh(entity_id: &str, now_ms: i64) -> Self {
        Hotness {
            entity_id: entity_id.to_owned(),
            mention_count_30d: 0,
            distinct_sources: 0,
            last_seen_ms: None,
            query_hits_30d: 0,
            graph_centrality: None,
            ingests_since_check: 0,
            last_hotness: None,
            last_updated_ms: now_ms,
        }
    }

    /// Checks every field; runs before any write.
    pub fn validate(&self) -> Result<()> {
        non_empty("entity_id", &self.entity_id)?;
        counter("mention_count_30d", self.mention_count_30d)?;
        counter("distinct_sources", self.distinct_sources)?;
        counter("query_hits_30d", self.query_hits_30d)?;
        counter("ingests_since_check", self.ingests_since_check)?;
        if let Some(ms) = self.last_seen_ms {
            check_time_ms("last_seen", ms)?;
        }
        if let Some(v) = self.graph_centrality {
            finite("graph_centrality", v)?;
        }
        if let Some(v) = self.last_hotness {
            finite("last_hotness", v)?;
        }
        check_time_ms("last_updated", self.last_updated_ms)
    }
}
