//! The threads mlpfast runs on: parked workers lent out and given back, and the budget of
//! cores that teams share.
//!
//! A worker is an OS thread that, when idle, sleeps (parked on a futex) until it is lent a
//! task: leading a fit (see [`run_polling`]) or helping a team (see `team`). Lending never
//! waits for a busy worker: when none is idle, a new one starts. So a fit started from
//! another fit's callback, or from another Python thread, always finds a thread of its own
//! and never deadlocks behind one that is busy.
//!
//! **The budget.** At most [`threads::width_cap`] threads of all teams of the process compute
//! at a time. A team's leader takes one core of the budget when one is free, and each helper
//! needs one; a leader that finds none still runs (its caller is waiting for it) but counts
//! as *starving*, and teams with helpers give one back at their next measurement round. So
//! two fits in two Python threads on two cores run side by side, one core each.
//!
//! **Forks.** The pool belongs to the process that made it: after a fork (multiprocessing's
//! fork start method), the child finds the parent's pool by its process id and starts a
//! fresh one, since the parent's threads do not exist in the child.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};
use std::time::Duration;

use crate::threads;

/// Work lent to a worker. It must not unwind: every task catches its own panics.
pub(crate) type Task = Box<dyn FnOnce() + Send + 'static>;

/// Idle workers kept beyond this many exit instead of parking.
const MAX_IDLE: usize = 64;

/// The pool of one process.
pub(crate) struct Pool {
    pid: u32,
    idle: Mutex<Vec<Arc<Worker>>>,
    /// Cores of the budget taken by leaders and helpers.
    busy: AtomicUsize,
    /// Leaders of fits that run without a core of the budget.
    starving: AtomicUsize,
}

/// One parked or working thread.
struct Worker {
    thread: Thread,
    task: Mutex<Option<Task>>,
}

static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds valid data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pool of this process (a fresh one on first use, or after a fork).
pub(crate) fn pool() -> &'static Pool {
    let pid = std::process::id();
    loop {
        let current = POOL.load(Ordering::Acquire);
        // SAFETY: a pool, once published, is never freed (see below), so the pointer stays
        // valid for the life of the process.
        if let Some(p) = unsafe { current.as_ref() } {
            if p.pid == pid {
                return p;
            }
        }
        let fresh = Box::into_raw(Box::new(Pool {
            pid,
            idle: Mutex::new(Vec::new()),
            busy: AtomicUsize::new(0),
            starving: AtomicUsize::new(0),
        }));
        // The replaced pool (a parent's, after a fork) is leaked on purpose: it is small, and
        // its locks may be held by threads that do not exist in this process.
        match POOL.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just published; never freed.
            Ok(_) => return unsafe { &*fresh },
            // SAFETY: `fresh` was never published, so this is its only owner.
            Err(_) => drop(unsafe { Box::from_raw(fresh) }),
        }
    }
}

impl Pool {
    /// Runs `task` on an idle worker, or on a new one; returns that worker's thread (to
    /// unpark it), or the task back when no thread could be started.
    pub(crate) fn lend(&'static self, task: Task) -> Result<Thread, Task> {
        if let Some(worker) = lock(&self.idle).pop() {
            *lock(&worker.task) = Some(task);
            worker.thread.unpark();
            return Ok(worker.thread.clone());
        }
        // The task goes through a slot, so that a thread that fails to start hands it back.
        let slot = Arc::new(Mutex::new(Some(task)));
        let theirs = Arc::clone(&slot);
        let started = thread::Builder::new()
            .name("mlpfast".into())
            .spawn(move || {
                let first = lock(&theirs).take();
                drop(theirs);
                if let Some(first) = first {
                    self.work(first);
                }
            });
        match started {
            Ok(handle) => Ok(handle.thread().clone()),
            Err(_) => Err(lock(&slot).take().expect("a thread that never started")),
        }
    }

    /// A worker's life: run a task, park until the next, exit when enough others are idle.
    fn work(&'static self, first: Task) {
        let me = Arc::new(Worker {
            thread: thread::current(),
            task: Mutex::new(None),
        });
        let mut task = first;
        loop {
            task();
            {
                let mut idle = lock(&self.idle);
                if idle.len() >= MAX_IDLE {
                    return;
                }
                idle.push(Arc::clone(&me));
            }
            task = loop {
                if let Some(t) = lock(&me.task).take() {
                    break t;
                }
                thread::park();
            };
        }
    }

    /// Takes one core of the budget if one is free.
    pub(crate) fn try_take_core(&self) -> bool {
        let cap = threads::width_cap();
        self.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b < cap).then_some(b + 1)
            })
            .is_ok()
    }

    /// Gives back a core taken by [`Pool::try_take_core`].
    pub(crate) fn give_core(&self) {
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// Counts a leader that runs without a core (`true`) or no longer does (`false`).
    pub(crate) fn set_starving(&self, starving: bool) {
        if starving {
            self.starving.fetch_add(1, Ordering::AcqRel);
        } else {
            self.starving.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// True when some leader runs without a core.
    pub(crate) fn someone_starves(&self) -> bool {
        self.starving.load(Ordering::Acquire) > 0
    }
}

/// Runs `work` on a worker of the pool while the calling thread calls `poll` every `every`,
/// until `work` is done; returns what it returned (a panic in `work` resumes here).
///
/// This is how a long computation stays interruptible: Python delivers signals to its main
/// thread only, so that thread polls for them while a worker computes (the worker learns of
/// an interrupt through state that `poll` and `work` share, e.g. an atomic flag). When no
/// thread can be started, `work` runs on the calling thread, without polls.
pub fn run_polling<R: Send>(
    work: impl FnOnce() -> R + Send,
    mut poll: impl FnMut(),
    every: Duration,
) -> R {
    let (tx, rx) = channel::<thread::Result<R>>();
    let job = move || {
        let result = catch_unwind(AssertUnwindSafe(work));
        // The receiver waits for this message, so the send cannot fail.
        let _ = tx.send(result);
    };
    let boxed: Box<dyn FnOnce() + Send + '_> = Box::new(job);
    // SAFETY: the task borrows from this stack frame, and this function does not return
    // before the task has finished with those borrows: it returns only after receiving the
    // task's message, which the task sends after `work` (the only borrower) is consumed, or
    // after the channel disconnects, which happens only once the task (and `work` in it) is
    // dropped. Panics in `poll` are caught and resumed after that point too.
    let task: Task = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Task>(boxed) };
    if let Err(task) = pool().lend(task) {
        task();
    }
    let mut poll_panic: Option<Box<dyn Any + Send>> = None;
    let result = loop {
        match rx.recv_timeout(every) {
            Ok(result) => break result,
            Err(RecvTimeoutError::Timeout) => {
                if poll_panic.is_none() {
                    poll_panic = catch_unwind(AssertUnwindSafe(&mut poll)).err();
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                break Err(Box::new("mlpfast worker stopped without a result"));
            }
        }
    };
    if let Some(p) = poll_panic {
        resume_unwind(p);
    }
    result.unwrap_or_else(|p| resume_unwind(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn polling_runs_while_the_work_does_and_can_stop_it() {
        let stop = AtomicBool::new(false);
        let polls = AtomicUsize::new(0);
        let steps = run_polling(
            || {
                let mut steps = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    steps += 1;
                }
                steps
            },
            || {
                if polls.fetch_add(1, Ordering::Relaxed) >= 2 {
                    stop.store(true, Ordering::Relaxed);
                }
            },
            Duration::from_millis(5),
        );
        assert!(steps > 0);
        assert!(polls.load(Ordering::Relaxed) >= 3);
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller() {
        let caught = catch_unwind(|| {
            run_polling(|| panic!("inside"), || {}, Duration::from_millis(1));
        });
        assert!(caught.is_err());
        // The pool still works afterwards.
        assert_eq!(run_polling(|| 7, || {}, Duration::from_millis(1)), 7);
    }

    #[test]
    fn nested_calls_never_wait_for_a_busy_worker() {
        // Work that itself runs work on the pool, three deep: each level gets a thread.
        let v = run_polling(
            || {
                run_polling(
                    || run_polling(|| 3, || {}, Duration::from_millis(1)) + 2,
                    || {},
                    Duration::from_millis(1),
                ) + 1
            },
            || {},
            Duration::from_millis(1),
        );
        assert_eq!(v, 6);
    }

    #[test]
    fn the_budget_never_exceeds_the_cap() {
        let p = pool();
        let mut taken = 0;
        while p.try_take_core() {
            taken += 1;
            assert!(taken <= threads::width_cap());
        }
        for _ in 0..taken {
            p.give_core();
        }
    }
}
