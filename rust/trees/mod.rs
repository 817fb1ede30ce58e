//! Summary trees, as OpenHuman's memory_tree keeps them in `chunks.db`: the
//! trees, their sealed summaries and their unsealed buffers, the atomic,
//! optimistic seal, and the walk over a subtree in one statement (its
//! summaries kept as their rows' bytes: [`packed`]).

mod buffers;
mod model;
pub mod packed;
mod registry;
mod seal;
mod summaries;
mod walk;

pub(crate) use model::check_level;
pub use model::{
    Buffer, Summary, Tree, TreeKind, TreeStatus, INPUT_TOKEN_BUDGET, MAX_LEVEL, SUMMARY_FANOUT,
};
pub use registry::Trees;
pub use seal::Seal;
pub use walk::{At, Node, Subtree};
