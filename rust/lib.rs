//! memtree: a crash-safe SQLite store for an application's memory tree.
//!
//! The core is pure Rust and knows nothing of Python; the PyO3 glue lives in
//! [`python`] and is compiled only with the `python` feature.
#![warn(missing_docs)]

pub mod batch_rows;
pub mod bench;
pub mod breaker;
pub mod busy;
pub mod chunk;
pub mod chunks;
pub mod chunks_paging;
pub mod classify;
pub mod clock;
pub mod codes;
pub mod connection;
pub mod derived;
pub mod error;
pub mod events;
pub mod files;
pub mod fork;
pub mod group_commit;
pub mod job_kinds;
pub mod jobs;
pub mod journal;
mod lent;
pub mod path_guard;
pub mod quarantine;
pub mod recovery;
pub mod salvage;
pub mod scheduler;
pub mod schema;
pub mod scores;
pub mod search;
pub mod sources;
pub mod store;
pub mod trees;
pub mod vfs;

#[cfg(feature = "python")]
mod python;

pub use chunk::{Chunk, SourceKind};
pub use chunks::{ChunkFilter, ReplaceOutcome};
pub use derived::{EmbeddingRows, RawRef};
pub use error::{Error, Result};
pub use jobs::{Job, JobStatus, Jobs, NewJob};
pub use sources::SourceInfo;
pub use store::Store;
