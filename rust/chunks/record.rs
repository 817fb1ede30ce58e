//! The chunk record and its validation: what one row of `mem_tree_chunks` holds.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Where a chunk's text came from; stored as the lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// A chat conversation.
    Chat,
    /// An e-mail message or thread.
    Email,
    /// A document.
    Document,
}

impl SourceKind {
    /// Every kind, in a stable order.
    pub const ALL: [SourceKind; 3] = [SourceKind::Chat, SourceKind::Email, SourceKind::Document];

    /// The stored name (`"chat"`, `"email"`, `"document"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::Chat => "chat",
            SourceKind::Email => "email",
            SourceKind::Document => "document",
        }
    }

    /// Parses a stored name, reporting `field` in the error.
    pub fn parse_field(value: &str, field: &str) -> Result<Self> {
        value.parse().map_err(|()| {
            Error::invalid(
                field,
                format!("unknown source kind {value:?} (expected chat, email or document)"),
            )
        })
    }
}

impl FromStr for SourceKind {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        SourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(())
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lifecycle status a chunk gets when none is given (the column default).
pub const DEFAULT_LIFECYCLE_STATUS: &str = "admitted";

/// The earliest time memtree stores: 0001-01-01T00:00:00Z in milliseconds
/// since the epoch, the first instant a Python `datetime` can hold in UTC.
pub const MIN_TIME_MS: i64 = -62_135_596_800_000;
/// The latest time memtree stores: 9999-12-31T23:59:59.999Z. A later value
/// would be written but could not be read back as a `datetime`.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Refuses a time outside [`MIN_TIME_MS`]`..=`[`MAX_TIME_MS`].
pub fn check_time_ms(field: &str, ms: i64) -> Result<()> {
    if (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{ms} ms is outside 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z"),
        ))
    }
}

/// Refuses an empty `value`, naming `field`.
pub(crate) fn non_empty(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    Ok(())
}

/// One ingested piece of text. Times are milliseconds since the epoch, UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Primary key; upserts are idempotent on it.
    pub id: String,
    /// The text.
    pub content: String,
    /// Kind of the source it came from.
    pub source_kind: SourceKind,
    /// Identifier of the source within its kind.
    pub source_id: String,
    /// Optional pointer into the source (a message id, a page).
    pub source_ref: Option<String>,
    /// Who the chunk belongs to.
    pub owner: String,
    /// When the chunk's content happened.
    pub timestamp_ms: i64,
    /// Start of the period the chunk covers.
    pub time_range_start_ms: i64,
    /// End of the period the chunk covers.
    pub time_range_end_ms: i64,
    /// Free-form labels, stored as a JSON array.
    pub tags: Vec<String>,
    /// Token count of `content`.
    pub token_count: i64,
    /// Position within its source.
    pub seq_in_source: i64,
    /// When the chunk was created.
    pub created_at_ms: i64,
    /// Pipeline state (`admitted`, `buffered`, `sealed`, …).
    pub lifecycle_status: String,
    /// Optional float32 embedding, stored little-endian.
    pub embedding: Option<Vec<f32>>,
    /// Where the full body lives on disk, when `content` holds a preview
    /// (the reference's staged upsert); set together with `content_sha256`.
    pub content_path: Option<String>,
    /// The SHA-256 of the body at `content_path`, 64 lowercase hex digits.
    pub content_sha256: Option<String>,
}

impl Chunk {
    /// Checks every field; `at` prefixes field names (e.g. `"chunks[3]."`).
    pub fn validate(&self, at: &str) -> Result<()> {
        let field = |name: &str| format!("{at}{name}");
        // An empty owner is refused like an empty id: `list_chunks(owner=...)`
        // and `delete_owner` could never name such a chunk's owner on purpose.
        // (The reference's store checks none of the three; reading or
        // deleting its rows with an empty owner still works.)
        for (name, value) in [
            ("id", &self.id),
            ("source_id", &self.source_id),
            ("owner", &self.owner),
        ] {
            if value.is_empty() {
                return Err(Error::invalid(field(name), "must not be empty"));
            }
        }
        if self.lifecycle_status.is_empty() {
            return Err(Error::invalid(
                field("lifecycle_status"),
                "must not be empty",
            ));
        }
        for (name, ms) in [
            ("timestamp", self.timestamp_ms),
            ("time_range", self.time_range_start_ms),
            ("time_range", self.time_range_end_ms),
            ("created_at", self.created_at_ms),
        ] {
            check_time_ms(&field(name), ms)?;
        }
        if self.time_range_start_ms > self.time_range_end_ms {
            return Err(Error::invalid(field("time_range"), "start is after end"));
        }
        for (name, value) in [
            ("token_count", self.token_count),
            ("seq_in_source", self.seq_in_source),
        ] {
            if value < 0 {
                return Err(Error::invalid(
                    field(name),
                    format!("must be >= 0, got {value}"),
                ));
            }
        }
        if let Some(embedding) = &self.embedding {
            validate_embedding(embedding, &field("embedding"))?;
        }
        validate_content_pointers(
            self.content_path.as_deref(),
            self.content_sha256.as_deref(),
            at,
        )?;
        self.check_row_size(MAX_ROW_BYTES, at)
    }

    /// An upper bound of the bytes this chunk's row takes in SQLite's record
    /// format: every text and blob column at full length (tags as JSON with
    /// every character escaped), plus [`ROW_OVERHEAD_BYTES`] for the header
    /// and the integer columns.
    pub fn row_size_bound(&self) -> u64 {
        let text = |s: &str| s.len() as u64;
        let opt = |s: &Option<String>| s.as_deref().map_or(0, text);
        // JSON escapes a control character as six bytes (`\u001f`).
        let tags: u64 = self.tags.iter().map(|t| 6 * text(t) + 3).sum::<u64>() + 2;
        let embedding = self.embedding.as_ref().map_or(0, |e| 4 * e.len() as u64);
        ROW_OVERHEAD_BYTES
            + text(&self.id)
            + text(&self.content)
            + text(self.source_kind.as_str())
            + text(&self.source_id)
            + opt(&self.source_ref)
            + text(&self.owner)
            + tags
            + text(&self.lifecycle_status)
            + embedding
            + opt(&self.content_path)
            + opt(&self.content_sha256)
    }

    /// Refuses a chunk whose row could exceed `limit` bytes, before any
    /// transaction: SQLite would fail the upsert with `SQLITE_TOOBIG` inside
    /// it (after the work of every chunk before it in the batch).
    fn check_row_size(&self, limit: u64, at: &str) -> Result<()> {
        let bound = self.row_size_bound();
        if bound <= limit {
            return Ok(());
        }
        Err(Error::invalid(
            format!("{at}content"),
            format!(
                "the chunk's row would take up to {bound} bytes ({} of content); SQLite stores \
                 at most {limit} bytes in one row (SQLITE_MAX_LENGTH): split the content or \
                 store it in a file (content_path)",
                self.content.len()
            ),
        ))
    }
}

/// SQLite's limit on the size of one string, blob or row record
/// (`SQLITE_MAX_LENGTH`, the bundled build's default; the upsert fails with
/// `SQLITE_TOOBIG` past it).
pub const MAX_ROW_BYTES: u64 = 1_000_000_000;

/// Room [`Chunk::row_size_bound`] keeps for a row's record header (a varint
/// per column) and its integer and NULL columns: 20 columns of at most 9
/// header bytes and 8 value bytes are 340 bytes; 1 KiB leaves margin for
/// columns a later schema adds.
pub const ROW_OVERHEAD_BYTES: u64 = 1024;

/// Content pointers come as a pair, as the reference reads them: both set
/// (a non-empty path and a SHA-256 of 64 lowercase hex digits) or neither.
pub fn validate_content_pointers(path: Option<&str>, sha256: Option<&str>, at: &str) -> Result<()> {
    match (path, sha256) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(Error::invalid(
            format!("{at}content_sha256"),
            "must be set together with content_path",
        )),
        (None, Some(_)) => Err(Error::invalid(
            format!("{at}content_path"),
            "must be set together with content_sha256",
        )),
        (Some(path), Some(sha)) => {
            if path.is_empty() {
                return Err(Error::invalid(
                    format!("{at}content_path"),
                    "must not be empty",
                ));
            }
            let hex =
                sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !hex {
                return Err(Error::invalid(
                    format!("{at}content_sha256"),
                    "must be 64 lowercase hex digits (a SHA-256)",
                ));
            }
            Ok(())
        }
    }
}

/// An embedding must be non-empty and finite (NaN or ±inf poison similarity).
pub fn validate_embedding(values: &[f32], field: &str) -> Result<()> {
    if values.is_empty() {
        return Err(Error::invalid(
            field,
            "must not be empty (use None for no embedding)",
        ));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            field,
            format!("value at index {i} is not finite ({})", values[i]),
        ));
    }
    Ok(())
}

/// Packs an embedding as little-endian f32, the reference's BLOB format.
pub fn embedding_to_blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Unpacks a little-endian f32 BLOB; `None` when its length is not a multiple of 4.
pub fn embedding_from_blob(blob: &[u8]) -> Option<Vec<f32>> {
    if !blob.len().is_multiple_of(4) {
        return None;
    }
    Some(
        blob.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Chunk {
        Chunk {
            id: "c1".into(),
            content: "hello".into(),
            source_kind: SourceKind::Chat,
            source_id: "s1".into(),
            source_ref: None,
            owner: "alice".into(),
            timestamp_ms: 10,
            time_range_start_ms: 10,
            time_range_end_ms: 10,
            tags: vec![],
            token_count: 2,
            seq_in_source: 0,
            created_at_ms: 10,
            lifecycle_status: DEFAULT_LIFECYCLE_STATUS.into(),
            embedding: Some(vec![0.5, -1.0]),
            content_path: None,
            content_sha256: None,
        }
    }

    #[test]
    fn valid_chunk_passes() -> Result<()> {
        sample().validate("")
    }

    #[test]
    fn a_row_past_the_limit_is_refused_naming_the_content() -> Result<()> {
        let chunk = sample();
        let bound = chunk.row_size_bound();
        assert!(bound > ROW_OVERHEAD_BYTES + chunk.content.len() as u64);
        chunk.check_row_size(bound, "c[0].")?;
        match chunk.check_row_size(bound - 1, "c[0].") {
            Err(Error::InvalidInput { field, message }) => {
                assert_eq!(field, "c[0].content");
                assert!(message.contains("SQLITE_MAX_LENGTH"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn each_bad_field_is_named() {
        type Mutation = Box<dyn Fn(&mut Chunk)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("c[0].id", Box::new(|c| c.id.clear())),
            ("c[0].source_id", Box::new(|c| c.source_id.clear())),
            ("c[0].owner", Box::new(|c| c.owner.clear())),
            ("c[0].time_range", Box::new(|c| c.time_range_start_ms = 11)),
            (
                "c[0].timestamp",
                Box::new(|c| c.timestamp_ms = MAX_TIME_MS + 1),
            ),
            (
                "c[0].created_at",
                Box::new(|c| c.created_at_ms = MIN_TIME_MS - 1),
            ),
            (
                "c[0].time_range",
                Box::new(|c| c.time_range_end_ms = MAX_TIME_MS + 1),
            ),
            ("c[0].token_count", Box::new(|c| c.token_count = -1)),
            ("c[0].seq_in_source", Box::new(|c| c.seq_in_source = -5)),
            (
                "c[0].embedding",
                Box::new(|c| c.embedding = Some(vec![f32::NAN])),
            ),
            ("c[0].embedding", Box::new(|c| c.embedding = Some(vec![]))),
            (
                "c[0].lifecycle_status",
                Box::new(|c| c.lifecycle_status.clear()),
            ),
        ];
        for (expected, mutate) in cases {
            let mut chunk = sample();
            mutate(&mut chunk);
            match chunk.validate("c[0].") {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, expected),
                other => panic!("{expected}: expected InvalidInput, got {other:?}"),
            }
        }
    }

    #[test]
    fn embedding_blob_round_trips_and_rejects_ragged() {
        let v = vec![1.5f32, -0.25, 3.0e-8];
        assert_eq!(embedding_from_blob(&embedding_to_blob(&v)), Some(v));
        assert_eq!(embedding_from_blob(&[0, 0, 0]), None);
    }

    #[test]
    fn source_kind_parses_only_known_names() {
        assert_eq!("email".parse(), Ok(SourceKind::Email));
        assert!("Email".parse::<SourceKind>().is_err());
        assert!(SourceKind::parse_field("fax", "kind").is_err());
    }
}
