//! What the core asks of the operating system: the clock, fork safety, and
//! the file primitives (side-file names, moves that never replace, syncing a
//! folder's entries).

pub mod clock;
pub mod files;
pub mod fork;
