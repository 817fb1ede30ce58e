//! An open database: the store handle and its write path, the one shared
//! connection per file, group commit, the busy handler, the circuit breaker
//! and the journal setup.

pub mod breaker;
pub mod busy;
pub mod connection;
pub mod group_commit;
pub mod journal;
pub mod store;
pub mod write;
