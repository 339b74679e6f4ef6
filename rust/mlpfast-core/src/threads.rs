//! The thread pool mlpfast owns.
//!
//! mlpfast runs its parallel work on a rayon pool of its own, sized by [`set_num_threads`] or
//! the `MLPFAST_NUM_THREADS` environment variable (default: the cores available). Owning the
//! pool keeps mlpfast from fighting numpy's OpenBLAS threads or another extension's global
//! rayon pool. Results never depend on its size: work is cut into pieces by the shapes alone
//! (see `step`), and the pool only decides who computes which piece.

use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rayon::ThreadPool;

use crate::error::{Error, Result};

struct PoolState {
    threads: usize,
    pool: Option<Arc<ThreadPool>>,
}

static STATE: Mutex<PoolState> = Mutex::new(PoolState {
    threads: 0,
    pool: None,
});

fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("MLPFAST_NUM_THREADS") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .unwrap_or(cores),
        Err(_) => cores,
    }
}

fn lock() -> std::sync::MutexGuard<'static, PoolState> {
    let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    if state.threads == 0 {
        state.threads = default_threads();
    }
    state
}

/// The number of threads mlpfast uses.
pub fn num_threads() -> usize {
    lock().threads
}

/// Sets the number of threads mlpfast uses (at least 1).
pub fn set_num_threads(n: usize) -> Result<()> {
    if n < 1 {
        return Err(Error::value("n", "an integer >= 1", n));
    }
    let mut state = lock();
    if state.threads != n {
        state.threads = n;
        state.pool = None;
    }
    Ok(())
}

/// The pool, built on first use (`None` only when the system refuses to start threads; then
/// everything runs on the caller's thread, with the same results).
pub fn pool() -> Option<Arc<ThreadPool>> {
    let mut state = lock();
    if state.pool.is_none() {
        state.pool = rayon::ThreadPoolBuilder::new()
            .num_threads(state.threads)
            .thread_name(|i| format!("mlpfast-{i}"))
            .build()
            .ok()
            .map(Arc::new);
    }
    state.pool.clone()
}

/// Runs `op` on mlpfast's pool, so that the parallel iterators inside it use that pool.
pub fn install<R: Send>(op: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(pool) => pool.install(op),
        None => op(),
    }
}

/// Runs `work` on mlpfast's pool while the calling thread calls `poll` every `every` until it
/// is done, and returns what `work` returned.
///
/// This is how a long computation stays interruptible: Python delivers signals to its main
/// thread only, so the main thread polls for them while a worker computes (the worker learns
/// of an interrupt through state that `poll` and `work` share, e.g. an atomic flag).
pub fn run_polling<R: Send>(
    work: impl FnOnce() -> R + Send,
    mut poll: impl FnMut(),
    every: Duration,
) -> R {
    let Some(pool) = pool() else {
        return work();
    };
    let (tx, rx) = channel();
    pool.in_place_scope(|scope| {
        scope.spawn(move |_| {
            // The receiver outlives the scope, so the send cannot fail.
            let _ = tx.send(work());
        });
        loop {
            match rx.recv_timeout(every) {
                Ok(result) => return result,
                Err(RecvTimeoutError::Timeout) => poll(),
                // `work` panicked; the scope re-raises the panic once this closure returns.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        unreachable_after_panic()
    })
}

/// Reached only when the worker panicked: rayon's scope propagates that panic as soon as the
/// closure returns, so the value here is never observed.
fn unreachable_after_panic<R>() -> R {
    panic!("mlpfast worker stopped without a result")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[test]
    fn zero_threads_is_refused() {
        assert!(set_num_threads(0).is_err());
        assert!(num_threads() >= 1);
    }

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
}
