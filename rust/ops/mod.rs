//! Operations on a store kept for years: purging finished jobs, backup,
//! restore, compaction, age-based retention of chunks and owner erasure
//! (rows, then the content files they name), and the application's open
//! ([`open`]: the handle plus what an open owes these). Each lives in its own file
//! and goes through [`crate::db::store::Store`]'s write path, so its
//! transactions retry, classify and log like every other write.

pub mod backup;
pub mod compact;
pub mod erase;
pub mod open;
pub mod purge;
pub mod restore;
pub mod retention;
