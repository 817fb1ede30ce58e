//! An open database: the store handle and its write path, the one shared
//! connection per file, group commit, the busy handler, the circuit breaker,
//! the journal setup, and the raw column reads of bulk reads.

pub mod breaker;
pub mod busy;
pub mod connection;
pub mod group_commit;
pub mod journal;
pub mod packed;
pub(crate) mod raw_columns;
pub mod store;
pub mod write;
