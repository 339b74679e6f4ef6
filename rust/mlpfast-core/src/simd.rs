//! Runtime dispatch of elementwise loops to the widest vector instructions the CPU has.
//!
//! The wheel is built for baseline x86-64 (SSE2), which leaves most of a modern core's vector
//! width unused in the elementwise passes: bias and activation, the loss, optimizer updates,
//! gradient sums. [`wide`] runs a loop compiled again with AVX-512 (512-bit vectors) or AVX2
//! enabled, the widest the CPU supports. No sum is reordered, and no fused multiply-add is
//! formed where the code does not ask for one (Rust never contracts `a * b + c`; where it asks,
//! with `mul_add`, every level has the exactly rounded instruction: AVX2 comes with FMA
//! here), so every build of a loop gives the same bits: only their speed differs.
//!
//! `MLPFAST_SIMD=avx2` or `MLPFAST_SIMD=baseline` in the environment caps the level, read once
//! per process: to compare the paths, or to rule one out when chasing a problem.

use std::sync::OnceLock;

/// An instruction set level an elementwise loop can be compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The wheel's baseline: SSE2 on x86-64, whatever the target has elsewhere.
    Baseline,
    /// 256-bit vectors, with fused multiply-add.
    Avx2,
    /// 512-bit vectors (AVX-512 F, with its integer and conversion extensions).
    Avx512,
}

impl Level {
    /// The name `MLPFAST_SIMD` takes and [`level`] reports.
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    fn from_name(name: &str) -> Option<Level> {
        [Level::Baseline, Level::Avx2, Level::Avx512]
            .into_iter()
            .find(|l| l.name() == name.trim().to_ascii_lowercase())
    }
}

/// The widest level this CPU supports.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Level::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// The level elementwise loops run at: [`detected`], capped by `MLPFAST_SIMD` when that names
/// a level (an unknown name is ignored). Decided once per process.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("MLPFAST_SIMD")
            .ok()
            .and_then(|v| Level::from_name(&v));
        detected().min(cap.unwrap_or(Level::Avx512))
    })
}

#[cfg(test)]
thread_local! {
    /// A level forced on this thread by [`at_level`], for tests of every path.
    static FORCED: std::cell::Cell<Option<Level>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with this thread's elementwise loops at `level` (at most [`detected`]).
#[cfg(test)]
pub(crate) fn at_level<R>(level: Level, f: impl FnOnce() -> R) -> R {
    FORCED.with(|c| c.set(Some(level.min(detected()))));
    let r = f();
    FORCED.with(|c| c.set(None));
    r
}

/// The level [`wide`] runs at on this thread: [`level`], or in tests the one [`at_level`]
/// forces.
#[inline(always)]
pub(crate) fn active() -> Level {
    #[cfg(test)]
    return FORCED.with(|c| c.get()).unwrap_or_else(level);
    #[cfg(not(test))]
    level()
}

/// Runs `f`, compiled for the widest level available (see [`level`]). `f` should be an
/// `#[inline(always)]` closure so that its body is compiled into each level's function.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    let level = active();
    #[cfg(target_arch = "x86_64")]
    {
        match level {
            // SAFETY: `level` never exceeds what `detected` found this CPU to support.
            Level::Avx512 => return unsafe { with_avx512(f) },
            // SAFETY: as above.
            Level::Avx2 => return unsafe { with_avx2(f) },
            Level::Baseline => {}
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_level_never_exceeds_the_cpu() {
        for l in [Level::Baseline, Level::Avx2, Level::Avx512] {
            assert_eq!(Level::from_name(l.name()), Some(l));
        }
        assert_eq!(Level::from_name(" AVX2 "), Some(Level::Avx2));
        assert_eq!(Level::from_name("sse9"), None);
        assert!(level() <= detected());
        assert_eq!(at_level(Level::Avx512, || wide(|| 3)), 3);
    }
}
