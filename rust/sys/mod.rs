//! What the core asks of the operating system: the clock, fork safety, and
//! the file primitives (side-file names, moves that never replace, syncing a
//! folder's entries) and the checks of a path before anything opens it.

pub mod clock;
pub mod files;
pub mod fork;
pub mod path_guard;
