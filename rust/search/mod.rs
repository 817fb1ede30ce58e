//! Recall inside the store: exact vector search over the stored embeddings,
//! with the list filters applied first through the indexes.
//!
//! - [`vector`]: the metrics, scoring kernels and top-k selection;
//! - [`filter`]: a filter as the SQL listing the matching rowids (shared by
//!   every kind of search);
//! - [`cache`]: the embeddings held in memory, keyed on SQLite's own change
//!   detection so a search always sees the committed state;
//! - [`api`]: [`crate::Store::search_vector`] and the [`Hit`] it returns.

pub mod api;
pub mod cache;
pub mod filter;
pub mod vector;

pub use api::{Hit, HitKind};
pub use vector::Metric;
