//! The hooks of tests and benchmarks, each its own submodule of the
//! extension (`memtree._native.testing`, `memtree._native.bench`), kept out
//! of the product API.

pub mod bench;
pub mod testing;
