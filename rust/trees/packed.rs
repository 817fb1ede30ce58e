//! A summary kept as its row's bytes ([`PackedSummary`]): what a tree walk
//! holds for each summary, as [`crate::chunks::packed::PackedChunk`] is for
//! each chunk. Its child ids, which the walk reads to put the rows in
//! order, are decoded as it is packed, back to back in the same buffer.
//! Its fields are read from the buffer through a [`SummaryView`], as a
//! chunk's are through a [`crate::chunks::packed::ChunkView`]; the whole
//! [`Summary`] is decoded only when asked ([`Unpack::unpack`]).
//!
//! Checked means exactly what [`summary_from_row`] checks: a row it would
//! refuse is not packed, so the caller decodes that row with it for its
//! error, and every packed summary unpacks.

use rusqlite::types::ValueRef;

use super::model::{list_from_json, Summary, TreeKind};
use crate::chunks::record::embedding_from_blob;
use crate::db::packed::{as_text, Floats, Kind, PackedColumns, Packer, Strs, Unpack};

#[cfg(doc)]
use super::model::summary_from_row;

/// The number of summary columns ([`super::model::SUMMARY_COLUMNS`]).
pub(crate) const SUMMARY_COLUMN_COUNT: usize = 18;

/// Positions in a summary row.
mod at {
    pub const ID: usize = 0;
    pub const TREE_ID: usize = 1;
    pub const TREE_KIND: usize = 2;
    pub const LEVEL: usize = 3;
    pub const PARENT_ID: usize = 4;
    pub const CHILD_IDS: usize = 5;
    pub const CONTENT: usize = 6;
    pub const TOKEN_COUNT: usize = 7;
    pub const ENTITIES: usize = 8;
    pub const TOPICS: usize = 9;
    pub const START: usize = 10;
    pub const END: usize = 11;
    pub const SCORE: usize = 12;
    pub const SEALED_AT: usize = 13;
    pub const DELETED: usize = 14;
    pub const EMBEDDING: usize = 15;
    pub const CONTENT_PATH: usize = 16;
    pub const CONTENT_SHA256: usize = 17;
}

/// The columns kept as bytes, in row order, and what each may hold; the
/// child ids follow them, in the packed columns' tail.
const BYTE_COLUMNS: [(usize, Kind); 7] = [
    (at::ID, Kind::Text),
    (at::TREE_ID, Kind::Text),
    (at::PARENT_ID, Kind::OptText),
    (at::CONTENT, Kind::Text),
    (at::EMBEDDING, Kind::OptFloats),
    (at::CONTENT_PATH, Kind::OptText),
    (at::CONTENT_SHA256, Kind::OptText),
];
const ID: usize = 0;
const TREE_ID: usize = 1;
const PARENT_ID: usize = 2;
const CONTENT: usize = 3;
const EMBEDDING: usize = 4;
const CONTENT_PATH: usize = 5;
const CONTENT_SHA256: usize = 6;

/// One summary row. Immutable.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedSummary {
    /// The [`BYTE_COLUMNS`] values; the child ids back to back in its tail.
    columns: PackedColumns<{ BYTE_COLUMNS.len() }>,
    /// Where each child id ends in the tail.
    child_ends: Box<[u32]>,
    tree_kind: TreeKind,
    level: i64,
    token_count: i64,
    time_range_start_ms: i64,
    time_range_end_ms: i64,
    score: f64,
    sealed_at_ms: i64,
    deleted: bool,
    /// Parsed when packed (no allocation for none).
    entities: Vec<String>,
    topics: Vec<String>,
}

impl PackedSummary {
    /// The summary in a row's first [`SUMMARY_COLUMN_COUNT`] values; `None`
    /// if [`summary_from_row`] would refuse the row (a wrong type, text
    /// that is not UTF-8, an unknown tree kind, a list that is not a JSON
    /// list of strings, an embedding blob that is not float32s) or it is
    /// too big to pack (4 GiB).
    pub fn from_values(values: &[ValueRef<'_>; SUMMARY_COLUMN_COUNT]) -> Option<PackedSummary> {
        let text = |column: usize| match values[column] {
            ValueRef::Text(b) => std::str::from_utf8(b).ok(),
            _ => None,
        };
        let int = |column: usize| match values[column] {
            ValueRef::Integer(v) => Some(v),
            _ => None,
        };
        let tree_kind = TreeKind::parse_field(text(at::TREE_KIND)?, "").ok()?;
        let list = |column: usize| list_from_json(text(column)?, column).ok();
        let (entities, topics) = (list(at::ENTITIES)?, list(at::TOPICS)?);
        // `get::<f64>` reads an integer as a float too.
        let score = match values[at::SCORE] {
            ValueRef::Real(v) => v,
            #[allow(clippy::cast_precision_loss)]
            ValueRef::Integer(v) => v as f64,
            _ => return None,
        };
        let (columns, child_ends) = Packer::with_list(values, &BYTE_COLUMNS, text(at::CHILD_IDS)?)?;
        Some(PackedSummary {
            columns,
            child_ends,
            tree_kind,
            level: int(at::LEVEL)?,
            token_count: int(at::TOKEN_COUNT)?,
            time_range_start_ms: int(at::START)?,
            time_range_end_ms: int(at::END)?,
            score,
            sealed_at_ms: int(at::SEALED_AT)?,
            deleted: int(at::DELETED)? != 0,
            entities,
            topics,
        })
    }

    /// `summary` packed: a row [`summary_from_row`] decoded, which packs
    /// unless the two disagree on what a valid row is (an error then).
    pub fn from_summary(s: &Summary) -> rusqlite::Result<PackedSummary> {
        use super::model::list_to_json as list;
        fn text(t: &Option<String>) -> ValueRef<'_> {
            t.as_deref().map_or(ValueRef::Null, ValueRef::from)
        }
        let (children, entities, topics) = (list(&s.child_ids), list(&s.entities), list(&s.topics));
        let embedding = s
            .embedding
            .as_deref()
            .map(crate::chunks::record::embedding_to_blob);
        let values = [
            ValueRef::from(s.id.as_str()),
            ValueRef::from(s.tree_id.as_str()),
            ValueRef::from(s.tree_kind.as_str()),
            ValueRef::Integer(s.level),
            text(&s.parent_id),
            ValueRef::from(children.as_str()),
            ValueRef::from(s.content.as_str()),
            ValueRef::Integer(s.token_count),
            ValueRef::from(entities.as_str()),
            ValueRef::from(topics.as_str()),
            ValueRef::Integer(s.time_range_start_ms),
            ValueRef::Integer(s.time_range_end_ms),
            ValueRef::Real(s.score),
            ValueRef::Integer(s.sealed_at_ms),
            ValueRef::Integer(i64::from(s.deleted)),
            embedding.as_deref().map_or(ValueRef::Null, ValueRef::Blob),
            text(&s.content_path),
            text(&s.content_sha256),
        ];
        PackedSummary::from_values(&values).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("summary {:?} decodes but does not pack", s.id).into(),
            )
        })
    }

    /// The summary's id, without unpacking it.
    pub fn id(&self) -> &str {
        self.columns.text(ID)
    }

    /// Its level.
    pub fn level(&self) -> i64 {
        self.level
    }

    /// The number of its child ids.
    pub fn child_count(&self) -> usize {
        self.child_ends.len()
    }

    /// Its child id at `i`.
    pub fn child_id(&self, i: usize) -> Option<&str> {
        self.children().get(i)
    }

    /// Its child ids, in order.
    pub fn child_ids(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.children().iter()
    }

    /// Its child ids, borrowed from the packed columns' tail.
    fn children(&self) -> Strs<'_> {
        self.columns.list(&self.child_ends)
    }

    /// The summary's fields, borrowed from the row's bytes: one field read
    /// without unpacking the others.
    pub fn view(&self) -> SummaryView<'_> {
        let text = |slot| self.columns.text(slot);
        let opt_text = |slot| self.columns.bytes(slot).map(as_text);
        SummaryView {
            tree_id: text(TREE_ID),
            tree_kind: self.tree_kind,
            level: self.level,
            parent_id: opt_text(PARENT_ID),
            child_ids: self.children(),
            content: text(CONTENT),
            token_count: self.token_count,
            entities: &self.entities,
            topics: &self.topics,
            time_range_start_ms: self.time_range_start_ms,
            time_range_end_ms: self.time_range_end_ms,
            score: self.score,
            sealed_at_ms: self.sealed_at_ms,
            deleted: self.deleted,
            embedding: self.columns.bytes(EMBEDDING).map(Floats::Blob),
            content_path: opt_text(CONTENT_PATH),
            content_sha256: opt_text(CONTENT_SHA256),
        }
    }
}

/// A summary's fields other than its id, borrowed from a [`Summary`] or a
/// [`PackedSummary`] ([`SummaryView::of`], [`PackedSummary::view`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
pub struct SummaryView<'a> {
    pub tree_id: &'a str,
    pub tree_kind: TreeKind,
    pub level: i64,
    pub parent_id: Option<&'a str>,
    pub child_ids: Strs<'a>,
    pub content: &'a str,
    pub token_count: i64,
    pub entities: &'a [String],
    pub topics: &'a [String],
    pub time_range_start_ms: i64,
    pub time_range_end_ms: i64,
    pub score: f64,
    pub sealed_at_ms: i64,
    pub deleted: bool,
    pub embedding: Option<Floats<'a>>,
    pub content_path: Option<&'a str>,
    pub content_sha256: Option<&'a str>,
}

impl<'a> SummaryView<'a> {
    /// The fields of a decoded summary.
    pub fn of(s: &'a Summary) -> Self {
        SummaryView {
            tree_id: &s.tree_id,
            tree_kind: s.tree_kind,
            level: s.level,
            parent_id: s.parent_id.as_deref(),
            child_ids: Strs::Strings(&s.child_ids),
            content: &s.content,
            token_count: s.token_count,
            entities: &s.entities,
            topics: &s.topics,
            time_range_start_ms: s.time_range_start_ms,
            time_range_end_ms: s.time_range_end_ms,
            score: s.score,
            sealed_at_ms: s.sealed_at_ms,
            deleted: s.deleted,
            embedding: s.embedding.as_deref().map(Floats::Floats),
            content_path: s.content_path.as_deref(),
            content_sha256: s.content_sha256.as_deref(),
        }
    }
}

impl Unpack for PackedSummary {
    type Record = Summary;
    type View<'a> = SummaryView<'a>;

    fn view(&self) -> SummaryView<'_> {
        PackedSummary::view(self)
    }

    fn record_view(summary: &Summary) -> SummaryView<'_> {
        SummaryView::of(summary)
    }

    fn unpack(&self) -> Summary {
        let text = |slot| self.columns.text(slot).to_owned();
        let opt_text = |slot| self.columns.opt_text(slot);
        Summary {
            id: text(ID),
            tree_id: text(TREE_ID),
            tree_kind: self.tree_kind,
            level: self.level,
            parent_id: opt_text(PARENT_ID),
            child_ids: self.children().to_vec(),
            content: text(CONTENT),
            token_count: self.token_count,
            entities: self.entities.clone(),
            topics: self.topics.clone(),
            time_range_start_ms: self.time_range_start_ms,
            time_range_end_ms: self.time_range_end_ms,
            score: self.score,
            sealed_at_ms: self.sealed_at_ms,
            deleted: self.deleted,
            embedding: self.columns.bytes(EMBEDDING).and_then(embedding_from_blob),
            content_path: opt_text(CONTENT_PATH),
            content_sha256: opt_text(CONTENT_SHA256),
        }
    }

    fn id(&self) -> &str {
        PackedSummary::id(self)
    }

    fn record_id(summary: &Summary) -> &str {
        &summary.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::Value;

    fn sample() -> Summary {
        Summary {
            id: "s-é".into(),
            tree_id: "t".into(),
            tree_kind: TreeKind::Topic,
            level: 2,
            parent_id: Some("p".into()),
            child_ids: vec!["a".into(), "b\"😀".into(), String::new(), "c".into()],
            content: "text\0with a zero".into(),
            token_count: 9,
            entities: vec!["person:alice".into()],
            topics: vec!["#x".into(), "#y".into()],
            time_range_start_ms: -5,
            time_range_end_ms: 7,
            score: 0.25,
            sealed_at_ms: 11,
            deleted: true,
            embedding: Some(vec![1.5, -2.0]),
            content_path: Some("p.md".into()),
            content_sha256: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn a_summary_unpacks_as_it_was_written() -> rusqlite::Result<()> {
        let full = sample();
        let packed = PackedSummary::from_summary(&full)?;
        assert_eq!((packed.id(), packed.level()), ("s-é", 2));
        assert_eq!(
            packed.child_ids().collect::<Vec<_>>(),
            ["a", "b\"😀", "", "c"]
        );
        assert_eq!(packed.child_ids().next_back(), Some("c"));
        assert_eq!(packed.child_id(4), None);
        assert_eq!(packed.unpack(), full);
        for summary in rows() {
            let packed = PackedSummary::from_summary(&summary)?;
            assert_eq!(packed.child_count(), summary.child_ids.len());
            assert_eq!(packed.unpack(), summary);
        }
        Ok(())
    }

    /// A full row, a bare one (every optional column NULL, every list
    /// empty) and one of unicode and NUL bytes.
    fn rows() -> [Summary; 3] {
        let bare = Summary {
            parent_id: None,
            child_ids: Vec::new(),
            content: String::new(),
            entities: Vec::new(),
            topics: Vec::new(),
            embedding: None,
            content_path: None,
            content_sha256: None,
            deleted: false,
            ..sample()
        };
        let unicode = Summary {
            id: "\0ïd-😀".into(),
            tree_id: "tré\0e".into(),
            parent_id: Some("pé😀".into()),
            child_ids: vec!["\0".into(), "ç".into(), "😀\"\\".into()],
            content: "\0zero\0bytes é 😀\0".into(),
            entities: vec!["person:é".into(), "\0".into()],
            topics: vec![String::new()],
            embedding: Some(Vec::new()),
            content_path: Some("dir/é\0.md".into()),
            ..sample()
        };
        [sample(), bare, unicode]
    }

    #[test]
    fn a_packed_summary_views_the_fields_its_record_holds() -> rusqlite::Result<()> {
        for summary in rows() {
            let packed = PackedSummary::from_summary(&summary)?;
            let view = packed.view();
            assert_eq!(view, SummaryView::of(&packed.unpack()));
            assert_eq!(view, SummaryView::of(&summary));
            // Field for field, the lists and the embedding as read.
            assert_eq!(view.content, summary.content);
            assert_eq!(view.parent_id, summary.parent_id.as_deref());
            assert_eq!(view.child_ids.len(), summary.child_ids.len());
            assert!(view.child_ids.iter().eq(summary.child_ids.iter()));
            assert!(view
                .child_ids
                .iter()
                .rev()
                .eq(summary.child_ids.iter().rev()));
            assert_eq!(
                (view.entities, view.topics),
                (&summary.entities[..], &summary.topics[..])
            );
            assert_eq!(
                view.embedding.map(|e| e.iter().collect::<Vec<_>>()),
                summary.embedding
            );
        }
        // The comparison is not vacuous: one field apart is unequal.
        let full = sample();
        let packed = PackedSummary::from_summary(&full)?;
        for other in [
            Summary {
                child_ids: vec!["a".into(), "b\"😀".into(), String::new()],
                ..sample()
            },
            Summary {
                embedding: Some(vec![1.5, -2.5]),
                ..sample()
            },
            Summary {
                content: "text".into(),
                ..sample()
            },
        ] {
            assert_ne!(packed.view(), SummaryView::of(&other));
        }
        Ok(())
    }

    /// What a walked `Summary`'s getters read (`Lazy::view`) comes from the
    /// row's bytes and leaves the record undecoded; decoded (by equality),
    /// the same fields come from the record.
    #[test]
    fn reading_a_lazy_summarys_fields_decodes_nothing() -> rusqlite::Result<()> {
        use crate::db::packed::Lazy;
        let undecoded = |lazy: &Lazy<PackedSummary>| matches!(lazy, Lazy::Packed(_, decoded) if decoded.get().is_none());
        for summary in rows() {
            let lazy = Lazy::packed(PackedSummary::from_summary(&summary)?);
            assert_eq!(
                (lazy.id(), lazy.view()),
                (summary.id.as_str(), SummaryView::of(&summary))
            );
            assert!(undecoded(&lazy));
            assert!(lazy == Lazy::decoded(summary.clone()));
            assert!(!undecoded(&lazy));
            assert_eq!(lazy.view(), SummaryView::of(&summary));
        }
        Ok(())
    }

    /// Every row `summary_from_row` refuses is refused here too (and every
    /// row it reads packs to the same summary).
    #[test]
    fn a_row_summary_from_row_refuses_is_not_packed() -> rusqlite::Result<()> {
        let conn = rusqlite::Connection::open_in_memory()?;
        let placeholders = vec!["?"; SUMMARY_COLUMN_COUNT].join(", ");
        let mut stmt = conn.prepare(&format!("SELECT {placeholders}"))?;
        let s = sample();
        let good = vec![
            Value::Text(s.id),
            Value::Text(s.tree_id),
            Value::Text("topic".into()),
            Value::Integer(s.level),
            Value::Text("p".into()),
            Value::Text(r#"["a","b\"😀","","c"]"#.into()),
            Value::Text(s.content),
            Value::Integer(9),
            Value::Text(r#"["person:alice"]"#.into()),
            Value::Text(r##"["#x","#y"]"##.into()),
            Value::Integer(-5),
            Value::Integer(7),
            Value::Real(0.25),
            Value::Integer(11),
            Value::Integer(1),
            Value::Blob(crate::chunks::record::embedding_to_blob(&[1.5, -2.0])),
            Value::Text("p.md".into()),
            Value::Text("ab".repeat(32)),
        ];
        let with = |column: usize, value: Value| {
            let mut row = good.clone();
            row[column] = value;
            row
        };
        let cases = [
            good.clone(),
            with(at::ID, Value::Integer(1)),
            with(at::TREE_ID, Value::Null),
            with(at::TREE_KIND, Value::Text("forest".into())),
            with(at::LEVEL, Value::Real(1.0)),
            with(at::PARENT_ID, Value::Integer(2)),
            with(at::CHILD_IDS, Value::Text("{}".into())),
            with(at::CHILD_IDS, Value::Text("[1]".into())),
            with(at::CHILD_IDS, Value::Text(r#"["a"] x"#.into())),
            with(at::CHILD_IDS, Value::Text("[]".into())),
            with(at::CHILD_IDS, Value::Text(r#"[ "a" , "\u00e9" ]"#.into())),
            with(at::CONTENT, Value::Blob(b"x".to_vec())),
            with(at::ENTITIES, Value::Text("[null]".into())),
            with(at::TOPICS, Value::Null),
            with(at::SCORE, Value::Integer(3)),
            with(at::SCORE, Value::Text("1".into())),
            with(at::DELETED, Value::Null),
            with(at::EMBEDDING, Value::Blob(vec![0; 3])),
            with(at::EMBEDDING, Value::Text("x".into())),
            with(at::CONTENT_SHA256, Value::Real(0.5)),
        ];
        for case in &cases {
            let decoded = stmt.query_row(rusqlite::params_from_iter(case), |r| {
                Ok(super::super::model::summary_from_row(r))
            })?;
            let values: [ValueRef<'_>; SUMMARY_COLUMN_COUNT] =
                std::array::from_fn(|i| ValueRef::from(&case[i]));
            let packed = PackedSummary::from_values(&values);
            assert_eq!(
                packed.as_ref().map(PackedSummary::unpack),
                decoded.as_ref().ok().cloned(),
                "{case:?}"
            );
        }
        let mut values: [ValueRef<'_>; SUMMARY_COLUMN_COUNT] =
            std::array::from_fn(|i| ValueRef::from(&good[i]));
        values[at::CONTENT] = ValueRef::Text(b"\xff");
        assert!(PackedSummary::from_values(&values).is_none());
        Ok(())
    }
}
