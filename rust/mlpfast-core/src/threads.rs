//! How many threads mlpfast may use, and where that number comes from.
//!
//! The limit is, in this order of precedence:
//!
//! 1. [`set_num_threads`] (process-wide, 1 to [`MAX_THREADS`]);
//! 2. the `MLPFAST_NUM_THREADS` environment variable;
//! 3. `OMP_NUM_THREADS` (its first entry, as OpenMP reads a nested list), which joblib's
//!    workers, dask's and Ray's set for every native library of a worker process;
//! 4. the cores this process may run on: its CPU affinity and cgroup quota, as
//!    `std::thread::available_parallelism` reports them, not the machine's core count.
//!
//! The environment is read once, at first use, as OpenMP runtimes do. A limit is an upper
//! bound, not a promise: one fit never runs more threads at a time than the cores available
//! ([`width_cap`]), whatever the limit, and it uses fewer when the work is small or when it
//! measures that its threads do not pay (see `team` and `pace`).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// The largest limit [`set_num_threads`] accepts (and the most the environment can ask for).
pub const MAX_THREADS: usize = 1024;

/// Where the current limit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// [`set_num_threads`].
    Explicit,
    /// `MLPFAST_NUM_THREADS`.
    MlpfastEnv,
    /// `OMP_NUM_THREADS`.
    OmpEnv,
    /// The cores available to the process.
    Cores,
}

impl Source {
    /// A short name, as the Python side reports it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Explicit => "set_num_threads",
            Source::MlpfastEnv => "MLPFAST_NUM_THREADS",
            Source::OmpEnv => "OMP_NUM_THREADS",
            Source::Cores => "cores",
        }
    }
}

/// The limit [`set_num_threads`] gave; 0 while it was never called.
static EXPLICIT: AtomicUsize = AtomicUsize::new(0);
/// The limit from the environment or the cores; 0 until first read.
static DEFAULT: AtomicUsize = AtomicUsize::new(0);
/// Where [`DEFAULT`] came from (a [`Source`] as u8).
static DEFAULT_SOURCE: AtomicU8 = AtomicU8::new(0);
/// The cores available to the process; 0 until first read.
static CORES: AtomicUsize = AtomicUsize::new(0);

/// A thread count as an environment variable gives it: the first comma-separated entry, an
/// integer >= 1 (capped at [`MAX_THREADS`]); anything else counts as unset.
fn parse_count(value: &str) -> Option<usize> {
    let first = value.split(',').next()?.trim();
    let n: usize = first.parse().ok()?;
    (n >= 1).then_some(n.min(MAX_THREADS))
}

/// The cores this process may run on (affinity and cgroup quota), read once.
pub fn cores() -> usize {
    match CORES.load(Ordering::Relaxed) {
        0 => {
            let n = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_THREADS);
            CORES.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

fn default_limit() -> (usize, Source) {
    let n = DEFAULT.load(Ordering::Relaxed);
    if n != 0 {
        let source = match DEFAULT_SOURCE.load(Ordering::Relaxed) {
            1 => Source::MlpfastEnv,
            2 => Source::OmpEnv,
            _ => Source::Cores,
        };
        return (n, source);
    }
    let env = |name: &str| std::env::var(name).ok().as_deref().and_then(parse_count);
    let (n, source, code) = if let Some(n) = env("MLPFAST_NUM_THREADS") {
        (n, Source::MlpfastEnv, 1)
    } else if let Some(n) = env("OMP_NUM_THREADS") {
        (n, Source::OmpEnv, 2)
    } else {
        (cores(), Source::Cores, 3)
    };
    DEFAULT_SOURCE.store(code, Ordering::Relaxed);
    DEFAULT.store(n, Ordering::Relaxed);
    (n, source)
}

/// The number of threads mlpfast may use, and where that number comes from.
pub fn limit() -> (usize, Source) {
    match EXPLICIT.load(Ordering::Relaxed) {
        0 => default_limit(),
        n => (n, Source::Explicit),
    }
}

/// The number of threads mlpfast may use.
pub fn num_threads() -> usize {
    limit().0
}

/// Sets the number of threads mlpfast may use, process-wide: an integer from 1 to
/// [`MAX_THREADS`]. Fits already running adopt it at their next measurement round.
pub fn set_num_threads(n: usize) -> Result<()> {
    if !(1..=MAX_THREADS).contains(&n) {
        return Err(bad_count(n));
    }
    EXPLICIT.store(n, Ordering::Relaxed);
    Ok(())
}

/// The error for a thread count `actual` outside 1 to [`MAX_THREADS`].
pub fn bad_count(actual: impl ToString) -> Error {
    Error::value("n", format!("an integer from 1 to {MAX_THREADS}"), actual)
}

/// The most threads one team may run at a time: the limit, but never more than the cores
/// available (threads beyond the cores only take turns on them, and every turn a helper
/// waits for stalls the whole team).
pub fn width_cap() -> usize {
    num_threads().min(cores()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_max_are_refused() {
        assert!(set_num_threads(0).is_err());
        assert!(set_num_threads(MAX_THREADS + 1).is_err());
        assert!(num_threads() >= 1);
    }

    #[test]
    fn environment_values_parse_like_openmp() {
        assert_eq!(parse_count("4"), Some(4));
        assert_eq!(parse_count(" 3 "), Some(3));
        assert_eq!(parse_count("2,1"), Some(2));
        assert_eq!(parse_count("0"), None);
        assert_eq!(parse_count("-1"), None);
        assert_eq!(parse_count("many"), None);
        assert_eq!(parse_count(""), None);
        assert_eq!(parse_count("100000"), Some(MAX_THREADS));
    }

    #[test]
    fn the_cap_never_exceeds_the_cores() {
        assert!(width_cap() <= cores());
        assert!(width_cap() >= 1);
    }
}
