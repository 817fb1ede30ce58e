//! A chunk kept as its row's bytes ([`PackedChunk`]): what a bulk read (a
//! tree walk) holds for each chunk, its text, blob and tags in one buffer
//! (and, with tags, where each ends) where a [`Chunk`] is a string per
//! field and per tag, checked as the row is read, its fields read from the
//! buffer ([`ChunkView`]) and decoded into a [`Chunk`] only when asked
//! ([`Unpack::unpack`]; the buffer is a [`PackedColumns`]).
//!
//! Checked means exactly what [`chunk_from_row`] checks: a row it would
//! refuse is not packed ([`PackedChunk::from_values`] says `None`), so the
//! caller decodes that row with it for its error, and every packed chunk
//! unpacks.

use rusqlite::types::ValueRef;

use super::record::{embedding_from_blob, Chunk, SourceKind};
use super::row::{col, each_value, Encoded, CHUNK_COLUMNS};
use crate::db::packed::{as_text, Floats, Kind, PackedColumns, Packer, Strs, Unpack};

#[cfg(doc)]
use super::row::chunk_from_row;

/// The number of chunk columns.
const N: usize = CHUNK_COLUMNS.len();

/// The columns kept as bytes, in [`CHUNK_COLUMNS`] order, and what each
/// may hold; `source_kind` is parsed as the row is read and the tags in
/// `tags_json` follow these columns in the tail, the rest are integers.
const BYTE_COLUMNS: [(usize, Kind); 9] = [
    (col!("id"), Kind::Text),
    (col!("content"), Kind::Text),
    (col!("source_id"), Kind::Text),
    (col!("source_ref"), Kind::OptText),
    (col!("owner"), Kind::Text),
    (col!("lifecycle_status"), Kind::Text),
    (col!("embedding"), Kind::OptFloats),
    (col!("content_path"), Kind::OptText),
    (col!("content_sha256"), Kind::OptText),
];

/// The integer columns.
const INT_COLUMNS: [usize; 6] = [
    col!("timestamp_ms"),
    col!("time_range_start_ms"),
    col!("time_range_end_ms"),
    col!("token_count"),
    col!("seq_in_source"),
    col!("created_at_ms"),
];

/// The slot of a named column in [`BYTE_COLUMNS`].
macro_rules! bytes_at {
    ($name:literal) => {
        const {
            let column = col!($name);
            let mut i = 0;
            while BYTE_COLUMNS[i].0 != column {
                i += 1;
            }
            i
        }
    };
}

/// The slot of a named column in [`INT_COLUMNS`].
macro_rules! int_at {
    ($name:literal) => {
        const {
            let column = col!($name);
            let mut i = 0;
            while INT_COLUMNS[i] != column {
                i += 1;
            }
            i
        }
    };
}

/// One chunk row: its text and blob columns and its tags back to back in
/// one buffer, its integers, its parsed kind. Immutable.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedChunk {
    /// The [`BYTE_COLUMNS`] values; the tags back to back in its tail.
    columns: PackedColumns<{ BYTE_COLUMNS.len() }>,
    ints: [i64; INT_COLUMNS.len()],
    source_kind: SourceKind,
    /// Where each tag ends in the tail (no allocation for none).
    tag_ends: Box<[u32]>,
}

impl PackedChunk {
    /// The chunk in a row's values, in [`CHUNK_COLUMNS`] order; `None` if
    /// [`chunk_from_row`] would refuse the row (a wrong type, text that is
    /// not UTF-8, an unknown kind, tags that are not a JSON list of
    /// strings, an embedding blob that is not float32s) or it is too big to
    /// pack (4 GiB).
    pub fn from_values(values: &[ValueRef<'_>; N]) -> Option<PackedChunk> {
        let text = |column: usize| match values[column] {
            ValueRef::Text(b) => std::str::from_utf8(b).ok(),
            _ => None,
        };
        let source_kind = text(col!("source_kind"))?.parse().ok()?;
        let tags = text(col!("tags_json"))?;
        let mut ints = [0; INT_COLUMNS.len()];
        for (int, &column) in ints.iter_mut().zip(&INT_COLUMNS) {
            match values[column] {
                ValueRef::Integer(v) => *int = v,
                _ => return None,
            }
        }
        let (columns, tag_ends) = Packer::with_list(values, &BYTE_COLUMNS, tags)?;
        Some(PackedChunk {
            columns,
            ints,
            source_kind,
            tag_ends,
        })
    }

    /// `chunk` packed: a row [`chunk_from_row`] decoded, which packs
    /// unless the two disagree on what a valid row is (an error then).
    pub fn from_chunk(chunk: &Chunk) -> rusqlite::Result<PackedChunk> {
        let mut scratch = Encoded::default();
        let mut values = [ValueRef::Null; N];
        each_value(chunk, &mut scratch, |i, value| {
            values[i] = value;
            Ok(())
        })?;
        PackedChunk::from_values(&values).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("chunk {:?} decodes but does not pack", chunk.id).into(),
            )
        })
    }

    /// The chunk's id, without unpacking it.
    pub fn id(&self) -> &str {
        self.columns.text(bytes_at!("id"))
    }

    /// The chunk's `timestamp_ms`, without unpacking it (a list cursor's).
    pub fn timestamp_ms(&self) -> i64 {
        self.ints[int_at!("timestamp_ms")]
    }

    /// The chunk's `seq_in_source`, without unpacking it (a list cursor's).
    pub fn seq_in_source(&self) -> i64 {
        self.ints[int_at!("seq_in_source")]
    }

    /// The chunk's fields, borrowed from the row's bytes: one field read
    /// without unpacking the others.
    pub fn view(&self) -> ChunkView<'_> {
        let text = |slot| self.columns.text(slot);
        let int = |slot: usize| self.ints[slot];
        ChunkView {
            content: text(bytes_at!("content")),
            source_kind: self.source_kind,
            source_id: text(bytes_at!("source_id")),
            source_ref: self.columns.bytes(bytes_at!("source_ref")).map(as_text),
            owner: text(bytes_at!("owner")),
            timestamp_ms: int(int_at!("timestamp_ms")),
            time_range_start_ms: int(int_at!("time_range_start_ms")),
            time_range_end_ms: int(int_at!("time_range_end_ms")),
            tags: self.columns.list(&self.tag_ends),
            token_count: int(int_at!("token_count")),
            seq_in_source: int(int_at!("seq_in_source")),
            created_at_ms: int(int_at!("created_at_ms")),
            lifecycle_status: text(bytes_at!("lifecycle_status")),
            embedding: self.columns.bytes(bytes_at!("embedding")).map(Floats::Blob),
            content_path: self.columns.bytes(bytes_at!("content_path")).map(as_text),
            content_sha256: self.columns.bytes(bytes_at!("content_sha256")).map(as_text),
        }
    }
}

/// A chunk's fields other than its id, borrowed from a [`Chunk`] or a
/// [`PackedChunk`] ([`ChunkView::of`], [`PackedChunk::view`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
pub struct ChunkView<'a> {
    pub content: &'a str,
    pub source_kind: SourceKind,
    pub source_id: &'a str,
    pub source_ref: Option<&'a str>,
    pub owner: &'a str,
    pub timestamp_ms: i64,
    pub time_range_start_ms: i64,
    pub time_range_end_ms: i64,
    pub tags: Strs<'a>,
    pub token_count: i64,
    pub seq_in_source: i64,
    pub created_at_ms: i64,
    pub lifecycle_status: &'a str,
    pub embedding: Option<Floats<'a>>,
    pub content_path: Option<&'a str>,
    pub content_sha256: Option<&'a str>,
}

impl<'a> ChunkView<'a> {
    /// The fields of a decoded chunk.
    pub fn of(c: &'a Chunk) -> Self {
        ChunkView {
            content: &c.content,
            source_kind: c.source_kind,
            source_id: &c.source_id,
            source_ref: c.source_ref.as_deref(),
            owner: &c.owner,
            timestamp_ms: c.timestamp_ms,
            time_range_start_ms: c.time_range_start_ms,
            time_range_end_ms: c.time_range_end_ms,
            tags: Strs::Strings(&c.tags),
            token_count: c.token_count,
            seq_in_source: c.seq_in_source,
            created_at_ms: c.created_at_ms,
            lifecycle_status: &c.lifecycle_status,
            embedding: c.embedding.as_deref().map(Floats::Floats),
            content_path: c.content_path.as_deref(),
            content_sha256: c.content_sha256.as_deref(),
        }
    }
}

impl Unpack for PackedChunk {
    type Record = Chunk;
    type View<'a> = ChunkView<'a>;

    fn view(&self) -> ChunkView<'_> {
        PackedChunk::view(self)
    }

    fn record_view(chunk: &Chunk) -> ChunkView<'_> {
        ChunkView::of(chunk)
    }

    fn unpack(&self) -> Chunk {
        let text = |slot| self.columns.text(slot).to_owned();
        let opt_text = |slot| self.columns.opt_text(slot);
        let int = |slot: usize| self.ints[slot];
        Chunk {
            id: text(bytes_at!("id")),
            content: text(bytes_at!("content")),
            source_kind: self.source_kind,
            source_id: text(bytes_at!("source_id")),
            source_ref: opt_text(bytes_at!("source_ref")),
            owner: text(bytes_at!("owner")),
            timestamp_ms: int(int_at!("timestamp_ms")),
            time_range_start_ms: int(int_at!("time_range_start_ms")),
            time_range_end_ms: int(int_at!("time_range_end_ms")),
            tags: self.columns.list(&self.tag_ends).to_vec(),
            token_count: int(int_at!("token_count")),
            seq_in_source: int(int_at!("seq_in_source")),
            created_at_ms: int(int_at!("created_at_ms")),
            lifecycle_status: text(bytes_at!("lifecycle_status")),
            embedding: (self.columns.bytes(bytes_at!("embedding"))).and_then(embedding_from_blob),
            content_path: opt_text(bytes_at!("content_path")),
            content_sha256: opt_text(bytes_at!("content_sha256")),
        }
    }

    fn id(&self) -> &str {
        PackedChunk::id(self)
    }

    fn record_id(chunk: &Chunk) -> &str {
        &chunk.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::ops::tests::full_chunk;
    use crate::chunks::row::chunk_row;
    use rusqlite::types::Value;

    fn values(row: &[Value]) -> [ValueRef<'_>; N] {
        std::array::from_fn(|i| ValueRef::from(&row[i]))
    }

    fn pack(c: &Chunk) -> Option<PackedChunk> {
        PackedChunk::from_values(&values(&chunk_row(c).ok()?))
    }

    #[test]
    fn a_chunk_unpacks_as_it_was_written() {
        let full = full_chunk();
        let packed = pack(&full).expect("a valid row packs");
        assert_eq!(packed.id(), full.id);
        assert_eq!(packed.unpack(), full);
        let bare = Chunk {
            source_ref: None,
            tags: Vec::new(),
            embedding: None,
            content_path: None,
            content_sha256: None,
            content: String::new(),
            ..full_chunk()
        };
        assert_eq!(pack(&bare).map(|p| p.unpack()), Some(bare.clone()));
        let unicode = Chunk {
            id: "ïd-😀".into(),
            content: "zero\0byte and é".into(),
            tags: vec!["a\"b".into(), "ç".into()],
            embedding: Some(Vec::new()),
            ..full_chunk()
        };
        assert_eq!(pack(&unicode).map(|p| p.unpack()), Some(unicode.clone()));
        // Each field read from the bytes is the record's.
        for chunk in [full, bare, unicode] {
            let packed = pack(&chunk).expect("a valid row packs");
            assert_eq!(packed.view(), ChunkView::of(&chunk));
        }
    }

    /// Every row `chunk_from_row` refuses is refused here too, so the walk
    /// decodes it for that error.
    #[test]
    fn a_row_chunk_from_row_refuses_is_not_packed() -> rusqlite::Result<()> {
        let row = chunk_row(&full_chunk())?;
        let with = |column: &str, value: Value| {
            let mut row = row.clone();
            row[CHUNK_COLUMNS.iter().position(|c| *c == column).unwrap()] = value;
            row
        };
        let bad = [
            with("id", Value::Integer(1)),
            with("id", Value::Null),
            with("content", Value::Blob(b"text".to_vec())),
            with("content", Value::Text(String::new())), // fine: the control
            with("source_kind", Value::Text("fax".into())),
            with("source_ref", Value::Integer(3)),
            with("timestamp_ms", Value::Text("1".into())),
            with("timestamp_ms", Value::Real(1.0)),
            with("token_count", Value::Null),
            with("tags_json", Value::Text("{}".into())),
            with("tags_json", Value::Text("[1]".into())),
            with("tags_json", Value::Null),
            with("embedding", Value::Blob(vec![0; 5])),
            with("embedding", Value::Text("x".into())),
            with("lifecycle_status", Value::Null),
            with("content_sha256", Value::Integer(0)),
        ];
        let conn = rusqlite::Connection::open_in_memory()?;
        let placeholders = vec!["?"; N].join(", ");
        let mut stmt = conn.prepare(&format!("SELECT {placeholders}"))?;
        for case in &bad {
            let decoded = stmt.query_row(rusqlite::params_from_iter(case), |r| {
                Ok(crate::chunks::row::chunk_from_row(r))
            })?;
            let packed = PackedChunk::from_values(&values(case));
            assert_eq!(
                packed.as_ref().map(PackedChunk::unpack),
                decoded.as_ref().ok().cloned(),
                "{case:?}"
            );
        }
        // Text that is not UTF-8, which no `Value` holds.
        let mut raw = values(&row);
        raw[col!("owner")] = ValueRef::Text(b"\xff");
        assert!(PackedChunk::from_values(&raw).is_none());
        Ok(())
    }
}
