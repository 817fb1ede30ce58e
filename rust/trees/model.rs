//! The records of a summary tree as OpenHuman's memory_tree stores them in
//! `mem_tree_trees`, `mem_tree_summaries` and `mem_tree_buffers`: tree kinds
//! and statuses, the three row types, the columns they are read with and the
//! checks every write runs before its transaction.
//!
//! Lists (`child_ids_json`, `entities_json`, `topics_json`, `item_ids_json`)
//! are compact JSON arrays of strings, as serde writes them; a stored list
//! that is not one is a read error, never an empty list.

use crate::chunks::record::{
    check_time_ms, non_empty, validate_content_pointers, validate_embedding,
};
use crate::error::{Error, Result};

/// The highest level a tree reaches: OpenHuman's cascade stops after 32
/// levels, so no buffer above it is ever written and no summary above it
/// is ever sealed.
pub const MAX_LEVEL: i64 = 32;

/// Token sum at which a level-0 buffer is due for a seal (OpenHuman's
/// `INPUT_TOKEN_BUDGET`).
pub const INPUT_TOKEN_BUDGET: i64 = 50_000;

/// Item count at which any buffer is due for a seal (OpenHuman's
/// `SUMMARY_FANOUT`).
pub const SUMMARY_FANOUT: usize = 10;

/// What a tree groups: one ingest source, one topic (entity), or the
/// cross-source daily digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TreeKind {
    /// One tree per ingest source.
    Source,
    /// One tree per entity or topic.
    Topic,
    /// The cross-source digest tree.
    Global,
}

impl TreeKind {
    /// Every kind, in OpenHuman's order.
    pub const ALL: [TreeKind; 3] = [TreeKind::Source, TreeKind::Topic, TreeKind::Global];

    /// The stored form (`"source"`, `"topic"`, `"global"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TreeKind::Source => "source",
            TreeKind::Topic => "topic",
            TreeKind::Global => "global",
        }
    }

    /// The kind stored as `value`; an unknown one is an input error naming `field`.
    pub fn parse_field(value: &str, field: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    format!("unknown tree kind {value:?} (expected source, topic or global)"),
                )
            })
    }
}

/// Whether a tree still takes new leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TreeStatus {
    /// Takes new leaves.
    Active,
    /// Kept and readable, takes no new leaves.
    Archived,
}

impl TreeStatus {
    /// The stored form (`"active"`, `"archived"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TreeStatus::Active => "active",
            TreeStatus::Archived => "archived",
        }
    }

    /// The status stored as `value`; an unknown one is an input error naming `field`.
    pub fn parse_field(value: &str, field: &str) -> Result<Self> {
        match value {
            "active" => Ok(TreeStatus::Active),
            "archived" => Ok(TreeStatus::Archived),
            other => Err(Error::invalid(
                field,
                format!("unknown tree status {other:?} (expected active or archived)"),
            )),
        }
    }
}

/// One row of `mem_tree_trees`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// Primary key (`"<kind>:<uuid>"` when memtree makes it).
    pub id: String,
    /// What the tree groups.
    pub kind: TreeKind,
    /// What it covers (a source id, an entity id, `"global"`); unique per kind.
    pub scope: String,
    /// The current top summary; `None` until the first seal.
    pub root_id: Option<String>,
    /// The highest level ever sealed.
    pub max_level: i64,
    /// Active or archived.
    pub status: TreeStatus,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Time of the last seal, ms since the epoch.
    pub last_sealed_at_ms: Option<i64>,
}

/// One row of `mem_tree_summaries`: its 18 columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Primary key.
    pub id: String,
    /// The tree it belongs to.
    pub tree_id: String,
    /// That tree's kind, copied at seal time.
    pub tree_kind: TreeKind,
    /// 1 over chunks, 2 over level-1 summaries, and so on.
    pub level: i64,
    /// The summary one level up that sealed over this one.
    pub parent_id: Option<String>,
    /// The chunk (level 1) or summary ids it summarises, in buffer order.
    pub child_ids: Vec<String>,
    /// The summary text (a ≤ 500-character preview when `content_path` is set).
    pub content: String,
    /// Tokens of `content`.
    pub token_count: i64,
    /// Canonical entity ids (`"<kind>:<value>"`).
    pub entities: Vec<String>,
    /// Topic labels.
    pub topics: Vec<String>,
    /// Oldest child time, ms.
    pub time_range_start_ms: i64,
    /// Newest child time, ms.
    pub time_range_end_ms: i64,
    /// Max of the children's scores at seal time.
    pub score: f64,
    /// Seal time, ms.
    pub sealed_at_ms: i64,
    /// Soft-delete flag.
    pub deleted: bool,
    /// Little-endian `f32` BLOB in the file.
    pub embedding: Option<Vec<f32>>,
    /// Relative path of the full text on disk.
    pub content_path: Option<String>,
    /// SHA-256 of that file.
    pub content_sha256: Option<String>,
}

/// One unsealed frontier, a row of `mem_tree_buffers` (or the empty buffer
/// a missing row stands for).
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    /// The tree.
    pub tree_id: String,
    /// Its level: 0 holds chunk ids, level n holds level-n summary ids.
    pub level: i64,
    /// The pending item ids, oldest append first.
    pub item_ids: Vec<String>,
    /// Sum of the items' tokens.
    pub token_sum: i64,
    /// Time of the oldest item, ms; `None` when empty.
    pub oldest_at_ms: Option<i64>,
    /// Last write, ms; `None` when there is no row.
    pub updated_at_ms: Option<i64>,
}

impl Buffer {
    /// The empty buffer at `(tree_id, level)`.
    pub fn empty(tree_id: &str, level: i64) -> Self {
        Buffer {
            tree_id: tree_id.to_owned(),
            level,
            item_ids: Vec::new(),
            token_sum: 0,
            oldest_at_ms: None,
            updated_at_ms: None,
        }
    }

    /// Whether no item is pending.
    pub fn is_empty(&self) -> bool {
        self.item_ids.is_empty()
    }

    /// OpenHuman's seal gate: level 0 seals at [`INPUT_TOKEN_BUDGET`] tokens
    /// or [`SUMMARY_FANOUT`] items, higher levels at [`SUMMARY_FANOUT`] items.
    pub fn should_seal(&self) -> bool {
        if self.is_empty() {
            return false;
        }
        let full = self.item_ids.len() >= SUMMARY_FANOUT;
        if self.level == 0 {
            full || self.token_sum >= INPUT_TOKEN_BUDGET
        } else {
            full
        }
    }

    /// The version a reader hands back to [`crate::trees::Trees::seal`]: the
    /// row's write time and a hash of its whole content, so any write in
    /// between (memtree's, which always advance `updated_at_ms`, or another
    /// program's) changes it.
    pub fn version(&self) -> String {
        // FNV-1a: stable across builds and platforms (std's hasher is not
        // promised to be), and collisions only matter together with an
        // equal write time.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
            hash ^= 0xff;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        };
        for id in &self.item_ids {
            feed(id.as_bytes());
        }
        feed(&self.token_sum.to_le_bytes());
        feed(&self.oldest_at_ms.unwrap_or(i64::MIN).to_le_bytes());
        format!("{}-{hash:016x}", self.updated_at_ms.unwrap_or(0))
    }
}

/// The columns of a tree row, in [`tree_from_row`]'s order.
pub(crate) const TREE_COLUMNS: &str =
    "id, kind, scope, root_id, max_level, status, created_at_ms, last_sealed_at_ms";

/// The 18 columns of a summary row, in [`summary_from_row`]'s order.
pub(crate) const SUMMARY_COLUMNS: &str = "id, tree_id, tree_kind, level, parent_id, \
     child_ids_json, content, token_count, entities_json, topics_json, \
     time_range_start_ms, time_range_end_ms, score, sealed_at_ms, deleted, embedding, \
     content_path, content_sha256";

/// The columns of a buffer row, in [`buffer_from_row`]'s order.
pub(crate) const BUFFER_COLUMNS: &str =
    "tree_id, level, item_ids_json, token_sum, oldest_at_ms, updated_at_ms";

/// A stored value that does not parse: a read error, never a silent default.
pub(crate) fn malformed(column: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, message.into())
}

/// A list column as compact JSON (`["a","b"]`), serde's form.
pub(crate) fn list_to_json(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// A list column read back; anything but a JSON array of strings is an error.
pub(crate) fn list_from_json(text: &str, column: usize) -> rusqlite::Result<Vec<String>> {
    // The forms every row memtree or OpenHuman writes has: an empty list
    // without a parser, a list of strings parsed straight into strings.
    // Only what these refuse pays for a second parse that says what is wrong.
    if text == "[]" {
        return Ok(Vec::new());
    }
    if let Ok(items) = serde_json::from_str::<Vec<String>>(text) {
        return Ok(items);
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| malformed(column, format!("not JSON: {e}")))?;
    let serde_json::Value::Array(items) = value else {
        return Err(malformed(column, format!("not a JSON list: {text}")));
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            other => Err(malformed(
                column,
                format!("not a string in a list: {other}"),
            )),
        })
        .collect()
}

/// A TEXT column borrowed from the row, with no copy (the lists and kinds
/// are parsed from it, never kept); any other type is the error
/// `get::<String>` gives.
fn text_at<'r>(r: &'r rusqlite::Row<'_>, column: usize) -> rusqlite::Result<&'r str> {
    match r.get_ref(column)? {
        rusqlite::types::ValueRef::Text(bytes) => {
            std::str::from_utf8(bytes).map_err(|e| rusqlite::Error::Utf8Error(column, e))
        }
        other => Err(rusqlite::Error::InvalidColumnType(
            column,
            r.as_ref().column_name(column)?.to_owned(),
            other.data_type(),
        )),
    }
}

fn parse_column<T>(
    value: &str,
    column: usize,
    parse: fn(&str, &str) -> Result<T>,
) -> rusqlite::Result<T> {
    parse(value, "").map_err(|e| malformed(column, e.to_string()))
}

/// A tree from a row selected with [`TREE_COLUMNS`].
pub(crate) fn tree_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tree> {
    Ok(Tree {
        id: r.get(0)?,
        kind: parse_column(text_at(r, 1)?, 1, TreeKind::parse_field)?,
        scope: r.get(2)?,
        root_id: r.get(3)?,
        max_level: r.get(4)?,
        status: parse_column(text_at(r, 5)?, 5, TreeStatus::parse_field)?,
        created_at_ms: r.get(6)?,
        last_sealed_at_ms: r.get(7)?,
    })
}

/// A summary from a row whose first columns are [`SUMMARY_COLUMNS`] (a
/// walk's rows carry one more, after them).
pub(crate) fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    let embedding = match r.get_ref(15)?.as_blob_or_null()? {
        None => None,
        Some(blob) => Some(
            crate::chunks::record::embedding_from_blob(blob).ok_or_else(|| {
                malformed(
                    15,
                    format!(
                        "embedding blob of {} bytes is not a float32 vector",
                        blob.len()
                    ),
                )
            })?,
        ),
    };
    Ok(Summary {
        id: r.get(0)?,
        tree_id: r.get(1)?,
        tree_kind: parse_column(text_at(r, 2)?, 2, TreeKind::parse_field)?,
        level: r.get(3)?,
        parent_id: r.get(4)?,
        child_ids: list_from_json(text_at(r, 5)?, 5)?,
        content: r.get(6)?,
        token_count: r.get(7)?,
        entities: list_from_json(text_at(r, 8)?, 8)?,
        topics: list_from_json(text_at(r, 9)?, 9)?,
        time_range_start_ms: r.get(10)?,
        time_range_end_ms: r.get(11)?,
        score: r.get(12)?,
        sealed_at_ms: r.get(13)?,
        deleted: r.get::<_, i64>(14)? != 0,
        embedding,
        content_path: r.get(16)?,
        content_sha256: r.get(17)?,
    })
}

/// A buffer from a row selected with [`BUFFER_COLUMNS`].
pub(crate) fn buffer_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Buffer> {
    Ok(Buffer {
        tree_id: r.get(0)?,
        level: r.get(1)?,
        item_ids: list_from_json(text_at(r, 2)?, 2)?,
        token_sum: r.get(3)?,
        oldest_at_ms: r.get(4)?,
        updated_at_ms: r.get(5)?,
    })
}

/// A level between `min` and [`MAX_LEVEL`].
pub(crate) fn check_level(field: &str, level: i64, min: i64) -> Result<()> {
    if (min..=MAX_LEVEL).contains(&level) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("must be between {min} and {MAX_LEVEL}, got {level}"),
        ))
    }
}

/// Every id in a list non-empty.
pub(crate) fn check_ids(field: &str, ids: &[String]) -> Result<()> {
    ids.iter()
        .enumerate()
        .try_for_each(|(i, id)| non_empty(&format!("{field}[{i}]"), id))
}

/// A finite score (NaN would sort nowhere and poison every max).
pub(crate) fn check_score(field: &str, score: f64) -> Result<()> {
    if score.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("must be finite, got {score}"),
        ))
    }
}

/// A count that cannot be negative.
pub(crate) fn check_count(field: &str, n: i64) -> Result<()> {
    if n >= 0 {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("must be >= 0, got {n}")))
    }
}

impl Tree {
    /// Checks every field; runs before any write.
    pub fn validate(&self) -> Result<()> {
        non_empty("id", &self.id)?;
        non_empty("scope", &self.scope)?;
        check_level("max_level", self.max_level, 0)?;
        check_time_ms("created_at", self.created_at_ms)?;
        if let Some(ms) = self.last_sealed_at_ms {
            check_time_ms("last_sealed_at", ms)?;
        }
        Ok(())
    }
}

impl Summary {
    /// Checks every field; runs before any write.
    pub fn validate(&self) -> Result<()> {
        non_empty("id", &self.id)?;
        non_empty("tree_id", &self.tree_id)?;
        check_level("level", self.level, 1)?;
        check_ids("child_ids", &self.child_ids)?;
        check_count("token_count", self.token_count)?;
        check_ids("entities", &self.entities)?;
        check_score("score", self.score)?;
        check_time_ms("time_range_start", self.time_range_start_ms)?;
        check_time_ms("time_range_end", self.time_range_end_ms)?;
        if self.time_range_end_ms < self.time_range_start_ms {
            return Err(Error::invalid(
                "time_range_end",
                "must not be before time_range_start",
            ));
        }
        check_time_ms("sealed_at", self.sealed_at_ms)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_round_trip_and_refuse_unknown_values() {
        for k in TreeKind::ALL {
            assert_eq!(TreeKind::parse_field(k.as_str(), "kind").ok(), Some(k));
        }
        assert!(TreeKind::parse_field("bogus", "kind").is_err());
        for s in [TreeStatus::Active, TreeStatus::Archived] {
            assert_eq!(TreeStatus::parse_field(s.as_str(), "status").ok(), Some(s));
        }
        assert!(TreeStatus::parse_field("live", "status").is_err());
    }

    #[test]
    fn lists_are_compact_json_and_only_lists_of_strings_read_back() {
        let items = vec!["leaf-a".to_owned(), "é\"".to_owned()];
        let text = list_to_json(&items);
        assert_eq!(text, r#"["leaf-a","é\""]"#);
        assert_eq!(list_from_json(&text, 0).ok(), Some(items));
        for bad in ["{}", "\"a\"", "[1]", "not json"] {
            assert!(list_from_json(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_seal_gate_is_openhumans() {
        let mut b = Buffer::empty("t", 0);
        assert!(!b.should_seal());
        b.item_ids = vec!["a".into()];
        b.token_sum = INPUT_TOKEN_BUDGET;
        assert!(b.should_seal());
        b.level = 1;
        assert!(!b.should_seal(), "upper levels gate on count only");
        b.item_ids = (0..SUMMARY_FANOUT).map(|i| i.to_string()).collect();
        assert!(b.should_seal());
    }

    #[test]
    fn the_version_changes_with_any_field_and_the_write_time() {
        let mut b = Buffer::empty("t", 0);
        let v0 = b.version();
        b.item_ids.push("a".into());
        let v1 = b.version();
        assert_ne!(v0, v1);
        b.token_sum = 3;
        assert_ne!(v1, b.version());
        let v2 = b.version();
        b.updated_at_ms = Some(5);
        assert_ne!(v2, b.version());
    }
}
