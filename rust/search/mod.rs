//! Recall inside the store: exact vector search over the stored embeddings,
//! with the list filters applied first through the indexes.
//!
//! - [`vector`]: the metrics, scoring kernels and top-k selection;
//! - [`filter`]: a filter as the SQL listing the matching rowids (shared by
//!   every kind of search);
//! - [`cache`]: the embeddings held in memory, keyed on SQLite's own change
//!   detection so a search always sees the committed state;
//! - [`api`]: [`crate::Store::search_vector`] and the [`Hit`] it returns;
//! - [`text`]: [`crate::Store::search_text`], full-text search over the FTS5
//!   indexes the schema keeps in step with the content;
//! - [`hybrid`]: [`crate::Store::search`], text and vector fused by
//!   reciprocal rank fusion.

pub mod api;
pub mod cache;
pub mod filter;
pub mod hybrid;
pub mod text;
pub mod vector;

pub use api::{Hit, HitKind};
pub use text::Syntax;
pub use vector::Metric;
