//! A team: the thread that leads a computation, plus the helpers it borrows from the pool.
//!
//! [`Team::run`] publishes a job of `n` items; the leader and every engaged helper take items
//! by an atomic counter until none is left. Which thread takes which item varies from run to
//! run; what an item computes does not, so results never depend on the team.
//!
//! **Waiting.** Nobody waits for a thread that has not started: a helper that is asleep or
//! descheduled when a job opens simply takes no item, and the leader does them all. Between
//! jobs a helper spins for [`HELPER_SPIN`] (the next job of a training step follows within
//! microseconds), then parks on a futex; the leader, once every item is taken, spins for at
//! most [`LEADER_SPIN`] for the helpers still finishing theirs, then parks until the last
//! one wakes it. While spinning, a waiter offers its core to any other runnable thread every
//! few microseconds (`sched_yield`). So waiting threads never hold a core for long that
//! another process — or the thread they wait for — needs.
//!
//! **Descheduled helpers.** The one wait that remains is for an item a helper took and was
//! then preempted in the middle of: the step stalls until the scheduler runs that helper
//! again, which on a busy machine takes milliseconds. The team cannot prevent that; it
//! measures it. Each job, the leader times its own items; from its pace and the items' costs
//! it estimates what the job would have taken it alone. `pace` compares that, and real
//! one-thread rounds, with what the team took, and stops engaging helpers that do not pay.
//!
//! **Interrupts.** A job run with [`Team::run`]'s `cancellable` set stops handing out items
//! once the team's interrupt flag is raised; the call then returns `false`, and the caller
//! discards the job's partial results.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::pool::{Pool, pool};

/// How long a helper spins for the next job before it parks.
pub(crate) const HELPER_SPIN: Duration = Duration::from_micros(50);
/// How long the leader spins for helpers to finish their items before it parks.
pub(crate) const LEADER_SPIN: Duration = Duration::from_micros(20);

/// `next` is set this high to stop handing out items (far from overflow by `fetch_add`).
const STOP: usize = usize::MAX / 2;

/// What a team is for: a fit waits for cores as they free up and makes other fits give
/// one back; a short call takes what is free and nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A training run.
    Fit,
    /// One inference call.
    Call,
}

/// A job, as helpers see it during [`Team::run`].
struct JobDesc<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    n: usize,
    cancel: Option<&'a AtomicBool>,
}

/// What the leader and its helpers share.
struct Shared {
    /// Job number: odd while a job is open, even between jobs.
    seq: AtomicUsize,
    /// The open job (a `JobDesc` on the leader's stack), null between jobs.
    job: AtomicPtr<JobDesc<'static>>,
    /// The next item to hand out.
    next: AtomicUsize,
    /// Helpers inside the current job.
    active: AtomicUsize,
    leader: Thread,
    leader_asleep: AtomicBool,
    /// The job stopped early on an interrupt.
    aborted: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// A helper's flags, shared with its thread.
#[derive(Default)]
struct HelperFlags {
    asleep: AtomicBool,
    dismissed: AtomicBool,
}

struct Helper {
    flags: Arc<HelperFlags>,
    thread: Thread,
    /// Holds a core of the budget (always, but for tests' extra helpers).
    core: bool,
}

/// What the leader measured over the jobs since the last [`Team::take_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct JobStats {
    /// Seconds the jobs took.
    pub wall: f64,
    /// Seconds the leader alone would have taken, at the pace it kept on its own items.
    pub alone: f64,
}

/// The calling thread plus the helpers it has engaged.
pub(crate) struct Team<'a> {
    shared: Arc<Shared>,
    helpers: Vec<Helper>,
    has_core: bool,
    starving: bool,
    cancel: Option<&'a AtomicBool>,
    stats: Cell<JobStats>,
    pool: &'static Pool,
}

/// Mutable access to the items of a slice from a [`Team::run`] job, one item per job index.
pub(crate) struct PerItem<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: hands out `&mut T` to distinct indices only (see `get`), so sharing it is sharing
// disjoint `&mut T`s, which needs T: Send.
unsafe impl<T: Send> Sync for PerItem<'_, T> {}

impl<'a, T> PerItem<'a, T> {
    /// Wraps `items` for the length of its borrow.
    pub(crate) fn new(items: &'a mut [T]) -> Self {
        PerItem {
            ptr: items.as_mut_ptr(),
            len: items.len(),
            _borrow: std::marker::PhantomData,
        }
    }

    /// Item `i`.
    ///
    /// # Safety
    /// No other reference to item `i` may be live: call it once per job index of one
    /// [`Team::run`], which gives every index to exactly one call.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get(&self, i: usize) -> &mut T {
        assert!(i < self.len, "item {i} of {}", self.len);
        // SAFETY: in bounds; exclusive by the caller's guarantee.
        unsafe { &mut *self.ptr.add(i) }
    }

    /// Chunk `i` of the slice cut into chunks of `size` items (the last may be shorter).
    ///
    /// # Safety
    /// No other reference into that chunk may be live: call it once per job index, as
    /// [`PerItem::get`].
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn chunk(&self, i: usize, size: usize) -> &mut [T] {
        let lo = i * size;
        assert!(lo < self.len, "chunk {i} of {size} in {}", self.len);
        let len = size.min(self.len - lo);
        // SAFETY: in bounds; exclusive by the caller's guarantee.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(lo), len) }
    }
}

/// Waits for `ready`, spinning for at most `spin`, then parking after `before_park` says
/// the wait may sleep (it publishes "asleep" so that the waker knows to unpark).
fn spin_then_park<R>(
    spin: Duration,
    mut ready: impl FnMut() -> Option<R>,
    asleep: &AtomicBool,
) -> R {
    loop {
        let start = Instant::now();
        let mut turns = 0u32;
        loop {
            if let Some(r) = ready() {
                return r;
            }
            turns += 1;
            // Reading the clock costs more than a pause: look at it every 64 turns. From then
            // on, offer the core to anything else runnable on it: the scheduler sometimes
            // wakes a helper on its leader's core, and a waiter that only spins there would
            // keep the very thread it waits for off the core.
            if turns % 64 == 0 {
                if start.elapsed() >= spin {
                    break;
                }
                thread::yield_now();
            }
            std::hint::spin_loop();
        }
        // Announce the sleep, then look once more: whoever makes `ready` true next either
        // sees `asleep` and unparks, or was seen by this last look (both sides SeqCst).
        asleep.store(true, Ordering::SeqCst);
        if let Some(r) = ready() {
            asleep.store(false, Ordering::Relaxed);
            return r;
        }
        thread::park();
        asleep.store(false, Ordering::Relaxed);
    }
}

/// Takes items of `job` until none is left, it is interrupted, or an item panics. Returns
/// the units of cost done and the seconds spent, when `cost` is given.
fn take_items(
    shared: &Shared,
    job: &JobDesc<'_>,
    cost: Option<&dyn Fn(usize) -> f64>,
) -> (f64, f64) {
    let (mut units, mut secs) = (0.0, 0.0);
    loop {
        if job.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            shared.aborted.store(true, Ordering::Relaxed);
            shared.next.store(STOP, Ordering::Relaxed);
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= job.n {
            break;
        }
        let start = cost.map(|_| Instant::now());
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| (job.f)(i))) {
            shared.next.store(STOP, Ordering::Relaxed);
            let mut slot = shared.panic.lock().unwrap_or_else(PoisonError::into_inner);
            slot.get_or_insert(p);
            break;
        }
        if let (Some(start), Some(cost)) = (start, cost) {
            secs += start.elapsed().as_secs_f64();
            units += cost(i);
        }
    }
    (units, secs)
}

/// A helper's life in a team: join every job that opens, until dismissed.
fn help(shared: Arc<Shared>, me: Arc<HelperFlags>) {
    let mut seen = 0;
    loop {
        let ready = || {
            if me.dismissed.load(Ordering::SeqCst) {
                return Some(None);
            }
            let s = shared.seq.load(Ordering::SeqCst);
            (s % 2 == 1 && s != seen).then_some(Some(s))
        };
        let Some(s) = spin_then_park(HELPER_SPIN, ready, &me.asleep) else {
            return;
        };
        // Count in first, then check that the job is still open: the leader closes a job
        // first, then waits for the count to drop to zero, so either it waits for this
        // helper or this helper sees the job closed (both sides SeqCst).
        shared.active.fetch_add(1, Ordering::SeqCst);
        if shared.seq.load(Ordering::SeqCst) == s {
            // SAFETY: job `s` is open, so `job` points to its description, which lives on
            // the leader's stack until the leader has seen `active` drop to zero.
            let job = unsafe { &*shared.job.load(Ordering::Acquire) };
            take_items(&shared, job, None);
        }
        seen = s;
        if shared.active.fetch_sub(1, Ordering::SeqCst) == 1
            && shared.leader_asleep.load(Ordering::SeqCst)
        {
            shared.leader.unpark();
        }
    }
}

impl<'a> Team<'a> {
    /// A team led by the calling thread, with no helper engaged yet. A fit's team stops its
    /// cancellable jobs when `cancel` is raised.
    pub(crate) fn new(kind: Kind, cancel: Option<&'a AtomicBool>) -> Self {
        let pool = pool();
        let has_core = pool.try_take_core();
        let starving = !has_core && kind == Kind::Fit;
        if starving {
            pool.set_starving(true);
        }
        Team {
            shared: Arc::new(Shared {
                seq: AtomicUsize::new(0),
                job: AtomicPtr::new(std::ptr::null_mut()),
                next: AtomicUsize::new(0),
                active: AtomicUsize::new(0),
                leader: thread::current(),
                leader_asleep: AtomicBool::new(false),
                aborted: AtomicBool::new(false),
                panic: Mutex::new(None),
            }),
            helpers: Vec::new(),
            has_core,
            starving,
            cancel,
            stats: Cell::new(JobStats::default()),
            pool,
        }
    }

    /// A short call's team with up to `want` helpers, as the budget allows.
    pub(crate) fn for_call(want: usize) -> Team<'static> {
        let mut team = Team::new(Kind::Call, None);
        team.engage(want);
        team
    }

    /// The helpers engaged.
    pub(crate) fn helpers(&self) -> usize {
        self.helpers.len()
    }

    /// True while this team's leader runs without a core of the budget.
    pub(crate) fn starving(&self) -> bool {
        self.starving
    }

    /// True when a leader elsewhere runs without a core of the budget.
    pub(crate) fn others_starve(&self) -> bool {
        self.pool.someone_starves()
    }

    /// True once the interrupt flag is raised.
    pub(crate) fn interrupted(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Engages helpers until `want` are, as far as the budget of cores allows; dismisses any
    /// beyond `want`, and one more when a leader elsewhere runs without a core.
    pub(crate) fn engage(&mut self, want: usize) {
        if !self.has_core && self.pool.try_take_core() {
            self.has_core = true;
            if self.starving {
                self.starving = false;
                self.pool.set_starving(false);
            }
        }
        let mut want = if self.has_core { want } else { 0 };
        if self.pool.someone_starves() {
            // A leader elsewhere runs without a core: give one back, take none.
            want = want.min(self.helpers.len().saturating_sub(1));
        }
        while self.helpers.len() > want {
            self.dismiss_one();
        }
        while self.helpers.len() < want && self.pool.try_take_core() {
            if !self.add_helper(true) {
                // No thread could start: fewer hands, same results.
                self.pool.give_core();
                break;
            }
        }
    }

    /// Starts one more helper (holding a core of the budget when `core`); false when no
    /// thread could start.
    fn add_helper(&mut self, core: bool) -> bool {
        let flags = Arc::new(HelperFlags::default());
        let (shared, mine) = (Arc::clone(&self.shared), Arc::clone(&flags));
        match self.pool.lend(Box::new(move || help(shared, mine))) {
            Ok(thread) => {
                self.helpers.push(Helper {
                    flags,
                    thread,
                    core,
                });
                true
            }
            Err(_) => false,
        }
    }

    /// Engages `n` more helpers outside the budget of cores: tests use it to run a team of
    /// more threads than the machine has.
    #[cfg(test)]
    pub(crate) fn engage_beyond_budget(&mut self, n: usize) {
        for _ in 0..n {
            assert!(self.add_helper(false), "a helper thread could not start");
        }
    }

    fn dismiss_one(&mut self) {
        if let Some(h) = self.helpers.pop() {
            h.flags.dismissed.store(true, Ordering::SeqCst);
            h.thread.unpark();
            if h.core {
                self.pool.give_core();
            }
        }
    }

    /// The leader's measurements since the last call, and a fresh start.
    pub(crate) fn take_stats(&self) -> JobStats {
        self.stats.replace(JobStats::default())
    }

    fn add_stats(&self, wall: f64, alone: f64) {
        let s = self.stats.get();
        self.stats.set(JobStats {
            wall: s.wall + wall,
            alone: s.alone + alone,
        });
    }

    /// Calls `f(i)` for every `i` in `0..n`, spread over the team; returns when all are done,
    /// or, when `cancellable` and the interrupt flag is raised, as soon as the items under
    /// way are: then `false`, and some items never ran. `cost(i)` is item i's relative cost
    /// (e.g. its rows or its multiply-adds), from which the leader's pace on its own items
    /// extrapolates what the whole job would have taken it alone.
    pub(crate) fn run(
        &self,
        n: usize,
        cancellable: bool,
        cost: &dyn Fn(usize) -> f64,
        f: &(dyn Fn(usize) + Sync),
    ) -> bool {
        let cancel = if cancellable { self.cancel } else { None };
        let start = Instant::now();
        if self.helpers.is_empty() || n <= 1 {
            for i in 0..n {
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    return false;
                }
                f(i);
            }
            let wall = start.elapsed().as_secs_f64();
            self.add_stats(wall, wall);
            return true;
        }
        let shared = &*self.shared;
        let desc = JobDesc { f, n, cancel };
        shared.next.store(0, Ordering::Relaxed);
        shared.aborted.store(false, Ordering::Relaxed);
        shared.job.store(
            (&desc as *const JobDesc<'_>).cast_mut().cast(),
            Ordering::Release,
        );
        let seq = shared.seq.load(Ordering::Relaxed) + 1;
        shared.seq.store(seq, Ordering::SeqCst);
        for h in &self.helpers {
            if h.flags.asleep.load(Ordering::SeqCst) {
                h.thread.unpark();
            }
        }
        let (units, secs) = take_items(shared, &desc, Some(cost));
        // Close the job, then wait for the helpers inside it to leave (see `help`).
        shared.seq.store(seq + 1, Ordering::SeqCst);
        spin_then_park(
            LEADER_SPIN,
            || (shared.active.load(Ordering::SeqCst) == 0).then_some(()),
            &shared.leader_asleep,
        );
        shared.job.store(std::ptr::null_mut(), Ordering::Release);
        if let Some(p) = shared
            .panic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            resume_unwind(p);
        }
        let wall = start.elapsed().as_secs_f64();
        let alone = if units > 0.0 {
            secs / units * (0..n).map(cost).sum::<f64>()
        } else {
            wall
        };
        self.add_stats(wall, alone);
        !shared.aborted.load(Ordering::Relaxed)
    }
}

impl Drop for Team<'_> {
    fn drop(&mut self) {
        while !self.helpers.is_empty() {
            self.dismiss_one();
        }
        if self.has_core {
            self.pool.give_core();
        }
        if self.starving {
            self.pool.set_starving(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(_: usize) -> f64 {
        1.0
    }

    #[test]
    fn every_item_runs_once_whatever_the_helpers() {
        for want in [0, 1, 2, 7] {
            let mut team = Team::new(Kind::Call, None);
            team.engage_beyond_budget(want);
            for n in [0, 1, 2, 7, 100] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                for _ in 0..20 {
                    assert!(team.run(n, false, &uniform, &|i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    }));
                }
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 20));
            }
        }
    }

    #[test]
    fn helpers_that_sleep_between_jobs_still_join_later_ones() {
        let mut team = Team::new(Kind::Call, None);
        team.engage_beyond_budget(1);
        let total = AtomicUsize::new(0);
        for _ in 0..5 {
            // Long enough apart that helpers park in between.
            thread::sleep(Duration::from_millis(2));
            team.run(64, false, &uniform, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(total.load(Ordering::Relaxed), 5 * 64);
    }

    #[test]
    fn a_panicking_item_reaches_the_caller_and_the_team_goes_on() {
        let mut team = Team::new(Kind::Call, None);
        team.engage_beyond_budget(3);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            team.run(8, false, &uniform, &|i| assert!(i != 5, "item five"))
        }));
        assert!(caught.is_err());
        let count = AtomicUsize::new(0);
        team.run(8, false, &uniform, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn an_interrupt_stops_a_cancellable_job_between_items() {
        let flag = AtomicBool::new(false);
        let mut team = Team::new(Kind::Fit, Some(&flag));
        team.engage_beyond_budget(2);
        let ran = AtomicUsize::new(0);
        let done = team.run(1000, true, &uniform, &|i| {
            ran.fetch_add(1, Ordering::Relaxed);
            if i == 10 {
                flag.store(true, Ordering::Relaxed);
            }
        });
        assert!(!done);
        assert!(ran.load(Ordering::Relaxed) < 1000);
        // A job that is not cancellable runs whole even now.
        let whole = AtomicUsize::new(0);
        assert!(team.run(50, false, &uniform, &|_| {
            whole.fetch_add(1, Ordering::Relaxed);
        }));
        assert_eq!(whole.load(Ordering::Relaxed), 50);
    }

    #[test]
    fn the_leader_estimates_the_time_alone_from_its_own_items() {
        let team = Team::new(Kind::Call, None);
        team.run(4, false, &uniform, &|_| {
            thread::sleep(Duration::from_millis(1))
        });
        let s = team.take_stats();
        assert!(s.wall >= 0.004 && s.alone == s.wall);
        assert_eq!(team.take_stats(), JobStats::default());
    }
}
