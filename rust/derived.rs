//! Derived per-chunk data that ingest does not write: embeddings, raw-archive
//! references and content pointers, each read and written on its own column
//! without rewriting the chunk row.
//!
//! Every format is the reference's, so a database moves between the two:
//! `embedding` is a BLOB of little-endian IEEE `f32` (4 bytes per value, no
//! header), `raw_refs_json` a JSON array of `{"path", "start", "end"}`
//! objects, `content_path` / `content_sha256` two TEXT columns.

use rusqlite::{params, OptionalExtension};

use crate::chunk::{embedding_from_blob, embedding_to_blob, non_empty, validate_embedding};
use crate::error::{Error, Result};
use crate::store::Store;

/// One reference from a chunk into the raw archive: bytes `start..end` of
/// the file at `path` (`end = None`: to the end of the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRef {
    /// The archive file, relative to the workspace as the reference stores it.
    pub path: String,
    /// First byte of the range.
    pub start: i64,
    /// One past the last byte, or `None` for the end of the file.
    pub end: Option<i64>,
}

impl RawRef {
    /// Checks one reference; `field` names it in the error (`refs[2]`).
    pub fn validate(&self, field: &str) -> Result<()> {
        if self.path.is_empty() {
            return Err(Error::invalid(format!("{field}.path"), "must not be empty"));
        }
        if self.start < 0 {
            return Err(Error::invalid(format!("{field}.start"), "must be >= 0"));
        }
        if let Some(end) = self.end {
            if end < self.start {
                return Err(Error::invalid(
                    format!("{field}.end"),
                    "must be None or >= start",
                ));
            }
        }
        Ok(())
    }
}

/// The reference's JSON for a list of raw refs (keys `path`, `start`, `end`).
///
/// Written by hand so the keys keep the reference's order (its serde struct
/// order); `serde_json::Value` would sort them.
pub fn raw_refs_to_json(refs: &[RawRef]) -> String {
    let items: Vec<String> = refs
        .iter()
        .map(|r| {
            let end = r.end.map_or_else(|| "null".to_owned(), |e| e.to_string());
            format!(
                r#"{{"path":{},"start":{},"end":{end}}}"#,
                serde_json::Value::String(r.path.clone()),
                r.start
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Parses `raw_refs_json`; `Err` describes what is malformed.
pub fn raw_refs_from_json(text: &str) -> std::result::Result<Vec<RawRef>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let items = value
        .as_array()
        .ok_or("raw_refs_json is not a JSON array")?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = item
                .get("path")
                .and_then(|p| p.as_str())
                .ok_or(format!("raw_refs_json[{i}].path is not a string"))?;
            // The reference writes `start` always; a missing one reads as 0.
            let start = match item.get("start") {
                None | Some(serde_json::Value::Null) => 0,
                Some(v) => v
                    .as_i64()
                    .ok_or(format!("raw_refs_json[{i}].start is not an integer"))?,
            };
            let end = match item.get("end") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(
                    v.as_i64()
                        .ok_or(format!("raw_refs_json[{i}].end is not an integer"))?,
                ),
            };
            Ok(RawRef {
                path: path.to_owned(),
                start,
                end,
            })
        })
        .collect()
}

/// Many chunks' embeddings ([`Store::get_chunk_embeddings`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbeddingRows {
    /// The ids found with an embedding, in the order asked.
    pub ids: Vec<String>,
    /// The dimension (0 when no id was found).
    pub dim: usize,
    /// `ids.len() × dim` little-endian `f32`, row-major.
    pub data: Vec<u8>,
}

/// `rows` reordered by the `json_each` key each row came with.
fn in_key_order(rows: EmbeddingRows, keys: &[i64]) -> EmbeddingRows {
    let width = rows.dim * 4;
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| keys[i]);
    let mut out = EmbeddingRows {
        ids: Vec::with_capacity(order.len()),
        dim: rows.dim,
        data: Vec::with_capacity(rows.data.len()),
    };
    for i in order {
        out.ids.push(rows.ids[i].clone());
        out.data
            .extend_from_slice(&rows.data[i * width..(i + 1) * width]);
    }
    out
}

/// A stored value that does not parse: a read error, never a silent `None`.
fn malformed(column: usize, ty: rusqlite::types::Type, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, ty, message.into())
}

/// `(path, sha)` when both are set.
fn both(path: Option<String>, sha: Option<String>) -> Option<(String, String)> {
    path.zip(sha)
}

impl Store {
    /// Sets (`Some`) or clears (`None`) a chunk's embedding without touching
    /// any other column; returns whether the chunk exists. The vector is
    /// checked (non-empty, finite) before the transaction starts.
    pub fn set_chunk_embedding(&self, id: &str, vector: Option<&[f32]>) -> Result<bool> {
        non_empty("id", id)?;
        if let Some(values) = vector {
            validate_embedding(values, "vector")?;
        }
        let blob = vector.map(embedding_to_blob);
        self.write("set_chunk_embedding", |tx| {
            let changed = tx.execute(
                "UPDATE mem_tree_chunks SET embedding = ?2 WHERE id = ?1",
                params![id, blob],
            )?;
            Ok(changed == 1)
        })
    }

    /// A chunk's embedding; `None` when the chunk is missing or has none.
    pub fn get_chunk_embedding(&self, id: &str) -> Result<Option<Vec<f32>>> {
        self.read("get_chunk_embedding", |conn| {
            let blob: Option<Option<Vec<u8>>> = conn
                .query_row(
                    "SELECT embedding FROM mem_tree_chunks WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            blob.flatten()
                .map(|b| {
                    embedding_from_blob(&b).ok_or_else(|| {
                        malformed(
                            0,
                            rusqlite::types::Type::Blob,
                            format!(
                                "embedding blob of {} bytes is not a float32 vector",
                                b.len()
                            ),
                        )
                    })
                })
                .transpose()
        })
    }

    /// Sets or clears many chunks' embeddings in ONE transaction: `vectors[i]`
    /// goes to `ids[i]` (`None` clears). Every id and vector is checked
    /// (non-empty, finite) before the transaction starts; returns how many of
    /// the ids name a chunk (a missing id writes nothing).
    pub fn set_chunk_embeddings(
        &self,
        ids: &[String],
        vectors: &[Option<&[f32]>],
    ) -> Result<usize> {
        if ids.len() != vectors.len() {
            return Err(Error::invalid(
                "matrix",
                format!("has {} rows for {} ids", vectors.len(), ids.len()),
            ));
        }
        for (i, (id, vector)) in ids.iter().zip(vectors).enumerate() {
            non_empty(&format!("ids[{i}]"), id)?;
            if let Some(values) = vector {
                validate_embedding(values, &format!("matrix[{i}]"))?;
            }
        }
        if ids.is_empty() {
            return Ok(0);
        }
        self.write("set_chunk_embeddings", |tx| {
            let mut stmt =
                tx.prepare_cached("UPDATE mem_tree_chunks SET embedding = ?2 WHERE id = ?1")?;
            let mut blob = Vec::new();
            let mut found = 0;
            for (id, vector) in ids.iter().zip(vectors) {
                let changed = match vector {
                    Some(values) => {
                        blob.clear();
                        blob.extend(values.iter().flat_map(|v| v.to_le_bytes()));
                        stmt.execute(params![id, blob])?
                    }
                    None => stmt.execute(params![id, Option::<&[u8]>::None])?,
                };
                found += changed;
            }
            Ok(found)
        })
    }

    /// The embeddings of these chunks in one read: the ids that have one, in
    /// the order asked (an id asked twice comes twice), their dimension, and
    /// the vectors row-major as little-endian `f32` bytes (the stored blobs
    /// end to end). Embeddings of different dimensions are an error.
    pub fn get_chunk_embeddings(&self, ids: &[String]) -> Result<EmbeddingRows> {
        if ids.is_empty() {
            return Ok(EmbeddingRows::default());
        }
        let ids_json =
            serde_json::to_string(ids).map_err(|e| Error::invalid("ids", e.to_string()))?;
        let rows = self.read("get_chunk_embeddings", |conn| {
            // No ORDER BY: SQLite would sort the blobs in a temporary b-tree.
            // json_each drives the join, so rows come in the order asked;
            // the key check below is the guarantee.
            let mut stmt = conn.prepare_cached(
                "SELECT j.key, j.value, c.embedding FROM json_each(?1) AS j \
                 JOIN mem_tree_chunks AS c ON c.id = j.value \
                 WHERE c.embedding IS NOT NULL",
            )?;
            let mut rows = stmt.query([&ids_json])?;
            let mut out = EmbeddingRows::default();
            let mut keys: Vec<i64> = Vec::new();
            while let Some(row) = rows.next()? {
                let id: String = row.get(1)?;
                let blob = row.get_ref(2)?.as_blob()?;
                if blob.is_empty() || blob.len() % 4 != 0 {
                    return Err(malformed(
                        2,
                        rusqlite::types::Type::Blob,
                        format!(
                            "embedding blob of {} bytes of chunk {id:?} is not a float32 vector",
                            blob.len()
                        ),
                    ));
                }
                let dim = blob.len() / 4;
                if out.ids.is_empty() {
                    out.dim = dim;
                    out.data.reserve_exact(ids.len() * blob.len());
                } else if dim != out.dim {
                    return Ok(Err(Error::invalid(
                        "ids",
                        format!(
                            "embeddings of different dimensions: {} (chunk {:?}) \
                             and {dim} (chunk {id:?})",
                            out.dim, out.ids[0]
                        ),
                    )));
                }
                keys.push(row.get(0)?);
                out.data.extend_from_slice(blob);
                out.ids.push(id);
            }
            if !keys.is_sorted() {
                out = in_key_order(out, &keys);
            }
            Ok(Ok(out))
        })?;
        rows
    }

    /// Sets (`Some`, possibly empty) or clears (`None`) a chunk's raw refs;
    /// returns whether the chunk exists. Every ref is checked first.
    pub fn set_chunk_raw_refs(&self, id: &str, refs: Option<&[RawRef]>) -> Result<bool> {
        non_empty("id", id)?;
        if let Some(refs) = refs {
            for (i, r) in refs.iter().enumerate() {
                r.validate(&format!("refs[{i}]"))?;
            }
        }
        let json = refs.map(raw_refs_to_json);
        self.write("set_chunk_raw_refs", |tx| {
            let changed = tx.execute(
                "UPDATE mem_tree_chunks SET raw_refs_json = ?2 WHERE id = ?1",
                params![id, json],
            )?;
            Ok(changed == 1)
        })
    }

    /// A chunk's raw refs; `None` when the chunk is missing or has none.
    pub fn get_chunk_raw_refs(&self, id: &str) -> Result<Option<Vec<RawRef>>> {
        self.read("get_chunk_raw_refs", |conn| {
            let json: Option<Option<String>> = conn
                .query_row(
                    "SELECT raw_refs_json FROM mem_tree_chunks WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            // An empty string reads as no refs, as the reference reads it.
            json.flatten()
                .filter(|text| !text.is_empty())
                .map(|text| {
                    raw_refs_from_json(&text)
                        .map_err(|m| malformed(0, rusqlite::types::Type::Text, m))
                })
                .transpose()
        })
    }

    /// A chunk's `(content_path, content_sha256)` when both are set.
    pub fn get_chunk_content_pointers(&self, id: &str) -> Result<Option<(String, String)>> {
        self.read("get_chunk_content_pointers", |conn| {
            let row: Option<(Option<String>, Option<String>)> = conn
                .query_row(
                    "SELECT content_path, content_sha256 FROM mem_tree_chunks WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(row.and_then(|(p, s)| both(p, s)))
        })
    }

    /// A chunk's `content_path`, set or not its hash.
    pub fn get_chunk_content_path(&self, id: &str) -> Result<Option<String>> {
        self.read("get_chunk_content_path", |conn| {
            let path: Option<Option<String>> = conn
                .query_row(
                    "SELECT content_path FROM mem_tree_chunks WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(path.flatten())
        })
    }

    /// A summary's `(content_path, content_sha256)` when both are set
    /// (deleted or not, as the reference reads it by id).
    pub fn get_summary_content_pointers(&self, id: &str) -> Result<Option<(String, String)>> {
        self.read("get_summary_content_pointers", |conn| {
            let row: Option<(Option<String>, Option<String>)> = conn
                .query_row(
                    "SELECT content_path, content_sha256 FROM mem_tree_summaries WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(row.and_then(|(p, s)| both(p, s)))
        })
    }

    /// `(id, content_path, content_sha256)` of every live summary
    /// (`deleted = 0`) with both pointers set, by id.
    pub fn list_summaries_with_content_path(&self) -> Result<Vec<(String, String, String)>> {
        self.read("list_summaries_with_content_path", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, content_path, content_sha256 FROM mem_tree_summaries \
                 WHERE deleted = 0 AND content_path IS NOT NULL AND content_sha256 IS NOT NULL \
                 ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_refs_json_round_trips_in_the_reference_shape() {
        let refs = vec![
            RawRef {
                path: "raw/a.md".into(),
                start: 0,
                end: None,
            },
            RawRef {
                path: "raw/b.md".into(),
                start: 5,
                end: Some(9),
            },
        ];
        let json = raw_refs_to_json(&refs);
        assert_eq!(
            json,
            r#"[{"path":"raw/a.md","start":0,"end":null},{"path":"raw/b.md","start":5,"end":9}]"#
        );
        assert_eq!(raw_refs_from_json(&json), Ok(refs));
    }

    #[test]
    fn rows_out_of_key_order_are_put_back_in_order() {
        let rows = EmbeddingRows {
            ids: vec!["b".into(), "a".into(), "c".into()],
            dim: 1,
            data: [2f32, 1.0, 3.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        };
        let sorted = in_key_order(rows, &[1, 0, 2]);
        assert_eq!(sorted.ids, ["a", "b", "c"]);
        let want: Vec<u8> = [1f32, 2.0, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(sorted.data, want);
    }

    #[test]
    fn malformed_raw_refs_are_errors() {
        for bad in [
            "{}",
            "[1]",
            r#"[{"path":1}]"#,
            r#"[{"path":"a","end":"x"}]"#,
            "nope",
        ] {
            assert!(raw_refs_from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_refs_are_named() {
        let r = |path: &str, start, end| RawRef {
            path: path.into(),
            start,
            end,
        };
        for (bad, field) in [
            (r("", 0, None), "refs[1].path"),
            (r("a", -1, None), "refs[1].start"),
            (r("a", 5, Some(4)), "refs[1].end"),
        ] {
            let err = bad.validate("refs[1]").unwrap_err().to_string();
            assert!(err.starts_with(field), "{err}");
        }
    }
}
