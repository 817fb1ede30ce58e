//! The trees themselves (`mem_tree_trees`): create, look up by id or by
//! `(kind, scope)`, get-or-create, list by kind. [`Trees`] is the handle every
//! summary-tree operation hangs off (`store.trees()`).

use rusqlite::{params, OptionalExtension};

use super::model::{tree_from_row, Tree, TreeKind, TreeStatus, TREE_COLUMNS};
use crate::db::store::Store;
use crate::error::Result;
use crate::sys::clock::now_ms;

/// The summary trees, summaries and buffers stored in one database.
#[derive(Debug, Clone, Copy)]
pub struct Trees<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// The summary trees stored in this database.
    pub fn trees(&self) -> Trees<'_> {
        Trees { store: self }
    }
}

/// A `"<kind>:<uuid v4>"` tree id from SQLite's random source, OpenHuman's
/// form; `?1` is the kind.
const NEW_TREE_ID_SQL: &str = "?1 || ':' || lower(hex(randomblob(4))) || '-' \
     || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' \
     || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) \
     || '-' || lower(hex(randomblob(6)))";

const INSERT_TREE_SQL: &str = "INSERT INTO mem_tree_trees (id, kind, scope, root_id, \
     max_level, status, created_at_ms, last_sealed_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

fn insert_tree(tx: &rusqlite::Transaction<'_>, tree: &Tree) -> rusqlite::Result<usize> {
    tx.prepare_cached(INSERT_TREE_SQL)?.execute(params![
        tree.id,
        tree.kind.as_str(),
        tree.scope,
        tree.root_id,
        tree.max_level,
        tree.status.as_str(),
        tree.created_at_ms,
        tree.last_sealed_at_ms,
    ])
}

fn new_tree_id(tx: &rusqlite::Transaction<'_>, kind: TreeKind) -> rusqlite::Result<String> {
    tx.prepare_cached(&format!("SELECT {NEW_TREE_ID_SQL}"))?
        .query_row([kind.as_str()], |r| r.get(0))
}

fn by_scope(
    conn: &rusqlite::Connection,
    kind: TreeKind,
    scope: &str,
) -> rusqlite::Result<Option<Tree>> {
    conn.prepare_cached(&format!(
        "SELECT {TREE_COLUMNS} FROM mem_tree_trees WHERE kind = ?1 AND scope = ?2"
    ))?
    .query_row(params![kind.as_str(), scope], tree_from_row)
    .optional()
}

impl Trees<'_> {
    /// Inserts `tree` as given. A second tree with the same `(kind, scope)`
    /// (or id) is refused by SQLite's UNIQUE constraint: a
    /// constraint error, nothing written.
    pub fn create(&self, tree: &Tree) -> Result<Tree> {
        tree.validate()?;
        self.store
            .write("create_tree", |tx| insert_tree(tx, tree))?;
        Ok(tree.clone())
    }

    /// A new active tree of `kind` over `scope`, created at
    /// `created_at_ms` (now when `None`), with a fresh `"<kind>:<uuid>"` id.
    pub fn create_new(
        &self,
        kind: TreeKind,
        scope: &str,
        created_at_ms: Option<i64>,
    ) -> Result<Tree> {
        let mut tree = self.fresh(kind, scope)?;
        if let Some(ms) = created_at_ms {
            tree.created_at_ms = ms;
            tree.validate()?;
        }
        self.store.write("create_tree", |tx| {
            let tree = Tree {
                id: new_tree_id(tx, kind)?,
                ..tree
            };
            insert_tree(tx, &tree)?;
            Ok(tree)
        })
    }

    fn fresh(&self, kind: TreeKind, scope: &str) -> Result<Tree> {
        let tree = Tree {
            id: "pending".to_owned(),
            kind,
            scope: scope.to_owned(),
            root_id: None,
            max_level: 0,
            status: TreeStatus::Active,
            created_at_ms: now_ms(),
            last_sealed_at_ms: None,
        };
        tree.validate()?;
        Ok(tree)
    }

    /// The tree of `kind` over `scope`, created (active, now) when missing.
    /// Concurrent callers get the same tree: the insert and the read are
    /// one transaction, and an existing row wins.
    pub fn get_or_create(&self, kind: TreeKind, scope: &str) -> Result<Tree> {
        if let Some(tree) = self.get_by_scope(kind, scope)? {
            return Ok(tree);
        }
        let tree = self.fresh(kind, scope)?;
        self.store.write("get_or_create_tree", |tx| {
            if let Some(existing) = by_scope(tx, kind, scope)? {
                return Ok(existing);
            }
            let tree = Tree {
                id: new_tree_id(tx, kind)?,
                ..tree
            };
            insert_tree(tx, &tree)?;
            Ok(tree)
        })
    }

    /// The tree with primary key `id`.
    pub fn get(&self, id: &str) -> Result<Option<Tree>> {
        self.store.read("get_tree", |conn| {
            conn.prepare_cached(&format!(
                "SELECT {TREE_COLUMNS} FROM mem_tree_trees WHERE id = ?1"
            ))?
            .query_row([id], tree_from_row)
            .optional()
        })
    }

    /// The tree of `kind` over `scope`.
    pub fn get_by_scope(&self, kind: TreeKind, scope: &str) -> Result<Option<Tree>> {
        self.store
            .read("get_tree_by_scope", |conn| by_scope(conn, kind, scope))
    }

    /// Every tree of `kind`, oldest first (`created_at_ms`, then insertion
    /// order — the rowid — for a tie: two trees created in one millisecond
    /// list in the order they were created).
    pub fn list_by_kind(&self, kind: TreeKind) -> Result<Vec<Tree>> {
        self.store.read("list_trees", |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {TREE_COLUMNS} FROM mem_tree_trees WHERE kind = ?1 \
                 ORDER BY created_at_ms ASC, rowid ASC"
            ))?;
            let rows = stmt.query_map([kind.as_str()], tree_from_row)?;
            rows.collect()
        })
    }
}
