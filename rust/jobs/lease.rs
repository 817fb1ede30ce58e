//! Lease holders: which process holds a claim, and taking back at once the
//! jobs of a holder that is provably dead on this host.
//!
//! A lease alone strands a job for its whole length when its worker is
//! killed (`kill -9`, OOM, a crash): nothing settles or releases it, and the
//! next worker skips it until it expires (5 minutes by default). So every
//! claim writes its holder's identity at the front of the lease token:
//!
//! ```text
//! <host>.<pid>.<start>.<32 random hex digits>
//! ```
//!
//! - `host` is the kernel's boot id (dashes dropped) and the inode of the
//!   claimer's pid namespace, joined by `-`. Two processes with the same
//!   `host` see the same pids: same kernel, same boot, same namespace. A
//!   container sharing the kernel but not the pid namespace has another
//!   `host`, and so does this machine after a reboot (and then the holder is
//!   gone too, but nothing here relies on that: the lease rule applies).
//! - `pid` and `start` (the process's start time in clock ticks since boot,
//!   field 22 of `/proc/<pid>/stat`) tell a dead holder from a reused pid.
//!
//! A holder is **provably dead** when its `host` is ours and either no
//! process has its pid (`kill(pid, 0)` fails with `ESRCH`), or the process
//! with that pid started at another time (the pid was reused), or it is a
//! zombie (it has exited, and only its parent's `wait` is missing). Anything
//! less certain (another host, an unreadable `/proc`, a token from an older
//! memtree with no holder) is left to the lease rule, so a job is never
//! claimed twice while its holder may still run it.
//!
//! Every claim ([`reclaim_dead_throttled`], at most once per
//! [`SWEEP_INTERVAL_MS`] per thread and database) and every
//! `recover_stale_locks` ([`reclaim_dead_in`], always) runs the sweep inside
//! its own write transaction, so the job goes back to `ready` and is claimed
//! in the same commit. The dead holder's attempt stays spent, as with an
//! expired lease, so a job that kills its worker each time ends `failed`.
//!
//! Platforms other than Linux have no holder identity: their tokens are the
//! random part alone and their leases follow the lease rule only.

use std::cell::RefCell;
use std::collections::HashMap;

use rusqlite::{params, Transaction};

use crate::sys::fork::ForkLocal;

/// The longest a claim goes without looking for dead holders (per thread
/// and database): a job stranded by a killed worker is claimable again
/// within this, plus the time until the next claim.
pub const SWEEP_INTERVAL_MS: i64 = 200;

/// This process's holder (`None` where there is none); rebuilt in a forked
/// child (its pid differs).
static SELF_HOLDER: ForkLocal<Option<OwnHolder>> = ForkLocal::new(self_holder);

/// The identity a claim made by this process writes in front of its token
/// (`<host>.<pid>.<start>.`), or empty where there is none.
pub fn holder_prefix() -> &'static str {
    SELF_HOLDER
        .get()
        .as_ref()
        .map_or("", |own| own.prefix.as_str())
}

/// One holder, parsed from a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder<'t> {
    /// Boot id and pid namespace.
    pub host: &'t str,
    /// The process id.
    pub pid: i32,
    /// The process's start time, clock ticks since boot.
    pub start: u64,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl Holder<'_> {
    /// The front of a token this holder writes: `<host>.<pid>.<start>.`,
    /// the random part follows. [`parse_holder`] reads it back.
    fn prefix(&self) -> String {
        format!("{}.{}.{}.", self.host, self.pid, self.start)
    }
}

/// The holder named at the front of `token` (see [`Holder::prefix`]);
/// `None` for a token without one (another platform, an older memtree).
pub fn parse_holder(token: &str) -> Option<Holder<'_>> {
    let mut parts = token.split('.');
    let host = parts.next()?;
    let pid = parts.next()?.parse::<i32>().ok().filter(|p| *p > 0)?;
    let start = parts.next()?.parse::<u64>().ok()?;
    let random = parts.next()?;
    if host.is_empty() || random.is_empty() || parts.next().is_some() {
        return None;
    }
    Some(Holder { host, pid, start })
}

/// This process as a holder: its identity and the token prefix built from
/// it once, so neither is read back from the other. (Built on Linux only.)
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct OwnHolder {
    host: String,
    pid: i32,
    start: u64,
    prefix: String,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl OwnHolder {
    fn new(host: String, pid: i32, start: u64) -> Self {
        let prefix = Holder {
            host: &host,
            pid,
            start,
        }
        .prefix();
        OwnHolder {
            host,
            pid,
            start,
            prefix,
        }
    }

    fn holder(&self) -> Holder<'_> {
        Holder {
            host: &self.host,
            pid: self.pid,
            start: self.start,
        }
    }
}

#[cfg(target_os = "linux")]
fn self_holder() -> Option<OwnHolder> {
    linux::self_identity().map(|(host, pid, start)| OwnHolder::new(host, pid, start))
}

#[cfg(not(target_os = "linux"))]
fn self_holder() -> Option<OwnHolder> {
    None
}

/// True only when `holder` is provably dead (see the module docs).
pub fn is_provably_dead(holder: &Holder<'_>) -> bool {
    #[cfg(target_os = "linux")]
    {
        match SELF_HOLDER.get() {
            Some(own) => linux::is_provably_dead(holder, &own.holder()),
            None => false, // we cannot tell which host we are on
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = holder;
        false
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Holder;

    /// `(host, pid, start)` of this process; `None` if `/proc` cannot say.
    pub(super) fn self_identity() -> Option<(String, i32, u64)> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let boot: String = boot.trim().chars().filter(|c| *c != '-').collect();
        if boot.is_empty() || !boot.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        // "pid:[4026531836]": the namespace's inode.
        let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let ns: String = ns
            .to_string_lossy()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if ns.is_empty() {
            return None;
        }
        let pid = i32::try_from(std::process::id()).ok()?;
        let (_, start) = stat_of(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        Some((format!("{boot}-{ns}"), pid, start))
    }

    /// `(state, start time)` from the text of `/proc/<pid>/stat`. The
    /// command name (field 2) may hold spaces and parentheses, so fields
    /// are counted from the last `)`: state is field 3, start time 22.
    pub(super) fn stat_of(stat: &str) -> Option<(char, u64)> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let start = fields.nth(18)?.parse().ok()?;
        Some((state, start))
    }

    pub(super) fn is_provably_dead(holder: &Holder<'_>, own: &Holder<'_>) -> bool {
        if holder.host != own.host {
            return false; // another host (or boot, or pid namespace)
        }
        if holder.pid == own.pid {
            // Our own pid: alive if it is us, dead if an earlier process.
            return holder.start != own.start;
        }
        // SAFETY: signal 0 only checks that the process exists; the pid is
        // positive (parse_holder), so no process group is addressed.
        let exists = unsafe { libc::kill(holder.pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
        if !exists {
            return true;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", holder.pid)) {
            Ok(stat) => match stat_of(&stat) {
                Some((state, start)) => start != holder.start || matches!(state, 'Z' | 'X'),
                None => false,
            },
            // Hidden (hidepid) or gone in between: not provable.
            Err(_) => false,
        }
    }
}

/// Takes back every running job whose holder is provably dead: `ready` now,
/// or `failed` when that claim spent its last attempt. Returns how many.
pub fn reclaim_dead_in(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<usize> {
    if holder_prefix().is_empty() {
        return Ok(0);
    }
    let running: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, lease_token FROM mem_tree_jobs \
             WHERE status IN ('ready', 'running') AND status = 'running' \
             AND lease_token IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut verdicts: HashMap<Holder<'_>, bool> = HashMap::new();
    let mut reclaimed = 0;
    for (id, token) in &running {
        let Some(holder) = parse_holder(token) else {
            continue;
        };
        let dead = *verdicts
            .entry(holder.clone())
            .or_insert_with(|| is_provably_dead(&holder));
        if !dead {
            continue;
        }
        reclaimed += tx
            .prepare_cached(
                "UPDATE mem_tree_jobs SET \
                 status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'ready' END, \
                 completed_at_ms = CASE WHEN attempts >= max_attempts THEN ?3 END, \
                 available_at_ms = ?3, \
                 last_error = 'lease holder died (process ' || ?4 || ' on this host)', \
                 locked_until_ms = NULL, lease_token = NULL \
                 WHERE id = ?1 AND status IN ('ready', 'running') AND status = 'running' \
                 AND lease_token = ?2",
            )?
            .execute(params![id, token, now, holder.pid])?;
    }
    if reclaimed > 0 {
        let path = tx.path().unwrap_or("");
        log::warn!(
            target: "memtree::jobs",
            db_path = path, reclaimed = reclaimed;
            "took back {reclaimed} running job(s) of {path} whose lease holder died on this host"
        );
    }
    Ok(reclaimed)
}

thread_local! {
    /// When this thread last swept each database (by path).
    static LAST_SWEEP: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// [`reclaim_dead_in`] at most once per [`SWEEP_INTERVAL_MS`] per thread
/// and database, so the claim loop's steady state pays one clock read.
pub fn reclaim_dead_throttled(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<usize> {
    if holder_prefix().is_empty() {
        return Ok(0);
    }
    let path = tx.path().unwrap_or("").to_owned();
    let due = LAST_SWEEP.with(|last| {
        let mut last = last.borrow_mut();
        match last.get(&path) {
            Some(&at) if (at..at + SWEEP_INTERVAL_MS).contains(&now) => false,
            _ => {
                last.insert(path, now);
                true
            }
        }
    });
    if due {
        reclaim_dead_in(tx, now)
    } else {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_without_a_holder_names_none() {
        assert_eq!(parse_holder("0123456789abcdef0123456789abcdef"), None);
        assert_eq!(parse_holder("h.0.5.ab"), None, "pid 0 is a process group");
        assert_eq!(parse_holder("h.-1.5.ab"), None);
        assert_eq!(parse_holder("h.1.5."), None);
        assert_eq!(parse_holder("h.1.5.ab.cd"), None);
        assert_eq!(
            parse_holder("ab-12.42.7.ff"),
            Some(Holder {
                host: "ab-12",
                pid: 42,
                start: 7
            })
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_dead() {
        let prefix = holder_prefix();
        assert!(!prefix.is_empty(), "Linux has a holder identity");
        let token = format!("{prefix}ff");
        let own = parse_holder(&token).expect("own holder parses");
        let built = SELF_HOLDER.get().as_ref().expect("Linux has a holder");
        assert_eq!(
            own,
            built.holder(),
            "the prefix reads back as the identity it was built from"
        );
        assert_eq!(own.prefix(), prefix);
        assert!(!is_provably_dead(&own));
        let earlier = Holder {
            start: own.start.wrapping_sub(1),
            ..own.clone()
        };
        assert!(is_provably_dead(&earlier), "our pid, another start: dead");
        let elsewhere = Holder {
            host: "other-1",
            pid: i32::MAX - 1,
            ..own.clone()
        };
        assert!(
            !is_provably_dead(&elsewhere),
            "another host: never provable"
        );
        // pid_max is at most 2^22, so this pid has no process.
        let gone = Holder {
            pid: i32::MAX - 1,
            ..own
        };
        assert!(is_provably_dead(&gone));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "77 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 999 20";
        assert_eq!(linux::stat_of(stat), Some(('S', 999)));
    }

    /// A running job whose token names a holder: another host's, a dead one
    /// here, or none at all (an older memtree). Only the dead one here comes
    /// back before its lease ends.
    #[cfg(target_os = "linux")]
    #[test]
    fn only_a_provably_dead_holder_loses_its_lease() -> crate::Result<()> {
        use crate::{NewJob, Store};
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        let jobs = store.jobs();
        let lease = std::time::Duration::from_secs(300);
        let host = SELF_HOLDER
            .get()
            .as_ref()
            .expect("Linux has a holder")
            .host
            .clone();
        let random = "0123456789abcdef0123456789abcdef";
        let tokens = [
            format!("other-1.{}.5.{random}", i32::MAX - 1),
            random.to_owned(),
            format!("{host}.{}.5.{random}", i32::MAX - 1),
        ];
        let mut ids = Vec::new();
        for token in &tokens {
            jobs.enqueue(&NewJob::new("k", "{}"))?;
            let job = jobs.claim_next(lease, None)?.expect("claimed");
            store.write("plant", |tx| {
                tx.execute(
                    "UPDATE mem_tree_jobs SET lease_token = ?2 WHERE id = ?1",
                    params![job.id, token],
                )
            })?;
            ids.push(job.id);
        }
        assert_eq!(jobs.recover_stale_locks()?, 1, "only the dead holder here");
        let status: Vec<_> = ids
            .iter()
            .map(|id| jobs.get(id).map(|j| j.map(|j| j.status)))
            .collect::<crate::Result<_>>()?;
        use crate::JobStatus::{Ready, Running};
        assert_eq!(status, [Some(Running), Some(Running), Some(Ready)]);
        Ok(())
    }
}
