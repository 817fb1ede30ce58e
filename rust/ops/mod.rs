//! Operations on a store kept for years: purging finished jobs (more to
//! come: backup, restore, compaction, retention). Each lives in its own file
//! and goes through [`crate::store::Store`]'s write path, so its
//! transactions retry, classify and log like every other write.

pub mod purge;
