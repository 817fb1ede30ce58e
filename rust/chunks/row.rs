//! The chunk row: [`CHUNK_COLUMN_ROLES`] is the one list of
//! `mem_tree_chunks` columns a chunk occupies, each marked key, ingest field
//! or derived state. The INSERT, UPSERT (which re-ingest only the ingest
//! fields) and SELECT statements are built from it once, and binding
//! ([`each_value`]) and row mapping ([`chunk_from_row`]) find each column's
//! position in it by name at compile time, so adding a column is an edit
//! here (plus the field on [`Chunk`]), and a misspelt name fails the build.

use std::sync::LazyLock;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::Row;

use crate::chunks::record::{embedding_from_blob, embedding_to_blob, Chunk};

/// Who writes a chunk column once the row exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The key: never updated.
    Key,
    /// An ingest field: a re-ingest (the upsert of an existing id) replaces it.
    Ingest,
    /// Derived state (embedding, lifecycle status): written when the row is
    /// inserted and kept by a re-ingest, as the reference's upsert keeps it;
    /// only its own setter changes it afterwards.
    Derived,
}

/// The `mem_tree_chunks` columns of one chunk with their [`Role`], in the
/// order every chunk statement names them and [`chunk_row`] returns them.
/// The reference's other derived columns (`raw_refs_json`, `content_path`,
/// `content_sha256`, `parent_summary_id`) are not chunk fields, so no chunk
/// statement writes them and a re-ingest keeps them too.
pub const CHUNK_COLUMN_ROLES: [(&str, Role); 17] = [
    ("id", Role::Key),
    ("content", Role::Ingest),
    ("source_kind", Role::Ingest),
    ("source_id", Role::Ingest),
    ("source_ref", Role::Ingest),
    ("owner", Role::Ingest),
    ("timestamp_ms", Role::Ingest),
    ("time_range_start_ms", Role::Ingest),
    ("time_range_end_ms", Role::Ingest),
    ("tags_json", Role::Ingest),
    ("token_count", Role::Ingest),
    ("seq_in_source", Role::Ingest),
    ("created_at_ms", Role::Ingest),
    ("lifecycle_status", Role::Derived),
    ("embedding", Role::Derived),
    ("content_path", Role::Derived),
    ("content_sha256", Role::Derived),
];

/// The names of [`CHUNK_COLUMN_ROLES`], in its order.
pub const CHUNK_COLUMNS: [&str; CHUNK_COLUMN_ROLES.len()] = {
    let mut names = [""; CHUNK_COLUMN_ROLES.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = CHUNK_COLUMN_ROLES[i].0;
        i += 1;
    }
    names
};

/// The number of chunk columns.
const N: usize = CHUNK_COLUMNS.len();

/// The position of `name` in [`CHUNK_COLUMNS`]. Called through [`col!`] in a
/// `const` block, so a name that is not a column stops the build.
pub(crate) const fn position(name: &str) -> usize {
    let mut i = 0;
    while i < N {
        let column = CHUNK_COLUMNS[i].as_bytes();
        let wanted = name.as_bytes();
        if column.len() == wanted.len() {
            let mut j = 0;
            while j < column.len() && column[j] == wanted[j] {
                j += 1;
            }
            if j == column.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a chunk column")
}

/// The compile-time position of a chunk column.
macro_rules! col {
    ($name:literal) => {
        const { $crate::chunks::row::position($name) }
    };
}
pub(crate) use col;

/// `a, b, c`: the column list every chunk statement uses.
pub(crate) static COLUMN_LIST: LazyLock<String> = LazyLock::new(|| CHUNK_COLUMNS.join(", "));

/// The fast path for new ids: [`UPSERT_SQL`] without its conflict clause.
pub(crate) static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=N).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO mem_tree_chunks ({}) VALUES ({})",
        *COLUMN_LIST,
        placeholders.join(", ")
    )
});

/// The store's upsert of one chunk: a new id is inserted whole; an existing
/// one has only its [`Role::Ingest`] columns replaced, so a re-ingest keeps
/// the chunk's embedding, lifecycle status and the reference's other derived
/// columns (its "re-ingest preserves the existing embedding").
pub(crate) static UPSERT_SQL: LazyLock<String> =
    LazyLock::new(|| format!("{} {}", *INSERT_SQL, *ON_CONFLICT));

/// The conflict clause both upserts end with: replace exactly the
/// [`Role::Ingest`] columns of an existing id.
pub(crate) static ON_CONFLICT: LazyLock<String> = LazyLock::new(|| {
    let updates: Vec<String> = CHUNK_COLUMN_ROLES
        .iter()
        .filter(|(_, role)| *role == Role::Ingest)
        .map(|(c, _)| format!("{c} = excluded.{c}"))
        .collect();
    format!("ON CONFLICT(id) DO UPDATE SET {}", updates.join(", "))
});

/// `SELECT <the chunk columns> FROM mem_tree_chunks`, for statements that
/// add their own clauses (`list_chunks`, the benchmark's row comparison).
pub(crate) static SELECT_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM mem_tree_chunks", *COLUMN_LIST));

/// One chunk by id.
pub(crate) static GET_SQL: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE id = ?1", *SELECT_SQL));

/// Many chunks by id in ONE statement: the ids arrive as one JSON array
/// (`?1`), so any number of them binds one variable (no 32,766-variable
/// limit, one cached statement for every size), and the statement runs in
/// one read lock where a point query per id took and dropped the rollback
/// journal's shared lock once per id. `json_each` is the outer loop, so each
/// element, a repeated id included, finds its row with one index search;
/// `j.key` (the element's index, the last column) puts the rows back in the
/// order asked whatever order SQLite returns them in. The chunk columns are
/// qualified: `json_each` has an `id` column too.
pub(crate) static GET_MANY_SQL: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = CHUNK_COLUMNS.iter().map(|c| format!("c.{c}")).collect();
    format!(
        "SELECT {}, j.key FROM json_each(?1) AS j \
         JOIN mem_tree_chunks AS c ON c.id = j.value",
        columns.join(", ")
    )
});

/// The per-row encodings [`each_value`] binds that are not stored in a
/// [`Chunk`] as such (tags as JSON text, the embedding as a blob), in
/// buffers an ingest loop reuses from row to row.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    tags_json: Vec<u8>,
    embedding: Option<Vec<u8>>,
}

/// Hands each of one chunk's values to `put` with its position in
/// [`CHUNK_COLUMNS`] (tags as their JSON text, the embedding as a
/// little-endian f32 blob, both encoded into `scratch`): the one place a
/// field meets its column on the way in. Every value borrows from `c` or
/// `scratch` for `'a`, so a statement may bind it without a copy.
pub(crate) fn each_value<'a>(
    c: &'a Chunk,
    scratch: &'a mut Encoded,
    mut put: impl FnMut(usize, ValueRef<'a>) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    scratch.tags_json.clear();
    serde_json::to_writer(&mut scratch.tags_json, &c.tags)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    scratch.embedding = c.embedding.as_deref().map(embedding_to_blob);
    let scratch: &'a Encoded = scratch;
    let text = |s: &'a str| ValueRef::Text(s.as_bytes());
    let opt_text = |s: &'a Option<String>| s.as_deref().map_or(ValueRef::Null, text);
    put(col!("id"), text(&c.id))?;
    put(col!("content"), text(&c.content))?;
    put(col!("source_kind"), text(c.source_kind.as_str()))?;
    put(col!("source_id"), text(&c.source_id))?;
    put(col!("source_ref"), opt_text(&c.source_ref))?;
    put(col!("owner"), text(&c.owner))?;
    put(col!("timestamp_ms"), ValueRef::Integer(c.timestamp_ms))?;
    put(
        col!("time_range_start_ms"),
        ValueRef::Integer(c.time_range_start_ms),
    )?;
    put(
        col!("time_range_end_ms"),
        ValueRef::Integer(c.time_range_end_ms),
    )?;
    put(col!("tags_json"), ValueRef::Text(&scratch.tags_json))?;
    put(col!("token_count"), ValueRef::Integer(c.token_count))?;
    put(col!("seq_in_source"), ValueRef::Integer(c.seq_in_source))?;
    put(col!("created_at_ms"), ValueRef::Integer(c.created_at_ms))?;
    put(col!("lifecycle_status"), text(&c.lifecycle_status))?;
    put(
        col!("embedding"),
        scratch
            .embedding
            .as_deref()
            .map_or(ValueRef::Null, ValueRef::Blob),
    )?;
    put(col!("content_path"), opt_text(&c.content_path))?;
    put(col!("content_sha256"), opt_text(&c.content_sha256))?;
    Ok(())
}

/// One chunk's values in [`CHUNK_COLUMNS`] order, owned: the row the
/// upsert binds (for the benchmark's stdlib baseline).
pub fn chunk_row(c: &Chunk) -> rusqlite::Result<Vec<Value>> {
    let mut row = vec![Value::Null; N];
    each_value(c, &mut Encoded::default(), |i, v| {
        row[i] =
            Value::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        Ok(())
    })?;
    Ok(row)
}

/// Binds one chunk's values to the upsert's (or insert's) parameters,
/// copied by SQLite (rusqlite binds text `SQLITE_TRANSIENT`).
pub(crate) fn bind_chunk(
    stmt: &mut rusqlite::CachedStatement<'_>,
    c: &Chunk,
    scratch: &mut Encoded,
) -> rusqlite::Result<()> {
    each_value(c, scratch, |i, value| {
        stmt.raw_bind_parameter(i + 1, ToSqlOutput::Borrowed(value))
    })
}

/// The TEXT at `column`, borrowed from the row: the kind and the tags are
/// parsed from it and never kept, so they need no copy of their own (a bulk
/// read such as a tree walk decodes thousands of rows). Any other type or
/// bad UTF-8 is the error `row.get::<String>` gives.
fn borrowed_text<'r>(row: &'r Row<'_>, column: usize) -> rusqlite::Result<&'r str> {
    match row.get_ref(column)? {
        ValueRef::Text(bytes) => {
            std::str::from_utf8(bytes).map_err(|e| rusqlite::Error::Utf8Error(column, e))
        }
        _ => row.get::<_, String>(column).map(|_| ""),
    }
}

/// The [`Chunk`] in a row selected with the [`CHUNK_COLUMNS`] list.
pub(crate) fn chunk_from_row(row: &Row<'_>) -> rusqlite::Result<Chunk> {
    let kind = borrowed_text(row, col!("source_kind"))?;
    let source_kind = kind.parse().map_err(|()| {
        rusqlite::Error::FromSqlConversionFailure(
            col!("source_kind"),
            rusqlite::types::Type::Text,
            format!("unknown source_kind {kind:?}").into(),
        )
    })?;
    let tags_json = borrowed_text(row, col!("tags_json"))?;
    let tags = serde_json::from_str(tags_json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            col!("tags_json"),
            rusqlite::types::Type::Text,
            e.into(),
        )
    })?;
    let embedding = match row.get_ref(col!("embedding"))?.as_blob_or_null()? {
        None => None,
        Some(blob) => Some(embedding_from_blob(blob).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                col!("embedding"),
                rusqlite::types::Type::Blob,
                format!(
                    "embedding blob of {} bytes is not a float32 vector",
                    blob.len()
                )
                .into(),
            )
        })?),
    };
    Ok(Chunk {
        id: row.get(col!("id"))?,
        content: row.get(col!("content"))?,
        source_kind,
        source_id: row.get(col!("source_id"))?,
        source_ref: row.get(col!("source_ref"))?,
        owner: row.get(col!("owner"))?,
        timestamp_ms: row.get(col!("timestamp_ms"))?,
        time_range_start_ms: row.get(col!("time_range_start_ms"))?,
        time_range_end_ms: row.get(col!("time_range_end_ms"))?,
        tags,
        token_count: row.get(col!("token_count"))?,
        seq_in_source: row.get(col!("seq_in_source"))?,
        created_at_ms: row.get(col!("created_at_ms"))?,
        lifecycle_status: row.get(col!("lifecycle_status"))?,
        embedding,
        content_path: row.get(col!("content_path"))?,
        content_sha256: row.get(col!("content_sha256"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::ops::tests::full_chunk;
    use crate::error::{Error, Result};

    #[test]
    fn every_column_is_bound_and_named_in_every_statement() -> Result<()> {
        let row = chunk_row(&full_chunk()).map_err(|e| Error::invalid("row", e.to_string()))?;
        for (name, value) in CHUNK_COLUMNS.iter().zip(&row) {
            assert_ne!(*value, Value::Null, "{name} is not bound");
        }
        assert_eq!(row[col!("tags_json")], Value::Text(r#"["a","b"]"#.into()));
        for name in CHUNK_COLUMNS {
            assert!(
                INSERT_SQL.contains(name) && GET_SQL.contains(name),
                "{name}"
            );
        }
        for (name, role) in CHUNK_COLUMN_ROLES {
            let updated = UPSERT_SQL.contains(&format!("{name} = excluded.{name}"));
            assert_eq!(updated, role == Role::Ingest, "{name}");
        }
        assert!(INSERT_SQL.ends_with(&format!("?{N})")));
        Ok(())
    }
}
