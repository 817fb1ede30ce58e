//! What the core asks of the operating system: the clock, fork safety, and
//! file moves that never replace.

pub mod clock;
pub mod files;
pub mod fork;
