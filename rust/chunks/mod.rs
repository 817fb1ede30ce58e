//! The chunks: the record ([`record::Chunk`]), its row in
//! `mem_tree_chunks` with the statements built from it ([`row`]), the batch
//! statement's virtual table ([`batch_rows`]), the operations on an open
//! store ([`ops`]), a chunk kept as its row's bytes ([`packed`]), the derived columns ([`derived`]) and the ingested
//! sources ([`sources`]).

pub mod batch_rows;
pub mod derived;
pub mod ops;
pub mod packed;
pub mod paging;
pub mod record;
pub mod row;
pub mod sources;

pub use ops::{ChunkFilter, ChunkInput, Prevalidated, ReplaceOutcome, MAX_LIST_LIMIT};
