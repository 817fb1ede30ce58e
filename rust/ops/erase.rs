//! Owner erasure: `erase_owner` deletes an owner's chunks with their score
//! and entity-index rows, then removes the content files their content
//! pointers (`content_path` + `content_sha256`) name — database first,
//! files after — and a sweep (when an open makes the process's connection,
//! and on request) finishes what a crash in between left.
//!
//! The rule that keeps it safe: memtree removes only a file it was told to
//! erase, reached only by a path it chose.
//!
//! - **Told to erase.** In the same transaction as the row deletion, each
//!   file to remove is written to `memtree_erasure_log` with the content
//!   root, the row's relative path and its sha256. Only log rows lead to a
//!   removal, and each is deleted once its file is handled, so a crash
//!   leaves either the rows (nothing logged, nothing removed) or the log.
//! - **A root the caller chose.** The content root is the caller's
//!   `content_root`, or the reference's convention: OpenHuman keeps
//!   `chunks.db` in `<workspace>/memory_tree/` and its content files under
//!   `<workspace>/memory_tree/content/` (`memory_tree_content_root()`, unless
//!   its `memory_tree.content_dir` setting moves them), so the default is
//!   `content/` beside the database. The root is recorded in the log row and
//!   a pass removes only the rows of the root it was given: a row logged
//!   under another root waits for a pass given that root.
//! - **A path memtree chose.** The row's path must be relative, `/`
//!   separated, without empty, `.` or `..` parts (else the file is kept:
//!   [`KeptReason::UnsafePath`]). It is walked from the root one folder at a
//!   time with `openat(O_NOFOLLOW)`, each folder checked with `lstat` and
//!   the opened handle compared to it, so no symbolic link is followed
//!   ([`KeptReason::Symlink`]); the file must be a regular file
//!   ([`KeptReason::NotRegular`]).
//! - **Still the same file.** Its sha256 must equal the recorded one: the
//!   reference hashes a file's body, after its YAML front matter (so a tag
//!   rewrite keeps the hash), and a file that hashes equal as a whole is
//!   accepted too. A file rewritten since is not ours to delete
//!   ([`KeptReason::Changed`]).
//! - **Named by no one else.** A file another remaining chunk or summary
//!   still names is kept ([`KeptReason::StillNamed`]); that check and the
//!   removal run under the write lock, so no commit can name the file in
//!   between.
//!
//! Removals run in batches of [`FILE_BATCH`] log rows, each one write
//! transaction: files are unlinked, their folders fsynced, then their log
//! rows deleted; a crash before the commit leaves the rows, and the next
//! pass finds those files gone. A log row whose file could not be handled
//! (an I/O error) stays for the next pass. Folders are never removed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use crate::db::store::Store;
use crate::error::{Error, Result};
use crate::sys::clock::now_ms;

/// Log rows handled per write transaction of a removal pass.
pub const FILE_BATCH: i64 = 100;

/// The default content root's name, beside the database file.
pub const DEFAULT_CONTENT_DIR: &str = "content";

/// Why a content file was left in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeptReason {
    /// Its sha256 is not the one recorded: rewritten since, not ours.
    Changed,
    /// A remaining chunk or summary still names it.
    StillNamed,
    /// It, or a folder on its path, is a symbolic link.
    Symlink,
    /// It is not a regular file (or a folder on its path is not a folder).
    NotRegular,
    /// The recorded path is absolute or has an empty, `.` or `..` part.
    UnsafePath,
    /// The row has a path but no valid sha256 to check the file against.
    NoSha256,
}

impl KeptReason {
    /// The reason's name, as Python sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeptReason::Changed => "changed",
            KeptReason::StillNamed => "still_named",
            KeptReason::Symlink => "symlink",
            KeptReason::NotRegular => "not_regular",
            KeptReason::UnsafePath => "unsafe_path",
            KeptReason::NoSha256 => "no_sha256",
        }
    }
}

/// A content file left in place, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptFile {
    /// The row's `content_path`, relative to the content root.
    pub path: String,
    /// Why it was kept.
    pub reason: KeptReason,
}

/// What a removal pass did with the files logged for removal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSweep {
    /// Files removed.
    pub removed: usize,
    /// Logged files that were already gone.
    pub missing: usize,
    /// Files left in place, with why (their log rows are done).
    pub kept: Vec<KeptFile>,
    /// Log rows left for a later pass (an I/O error, or another root).
    pub pending: usize,
}

/// What [`erase_owner`] deleted and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureReport {
    /// Chunks deleted.
    pub chunks: usize,
    /// Score rows deleted.
    pub scores: usize,
    /// Entity-index rows deleted.
    pub entity_rows: usize,
    /// Summaries kept that list an erased chunk among their children
    /// (trees have no owner, and a summary may mix owners: they are the
    /// application's to reseal or delete).
    pub summaries_derived: usize,
    /// The content files.
    pub files: FileSweep,
}

/// The content root of `store` when the caller names none: `content/`
/// beside the database (OpenHuman's `<workspace>/memory_tree/content`).
pub fn default_content_root(store: &Store) -> PathBuf {
    store
        .path()
        .parent()
        .unwrap_or_else(|| Path::new("/"))
        .join(DEFAULT_CONTENT_DIR)
}

/// The root as recorded in the log: absolute, its own links resolved when
/// it exists (the caller chose it), UTF-8.
fn root_text(store: &Store, given: Option<&Path>) -> Result<String> {
    let root = match given {
        Some(root) => {
            std::path::absolute(root).map_err(|e| Error::io("resolve the content root", root, e))?
        }
        None => default_content_root(store),
    };
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    root.to_str().map(str::to_owned).ok_or_else(|| {
        Error::invalid(
            "content_root",
            format!("{} is not valid UTF-8", root.display()),
        )
    })
}

/// The parts of a stored relative path, or `None` if memtree must not walk
/// it: absolute, empty, with an empty, `.` or `..` part, a backslash or NUL.
fn relative_parts(path: &str) -> Option<Vec<&str>> {
    if path.is_empty() || path.starts_with('/') || path.contains(['\\', '\0']) {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return None;
    }
    Some(parts)
}

/// A recorded sha256, lower-cased, if it is 64 hex digits.
fn normal_sha256(sha: Option<&str>) -> Option<String> {
    let sha = sha?.trim();
    (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_lowercase())
}

/// The body of a reference content file: what follows its YAML front
/// matter (`---\n…\n---\n`), as OpenHuman's `split_front_matter` finds it.
fn front_matter_body(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(b"---\n")?;
    if let Some(at) = rest.windows(5).position(|w| w == b"\n---\n") {
        return Some(&rest[at + 5..]);
    }
    rest.ends_with(b"\n---").then_some(&[][..])
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `bytes` are the file a row recorded as `sha256`: its body (the
/// reference's hash) or its whole content.
fn matches_recorded(bytes: &[u8], sha256: &str) -> bool {
    front_matter_body(bytes).is_some_and(|body| hex(&Sha256::digest(body)) == sha256)
        || hex(&Sha256::digest(bytes)) == sha256
}

/// Test hook: the process aborts (as a `kill -9` would stop it) at this
/// step of an erasure, counted from 1 across the process; 0 disarms.
static ABORT_AT_STEP: AtomicU64 = AtomicU64::new(0);
static STEPS_TAKEN: AtomicU64 = AtomicU64::new(0);

/// Arms the abort hook at `step` (0 disarms) and restarts the count.
#[doc(hidden)]
pub fn abort_at_step(step: u64) {
    STEPS_TAKEN.store(0, Ordering::SeqCst);
    ABORT_AT_STEP.store(step, Ordering::SeqCst);
}

/// One step of the erasure path, where the test hook may stop the process.
fn step() {
    let armed = ABORT_AT_STEP.load(Ordering::Relaxed);
    if armed != 0 && STEPS_TAKEN.fetch_add(1, Ordering::SeqCst) + 1 == armed {
        std::process::abort();
    }
}

/// Deletes every chunk of `owner` with its score and entity-index rows and
/// logs the content files they name, in one transaction; then removes the
/// files logged under the content root (`content_root`, or `content/`
/// beside the database).
pub fn erase_owner(
    store: &Store,
    owner: &str,
    content_root: Option<&Path>,
) -> Result<ErasureReport> {
    if owner.is_empty() {
        return Err(Error::invalid("owner", "must not be empty"));
    }
    let root = root_text(store, content_root)?;
    let (mut report, refused) =
        store.write("erase_owner", |tx| delete_and_log(tx, owner, &root))?;
    step();
    report.files = sweep_root(store, &root)?;
    report.files.kept.splice(0..0, refused);
    Ok(report)
}

/// The database part of [`erase_owner`]: the rows go and the files to
/// remove are logged, or nothing happens. Returns the counts and the files
/// refused at once (unsafe path, no sha256).
fn delete_and_log(
    tx: &Transaction<'_>,
    owner: &str,
    root: &str,
) -> rusqlite::Result<(ErasureReport, Vec<KeptFile>)> {
    let mut refused = Vec::new();
    let mut logged = std::collections::HashSet::new();
    let logged_at = now_ms();
    {
        let mut pointers = tx.prepare(
            "SELECT content_path, content_sha256 FROM mem_tree_chunks \
             WHERE owner = ?1 AND content_path IS NOT NULL AND content_path != '' \
             GROUP BY content_path, content_sha256",
        )?;
        let mut log = tx.prepare(
            "INSERT INTO memtree_erasure_log (content_root, content_path, content_sha256, \
             logged_at_ms) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut rows = pointers.query(params![owner])?;
        while let Some(row) = rows.next()? {
            let path: String = row.get(0)?;
            let sha: Option<String> = row.get(1)?;
            let reason = match (relative_parts(&path), normal_sha256(sha.as_deref())) {
                (None, _) => KeptReason::UnsafePath,
                (Some(_), None) => KeptReason::NoSha256,
                (Some(_), Some(sha)) => {
                    // Hashes differing only in case name one file once.
                    if logged.insert((path.clone(), sha.clone())) {
                        log.execute(params![root, path, sha, logged_at])?;
                    }
                    continue;
                }
            };
            refused.push(KeptFile { path, reason });
        }
    }
    let summaries_derived: i64 = tx.query_row(
        "SELECT count(*) FROM mem_tree_summaries AS s WHERE EXISTS ( \
             SELECT 1 FROM json_each(CASE WHEN json_valid(s.child_ids_json) \
                                          THEN s.child_ids_json ELSE '[]' END) AS j \
             JOIN mem_tree_chunks AS c ON c.id = j.value WHERE c.owner = ?1)",
        params![owner],
        |r| r.get(0),
    )?;
    let scores = tx.execute(
        "DELETE FROM mem_tree_score WHERE chunk_id IN \
         (SELECT id FROM mem_tree_chunks WHERE owner = ?1)",
        params![owner],
    )?;
    let entity_rows = tx.execute(
        "DELETE FROM mem_tree_entity_index WHERE node_id IN \
         (SELECT id FROM mem_tree_chunks WHERE owner = ?1)",
        params![owner],
    )?;
    let chunks = tx.execute(
        "DELETE FROM mem_tree_chunks WHERE owner = ?1",
        params![owner],
    )?;
    step();
    Ok((
        ErasureReport {
            chunks,
            scores,
            entity_rows,
            summaries_derived: summaries_derived as usize,
            files: FileSweep::default(),
        },
        refused,
    ))
}

/// Removes the files logged for removal under `content_root` (or the
/// default root): the explicit form of the sweep an open runs.
pub fn sweep(store: &Store, content_root: Option<&Path>) -> Result<FileSweep> {
    let root = root_text(store, content_root)?;
    sweep_root(store, &root)
}

/// The sweep the open that makes a process's connection to the file runs:
/// one read of the log's first row when it is empty (the usual case);
/// otherwise a pass over the default root. It never fails the open: a
/// failure is logged and the rows wait for the next pass.
pub fn sweep_on_open(store: &Store) {
    let pending = store.read("erasure log", |conn| {
        conn.prepare_cached("SELECT 1 FROM memtree_erasure_log LIMIT 1")?
            .query_row([], |_| Ok(()))
            .optional()
    });
    match pending {
        Ok(None) => {}
        Ok(Some(())) => match sweep(store, None) {
            Ok(done) => log::info!(
                target: "memtree::erase",
                db_path:% = store.path().display(), removed = done.removed,
                kept = done.kept.len(), pending = done.pending;
                "finished the file removals of an interrupted erasure of {}: {} removed, \
                 {} kept, {} log rows pending",
                store.path().display(), done.removed, done.kept.len(), done.pending
            ),
            Err(e) => log::warn!(
                target: "memtree::erase",
                db_path:% = store.path().display();
                "could not finish the file removals of an erasure of {}: {e}",
                store.path().display()
            ),
        },
        Err(e) => log::warn!(
            target: "memtree::erase",
            db_path:% = store.path().display();
            "could not read the erasure log of {}: {e}",
            store.path().display()
        ),
    }
}

/// What happened to one logged file.
enum Outcome {
    Removed,
    Missing,
    Kept(KeptReason),
    /// Could not be handled now: the log row stays.
    Failed,
}

/// Handles every log row of `root`, [`FILE_BATCH`] per transaction.
fn sweep_root(store: &Store, root: &str) -> Result<FileSweep> {
    let mut sweep = FileSweep::default();
    let mut after = 0_i64;
    loop {
        let (handled, last) =
            store.write("erase_owner files", |tx| remove_batch(tx, root, after))?;
        let count = handled.len();
        for (path, outcome) in handled {
            match outcome {
                Outcome::Removed => sweep.removed += 1,
                Outcome::Missing => sweep.missing += 1,
                Outcome::Kept(reason) => sweep.kept.push(KeptFile { path, reason }),
                Outcome::Failed => {}
            }
        }
        step();
        if (count as i64) < FILE_BATCH {
            break;
        }
        after = last;
    }
    sweep.pending = store.read("erasure log", |conn| {
        conn.query_row("SELECT count(*) FROM memtree_erasure_log", [], |r| {
            r.get::<_, i64>(0)
        })
    })? as usize;
    Ok(sweep)
}

/// One batch: the log rows of `root` after id `after`, each file checked
/// and removed, their folders fsynced, then the rows of the files handled
/// deleted (in this transaction, committed by the caller).
fn remove_batch(
    tx: &Transaction<'_>,
    root: &str,
    after: i64,
) -> rusqlite::Result<(Vec<(String, Outcome)>, i64)> {
    let rows: Vec<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT id, content_path, content_sha256 FROM memtree_erasure_log \
             WHERE id > ?2 AND content_root = ?1 ORDER BY id LIMIT ?3",
        )?
        .query_map(params![root, after, FILE_BATCH], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let last = rows.last().map_or(after, |r| r.0);
    let mut named = tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM mem_tree_chunks WHERE content_path = ?1) \
             OR EXISTS (SELECT 1 FROM mem_tree_summaries WHERE content_path = ?1)",
    )?;
    let mut folders = Folders::default();
    let mut handled = Vec::with_capacity(rows.len());
    for (id, path, sha) in rows {
        let outcome = if named.query_row(params![path], |r| r.get::<_, bool>(0))? {
            Outcome::Kept(KeptReason::StillNamed)
        } else {
            match relative_parts(&path) {
                None => Outcome::Kept(KeptReason::UnsafePath),
                Some(parts) => remove_file(Path::new(root), &parts, &sha, id, &mut folders),
            }
        };
        handled.push((id, path, outcome));
    }
    // The removals reach the disk before their log rows go.
    let unsynced = folders.sync_all();
    let mut forget = tx.prepare_cached("DELETE FROM memtree_erasure_log WHERE id = ?1")?;
    let mut done = Vec::with_capacity(handled.len());
    for (id, path, outcome) in handled {
        let outcome = match outcome {
            Outcome::Removed if unsynced.contains(&id) => Outcome::Failed,
            other => other,
        };
        if !matches!(outcome, Outcome::Failed) {
            forget.execute(params![id])?;
        }
        done.push((path, outcome));
    }
    step();
    Ok((done, last))
}

/// The folders files were removed from in a batch, to fsync once each.
#[derive(Default)]
struct Folders {
    #[cfg(unix)]
    open: HashMap<(u64, u64), (std::os::fd::OwnedFd, Vec<i64>)>,
    #[cfg(not(unix))]
    open: HashMap<(), ()>,
}

#[cfg(unix)]
impl Folders {
    /// Fsyncs each folder; returns the log ids whose folder failed to sync.
    fn sync_all(self) -> Vec<i64> {
        let mut failed = Vec::new();
        for (_, (fd, ids)) in self.open {
            if std::fs::File::from(fd).sync_all().is_err() {
                failed.extend(ids);
            }
        }
        failed
    }
}

#[cfg(not(unix))]
impl Folders {
    fn sync_all(self) -> Vec<i64> {
        Vec::new()
    }
}

#[cfg(unix)]
mod walk {
    //! The descent from the root with `openat`, never through a link.

    use std::ffi::CString;
    use std::io;
    use std::mem::MaybeUninit;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    fn cstr(s: &[u8]) -> io::Result<CString> {
        CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    }

    /// `lstat` of `name` in the folder `dir`.
    pub fn lstat_at(dir: &OwnedFd, name: &str) -> io::Result<libc::stat> {
        let name = cstr(name.as_bytes())?;
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: a valid folder handle, a NUL-terminated name, a buffer of
        // the right type for fstatat to fill.
        let rc = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstatat succeeded, so it filled the buffer.
        Ok(unsafe { st.assume_init() })
    }

    /// `fstat` of an open handle.
    pub fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: a valid handle and a buffer of the right type.
        if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstat succeeded, so it filled the buffer.
        Ok(unsafe { st.assume_init() })
    }

    fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor this function alone owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Opens the content root (a path the caller chose).
    pub fn open_root(root: &Path) -> io::Result<OwnedFd> {
        let root = cstr(root.as_os_str().as_bytes())?;
        // SAFETY: a NUL-terminated path; the result is checked.
        owned(unsafe {
            libc::open(
                root.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })
    }

    /// Opens `name` in `dir` without following a link: a folder with
    /// `folder`, else a file (non-blocking, so a FIFO swapped in cannot
    /// stall the open).
    pub fn open_at(dir: &OwnedFd, name: &str, folder: bool) -> io::Result<OwnedFd> {
        let name = cstr(name.as_bytes())?;
        let kind = if folder {
            libc::O_DIRECTORY
        } else {
            libc::O_NONBLOCK
        };
        // SAFETY: a valid folder handle, a NUL-terminated name; the result
        // is checked.
        owned(unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | kind,
            )
        })
    }

    /// Unlinks `name` in `dir` (a link itself, never its target).
    pub fn unlink_at(dir: &OwnedFd, name: &str) -> io::Result<()> {
        let name = cstr(name.as_bytes())?;
        // SAFETY: a valid folder handle and a NUL-terminated name.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn is_kind(st: &libc::stat, kind: libc::mode_t) -> bool {
        st.st_mode & libc::S_IFMT == kind
    }

    pub fn same(a: &libc::stat, b: &libc::stat) -> bool {
        a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }
}

/// Checks and removes one logged file (see the module's rule).
#[cfg(unix)]
fn remove_file(root: &Path, parts: &[&str], sha: &str, id: i64, folders: &mut Folders) -> Outcome {
    use std::io::{self, Read};
    use walk::{fstat, is_kind, lstat_at, open_at, open_root, same, unlink_at};

    let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
    let mut dir = match open_root(root) {
        Ok(fd) => fd,
        Err(e) if gone(&e) => return Outcome::Missing,
        Err(_) => return Outcome::Failed,
    };
    let (name, folders_on_path) = parts.split_last().expect("a checked path has a part");
    for part in folders_on_path {
        let seen = match lstat_at(&dir, part) {
            Ok(st) => st,
            Err(e) if gone(&e) => return Outcome::Missing,
            Err(_) => return Outcome::Failed,
        };
        if is_kind(&seen, libc::S_IFLNK) {
            return Outcome::Kept(KeptReason::Symlink);
        }
        if !is_kind(&seen, libc::S_IFDIR) {
            return Outcome::Kept(KeptReason::NotRegular);
        }
        let next = match open_at(&dir, part, true) {
            Ok(fd) => fd,
            Err(e) if gone(&e) => return Outcome::Missing,
            Err(_) => return Outcome::Failed,
        };
        // A folder swapped for a link between the lstat and the open.
        match fstat(&next) {
            Ok(opened) if same(&opened, &seen) => dir = next,
            Ok(_) => return Outcome::Kept(KeptReason::Symlink),
            Err(_) => return Outcome::Failed,
        }
    }
    let seen = match lstat_at(&dir, name) {
        Ok(st) => st,
        Err(e) if gone(&e) => return Outcome::Missing,
        Err(_) => return Outcome::Failed,
    };
    if is_kind(&seen, libc::S_IFLNK) {
        return Outcome::Kept(KeptReason::Symlink);
    }
    if !is_kind(&seen, libc::S_IFREG) {
        return Outcome::Kept(KeptReason::NotRegular);
    }
    let file = match open_at(&dir, name, false) {
        Ok(fd) => fd,
        Err(e) if gone(&e) => return Outcome::Missing,
        Err(_) => return Outcome::Failed,
    };
    match fstat(&file) {
        Ok(opened) if same(&opened, &seen) => {}
        Ok(_) => return Outcome::Kept(KeptReason::Changed),
        Err(_) => return Outcome::Failed,
    }
    let mut bytes = Vec::new();
    if std::fs::File::from(file).read_to_end(&mut bytes).is_err() {
        return Outcome::Failed;
    }
    if !matches_recorded(&bytes, sha) {
        return Outcome::Kept(KeptReason::Changed);
    }
    // The name must still be the file just hashed.
    match lstat_at(&dir, name) {
        Ok(now) if same(&now, &seen) => {}
        Ok(_) => return Outcome::Kept(KeptReason::Changed),
        Err(e) if gone(&e) => return Outcome::Missing,
        Err(_) => return Outcome::Failed,
    }
    step();
    match unlink_at(&dir, name) {
        Ok(()) => {}
        Err(e) if gone(&e) => return Outcome::Missing,
        Err(_) => return Outcome::Failed,
    }
    step();
    // `st_dev` and `st_ino` are u64 on Linux but narrower elsewhere.
    #[allow(clippy::unnecessary_cast)]
    let key = match fstat(&dir) {
        Ok(st) => (st.st_dev as u64, st.st_ino as u64),
        Err(_) => return Outcome::Failed,
    };
    folders
        .open
        .entry(key)
        .or_insert_with(|| (dir, Vec::new()))
        .1
        .push(id);
    Outcome::Removed
}

/// Without `openat` a link-free descent cannot be guaranteed: every file
/// stays and its log row waits.
#[cfg(not(unix))]
fn remove_file(_: &Path, _: &[&str], _: &str, _: i64, _: &mut Folders) -> Outcome {
    Outcome::Failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: &str, owner: &str, path: Option<&str>, sha: Option<String>) -> crate::Chunk {
        crate::Chunk {
            id: id.into(),
            content: format!("preview {id}"),
            source_kind: crate::SourceKind::Document,
            source_id: "doc".into(),
            source_ref: None,
            owner: owner.into(),
            timestamp_ms: 1,
            time_range_start_ms: 1,
            time_range_end_ms: 1,
            tags: vec![],
            token_count: 1,
            seq_in_source: 0,
            created_at_ms: 1,
            lifecycle_status: "admitted".into(),
            embedding: None,
            content_path: path.map(str::to_owned),
            content_sha256: sha,
        }
    }

    /// Writes `root/rel` as a reference content file; returns its body's sha256.
    fn content_file(root: &Path, rel: &str, body: &str) -> String {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("---\nowner: x\ntags: []\n---\n{body}")).unwrap();
        hex(&Sha256::digest(body.as_bytes()))
    }

    fn log_rows(store: &Store) -> Result<i64> {
        store.read("test", |c| {
            c.query_row("SELECT count(*) FROM memtree_erasure_log", [], |r| r.get(0))
        })
    }

    #[cfg(unix)]
    #[test]
    fn erasure_removes_only_the_files_it_may() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chunks.db");
        let root = dir.path().join("content");
        let outside = dir.path().join("outside.md");
        std::fs::write(&outside, "secret").unwrap();
        let outside_sha = hex(&Sha256::digest(b"secret"));
        let mine = content_file(&root, "document/doc/a.md", "alice a");
        let shared = content_file(&root, "document/doc/shared.md", "both");
        let changed = content_file(&root, "document/doc/changed.md", "before");
        std::fs::write(root.join("document/doc/changed.md"), "---\n---\nafter").unwrap();
        let linked_target = dir.path().join("elsewhere");
        let through_link = content_file(&linked_target, "b.md", "via link");
        std::os::unix::fs::symlink(&linked_target, root.join("linked")).unwrap();
        std::fs::create_dir_all(root.join("folder.md")).unwrap();
        let (store, _) = Store::open_file(&db)?;
        store.upsert_chunks(&[
            chunk("a", "alice", Some("document/doc/a.md"), Some(mine.clone())),
            chunk("a2", "alice", Some("document/doc/a.md"), Some(mine.clone())),
            chunk(
                "s",
                "alice",
                Some("document/doc/shared.md"),
                Some(shared.clone()),
            ),
            chunk("c", "alice", Some("document/doc/changed.md"), Some(changed)),
            chunk("l", "alice", Some("linked/b.md"), Some(through_link)),
            chunk("u", "alice", Some("../outside.md"), Some(outside_sha)),
            chunk("f", "alice", Some("folder.md"), Some(mine.clone())),
            chunk(
                "n",
                "alice",
                Some("document/doc/nosha.md"),
                Some(mine.clone()),
            ),
            chunk("e", "alice", None, None),
            chunk("b", "bob", Some("document/doc/shared.md"), Some(shared)),
        ])?;
        // Pointers as a foreign writer may leave them: an upper-case hash
        // (accepted), no hash, an empty path (the reference's email chunks).
        store.write("test", |tx| {
            tx.execute("UPDATE mem_tree_chunks SET content_sha256 = ?1 WHERE id = 'a'", [mine.to_uppercase()])?;
            tx.execute_batch(
                "UPDATE mem_tree_chunks SET content_sha256 = NULL WHERE id = 'n';
                 UPDATE mem_tree_chunks SET content_path = '' WHERE id = 'e';
                 INSERT INTO mem_tree_score (chunk_id, total, token_count_signal, \
                     unique_words_signal, metadata_weight, source_weight, interaction_weight, \
                     entity_density, computed_at_ms) VALUES ('a', 1, 0, 0, 0, 0, 0, 0, 1), \
                     ('b', 1, 0, 0, 0, 0, 0, 0, 1);
                 INSERT INTO mem_tree_entity_index (entity_id, node_id, node_kind, entity_kind, \
                     surface, score, timestamp_ms) VALUES ('e1', 'a', 'leaf', 'person', 'x', 1, 1), \
                     ('e2', 'a', 'leaf', 'person', 'x', 1, 1), ('e1', 'b', 'leaf', 'person', 'x', 1, 1);
                 INSERT INTO mem_tree_trees (id, kind, scope, created_at_ms) VALUES ('t', 'source', 's', 1);
                 INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, child_ids_json, \
                     content, token_count, time_range_start_ms, time_range_end_ms, sealed_at_ms) \
                     VALUES ('s1', 't', 'source', 1, '[\"a\", \"b\"]', 'x', 1, 1, 1, 1), \
                            ('s2', 't', 'source', 1, 'not json', 'x', 1, 1, 1, 1), \
                            ('s3', 't', 'source', 1, '[\"b\"]', 'x', 1, 1, 1, 1);",
            )
        })?;
        let report = erase_owner(&store, "alice", None)?;
        assert_eq!(
            (
                report.chunks,
                report.scores,
                report.entity_rows,
                report.summaries_derived
            ),
            (9, 1, 2, 1)
        );
        assert_eq!(
            (
                report.files.removed,
                report.files.missing,
                report.files.pending
            ),
            (1, 0, 0)
        );
        let mut kept: Vec<(&str, &str)> = report
            .files
            .kept
            .iter()
            .map(|k| (k.path.as_str(), k.reason.as_str()))
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                ("../outside.md", "unsafe_path"),
                ("document/doc/changed.md", "changed"),
                ("document/doc/nosha.md", "no_sha256"),
                ("document/doc/shared.md", "still_named"),
                ("folder.md", "not_regular"),
                ("linked/b.md", "symlink"),
            ]
        );
        assert!(!root.join("document/doc/a.md").exists());
        for stays in [
            root.join("document/doc/shared.md"),
            root.join("document/doc/changed.md"),
            linked_target.join("b.md"),
            outside,
        ] {
            assert!(stays.is_file(), "{}", stays.display());
        }
        assert!(root.join("folder.md").is_dir() && root.join("document/doc").is_dir());
        assert_eq!(log_rows(&store)?, 0);
        // Nothing left to erase: the rows and the files stay as they are.
        let again = erase_owner(&store, "alice", None)?;
        assert_eq!(
            (again.chunks, again.files.removed, again.files.kept.len()),
            (0, 0, 0)
        );
        assert!(matches!(
            erase_owner(&store, "", None),
            Err(Error::InvalidInput { .. })
        ));
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn an_open_finishes_the_logged_removals_of_its_root_only() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chunks.db");
        let root = dir.path().join("content");
        let other = dir.path().join("other-root");
        let sha = content_file(&root, "chat/x/1.md", "one");
        content_file(&other, "chat/x/1.md", "one");
        let (store, _) = crate::ops::open::open_file(&db)?;
        let default_root = root_text(&store, None)?;
        let other_root = root_text(&store, Some(&other))?;
        store.write("test", |tx| {
            for r in [&default_root, &other_root] {
                tx.execute(
                    "INSERT INTO memtree_erasure_log (content_root, content_path, content_sha256, \
                     logged_at_ms) VALUES (?1, 'chat/x/1.md', ?2, 1)",
                    params![r, sha],
                )?;
            }
            Ok(())
        })?;
        store.close();
        let (store, _) = crate::ops::open::open_file(&db)?;
        assert!(!root.join("chat/x/1.md").exists());
        assert!(
            other.join("chat/x/1.md").exists(),
            "another root waits for its own pass"
        );
        assert_eq!(log_rows(&store)?, 1);
        let done = sweep(&store, Some(&other))?;
        assert_eq!((done.removed, done.pending), (1, 0));
        assert!(!other.join("chat/x/1.md").exists());
        Ok(())
    }

    #[test]
    fn still_named_is_one_index_search_per_table() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        let plan: Vec<String> = store.read("test", |c| {
            let mut stmt = c.prepare(
                "EXPLAIN QUERY PLAN SELECT \
                 EXISTS (SELECT 1 FROM mem_tree_chunks WHERE content_path = ?1) \
                 OR EXISTS (SELECT 1 FROM mem_tree_summaries WHERE content_path = ?1)",
            )?;
            let rows = stmt.query_map(["p"], |r| r.get::<_, String>(3))?;
            rows.collect()
        })?;
        let searches = plan
            .iter()
            .filter(|d| d.contains("USING COVERING INDEX idx_memtree_"))
            .count();
        assert_eq!(searches, 2, "{plan:?}");
        Ok(())
    }

    #[test]
    fn only_plain_relative_paths_are_walked() {
        assert_eq!(
            relative_parts("chat/slack-eng/c1.md"),
            Some(vec!["chat", "slack-eng", "c1.md"])
        );
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "../a",
            "a//b",
            "./a",
            "a/",
            "a\\b",
            "a\0b",
        ] {
            assert_eq!(relative_parts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_reference_hash_is_over_the_body() {
        let body = b"## ts - alice\nhello";
        let file = [b"---\nsource_kind: chat\ntags: []\n---\n".as_slice(), body].concat();
        let body_sha = hex(&Sha256::digest(body));
        assert!(matches_recorded(&file, &body_sha));
        assert!(matches_recorded(&file, &hex(&Sha256::digest(&file))));
        assert!(!matches_recorded(b"---\nx\n---\nother", &body_sha));
        // A file without front matter is hashed whole.
        assert!(matches_recorded(body, &body_sha));
        assert_eq!(front_matter_body(b"---\nonly: fm\n---"), Some(&b""[..]));
        assert_eq!(front_matter_body(b"no front matter"), None);
    }

    #[test]
    fn a_recorded_sha256_must_be_64_hex_digits() {
        let upper = "AB".repeat(32);
        assert_eq!(normal_sha256(Some(&upper)), Some("ab".repeat(32)));
        assert_eq!(normal_sha256(Some("abc")), None);
        assert_eq!(normal_sha256(Some(&"g".repeat(64))), None);
        assert_eq!(normal_sha256(None), None);
    }
}
