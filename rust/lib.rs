//! memtree: a crash-safe SQLite store for an application's memory tree.
//!
//! The core is pure Rust and knows nothing of Python; the PyO3 glue lives in
//! [`python`] and is compiled only with the `python` feature.
#![warn(missing_docs)]
// These docs are for the crate's own developers and are built with
// `--document-private-items` (`make lint`), where a public item's link to a
// private one resolves like any other.
#![allow(rustdoc::private_intra_doc_links)]

pub mod bench;
pub mod chunks;
pub mod db;
pub mod error;
pub mod job_kinds;
pub mod jobs;
pub mod ops;
pub mod recovery;
pub mod scheduler;
pub mod schema;
pub mod scores;
pub mod search;
pub mod sys;
pub mod trees;
pub mod vfs;

#[cfg(feature = "python")]
mod python;

pub use chunks::derived::EmbeddingRows;
pub use chunks::derived::RawRef;
pub use chunks::record::{Chunk, SourceKind};
pub use chunks::sources::SourceInfo;
pub use chunks::{ChunkFilter, ReplaceOutcome};
pub use db::store::Store;
pub use error::{Error, Result};
pub use jobs::{Job, JobStatus, Jobs, NewJob};
