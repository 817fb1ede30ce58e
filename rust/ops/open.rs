//! Opening a store for an application: the handle layer's open
//! ([`Store::open_file_reporting`]) and then what an open owes the
//! operations above it — today, finishing the file removals of an erasure a
//! crash interrupted ([`erase::sweep_on_open`]). Kept here so the handle
//! layer (`crate::db`) imports nothing from the operations built on it.

use std::path::Path;

use super::erase;
use crate::db::store::{Opened, Store};
use crate::error::Result;

/// Opens (or joins) the store at an explicit database file: Python's
/// `Store(path)`.
pub fn open_file(path: &Path) -> Result<(Store, Option<String>)> {
    Store::open_file_reporting(path).map(after_open)
}

/// Opens `<workspace>/memory_tree/chunks.db`: Python's `Store.open`.
pub fn open_workspace(workspace: &Path) -> Result<(Store, Option<String>)> {
    Store::open_workspace_reporting(workspace).map(after_open)
}

/// The sweep runs only when this open made the connection: a join must not
/// wait for the connection another handle may be writing on (even on this
/// thread). On an empty log it is one read.
fn after_open(opened: Opened) -> (Store, Option<String>) {
    if opened.made_connection {
        erase::sweep_on_open(&opened.store);
    }
    (opened.store, opened.journal_warning)
}
