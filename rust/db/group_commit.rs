//! Group commit: concurrent write calls on one shared connection share one
//! `COMMIT`, and so its syncs, while each call keeps its own outcome.
//!
//! On the rollback journal with `synchronous=FULL` a durable commit costs
//! five syncs (journal ×3, database ×1, directory ×1), and every write call
//! of a process goes through one connection per file: threads that write at
//! the same time (a worker's threads settling jobs, several ingest threads)
//! would otherwise wait for each other's syncs one commit at a time.
//!
//! # Protocol: a leader lends its transaction to followers, one turn at a time
//!
//! 1. **Arrival.** A call that finds an *active leader* (one that has not
//!    closed its group yet) queues behind it as a follower, in arrival order.
//!    Otherwise it becomes the leader of a new group.
//! 2. **The leader** takes the connection (in memtree: the connection mutex)
//!    and keeps it until its group has committed or rolled back. Nothing else
//!    can use the connection meanwhile, so a reader never sees a write of a
//!    group that has not committed (and may still roll back). It opens the
//!    transaction (`BEGIN IMMEDIATE`) and runs its own *turn*.
//! 3. **Turns.** The queue is then served in order: the leader lends the
//!    open transaction to the follower at the head and parks. The follower
//!    runs its own turn *on its own thread* — the call's closure borrows
//!    that thread's stack, so it cannot be moved to the leader — then hands
//!    the lent transaction to the next queued follower itself (one wake-up
//!    per turn) and parks again; the last turn wakes the leader. Exactly one
//!    thread touches the connection at any moment; every handoff goes
//!    through this module's state mutex, which orders one thread's use
//!    before the next one's.
//! 4. **A turn** (written by the caller, see `Store::write_checked`) is
//!    `SAVEPOINT`, the call's closure, then `RELEASE` — [`Turn::Keep`]: the
//!    writes stay in the group's transaction; or `ROLLBACK TO` + `RELEASE` —
//!    [`Turn::Alone`]: the call failed or refused itself, its writes are gone,
//!    and it returns its own result at once while the others go on; or, when
//!    the transaction itself can no longer commit (SQLite rolled it back
//!    after an I/O error, a savepoint statement failed, a closure panicked)
//!    — [`Turn::Broken`].
//! 5. **Close.** When the queue is empty, after the limit of turns
//!    ([`MAX_GROUP`], see [`set_group_limit`]), or after a broken turn, the
//!    leader closes its group. (An empty queue in a group smaller than the
//!    previous one first waits up to [`GATHER`] for that group's callers to
//!    come back, so they do not straggle into a commit of their own; a lone
//!    writer never waits.) The head of the queue, if
//!    any, becomes the next leader (it waits for the connection; later
//!    arrivals queue behind it). The leader commits — or rolls back a broken
//!    group, or one in which no turn kept anything — and hands every kept
//!    follower the outcome: `Ok`, or the error (a failed `COMMIT`, or the
//!    breaking turn's error): then nothing of the group is durable, and every
//!    kept call fails with that error. A kept call returns only after the
//!    commit that made its writes durable.
//!
//! A single call with no one waiting is a leader with an empty queue:
//! `BEGIN`, `SAVEPOINT`, the closure, `RELEASE`, `COMMIT` — one commit, the
//! same syncs as a plain transaction (a savepoint opened at the start of a
//! transaction journals nothing of its own, and a statement journal is never
//! synced). Order is first come, first served: a group's turns run in arrival
//! order, and a call queued behind an active leader is served by it or by a
//! leader it promotes before any later arrival.
//!
//! The module knows nothing of SQLite: the caller supplies how to open and
//! finish the transaction (`lead`) and what a turn does; the unit tests drive
//! it with a mock transaction.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// At most this many turns share one commit (the default limit); the rest
/// of the queue then forms the next group, so the first call of a long
/// stream is not held back indefinitely and one failed commit takes at most
/// this many calls.
pub const MAX_GROUP: usize = 64;

/// The limit in force (see [`set_group_limit`]).
static GROUP_LIMIT: AtomicUsize = AtomicUsize::new(MAX_GROUP);

/// Sets the most turns one commit may carry, for every coordinator in the
/// process, clamped to `1..=MAX_GROUP`; returns the previous limit. A limit
/// of 1 makes every call commit alone, as before group commit: benchmarks
/// measure the difference in one run.
pub fn set_group_limit(calls: usize) -> usize {
    GROUP_LIMIT.swap(calls.clamp(1, MAX_GROUP), Ordering::Relaxed)
}

/// The type of transaction a leader lends to its followers, for any borrow
/// lifetime of the connection.
///
/// # Safety
///
/// A follower uses the leader's `&Ctx` on its own thread while the leader's
/// thread, parked on this module's state mutex, does not touch it; every
/// handoff is ordered by that mutex. An implementor promises that this is
/// sound for its type: that `Ctx` would be `Send` if its borrows were
/// exclusive (as for a borrow of a `Send` connection that is not `Sync`
/// only because it must not be used by two threads *at once*).
pub unsafe trait Lend {
    /// The lent transaction.
    type Ctx<'a>;
}

/// What one call's turn did to the group's transaction.
#[derive(Debug)]
pub enum Turn<T, E> {
    /// The call's writes stay in the transaction; `T` is its result once
    /// the group commits.
    Keep(T),
    /// The call rolled its own writes back (to its savepoint) and is done;
    /// the others go on.
    Alone(T),
    /// The transaction can no longer commit: the call gets `T`, every call
    /// kept in the group gets `E`.
    Broken(T, E),
}

/// What the leader should do with the group's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// At least one turn kept its writes and none broke the transaction.
    Commit,
    /// Roll back: a turn broke the transaction, or no turn kept anything.
    RollBack,
}

/// The group failure a caller's error type must be able to express: a turn
/// panicked (its savepoint may be left open, so the group cannot commit), or
/// a leader's `lead` returned without ever running the group's turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

/// Counters of the groups a [`GroupCommit`] ran, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Groups that committed at least one kept call.
    pub commits: u64,
    /// Calls whose writes those commits made durable.
    pub committed_calls: u64,
    /// The most calls one commit made durable.
    pub largest_group: u64,
    /// Syncs the committed groups cost, as the leader's `lead` reported them.
    pub commit_syncs: u64,
    /// Groups whose transaction failed (its kept calls all got the error).
    pub failed_groups: u64,
    /// Calls that rolled back alone (failed or refused) inside a group.
    pub rolled_back_calls: u64,
}

/// An order for a queued call.
enum Order {
    /// Lead the next group (promoted from the head of a closed group's queue).
    Lead,
    /// Run your turn on the lent transaction (type-erased `*const Ctx`).
    Go(*const ()),
}

/// The group whose turns are running, kept in the state so that each turn,
/// once done, hands the transaction straight to the next queued call (one
/// wake-up per turn); the leader sleeps until the last turn is done.
struct Run<E> {
    /// The leader's transaction (type-erased `*const Ctx`).
    lent: *const (),
    /// Turns this group may still take, the leader's own counted.
    limit: usize,
    served: usize,
    /// Followers whose writes the transaction holds, in order.
    kept: Vec<u64>,
    alone: u64,
    broken: Option<E>,
    /// The group's queue ran dry before it reached the size of the previous
    /// group: since when it has waited for the callers of that group to
    /// come back (see [`GATHER`]).
    gathering: Option<Instant>,
    done: bool,
}

/// How long a group whose queue runs dry keeps its transaction open for more
/// calls, when the previous group was larger. The callers a commit releases
/// come back one by one (in Python, one at a time through the GIL); a group
/// that closed on the first empty queue would leave the stragglers a commit
/// of their own. Bounded well below one commit's syncs (~1 ms and more), and
/// never paid by a lone writer, whose previous group was itself.
pub const GATHER: Duration = Duration::from_micros(150);

/// A thread parked on the state: the follower with that ticket, or the
/// leader waiting for its group's turns to end. Wake-ups are addressed, not broadcast:
/// on a machine with few cores a herd of woken writers would cost more than
/// the turns themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    Follower(u64),
    Leader,
}

struct State<E> {
    next_ticket: u64,
    parked: HashMap<Who, Thread>,
    /// A leader exists that will still serve `queue` (it has not closed).
    leader_active: bool,
    /// Followers waiting for the active leader, in arrival order.
    queue: VecDeque<u64>,
    orders: HashMap<u64, Order>,
    /// The group running turns (one connection: at most one).
    run: Option<Run<E>>,
    /// Calls the last group served (its turns, kept or not).
    last_group: usize,
    /// Outcomes of the kept followers of finished groups.
    outcomes: HashMap<u64, Result<(), E>>,
}

// SAFETY: the only fields that are not `Send` are the lent transaction's
// pointers (`Run::lent`, `Order::Go`); one is dereferenced only by the one
// follower it is addressed to, under the contract of `Lend`, while the
// leader that lent it is parked in `GroupCommit::lead` (so the pointee is
// alive) until the group's last turn is done.
unsafe impl<E: Send> Send for State<E> {}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    committed_calls: AtomicU64,
    largest_group: AtomicU64,
    commit_syncs: AtomicU64,
    failed_groups: AtomicU64,
    rolled_back_calls: AtomicU64,
}

impl Counters {
    fn all(&self) -> [&AtomicU64; 6] {
        [
            &self.commits,
            &self.committed_calls,
            &self.largest_group,
            &self.commit_syncs,
            &self.failed_groups,
            &self.rolled_back_calls,
        ]
    }
}

/// The group-commit coordinator of one connection. See the module docs.
pub struct GroupCommit<F: Lend, E> {
    state: Mutex<State<E>>,
    counters: Counters,
    _lent: PhantomData<fn() -> F>,
}

impl<F: Lend, E> std::fmt::Debug for GroupCommit<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<F: Lend, E> Default for GroupCommit<F, E> {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::new(State {
                next_ticket: 0,
                parked: HashMap::new(),
                leader_active: false,
                queue: VecDeque::new(),
                orders: HashMap::new(),
                run: None,
                last_group: 1,
                outcomes: HashMap::new(),
            }),
            counters: Counters::default(),
            _lent: PhantomData,
        }
    }
}

/// Outcome of the leader's own turn.
enum Own<T> {
    NotRun,
    Kept(T),
    Done(T),
    Panicked(Box<dyn std::any::Any + Send>),
}

/// The leader's bookkeeping; closes the group and releases its kept
/// followers even if `lead` unwinds, so no follower waits forever.
struct Leader<'g, F: Lend, E: Clone + From<Abandoned>> {
    gc: &'g GroupCommit<F, E>,
    closed: bool,
    published: bool,
    kept: Vec<u64>,
}

impl<F: Lend, E: Clone + From<Abandoned>> Leader<'_, F, E> {
    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            close_group(&mut self.gc.lock());
        }
    }

    fn publish(&mut self, outcome: &Result<(), E>) {
        self.published = true;
        let mut s = self.gc.lock();
        for ticket in self.kept.drain(..) {
            s.outcomes.insert(ticket, outcome.clone());
            wake(&mut s, Who::Follower(ticket));
        }
    }
}

impl<F: Lend, E: Clone + From<Abandoned>> Drop for Leader<'_, F, E> {
    fn drop(&mut self) {
        self.close();
        if !self.published {
            self.publish(&Err(E::from(Abandoned)));
        }
    }
}

/// After a turn: hands the lent transaction to the next queued call, or, if
/// the group is done (broken, at its limit, or nobody queued), wakes its
/// leader. Called under the state lock by whoever just finished a turn.
fn advance<E>(s: &mut State<E>) {
    let State {
        run,
        queue,
        orders,
        last_group,
        ..
    } = &mut *s;
    let Some(run) = run.as_mut() else { return };
    if run.broken.is_none() && run.served < run.limit {
        if let Some(next) = queue.pop_front() {
            run.served += 1;
            run.gathering = None;
            orders.insert(next, Order::Go(run.lent));
            wake(s, Who::Follower(next));
            return;
        }
        if run.served < *last_group && run.gathering.is_none() {
            // The leader times the wait; an arrival calls this again.
            run.gathering = Some(Instant::now());
            wake(s, Who::Leader);
            return;
        }
    }
    run.done = true;
    wake(s, Who::Leader);
}

/// Unparks `who` if it is parked.
fn wake<E>(s: &mut State<E>, who: Who) {
    if let Some(thread) = s.parked.remove(&who) {
        thread.unpark();
    }
}

/// Hands the queue to its head as the next leader, or ends leadership.
fn close_group<E>(s: &mut State<E>) {
    match s.queue.pop_front() {
        Some(head) => {
            s.orders.insert(head, Order::Lead);
            wake(s, Who::Follower(head));
        }
        None => s.leader_active = false,
    }
}

impl<F: Lend, E> GroupCommit<F, E> {
    /// A coordinator with no group running.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State<E>> {
        // No caller code runs under this mutex, so a poisoned state is only
        // ever one whose update finished; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parks this thread as `who` until `take` finds what it waits for.
    fn park_until<'a, R>(
        &'a self,
        mut s: MutexGuard<'a, State<E>>,
        who: Who,
        mut take: impl FnMut(&mut State<E>) -> Option<R>,
    ) -> R {
        loop {
            if let Some(found) = take(&mut s) {
                s.parked.remove(&who);
                return found;
            }
            s.parked.insert(who, thread::current());
            drop(s);
            // A wake-up that came before this park is not lost (the token
            // is kept); a spurious one just goes round the loop.
            thread::park();
            s = self.lock();
        }
    }

    /// What the groups run so far did.
    pub fn stats(&self) -> GroupStats {
        let [commits, committed_calls, largest_group, commit_syncs, failed_groups, rolled_back_calls] =
            self.counters.all().map(|c| c.load(Ordering::Relaxed));
        GroupStats {
            commits,
            committed_calls,
            largest_group,
            commit_syncs,
            failed_groups,
            rolled_back_calls,
        }
    }

    /// Calls queued for the active leader right now (for tests and
    /// diagnostics: a snapshot, stale as soon as it is returned).
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        for c in self.counters.all() {
            c.store(0, Ordering::Relaxed);
        }
    }
}

impl<F: Lend, E: Clone + Send + From<Abandoned>> GroupCommit<F, E> {
    /// Runs one write call as a member of a group and returns its result.
    ///
    /// - `lead` runs only if this call leads: it takes the connection, opens
    ///   the transaction, calls the driver it is given exactly once with it
    ///   (the driver runs every turn of the group and returns the
    ///   [`Verdict`]), then commits or rolls back as told. It returns the
    ///   syncs the commit cost (for [`GroupStats`]), or the error that failed
    ///   the group (opening or committing).
    /// - `turn` is this call's own turn, run on this thread.
    /// - `failed` turns a group failure into this call's result, for a kept
    ///   call whose group did not commit (or a leader whose `lead` failed
    ///   before its turn).
    pub fn submit<T>(
        &self,
        lead: impl FnOnce(&mut dyn FnMut(&F::Ctx<'_>) -> Verdict) -> Result<u64, E>,
        turn: impl FnOnce(&F::Ctx<'_>) -> Turn<T, E>,
        failed: impl FnOnce(&E) -> T,
    ) -> T {
        let mut s = self.lock();
        if !s.leader_active {
            s.leader_active = true;
            drop(s);
            return self.lead(lead, turn, failed);
        }
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        s.queue.push_back(ticket);
        if s.run.as_ref().is_some_and(|run| run.gathering.is_some()) {
            advance(&mut s);
        }
        let order = self.park_until(s, Who::Follower(ticket), |s| s.orders.remove(&ticket));
        match order {
            Order::Lead => self.lead(lead, turn, failed),
            Order::Go(lent) => self.follow(ticket, lent, turn, failed),
        }
    }

    /// The leader's wait for its group's turns to end, ending a gathering
    /// wait that found no one within [`GATHER`]. `None` only if the run is
    /// gone, which nothing but its leader does.
    fn await_turns<'a>(&'a self, mut s: MutexGuard<'a, State<E>>) -> Option<Run<E>> {
        loop {
            let wait = match s.run.as_mut() {
                None => return None,
                Some(run) if run.done => None,
                Some(run) => match run.gathering {
                    Some(since) => {
                        let left = GATHER.saturating_sub(since.elapsed());
                        if left.is_zero() {
                            run.done = true;
                            None
                        } else {
                            Some(Some(left))
                        }
                    }
                    None => Some(None),
                },
            };
            let Some(wait) = wait else {
                s.parked.remove(&Who::Leader);
                let run = s.run.take();
                if let Some(run) = &run {
                    s.last_group = run.served.max(1);
                }
                return run;
            };
            s.parked.insert(Who::Leader, thread::current());
            drop(s);
            match wait {
                Some(left) => thread::park_timeout(left),
                None => thread::park(),
            }
            s = self.lock();
        }
    }

    fn follow<T>(
        &self,
        ticket: u64,
        lent: *const (),
        turn: impl FnOnce(&F::Ctx<'_>) -> Turn<T, E>,
        failed: impl FnOnce(&E) -> T,
    ) -> T {
        // SAFETY: `lent` points at the leader's transaction, which lives until
        // the leader's driver returns; the driver is parked until this turn
        // reports back below, and `turn` cannot keep the borrow past its
        // return (its result type does not name the borrow). Using it from
        // this thread is sound by the contract of `Lend`.
        let ctx = unsafe { &*lent.cast::<F::Ctx<'_>>() };
        let ran = panic::catch_unwind(AssertUnwindSafe(|| turn(ctx)));
        let mut s = self.lock();
        if let Some(run) = s.run.as_mut() {
            match &ran {
                Ok(Turn::Keep(_)) => run.kept.push(ticket),
                Ok(Turn::Alone(_)) => run.alone += 1,
                Ok(Turn::Broken(_, e)) => run.broken = Some(e.clone()),
                Err(_) => run.broken = Some(E::from(Abandoned)),
            }
        }
        advance(&mut s);
        drop(s);
        match ran {
            Ok(Turn::Keep(t)) => {
                let s = self.lock();
                let outcome =
                    self.park_until(s, Who::Follower(ticket), |s| s.outcomes.remove(&ticket));
                match outcome {
                    Ok(()) => t,
                    Err(e) => failed(&e),
                }
            }
            Ok(Turn::Alone(t) | Turn::Broken(t, _)) => t,
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    fn lead<T>(
        &self,
        lead: impl FnOnce(&mut dyn FnMut(&F::Ctx<'_>) -> Verdict) -> Result<u64, E>,
        turn: impl FnOnce(&F::Ctx<'_>) -> Turn<T, E>,
        failed: impl FnOnce(&E) -> T,
    ) -> T {
        let mut leader = Leader {
            gc: self,
            closed: false,
            published: false,
            kept: Vec::new(),
        };
        let mut turn = Some(turn);
        let mut own = Own::NotRun;
        let mut broken: Option<E> = None;
        let mut alone = 0u64;
        let committed = lead(&mut |ctx: &F::Ctx<'_>| {
            if let Some(turn) = turn.take() {
                match panic::catch_unwind(AssertUnwindSafe(|| turn(ctx))) {
                    Ok(Turn::Keep(t)) => own = Own::Kept(t),
                    Ok(Turn::Alone(t)) => {
                        alone += 1;
                        own = Own::Done(t);
                    }
                    Ok(Turn::Broken(t, e)) => {
                        own = Own::Done(t);
                        broken = Some(e);
                    }
                    Err(payload) => {
                        own = Own::Panicked(payload);
                        broken = Some(E::from(Abandoned));
                    }
                }
            }
            let lent: *const F::Ctx<'_> = ctx;
            let mut s = self.lock();
            s.run = Some(Run {
                lent: lent.cast(),
                limit: GROUP_LIMIT.load(Ordering::Relaxed),
                served: 1,
                kept: Vec::new(),
                alone: 0,
                broken: broken.take(),
                gathering: None,
                done: false,
            });
            advance(&mut s);
            match self.await_turns(s) {
                Some(run) => {
                    leader.kept = run.kept;
                    alone += run.alone;
                    broken = run.broken;
                }
                None => broken = Some(E::from(Abandoned)),
            }
            // Closing before the commit lets the next group form (and its
            // leader queue for the connection) while this one syncs.
            leader.close();
            let kept_any = matches!(own, Own::Kept(_)) || !leader.kept.is_empty();
            if broken.is_none() && kept_any {
                Verdict::Commit
            } else {
                Verdict::RollBack
            }
        });
        leader.close();
        let kept_calls = leader.kept.len() as u64 + u64::from(matches!(own, Own::Kept(_)));
        let outcome = match (broken, committed) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(syncs)) => {
                if kept_calls > 0 {
                    let c = &self.counters;
                    c.commits.fetch_add(1, Ordering::Relaxed);
                    c.committed_calls.fetch_add(kept_calls, Ordering::Relaxed);
                    c.largest_group.fetch_max(kept_calls, Ordering::Relaxed);
                    c.commit_syncs.fetch_add(syncs, Ordering::Relaxed);
                }
                Ok(())
            }
        };
        if outcome.is_err() && kept_calls > 0 {
            self.counters.failed_groups.fetch_add(1, Ordering::Relaxed);
        }
        self.counters
            .rolled_back_calls
            .fetch_add(alone, Ordering::Relaxed);
        leader.publish(&outcome);
        drop(leader);
        match own {
            Own::Kept(t) => match outcome {
                Ok(()) => t,
                Err(e) => failed(&e),
            },
            Own::Done(t) => t,
            Own::Panicked(payload) => panic::resume_unwind(payload),
            Own::NotRun => match outcome {
                Err(e) => failed(&e),
                // `lead` returned without running the turns: a bug in the
                // caller, reported rather than hidden.
                Ok(()) => failed(&E::from(Abandoned)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A transaction that records what each turn wrote; `commit` fails when
    /// `fail_commit` is set. (A `Mutex`, so the mock is plainly `Sync`.)
    #[derive(Default)]
    struct MockTx {
        writes: Mutex<Vec<&'static str>>,
    }

    struct Mock;
    // SAFETY: `MockTx` is `Sync`.
    unsafe impl Lend for Mock {
        type Ctx<'a> = MockTx;
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Fail {
        Commit,
        Broke(&'static str),
        Abandoned,
    }

    impl From<Abandoned> for Fail {
        fn from(_: Abandoned) -> Self {
            Fail::Abandoned
        }
    }

    /// What a call does in its turn.
    #[derive(Clone, Copy)]
    enum Plan {
        Keep,
        Fail,
        Break,
        Panic,
    }

    type Gc = GroupCommit<Mock, Fail>;
    type Durable = Arc<Mutex<Vec<Vec<&'static str>>>>;

    /// One call: writes `name` in its turn; a leader commits into `durable`
    /// (or fails to, when `fail_commit`). Returns the call's result.
    fn call(
        gc: &Gc,
        name: &'static str,
        plan: Plan,
        durable: &Durable,
        fail_commit: bool,
        hold: Option<usize>,
    ) -> Result<&'static str, Fail> {
        gc.submit(
            |drive| {
                // A leader that waits for `hold` followers to queue, so the
                // test knows exactly who shares its group.
                if let Some(n) = hold {
                    wait_for(|| gc.queued() >= n);
                }
                let tx = MockTx::default();
                let verdict = drive(&tx);
                if verdict == Verdict::Commit {
                    if fail_commit {
                        return Err(Fail::Commit);
                    }
                    let writes = tx.writes.lock().unwrap().clone();
                    durable.lock().unwrap().push(writes);
                    return Ok(5);
                }
                Ok(0)
            },
            |tx| {
                let mut writes = tx.writes.lock().unwrap();
                match plan {
                    Plan::Keep => {
                        writes.push(name);
                        Turn::Keep(Ok(name))
                    }
                    // Its write is undone by its own savepoint.
                    Plan::Fail => Turn::Alone(Err(Fail::Broke(name))),
                    Plan::Break => Turn::Broken(Err(Fail::Broke(name)), Fail::Broke(name)),
                    Plan::Panic => {
                        drop(writes);
                        panic!("turn of {name} panicked")
                    }
                }
            },
            |e| Err(e.clone()),
        )
    }

    fn wait_for(mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(Instant::now() < deadline, "timed out waiting");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// What a call returned; `None` when its thread panicked.
    type Outcome = Option<Result<&'static str, Fail>>;

    /// Runs a leader holding for `plans.len() - 1` followers, started one
    /// by one in order (each queued before the next starts).
    fn group(
        plans: &[(&'static str, Plan)],
        fail_commit: bool,
    ) -> (Vec<Outcome>, Durable, GroupStats) {
        let gc = Arc::new(Gc::new());
        let durable: Durable = Arc::default();
        let followers = plans.len() - 1;
        let mut handles = Vec::new();
        for (i, &(name, plan)) in plans.iter().enumerate() {
            let (shared, durable) = (Arc::clone(&gc), Arc::clone(&durable));
            let hold = (i == 0).then_some(followers);
            handles.push(thread::spawn(move || {
                call(&shared, name, plan, &durable, fail_commit, hold)
            }));
            // Tickets count every follower that ever queued (the leader may
            // already be serving the queue).
            if i == 0 {
                wait_for(|| gc.lock().leader_active);
            } else {
                wait_for(|| gc.lock().next_ticket >= i as u64);
            }
        }
        let results = handles.into_iter().map(|h| h.join().ok()).collect();
        let stats = gc.stats();
        (results, durable, stats)
    }

    #[test]
    fn a_lone_call_commits_once_by_itself() {
        let gc = Gc::new();
        let durable: Durable = Arc::default();
        assert_eq!(call(&gc, "a", Plan::Keep, &durable, false, None), Ok("a"));
        assert_eq!(*durable.lock().unwrap(), vec![vec!["a"]]);
        let stats = gc.stats();
        assert_eq!(
            (stats.commits, stats.committed_calls, stats.commit_syncs),
            (1, 1, 5)
        );
    }

    #[test]
    fn concurrent_calls_share_one_commit_in_arrival_order() {
        let plans = [
            ("a", Plan::Keep),
            ("b", Plan::Keep),
            ("c", Plan::Keep),
            ("d", Plan::Keep),
        ];
        let (results, durable, stats) = group(&plans, false);
        assert_eq!(
            results,
            [Some(Ok("a")), Some(Ok("b")), Some(Ok("c")), Some(Ok("d"))]
        );
        assert_eq!(*durable.lock().unwrap(), vec![vec!["a", "b", "c", "d"]]);
        assert_eq!(
            (stats.commits, stats.committed_calls, stats.largest_group),
            (1, 4, 4)
        );
    }

    #[test]
    fn a_failing_call_rolls_back_alone_and_the_others_commit() {
        let plans = [("a", Plan::Keep), ("b", Plan::Fail), ("c", Plan::Keep)];
        let (results, durable, stats) = group(&plans, false);
        assert_eq!(
            results,
            [Some(Ok("a")), Some(Err(Fail::Broke("b"))), Some(Ok("c"))]
        );
        assert_eq!(*durable.lock().unwrap(), vec![vec!["a", "c"]]);
        assert_eq!((stats.commits, stats.committed_calls), (1, 2));
        assert_eq!((stats.rolled_back_calls, stats.failed_groups), (1, 0));
    }

    #[test]
    fn a_failed_commit_fails_every_kept_call_and_keeps_a_refusal_its_own() {
        let plans = [("a", Plan::Keep), ("b", Plan::Fail), ("c", Plan::Keep)];
        let (results, durable, stats) = group(&plans, true);
        assert_eq!(
            results,
            [
                Some(Err(Fail::Commit)),
                Some(Err(Fail::Broke("b"))),
                Some(Err(Fail::Commit))
            ]
        );
        assert!(durable.lock().unwrap().is_empty());
        assert_eq!((stats.commits, stats.failed_groups), (0, 1));
    }

    #[test]
    fn a_broken_turn_fails_the_kept_calls_before_it_and_the_queue_goes_on() {
        // b breaks the transaction: a (kept before it) fails with b's error;
        // c and d never ran in it: c leads a new group, d commits with it.
        let plans = [
            ("a", Plan::Keep),
            ("b", Plan::Break),
            ("c", Plan::Keep),
            ("d", Plan::Keep),
        ];
        let (results, durable, stats) = group(&plans, false);
        assert_eq!(
            results,
            [
                Some(Err(Fail::Broke("b"))),
                Some(Err(Fail::Broke("b"))),
                Some(Ok("c")),
                Some(Ok("d"))
            ]
        );
        assert_eq!(*durable.lock().unwrap(), vec![vec!["c", "d"]]);
        assert_eq!((stats.commits, stats.failed_groups), (1, 1));
    }

    #[test]
    fn a_panicking_turn_unwinds_its_own_caller_only_and_nothing_waits_forever() {
        let plans = [("a", Plan::Keep), ("b", Plan::Panic), ("c", Plan::Keep)];
        let (results, durable, _) = group(&plans, false);
        assert!(results[1].is_none(), "b's panic resumed on b's thread");
        assert_eq!(results[0], Some(Err(Fail::Abandoned)));
        assert_eq!(results[2], Some(Ok("c")));
        assert_eq!(*durable.lock().unwrap(), vec![vec!["c"]]);
    }

    #[test]
    fn a_leader_whose_begin_fails_hands_the_queue_on() {
        let gc = Arc::new(Gc::new());
        let durable: Durable = Arc::default();
        let leader = {
            let gc = Arc::clone(&gc);
            thread::spawn(move || {
                gc.submit(
                    |_drive| {
                        wait_for(|| gc.queued() >= 1);
                        Err(Fail::Commit)
                    },
                    |_tx: &MockTx| Turn::Keep(Ok("never")),
                    |e| Err::<&str, _>(e.clone()),
                )
            })
        };
        wait_for(|| gc.lock().leader_active);
        let follower = {
            let (gc, durable) = (Arc::clone(&gc), Arc::clone(&durable));
            thread::spawn(move || call(&gc, "b", Plan::Keep, &durable, false, None))
        };
        assert_eq!(leader.join().ok(), Some(Err(Fail::Commit)));
        assert_eq!(follower.join().ok(), Some(Ok("b")));
        assert_eq!(*durable.lock().unwrap(), vec![vec!["b"]]);
    }

    #[test]
    fn many_threads_lose_no_call_and_share_commits() {
        let gc = Arc::new(Gc::new());
        let durable: Durable = Arc::default();
        let names: [&'static str; 8] = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"];
        let handles: Vec<_> = names
            .iter()
            .map(|&name| {
                let (gc, durable) = (Arc::clone(&gc), Arc::clone(&durable));
                thread::spawn(move || {
                    for _ in 0..200 {
                        assert_eq!(call(&gc, name, Plan::Keep, &durable, false, None), Ok(name));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("no panic");
        }
        let durable = durable.lock().unwrap();
        let written: usize = durable.iter().map(Vec::len).sum();
        assert_eq!(written, 8 * 200);
        for name in names {
            let mine = durable.iter().flatten().filter(|n| **n == name).count();
            assert_eq!(mine, 200, "{name}");
        }
        let stats = gc.stats();
        assert_eq!(stats.committed_calls, 1600);
        assert_eq!(stats.commits, durable.len() as u64);
        assert!(stats.largest_group <= 8);
    }
}
