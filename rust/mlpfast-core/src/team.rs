//! A team of threads that stays awake for one training run.
//!
//! A training step of a small network lasts a few microseconds, less than it takes to wake a
//! sleeping thread. So for the length of one `fit`, mlpfast keeps its helper threads spinning
//! between the step's parallel phases, like an OpenMP team: [`Team::run`] publishes a job of
//! `n` items, every thread takes items by an atomic counter until none is left, and the call
//! returns once all threads are done. Which thread takes which item varies from run to run;
//! what an item computes does not, so the results do not depend on the team's size.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A job with its lifetime erased; only [`Team::run`] creates one, and it waits for every
/// thread to finish with it before the borrow ends.
type Job = &'static (dyn Fn(usize) + Sync);

/// After this long without work a waiting helper starts yielding its core...
const SPIN: Duration = Duration::from_micros(200);
/// ...and after this long it naps between looks (an epoch's end, a Python callback).
const NAP_AFTER: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Shared {
    generation: AtomicUsize,
    job: Mutex<Option<(Job, usize)>>,
    next: AtomicUsize,
    done: AtomicUsize,
    quit: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// The calling thread plus `size - 1` helpers, alive for the duration of [`with_team`].
pub(crate) struct Team<'a> {
    size: usize,
    shared: &'a Shared,
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
}

/// Runs `body` with a team of `size` threads (the caller and `size - 1` helpers).
pub(crate) fn with_team<R>(size: usize, body: impl FnOnce(&Team<'_>) -> R) -> R {
    let shared = Shared::default();
    let size = size.max(1);
    std::thread::scope(|scope| {
        let mut started = 1;
        for _ in 1..size {
            let spawned = std::thread::Builder::new()
                .name("mlpfast-team".into())
                .spawn_scoped(scope, || helper(&shared));
            // A helper that cannot start only means fewer hands; the items still all get done.
            if spawned.is_ok() {
                started += 1;
            }
        }
        let team = Team {
            size: started,
            shared: &shared,
        };
        let result = catch_unwind(AssertUnwindSafe(|| body(&team)));
        shared.quit.store(true, Ordering::Release);
        match result {
            Ok(r) => r,
            Err(p) => resume_unwind(p),
        }
    })
}

fn wait_until(mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        let waited = start.elapsed();
        if waited < SPIN {
            std::hint::spin_loop();
        } else if waited < NAP_AFTER {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

fn helper(shared: &Shared) {
    let mut seen = 0;
    loop {
        wait_until(|| {
            shared.quit.load(Ordering::Acquire) || shared.generation.load(Ordering::Acquire) != seen
        });
        if shared.quit.load(Ordering::Acquire) {
            return;
        }
        seen = shared.generation.load(Ordering::Acquire);
        let job = *shared.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((f, n)) = job {
            work(shared, f, n);
        }
        shared.done.fetch_add(1, Ordering::AcqRel);
    }
}

fn work(shared: &Shared, f: Job, n: usize) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        loop {
            let i = shared.next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            f(i);
        }
    }));
    if let Err(p) = outcome {
        // Stop handing out items and report the panic to the caller of `run`.
        shared.next.store(usize::MAX / 2, Ordering::Relaxed);
        *shared.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
    }
}

impl Team<'_> {
    /// Calls `f(i)` for every `i` in `0..n`, spread over the team; returns when all are done.
    pub(crate) fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.size == 1 || n <= 1 {
            (0..n).for_each(f);
            return;
        }
        let shared = self.shared;
        // SAFETY: the reference is published for this call only: every helper has finished
        // with it (done == size - 1 below) before this function returns and `f`'s borrow ends,
        // and the slot is cleared before that.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        shared.next.store(0, Ordering::Relaxed);
        shared.done.store(0, Ordering::Relaxed);
        *shared.job.lock().unwrap_or_else(|e| e.into_inner()) = Some((job, n));
        shared.generation.fetch_add(1, Ordering::AcqRel);
        work(shared, job, n);
        wait_until(|| shared.done.load(Ordering::Acquire) == self.size - 1);
        *shared.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(p) = shared
            .panic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            resume_unwind(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_whatever_the_team_size() {
        for size in [1, 2, 3] {
            with_team(size, |team| {
                for n in [0, 1, 2, 7, 100] {
                    let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                    for _ in 0..20 {
                        team.run(n, &|i| {
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        });
                    }
                    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 20));
                }
            });
        }
    }

    #[test]
    fn a_panicking_item_reaches_the_caller() {
        let caught = catch_unwind(|| {
            with_team(2, |team| team.run(8, &|i| assert!(i != 5, "item five")));
        });
        assert!(caught.is_err());
    }
}
