//! Chunk scores, the entity index and entity hotness, as OpenHuman's
//! memory_tree keeps them in `chunks.db` (`mem_tree_score`,
//! `mem_tree_entity_index`, `mem_tree_entity_hotness`), with the score and
//! its entities replaced in one transaction.

mod entities;
mod hotness;
mod model;
mod rows;

pub use model::{Entity, EntityHit, Hotness, ScoreRow, ENTITY_KINDS};
pub use rows::Scores;
