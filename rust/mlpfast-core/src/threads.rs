//! The thread pool mlpfast owns.
//!
//! mlpfast runs its parallel work (large matrix products) on a rayon pool of its own, sized
//! by [`set_num_threads`] or the `MLPFAST_NUM_THREADS` environment variable (default: the
//! cores available). Owning the pool keeps mlpfast from fighting numpy's OpenBLAS threads
//! or another extension's global rayon pool. Results never depend on the thread count:
//! work is split over output elements, never over a sum.

use std::sync::{Arc, Mutex, PoisonError};

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

/// The pool to run parallel work on, or `None` when running on one thread.
pub(crate) fn pool() -> Option<Arc<ThreadPool>> {
    let mut state = lock();
    if state.threads <= 1 {
        return None;
    }
    if state.pool.is_none() {
        // A pool that cannot start (no threads left to the process) means serial work, not
        // an error: the results are the same.
        state.pool = rayon::ThreadPoolBuilder::new()
            .num_threads(state.threads)
            .thread_name(|i| format!("mlpfast-{i}"))
            .build()
            .ok()
            .map(Arc::new);
    }
    state.pool.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_threads_is_refused() {
        assert!(set_num_threads(0).is_err());
        assert!(num_threads() >= 1);
    }
}
