//! Fork safety: a generation number that changes in the child of every
//! `fork()`, and [`ForkLocal`], process-wide state that a child replaces with
//! a fresh value instead of inheriting the parent's.
//!
//! Only the forking thread exists in the child. A `std::sync::Mutex` that
//! another thread held at the fork (a store call inside a transaction, an
//! open in progress) therefore stays locked forever there, and SQLite forbids
//! carrying a connection across `fork()` at all. So every mutex-guarded
//! static a store call touches (the connection registry, the circuit
//! breakers, the VFS state) lives in a [`ForkLocal`], and every shared
//! database records the generation it was opened in and refuses to be used
//! in another one (see `connection::Database`).
//!
//! The generation is bumped by a `pthread_atfork` child handler, so any
//! `fork()` counts: Python's `os.fork`, `multiprocessing`'s fork start
//! method, or a C library forking. The handlers only flip atomics, which is
//! async-signal-safe, so a child that goes on to `exec` pays nothing; the
//! prepare handler holds the lock registered with [`hold_across_fork`] (the
//! VFS's list of open files, see `vfs::state`) across the fork, which waits
//! at most for one list update.
//! Platforms without `fork()` keep generation 0 for ever.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// A lock held across every fork, registered by its owner
/// ([`hold_across_fork`]) before anything can hold it: taken first by the
/// prepare handler, given back last in parent and child.
struct HeldAcrossFork {
    take: fn(),
    give: fn(),
}

static HELD_ACROSS_FORK: OnceLock<HeldAcrossFork> = OnceLock::new();

/// Has the fork handlers run `take` before every fork (ahead of SQLite's
/// static mutexes, as its holders may allocate inside SQLite) and `give`
/// after it, in the parent and in the child. The VFS registers its open-file
/// list here, so this module needs to know nothing of it. One lock per
/// process: a second registration is ignored.
pub fn hold_across_fork(take: fn(), give: fn()) {
    let _ = HELD_ACROSS_FORK.set(HeldAcrossFork { take, give });
}

/// SQLite's process-wide mutexes a store call can hold, in the order
/// SQLite itself nests them (sqlite3.c 3.50): the unix VFS's big lock
/// (VFS1, also the temp-directory lock) is held while drawing random names
/// (PRNG), PRNG while finding a VFS (MAIN); the page-cache locks (LRU,
/// PMEM) take nothing of these, and the allocator's MEM is a leaf (it would
/// call back into the page cache only under a soft heap limit, which
/// memtree never sets). A thread of the parent holding one at the fork (a
/// slow write allocates constantly) would leave it locked for ever in the
/// child, whose first allocation inside SQLite would hang: with two threads
/// writing, 20 of 100 forks did so before the handlers took them.
#[cfg(unix)]
const SQLITE_STATIC_MUTEXES: [std::ffi::c_int; 6] = [
    rusqlite::ffi::SQLITE_MUTEX_STATIC_VFS1,
    rusqlite::ffi::SQLITE_MUTEX_STATIC_PRNG,
    rusqlite::ffi::SQLITE_MUTEX_STATIC_MAIN,
    rusqlite::ffi::SQLITE_MUTEX_STATIC_LRU,
    rusqlite::ffi::SQLITE_MUTEX_STATIC_PMEM,
    rusqlite::ffi::SQLITE_MUTEX_STATIC_MEM,
];

/// Takes, before the fork, every lock the child would otherwise inherit
/// half-held: the lock of [`hold_across_fork`] (memtree's open-file list) first (its holders may allocate
/// inside SQLite), then SQLite's static mutexes. Every holder of these
/// finishes without waiting on anything else (no GIL, no I/O wait), so the
/// forking thread waits microseconds at most.
#[cfg(unix)]
extern "C" fn prepare() {
    if let Some(lock) = HELD_ACROSS_FORK.get() {
        (lock.take)();
    }
    for id in SQLITE_STATIC_MUTEXES {
        // SAFETY: static mutexes are never freed; entering NULL (a build
        // without mutexes) is a no-op.
        unsafe { rusqlite::ffi::sqlite3_mutex_enter(rusqlite::ffi::sqlite3_mutex_alloc(id)) };
    }
}

/// Releases what [`prepare`] took, in reverse order.
#[cfg(unix)]
fn release_prepared() {
    for id in SQLITE_STATIC_MUTEXES.into_iter().rev() {
        // SAFETY: this thread entered each mutex in `prepare`; in the child
        // it is the same thread, and SQLite's static mutexes are plain
        // (non-recursive, non-error-checking) pthread mutexes.
        unsafe { rusqlite::ffi::sqlite3_mutex_leave(rusqlite::ffi::sqlite3_mutex_alloc(id)) };
    }
    if let Some(lock) = HELD_ACROSS_FORK.get() {
        (lock.give)();
    }
}

#[cfg(unix)]
extern "C" fn in_parent() {
    release_prepared();
}

#[cfg(unix)]
extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
    release_prepared();
}

/// Registers the fork handler, once per process (a child inherits the
/// registration, as `pthread_atfork` handlers survive `fork()`).
fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        #[cfg(unix)]
        {
            // SAFETY: the handlers are plain `extern "C"` functions that
            // only flip atomics; registration has no other precondition.
            let rc =
                unsafe { libc::pthread_atfork(Some(prepare), Some(in_parent), Some(in_child)) };
            // Fails only with ENOMEM; without the handler a child would
            // share the parent's state, as before this module existed.
            debug_assert_eq!(rc, 0, "pthread_atfork failed");
        }
    });
}

/// The fork generation of this process: 0 in a process that never forked
/// since memtree was first used, one more in each child than in its parent.
///
/// State created before the handler is installed cannot exist: every
/// [`ForkLocal`] and every database asks for the generation first.
#[inline]
pub fn generation() -> u64 {
    install();
    GENERATION.load(Ordering::SeqCst)
}

struct Slot<T> {
    generation: u64,
    value: T,
}

/// A process-wide value that a forked child does not inherit: the first
/// access in a new fork generation builds a fresh value, and the parent's is
/// leaked, never dropped (its locks may be held by threads that do not exist
/// in the child, and it may own connections that must not be closed there).
pub struct ForkLocal<T: 'static> {
    slot: AtomicPtr<Slot<T>>,
    init: fn() -> T,
    /// `Send`/`Sync` follow `T`: threads share the value through `get`.
    _value: PhantomData<T>,
}

impl<T: 'static> ForkLocal<T> {
    /// A value built by `init` on first access in each fork generation.
    pub const fn new(init: fn() -> T) -> Self {
        ForkLocal {
            slot: AtomicPtr::new(std::ptr::null_mut()),
            init,
            _value: PhantomData,
        }
    }

    /// This generation's value.
    pub fn get(&'static self) -> &'static T {
        let generation = generation();
        let mut current = self.slot.load(Ordering::Acquire);
        loop {
            // SAFETY: a published slot is never freed, so the pointer (if
            // not null) is valid for the rest of the process.
            if let Some(slot) = unsafe { current.as_ref() } {
                if slot.generation == generation {
                    return &slot.value;
                }
            }
            let fresh = Box::into_raw(Box::new(Slot {
                generation,
                value: (self.init)(),
            }));
            match self
                .slot
                .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                // The replaced slot (if any) is leaked on purpose.
                // SAFETY: `fresh` came from `Box::into_raw` and is now
                // published, so it lives as long as the process.
                Ok(_) => return unsafe { &(*fresh).value },
                Err(now) => {
                    // Another thread of this process published first.
                    // SAFETY: `fresh` was never shared.
                    drop(unsafe { Box::from_raw(fresh) });
                    current = now;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static COUNTER: ForkLocal<Mutex<u32>> = ForkLocal::new(|| Mutex::new(7));

    #[test]
    fn one_value_per_generation_shared_by_threads() {
        *COUNTER.get().lock().unwrap() += 1;
        let seen = std::thread::spawn(|| *COUNTER.get().lock().unwrap())
            .join()
            .unwrap();
        assert_eq!(seen, 8);
    }

    /// A child whose parent holds the value's lock gets a fresh value and
    /// a new generation; the child reports through its exit status.
    #[cfg(unix)]
    #[test]
    fn child_gets_a_fresh_value_while_the_parent_holds_the_lock() {
        static HELD: ForkLocal<Mutex<u32>> = ForkLocal::new(|| Mutex::new(1));
        let parent_generation = generation();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let mut guard = HELD.get().lock().unwrap();
            *guard = 99;
            locked_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        locked_rx.recv().unwrap();
        // SAFETY: the child only touches atomics, a fresh mutex and `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = generation() == parent_generation + 1
                && HELD.get().try_lock().map(|g| *g == 1).unwrap_or(false);
            // SAFETY: `_exit` skips the parent's atexit handlers and test
            // harness, which must not run twice.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert_eq!(generation(), parent_generation);
        assert_eq!(*HELD.get().lock().unwrap(), 99);
    }
}
