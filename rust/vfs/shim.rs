//! The raw-FFI shim: a VFS named `"memtree"` that wraps the platform default
//! VFS, counts every call per database and fails the ones a [`super::Fault`]
//! selects.
//!
//! Shape: the registered `sqlite3_vfs` is a copy of the default one with
//! `szOsFile` grown by [`HDR_SIZE`]. Each file SQLite allocates for us is a
//! [`ShimFile`] header (defined, with the forwarding macro, in the `file`
//! module below; its first field is the `sqlite3_file` base, so `pMethods`
//! comes first) immediately followed by the real VFS's file. `xOpen`
//! opens the real file into the inner part and only then points the outer
//! `pMethods` at one of our method tables, chosen to match the inner table's
//! `iVersion` (1, 2 or 3).
//!
//! Every io method follows the same steps: look up the header, count the call
//! and ask the fault slot (one atomic load when no fault is armed), update the
//! [`super::IoStats`] counters, then forward. Reads, writes, truncates, syncs,
//! file sizes and closes are forwarded through [`super::backend`], the single
//! interception point of the crash simulator ([`super::crash`]), which also
//! vets `xDelete`; while a crash plan is active, `xFetch` maps nothing and
//! `SQLITE_FCNTL_SIZE_HINT` is ignored, so neither bypasses it.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::ffi;

use super::backend;
use super::faults::{FileRole, VfsMethod};
use super::state::{
    classify_name, close_main, existing, fork_gate, key_for_open, main_file_named, note_main_open,
    state_for, DbState,
};
use super::stats::{add, bump, SyncKind};

use super::file::{inner_of, parts, ShimFile, HDR_SIZE};
use super::inner::inner_call;

/// The name under which the shim is registered: `"memtree"`. A `&CStr`, as
/// SQLite needs it; rusqlite's `open_with_flags_and_vfs` takes it as it is.
pub const VFS_NAME: &CStr = c"memtree";

// ---------------------------------------------------------------------------
// io methods
// ---------------------------------------------------------------------------

/// Which sync counter an `xSync` of a file with `role` goes to.
fn sync_kind(role: FileRole) -> SyncKind {
    match role {
        FileRole::MainDb => SyncKind::Db,
        FileRole::MainJournal => SyncKind::Journal,
        FileRole::Wal => SyncKind::Wal,
        _ => SyncKind::Other,
    }
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls xClose once on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    let fault = h.enter(VfsMethod::Close);
    // Always close the real file, even when failing the call: nothing leaks.
    // SAFETY: `inner` is the live inner file of `h`; SQLite's arguments are passed on.
    let close = || unsafe { backend::close(h, inner) };
    let rc = if h.role == FileRole::MainDb {
        close_main(inner, close)
    } else {
        close()
    };
    // SAFETY: the file is dead after xClose; release our Arc exactly once and
    // clear pMethods so a stray second close is a no-op on SQLite's side.
    unsafe {
        let hp = f as *mut ShimFile;
        drop((*hp).state.take());
        (*hp).base.pMethods = ptr::null();
    }
    fault.unwrap_or(rc)
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::Read) {
        return code;
    }
    if let Some(s) = h.db() {
        bump(&s.counters.reads);
        add(&s.counters.bytes_read, amt.max(0) as u64);
    }
    // SAFETY: `inner` is the live inner file of `h`; SQLite's arguments are passed on.
    unsafe { backend::read(h, inner, buf, amt, off) }
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::Write) {
        return code;
    }
    if let Some(s) = h.db() {
        bump(&s.counters.writes);
        add(&s.counters.bytes_written, amt.max(0) as u64);
    }
    // SAFETY: `inner` is the live inner file of `h`; SQLite's arguments are passed on.
    unsafe { backend::write(h, inner, buf, amt, off) }
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::Truncate) {
        return code;
    }
    if let Some(s) = h.db() {
        bump(&s.counters.truncates);
    }
    // SAFETY: `inner` is the live inner file of `h`; SQLite's arguments are passed on.
    unsafe { backend::truncate(h, inner, size) }
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::Sync) {
        return code;
    }
    // SAFETY: `inner` is the live inner file of `h`; SQLite's arguments are passed on.
    let rc = unsafe { backend::sync(h, inner, flags) };
    if let Some(s) = h.db() {
        bump(s.counters.sync_counter(sync_kind(h.role)));
        // The unix VFS fsyncs the directory after the first successful fsync
        // of a newly created journal/WAL/super-journal, then clears its flag.
        if rc == ffi::SQLITE_OK && h.dir_sync_pending.swap(false, Ordering::Relaxed) {
            bump(&s.counters.syncs_dir);
        }
    }
    rc
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, out: *mut ffi::sqlite3_int64) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::FileSize) {
        return code;
    }
    // SAFETY: `inner` is the live inner file of `h`; SQLite's arguments are passed on.
    unsafe { backend::file_size(h, inner, out) }
}

unsafe extern "C" fn x_lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::Lock) {
        return code;
    }
    let guarded = h.role == FileRole::MainDb
        && (level == ffi::SQLITE_LOCK_SHARED || level == ffi::SQLITE_LOCK_RESERVED);
    if guarded && has_moved(inner) {
        // Every transaction starts here, before SQLite looks for a hot
        // journal by name, and every write transaction takes RESERVED here
        // before it opens its journal by name: once the path names another
        // file, that journal is the other file's, and rolling it back into
        // this one (or writing this one's into it, or deleting it as an
        // empty journal of an empty file) would corrupt both. The handle
        // reads and writes no more (one stat of the path per lock). A move
        // between this check and a journal's open is caught at that open
        // ([`journal_database_moved`]), where the harm would start.
        return ffi::SQLITE_READONLY_DBMOVED;
    }
    fork_gate(h.role, || {
        inner_call!(inner, 1, xLock, ffi::SQLITE_IOERR_LOCK, level)
    })
}

/// For the open of a main journal (`z_name`, a name from SQLite's pager):
/// true when the journal's own database file, found by the pager's file
/// name, no longer is the file at its path. A journal is found by name, so
/// the one at `<path>-journal` then belongs to whatever file the path names
/// now: a hot-journal rollback of it, or this handle's journal written into
/// it, would corrupt both files. (The lock checks above come first; this
/// closes the gap between a lock and the open.)
fn journal_database_moved(z_name: ffi::sqlite3_filename) -> bool {
    // SAFETY: SQLite names a main journal with a string inside its pager's
    // allocation, which is where sqlite3_filename_database looks.
    let db_name = unsafe { ffi::sqlite3_filename_database(z_name) };
    main_file_named(db_name).is_some_and(has_moved)
}

/// True when the main database file `inner` no longer is the file at its
/// path (renamed, replaced or unlinked since it was opened), as the real
/// VFS's `SQLITE_FCNTL_HAS_MOVED` reports it (a VFS without it: false).
fn has_moved(inner: *mut ffi::sqlite3_file) -> bool {
    let mut moved: c_int = 0;
    let p = (&mut moved as *mut c_int).cast::<c_void>();
    let rc = inner_call!(
        inner,
        1,
        xFileControl,
        ffi::SQLITE_NOTFOUND,
        ffi::SQLITE_FCNTL_HAS_MOVED,
        p
    );
    rc == ffi::SQLITE_OK && moved != 0
}

unsafe extern "C" fn x_unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::Unlock) {
        return code;
    }
    fork_gate(h.role, || {
        inner_call!(inner, 1, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level)
    })
}

unsafe extern "C" fn x_check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::CheckReservedLock) {
        if !out.is_null() {
            // SAFETY: SQLite passes a valid out-pointer; report "no lock".
            unsafe { *out = 0 };
        }
        return code;
    }
    fork_gate(h.role, || {
        inner_call!(
            inner,
            1,
            xCheckReservedLock,
            ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
            out
        )
    })
}

unsafe extern "C" fn x_file_control(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if op == ffi::SQLITE_FCNTL_SIZE_HINT && backend::bypass_blocked(h.db()) {
        // A hint may grow the real file behind the crash simulator's back.
        return ffi::SQLITE_OK;
    }
    inner_call!(inner, 1, xFileControl, ffi::SQLITE_NOTFOUND, op, arg)
}

unsafe extern "C" fn x_sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    inner_call!(inner_of(f), 1, xSectorSize, 4096)
}

unsafe extern "C" fn x_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    inner_call!(inner_of(f), 1, xDeviceCharacteristics, 0)
}

unsafe extern "C" fn x_shm_map(
    f: *mut ffi::sqlite3_file,
    pg: c_int,
    pgsz: c_int,
    extend: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::ShmMap) {
        if !pp.is_null() {
            // SAFETY: SQLite passes a valid out-pointer; no region is mapped.
            unsafe { *pp = ptr::null_mut() };
        }
        return code;
    }
    if let Some(s) = h.db() {
        bump(&s.counters.shm_maps);
    }
    inner_call!(
        inner,
        2,
        xShmMap,
        ffi::SQLITE_IOERR_SHMMAP,
        pg,
        pgsz,
        extend,
        pp
    )
}

unsafe extern "C" fn x_shm_lock(
    f: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::ShmLock) {
        return code;
    }
    inner_call!(
        inner,
        2,
        xShmLock,
        ffi::SQLITE_IOERR_SHMLOCK,
        offset,
        n,
        flags
    )
}

unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    inner_call!(inner_of(f), 2, xShmBarrier, ())
}

unsafe extern "C" fn x_shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if let Some(code) = h.enter(VfsMethod::ShmUnmap) {
        return code;
    }
    inner_call!(inner, 2, xShmUnmap, ffi::SQLITE_OK, delete)
}

unsafe extern "C" fn x_fetch(
    f: *mut ffi::sqlite3_file,
    off: ffi::sqlite3_int64,
    amt: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    let no_map = || {
        if !pp.is_null() {
            // SAFETY: SQLite passes a valid out-pointer; null means "use xRead".
            unsafe { *pp = ptr::null_mut() };
        }
        ffi::SQLITE_OK
    };
    // SAFETY: io method on a file our xOpen opened.
    let (h, inner) = unsafe { parts(f) };
    if backend::bypass_blocked(h.db()) {
        // A mapping would read the real file, not the crash simulator's view.
        return no_map();
    }
    inner_call!(inner, 3, xFetch, no_map(), off, amt, pp)
}

unsafe extern "C" fn x_unfetch(
    f: *mut ffi::sqlite3_file,
    off: ffi::sqlite3_int64,
    p: *mut c_void,
) -> c_int {
    inner_call!(inner_of(f), 3, xUnfetch, ffi::SQLITE_OK, off, p)
}

/// Our method table at a given `iVersion`.
const fn io_methods(version: c_int) -> ffi::sqlite3_io_methods {
    ffi::sqlite3_io_methods {
        iVersion: version,
        xClose: Some(x_close),
        xRead: Some(x_read),
        xWrite: Some(x_write),
        xTruncate: Some(x_truncate),
        xSync: Some(x_sync),
        xFileSize: Some(x_file_size),
        xLock: Some(x_lock),
        xUnlock: Some(x_unlock),
        xCheckReservedLock: Some(x_check_reserved_lock),
        xFileControl: Some(x_file_control),
        xSectorSize: Some(x_sector_size),
        xDeviceCharacteristics: Some(x_device_characteristics),
        xShmMap: if version >= 2 { Some(x_shm_map) } else { None },
        xShmLock: if version >= 2 { Some(x_shm_lock) } else { None },
        xShmBarrier: if version >= 2 {
            Some(x_shm_barrier)
        } else {
            None
        },
        xShmUnmap: if version >= 2 {
            Some(x_shm_unmap)
        } else {
            None
        },
        xFetch: if version >= 3 { Some(x_fetch) } else { None },
        xUnfetch: if version >= 3 { Some(x_unfetch) } else { None },
    }
}

static IO_METHODS_V1: ffi::sqlite3_io_methods = io_methods(1);
static IO_METHODS_V2: ffi::sqlite3_io_methods = io_methods(2);
static IO_METHODS_V3: ffi::sqlite3_io_methods = io_methods(3);

// ---------------------------------------------------------------------------
// vfs methods
// ---------------------------------------------------------------------------

/// The wrapped (real) VFS, kept in our `pAppData`.
#[inline]
fn inner_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: `vfs` is our registered, leaked (never freed) VFS struct.
    unsafe { (*vfs).pAppData as *mut ffi::sqlite3_vfs }
}

/// Calls a method of the real VFS with the real VFS as first argument.
macro_rules! vfs_call {
    ($vfs:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let inner = inner_vfs($vfs);
        // SAFETY: `inner` is the default VFS found at registration; SQLite
        // never frees a registered VFS struct.
        match unsafe { (*inner).$m } {
            // SAFETY: forwards SQLite's call, same arguments, to the real VFS.
            Some(x) => unsafe { x(inner $(, $arg)*) },
            None => $missing,
        }
    }};
}

/// The role of a file from its `xOpen` flags.
pub(crate) fn role_from_flags(flags: c_int) -> FileRole {
    if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        FileRole::MainDb
    } else if flags & ffi::SQLITE_OPEN_MAIN_JOURNAL != 0 {
        FileRole::MainJournal
    } else if flags & ffi::SQLITE_OPEN_WAL != 0 {
        FileRole::Wal
    } else if flags & ffi::SQLITE_OPEN_SUPER_JOURNAL != 0 {
        FileRole::SuperJournal
    } else if flags
        & (ffi::SQLITE_OPEN_TEMP_DB
            | ffi::SQLITE_OPEN_TEMP_JOURNAL
            | ffi::SQLITE_OPEN_TRANSIENT_DB
            | ffi::SQLITE_OPEN_SUBJOURNAL)
        != 0
    {
        FileRole::Temp
    } else {
        FileRole::Other
    }
}

/// For the VFS's `xOpen` of `name` in `role`: the code to fail it with when
/// a non-regular file stands at a database, journal or `-wal` name (see
/// [`special_file_code`](crate::sys::path_guard::special_file_code)); `None`
/// for any other open. A refusal is noted in the database's state, so the
/// `CANTOPEN` SQLite turns it into can be reported as the permanent refusal
/// it is ([`super::refused_open`]).
///
/// Refusing here never skips a hot journal. The refused open fails the
/// statement; it is never turned into "no journal there". SQLite's
/// `hasHotJournal` asks `xAccess` first (which still answers "exists" for
/// the planted file: it is not ours to hide), then opens the journal
/// read-only to look at its first byte; an open that fails with
/// `SQLITE_CANTOPEN` makes it *assume the journal is hot*, take the
/// EXCLUSIVE lock and open it again read-write to roll it back — which is
/// refused too, so the read fails with `CANTOPEN` and reads nothing. Had a
/// real hot journal been replaced by the planted file, the database would
/// hold a half-written transaction; no read sees it while the name is
/// refused, and once the planted file is removed SQLite's usual check runs
/// again. Any other code (`CANTOPEN_ISDIR`, `CANTOPEN_SYMLINK`) is returned
/// by `hasHotJournal` as an error, with the same outcome.
fn refuse_at_open(
    name: Option<&std::ffi::CStr>,
    role: FileRole,
    db: Option<&DbState>,
) -> Option<i32> {
    if !matches!(
        role,
        FileRole::MainDb | FileRole::MainJournal | FileRole::Wal
    ) {
        return None;
    }
    #[cfg(unix)]
    let path = {
        use std::os::unix::ffi::OsStrExt;
        std::path::Path::new(std::ffi::OsStr::from_bytes(name?.to_bytes()))
    };
    #[cfg(not(unix))]
    let path = std::path::Path::new(name?.to_str().ok()?);
    let code = crate::sys::path_guard::special_file_code(path)?;
    if let Some(db) = db {
        db.note_refused_open(path, code);
    }
    Some(code)
}

/// Drops the header's `Arc` after a failed open (SQLite will not call xClose).
///
/// # Safety
/// `hp` must point at a header initialised by [`x_open`].
unsafe fn abandon(hp: *mut ShimFile) {
    // SAFETY: per the contract the header is initialised; pMethods stays null.
    unsafe {
        (*hp).base.pMethods = ptr::null();
        drop((*hp).state.take());
    }
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let role = role_from_flags(flags);
    let name = if z_name.is_null() {
        None
    } else {
        // SAFETY: a non-null zName is a NUL-terminated file name that outlives the file.
        Some(unsafe { CStr::from_ptr(z_name) })
    };
    let state = key_for_open(name, role).map(|k| state_for(&k));
    let hp = file as *mut ShimFile;
    let inner = inner_of(file);
    // SAFETY: SQLite hands us szOsFile (= HDR_SIZE + inner size) writable,
    // suitably aligned, uninitialised bytes: initialise the header in place.
    unsafe {
        ptr::write(
            hp,
            ShimFile {
                base: ffi::sqlite3_file {
                    pMethods: ptr::null(),
                },
                state,
                role,
                open_flags: flags,
                dir_sync_pending: AtomicBool::new(false),
            },
        );
        (*inner).pMethods = ptr::null();
    }
    // SAFETY: just initialised.
    let h = unsafe { &*hp };
    if let Some(code) = h.enter(VfsMethod::Open) {
        // SAFETY: header initialised above.
        unsafe { abandon(hp) };
        return code;
    }
    // A FIFO at a journal's name would block this open for ever.
    if let Some(code) = refuse_at_open(name, role, h.db()) {
        // SAFETY: header initialised above.
        unsafe { abandon(hp) };
        return code;
    }
    let journal = role == FileRole::MainJournal && !z_name.is_null();
    if journal && journal_database_moved(z_name) {
        // SAFETY: header initialised above.
        unsafe { abandon(hp) };
        return ffi::SQLITE_READONLY_DBMOVED;
    }
    let real = inner_vfs(vfs);
    // SAFETY: `real` is the default VFS, valid for the life of the process.
    let rc = match unsafe { (*real).xOpen } {
        // SAFETY: forwards the open to the real VFS (not ours: the unix VFS
        // reads its own pAppData) with the inner part of the buffer SQLite gave us.
        Some(x) => unsafe { x(real, z_name, inner, flags, out_flags) },
        None => ffi::SQLITE_CANTOPEN,
    };
    // SAFETY: `inner` was initialised (pMethods null) above and the real xOpen may have set it.
    let inner_methods = unsafe { (*inner).pMethods };
    if rc != ffi::SQLITE_OK || inner_methods.is_null() {
        if !inner_methods.is_null() {
            // A VFS that sets pMethods on failure expects xClose.
            inner_call!(inner, 1, xClose, ffi::SQLITE_OK);
        }
        // SAFETY: header initialised above.
        unsafe { abandon(hp) };
        return if rc != ffi::SQLITE_OK {
            rc
        } else {
            ffi::SQLITE_CANTOPEN
        };
    }
    if journal && journal_database_moved(z_name) {
        // Moved while the journal was being opened: the file just opened may
        // be the other file's journal. Close it unread and unwritten.
        inner_call!(inner, 1, xClose, ffi::SQLITE_OK);
        // SAFETY: header initialised above.
        unsafe { abandon(hp) };
        return ffi::SQLITE_READONLY_DBMOVED;
    }
    if let Some(s) = h.db() {
        bump(&s.counters.opens);
    }
    if role == FileRole::MainDb {
        note_main_open(inner, z_name);
    }
    let journal_like = matches!(
        role,
        FileRole::MainJournal | FileRole::Wal | FileRole::SuperJournal
    );
    if cfg!(unix) && journal_like && flags & ffi::SQLITE_OPEN_CREATE != 0 {
        h.dir_sync_pending.store(true, Ordering::Relaxed);
    }
    // SAFETY: inner_methods is the real file's live table.
    let version = unsafe { (*inner_methods).iVersion };
    let table: &'static ffi::sqlite3_io_methods = match version {
        i32::MIN..=1 => &IO_METHODS_V1,
        2 => &IO_METHODS_V2,
        _ => &IO_METHODS_V3,
    };
    // SAFETY: the file is fully set up; publishing pMethods makes it "open".
    unsafe { (*hp).base.pMethods = table };
    ffi::SQLITE_OK
}

/// The state of the database a vfs-level call's file name belongs to.
fn state_of_name(z_name: *const c_char) -> Option<(Arc<DbState>, FileRole)> {
    if z_name.is_null() {
        return None;
    }
    // SAFETY: a non-null name from SQLite is NUL-terminated.
    let (key, role) = classify_name(unsafe { CStr::from_ptr(z_name) });
    existing(&key).map(|s| (s, role))
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let st = state_of_name(z_name);
    if let Some((s, role)) = &st {
        if let Some(code) = s.enter(VfsMethod::Delete, *role) {
            return code;
        }
        if let Some(code) = backend::delete(s, *role) {
            return code;
        }
        bump(&s.counters.deletes);
    }
    let rc = vfs_call!(vfs, xDelete, ffi::SQLITE_IOERR_DELETE, z_name, sync_dir);
    let dir_synced = cfg!(unix) && rc == ffi::SQLITE_OK && sync_dir != 0;
    if let (true, Some((s, _))) = (dir_synced, &st) {
        bump(&s.counters.syncs_dir);
    }
    rc
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let fault = state_of_name(z_name).and_then(|(s, role)| s.enter(VfsMethod::Access, role));
    if let Some(code) = fault {
        if !out.is_null() {
            // SAFETY: SQLite passes a valid out-pointer.
            unsafe { *out = 0 };
        }
        return code;
    }
    vfs_call!(vfs, xAccess, ffi::SQLITE_IOERR_ACCESS, z_name, flags, out)
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    n_out: c_int,
    z_out: *mut c_char,
) -> c_int {
    vfs_call!(
        vfs,
        xFullPathname,
        ffi::SQLITE_CANTOPEN,
        z_name,
        n_out,
        z_out
    )
}

unsafe extern "C" fn x_dl_open(vfs: *mut ffi::sqlite3_vfs, z: *const c_char) -> *mut c_void {
    vfs_call!(vfs, xDlOpen, ptr::null_mut(), z)
}

unsafe extern "C" fn x_dl_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, z: *mut c_char) {
    vfs_call!(vfs, xDlError, (), n, z)
}

type DlSym = Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)>;

unsafe extern "C" fn x_dl_sym(
    vfs: *mut ffi::sqlite3_vfs,
    h: *mut c_void,
    z: *const c_char,
) -> DlSym {
    vfs_call!(vfs, xDlSym, None, h, z)
}

unsafe extern "C" fn x_dl_close(vfs: *mut ffi::sqlite3_vfs, h: *mut c_void) {
    vfs_call!(vfs, xDlClose, (), h)
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, z: *mut c_char) -> c_int {
    vfs_call!(vfs, xRandomness, 0, n, z)
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, us: c_int) -> c_int {
    vfs_call!(vfs, xSleep, 0, us)
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    vfs_call!(vfs, xCurrentTime, ffi::SQLITE_ERROR, out)
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    z: *mut c_char,
) -> c_int {
    vfs_call!(vfs, xGetLastError, 0, n, z)
}

unsafe extern "C" fn x_current_time_int64(
    vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    vfs_call!(vfs, xCurrentTimeInt64, ffi::SQLITE_ERROR, out)
}

unsafe extern "C" fn x_set_system_call(
    vfs: *mut ffi::sqlite3_vfs,
    z: *const c_char,
    f: ffi::sqlite3_syscall_ptr,
) -> c_int {
    vfs_call!(vfs, xSetSystemCall, ffi::SQLITE_NOTFOUND, z, f)
}

unsafe extern "C" fn x_get_system_call(
    vfs: *mut ffi::sqlite3_vfs,
    z: *const c_char,
) -> ffi::sqlite3_syscall_ptr {
    vfs_call!(vfs, xGetSystemCall, None, z)
}

unsafe extern "C" fn x_next_system_call(
    vfs: *mut ffi::sqlite3_vfs,
    z: *const c_char,
) -> *const c_char {
    vfs_call!(vfs, xNextSystemCall, ptr::null(), z)
}

// ---------------------------------------------------------------------------
// registration
// ---------------------------------------------------------------------------

/// Builds our VFS struct from the real one: same sizes and version, our methods
/// wherever the real VFS has one.
fn make_vfs(real: &ffi::sqlite3_vfs, real_ptr: *mut ffi::sqlite3_vfs) -> ffi::sqlite3_vfs {
    let mut v = *real;
    v.szOsFile = real.szOsFile + HDR_SIZE as c_int;
    v.pNext = ptr::null_mut();
    v.zName = VFS_NAME.as_ptr();
    v.pAppData = real_ptr as *mut c_void;
    v.xOpen = real.xOpen.and(Some(x_open));
    v.xDelete = real.xDelete.and(Some(x_delete));
    v.xAccess = real.xAccess.and(Some(x_access));
    v.xFullPathname = real.xFullPathname.and(Some(x_full_pathname));
    v.xDlOpen = real.xDlOpen.and(Some(x_dl_open));
    v.xDlError = real.xDlError.and(Some(x_dl_error));
    v.xDlSym = real.xDlSym.and(Some(x_dl_sym));
    v.xDlClose = real.xDlClose.and(Some(x_dl_close));
    v.xRandomness = real.xRandomness.and(Some(x_randomness));
    v.xSleep = real.xSleep.and(Some(x_sleep));
    v.xCurrentTime = real.xCurrentTime.and(Some(x_current_time));
    v.xGetLastError = real.xGetLastError.and(Some(x_get_last_error));
    if real.iVersion >= 2 {
        v.xCurrentTimeInt64 = real.xCurrentTimeInt64.and(Some(x_current_time_int64));
    }
    if real.iVersion >= 3 {
        v.xSetSystemCall = real.xSetSystemCall.and(Some(x_set_system_call));
        v.xGetSystemCall = real.xGetSystemCall.and(Some(x_get_system_call));
        v.xNextSystemCall = real.xNextSystemCall.and(Some(x_next_system_call));
    }
    v
}

/// Registers the shim (once; later calls return `Ok(())`). See [`super::register`].
pub(crate) fn register() -> Result<(), i32> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    // SAFETY: plain C calls; sqlite3_initialize is idempotent and thread-safe.
    let rc = unsafe { ffi::sqlite3_initialize() };
    if rc != ffi::SQLITE_OK {
        return Err(rc);
    }
    // SAFETY: looks up by a valid NUL-terminated name / null for the default.
    let (ours, real) = unsafe {
        (
            ffi::sqlite3_vfs_find(VFS_NAME.as_ptr()),
            ffi::sqlite3_vfs_find(ptr::null()),
        )
    };
    if !ours.is_null() {
        *done = true;
        return Ok(());
    }
    if real.is_null() {
        return Err(ffi::SQLITE_ERROR);
    }
    // SAFETY: the default VFS struct is valid for the life of the process.
    let vfs = make_vfs(unsafe { &*real }, real);
    let leaked: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(vfs));
    // SAFETY: `leaked` lives forever; makeDflt = 0 keeps the default as it is.
    let rc = unsafe { ffi::sqlite3_vfs_register(leaked, 0) };
    if rc != ffi::SQLITE_OK {
        // SAFETY: registration failed, so SQLite holds no pointer to it.
        drop(unsafe { Box::from_raw(leaked as *mut ffi::sqlite3_vfs) });
        return Err(rc);
    }
    *done = true;
    Ok(())
}
