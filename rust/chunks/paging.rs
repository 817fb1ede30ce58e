//! Paging through `list_chunks` by cursor: `list_chunks(after=chunk)` and
//! `iter_chunks`.
//!
//! The list order is total, `timestamp_ms DESC, seq_in_source ASC, id ASC`,
//! so "the rows after this chunk" is exact: a page starts right after the
//! last row of the previous one, whatever rows share its timestamp or its
//! sequence number. Each page is its own read (keyset paging, no `OFFSET`):
//! a page costs the same at row 0 and at row 1,000,000, and rows committed
//! between two pages are seen when the walk reaches their place (a row
//! written behind the cursor is not; nothing is seen twice).

use rusqlite::types::Value;

use crate::chunks::packed::PackedChunk;
use crate::chunks::record::Chunk;
use crate::chunks::ChunkFilter;
use crate::db::store::Store;
use crate::error::Result;

/// A position in the list order: the sort key of the last row seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    /// The row's `timestamp_ms`.
    pub timestamp_ms: i64,
    /// The row's `seq_in_source`.
    pub seq_in_source: i64,
    /// The row's id.
    pub id: String,
}

impl ListCursor {
    /// The position of `chunk` (which need not be stored any more).
    pub fn of(chunk: &Chunk) -> ListCursor {
        ListCursor {
            timestamp_ms: chunk.timestamp_ms,
            seq_in_source: chunk.seq_in_source,
            id: chunk.id.clone(),
        }
    }

    /// The position of a packed chunk, read without unpacking it.
    pub fn of_packed(chunk: &PackedChunk) -> ListCursor {
        ListCursor {
            timestamp_ms: chunk.timestamp_ms(),
            seq_in_source: chunk.seq_in_source(),
            id: chunk.id().to_owned(),
        }
    }

    /// The SQL term admitting only the rows after this position, its
    /// parameters numbered from `?first`. The bound `timestamp_ms <= t` is
    /// the range the list index is walked from; the rest is a `NOT` rather
    /// than an `OR` of the three cases so the planner keeps that one index
    /// range and its order (an `OR` invites a multi-index plan and a sort).
    /// Rows of timestamp `t` before the cursor are stepped over on the
    /// index, without reading their table rows.
    pub(crate) fn clause(&self, first: usize) -> (String, Vec<Value>) {
        let (t, s, i) = (first, first + 1, first + 2);
        (
            format!(
                "timestamp_ms <= ?{t} AND NOT (timestamp_ms = ?{t} AND \
                 (seq_in_source < ?{s} OR (seq_in_source = ?{s} AND id <= ?{i})))"
            ),
            vec![
                Value::Integer(self.timestamp_ms),
                Value::Integer(self.seq_in_source),
                Value::Text(self.id.clone()),
            ],
        )
    }
}

/// Every chunk matching a filter, one page (one read) at a time.
#[derive(Debug, Clone)]
pub struct ChunkPages {
    filter: ChunkFilter,
    page_size: i64,
    after: Option<ListCursor>,
    done: bool,
}

impl ChunkPages {
    /// Pages of `page_size` rows (clamped to 1..=10000) through `filter`.
    pub fn new(filter: ChunkFilter, page_size: i64) -> ChunkPages {
        ChunkPages {
            filter,
            page_size: page_size.clamp(1, crate::chunks::MAX_LIST_LIMIT),
            after: None,
            done: false,
        }
    }

    /// The next page, in list order, each chunk kept as its row's bytes
    /// (the iterator hands them out as they are asked for); empty once
    /// every row was returned.
    pub fn next_page(&mut self, store: &Store) -> Result<Vec<PackedChunk>> {
        if self.done {
            return Ok(Vec::new());
        }
        let page =
            store.list_chunks_after_packed(&self.filter, self.after.as_ref(), self.page_size)?;
        match page.last() {
            Some(last) if page.len() as i64 == self.page_size => {
                self.after = Some(ListCursor::of_packed(last));
            }
            // A short page is the last one.
            _ => self.done = true,
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::ops::tests::plain_chunk;
    use crate::db::packed::Unpack;

    fn chunk(id: &str, ts: i64, seq: i64) -> Chunk {
        Chunk {
            seq_in_source: seq,
            ..plain_chunk(id, ts)
        }
    }

    #[test]
    fn pages_follow_the_total_order_through_ties() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open_file(&dir.path().join("s.db"))?;
        // Ties on timestamp, and on (timestamp, seq), in both directions.
        let mut rows = Vec::new();
        for i in 0..60 {
            rows.push(chunk(&format!("r{:02}", 59 - i), i % 4, i % 3));
        }
        store.upsert_chunks(&rows)?;
        let mut want = rows.clone();
        want.sort_by(|a, b| {
            b.timestamp_ms
                .cmp(&a.timestamp_ms)
                .then(a.seq_in_source.cmp(&b.seq_in_source))
                .then(a.id.cmp(&b.id))
        });
        let want: Vec<String> = want.into_iter().map(|c| c.id).collect();
        let listed: Vec<String> = store
            .list_chunks(&ChunkFilter::default(), 100)?
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(listed, want);
        for size in [1, 7, 59, 60, 61] {
            let mut pages = ChunkPages::new(ChunkFilter::default(), size);
            let mut got = Vec::new();
            loop {
                let page = pages.next_page(&store)?;
                if page.is_empty() {
                    break;
                }
                if let Some(last) = page.last() {
                    // The cursor read from the bytes is the decoded chunk's.
                    assert_eq!(ListCursor::of_packed(last), ListCursor::of(&last.unpack()));
                }
                got.extend(page.iter().map(|c| c.id().to_owned()));
            }
            assert_eq!(got, want, "page size {size}");
        }
        Ok(())
    }
}
